"""Benchmark helpers: smoke mode, best-of timing and a ratio summary table.

``DAW_BENCH_SMOKE=1`` shrinks every benchmark to a quick check that it runs
(CI does this); the figures in docs/ come from full runs by hand.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest

SMOKE = os.environ.get("DAW_BENCH_SMOKE") == "1"
RESULTS: list[dict] = []


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of ``repeat`` runs of ``fn``, in seconds."""
    times = []
    for _ in range(1 if SMOKE else repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rounds_of(contenders: dict[str, Callable[[], object]], rounds: int = 7,
              warmup: bool = True) -> dict[str, list[float]]:
    """Seconds of each contender per round; within a round they run one after another.

    A load change on a shared machine then hits every contender of the round, and a
    ratio taken round by round (:func:`median_ratio`) is steadier than a ratio of
    best times taken minutes apart.
    """
    if warmup:
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(1 if SMOKE else rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(times: dict[str, list[float]], baseline: str, ours: str) -> float:
    """Median over rounds of baseline time / our time (above 1: we are faster)."""
    return statistics.median(b / o for b, o in zip(times[baseline], times[ours], strict=True))


def measure(benchmark, fn: Callable[[], object], rounds: int = 3) -> float:
    """Time ``fn`` with pytest-benchmark (min of ``rounds``), or by hand when it is disabled."""
    if getattr(benchmark, "disabled", False) or SMOKE:
        fn()
        return best_time(fn, rounds)
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    return benchmark.stats["min"]


def record(benchmark, **figures: float | int | str) -> None:
    """Attach figures to the benchmark and to the end-of-run summary."""
    benchmark.extra_info.update(figures)
    RESULTS.append({"name": benchmark.name, **figures})


def pytest_terminal_summary(terminalreporter) -> None:
    if not RESULTS:
        return
    terminalreporter.write_sep("=", "benchmark figures (ratios are same-run)")
    for row in RESULTS:
        figures = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in row.items() if k != "name"
        )
        terminalreporter.write_line(f"{row['name']}: {figures}")
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "figures.json").write_text(json.dumps(RESULTS, indent=1))


@pytest.fixture
def smoke() -> bool:
    """True in smoke mode."""
    return SMOKE
