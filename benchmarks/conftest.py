"""Benchmark helpers: smoke mode, best-of timing and a ratio summary table.

``DAW_BENCH_SMOKE=1`` shrinks every benchmark to a quick check that it runs
(CI does this); the figures in docs/ come from full runs by hand.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

SMOKE = os.environ.get("DAW_BENCH_SMOKE") == "1"
RESULTS: list[dict] = []
#: Figures recorded by the benchmark running now, until its report carries them.
_RECORDED: list[dict] = []
#: The report's user property that carries them.
FIGURES = "benchmark_figures"


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of ``repeat`` runs of ``fn``, in seconds."""
    times = []
    for _ in range(1 if SMOKE else repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _others_running() -> bool | None:
    """Whether a thread of this process other than the caller is running or waiting
    for a core (state R in /proc, Linux), or None where that cannot be read."""
    me = threading.get_native_id()
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tids:
        if int(tid) == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        if state == "R":
            return True
    return False


def settle_threads(timeout: float = 0.5, poll: float = 0.001) -> float:
    """Wait until the process's other threads sleep; return the seconds waited.

    OpenBLAS's workers spin for about 0.1 s after a threaded call (2**28 cycles, its
    ``OPENBLAS_THREAD_TIMEOUT``) before they sleep; a contender timed meanwhile finds
    one core taken by them. A spinning thread stays runnable (R) even while the
    system preempts it, so the wait ends when no other thread is R on two polls in a
    row. Without /proc, a fixed 0.15 s pause.
    """
    start = time.perf_counter()
    if _others_running() is None:
        time.sleep(0.15)
        return time.perf_counter() - start
    calm = 0
    while calm < 2 and time.perf_counter() - start < timeout:
        calm = 0 if _others_running() else calm + 1
        if calm < 2:
            time.sleep(poll)
    return time.perf_counter() - start


def rounds_of(contenders: dict[str, Callable[[], object]], rounds: int = 7,
              warmup: bool = True, settle: bool = False) -> dict[str, list[float]]:
    """Seconds of each contender per round; within a round they run one after another.

    A load change on a shared machine then hits every contender of the round, and a
    ratio taken round by round (:func:`median_ratio`) is steadier than a ratio of
    best times taken minutes apart. With ``settle``, each contender starts once the
    threads the one before it left spinning are idle (:func:`settle_threads`).
    """
    if warmup:
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(1 if SMOKE else rounds):
        for name, fn in contenders.items():
            if settle:
                settle_threads()
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
    _RECORDED.append({"name": benchmark.name, **figures})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Carry the figures a benchmark recorded on its report: under pytest-xdist the
    report is what reaches the process that prints the summary."""
    outcome = yield
    outcome.get_result().user_properties.extend((FIGURES, row) for row in _RECORDED)
    _RECORDED.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    RESULTS.extend(row for key, row in report.user_properties if key == FIGURES)


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
