"""Thinning a written automation pass: the new ``thin`` (vectorised Ramer-Douglas-Peucker,
ties split at the middle, a linear pass past depth ``2 log2 n``) against the thinning it
replaced (plain RDP, first index on ties: quadratic on a sawtooth), in the same run.

The input is a sawtooth of 20,000 events (0, 10, 0, 10, ...), the case review 15 timed
at about 50 s for one batch. Run:
``python -m pytest benchmarks/bench_thin.py --benchmark-enable -s``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from collab.automation_write import thin

EVENTS = 2000 if SMOKE else 20000


def thin_before(samples: Sequence[tuple[int, float]], tolerance: float
                ) -> list[tuple[int, float]]:
    """The thinning before this change (collab/automation_write.py at 208cb45..review 15)."""
    if len(samples) <= 2:
        return list(samples)
    keep = [False] * len(samples)
    keep[0] = keep[-1] = True
    stack = [(0, len(samples) - 1)]
    while stack:
        lo, hi = stack.pop()
        (f0, v0), (f1, v1) = samples[lo], samples[hi]
        worst, at = -1.0, -1
        for i in range(lo + 1, hi):
            f, v = samples[i]
            line = v0 if f1 == f0 else v0 + (v1 - v0) * (f - f0) / (f1 - f0)
            error = abs(v - line)
            if error > worst:
                worst, at = error, i
        if at >= 0 and worst > tolerance:
            keep[at] = True
            stack.extend([(lo, at), (at, hi)])
    return [s for s, k in zip(samples, keep, strict=True) if k]


@pytest.mark.timeout(1200)  # the quadratic baseline takes minutes at 20,000 events
def test_thin_against_the_quadratic_one_on_a_sawtooth(benchmark) -> None:
    saw = [(i * 480, 10.0 * (i % 2)) for i in range(EVENTS)]
    assert thin(saw[:1000], 0.2) == thin_before(saw[:1000], 0.2) == saw[:1000]
    kept: dict[str, list] = {}
    times = rounds_of({"before": lambda: kept.setdefault("before", thin_before(saw, 0.2)),
                       "now": lambda: kept.setdefault("now", thin(saw, 0.2))}, rounds=1,
                      warmup=False)
    assert kept["before"] == kept["now"] == saw  # nothing may go: the same result
    record(benchmark, events=EVENTS, seconds_before=statistics.median(times["before"]),
           seconds_now=statistics.median(times["now"]),
           speedup=median_ratio(times, "before", "now"))
