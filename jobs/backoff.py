"""How long a failed attempt waits before the next: exponential backoff with equal jitter."""

from __future__ import annotations

import random

#: Doublings past which the ceiling is only ever the cap (a job may retry 10,000 times).
MAX_DOUBLINGS = 64


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None
                  ) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    The ceiling doubles from ``base`` per attempt up to ``cap``; the delay is
    half the ceiling plus a uniform random share of the other half ("equal
    jitter"), so retries of many jobs that failed together spread out but
    never come sooner than half the ceiling.
    """
    # the exponent is bounded first: 2 ** 1024 is no float, and the cap holds anyway
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, MAX_DOUBLINGS))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
