"""Benchmark helpers: smoke mode, best-of timing and a ratio summary table.

``DAW_BENCH_SMOKE=1`` shrinks every benchmark to a quick check that it runs
(CI does this); the figures in docs/ come from full runs by hand.
"""

from __future__ import annotations

import json
import os
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
