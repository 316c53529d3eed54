"""How long a failed attempt waits before the next: exponential backoff with equal jitter."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None
                  ) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    The ceiling doubles from ``base`` per attempt up to ``cap``; the delay is
    half the ceiling plus a uniform random share of the other half ("equal
    jitter"), so retries of many jobs that failed together spread out but
    never come sooner than half the ceiling.
    """
    ceiling = min(cap, base * 2 ** (max(attempt, 1) - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
