"""How long to make someone wait after failed sign-ins: a pure policy.

The first few failures cost nothing (typos happen), then each one doubles the wait, up to a
cap: with the defaults 0, 0, 0, then 1 s, 2 s, 4 s, ... 512 s, then 900 s for good. The
counters of failures live in the store; this module only turns a count into seconds.

Failures fade: the count halves for every ``half_life`` (one hour by default) without a
new failure (:func:`decayed`), so ten mistakes cost a minute's wait now, two seconds an
hour later and nothing after two quiet hours; a mistake made last week costs nothing.
A new failure counts on top of what is left of the old ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_RULE", "SIGN_UPS_FREE", "SIGN_UP_RULE", "Attempt", "ThrottleRule", "decayed",
           "delay_after"]


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """A doubling delay after ``free_failures`` failures, from ``base`` up to ``cap`` seconds.

    Parameters
    ----------
    free_failures : int
        Failures that cost no wait.
    base : float
        Seconds of wait after the first failure beyond the free ones.
    cap : float
        The longest wait, in seconds.
    half_life : float
        Seconds without a failure after which the count of failures halves.
    """

    free_failures: int = 3
    base: float = 1.0
    cap: float = 900.0
    half_life: float = 3600.0

    def __post_init__(self) -> None:
        if self.free_failures < 0:
            raise ValueError(f"free_failures={self.free_failures}: use 0 or more")
        if not (0 < self.base <= self.cap < math.inf):
            raise ValueError(f"base={self.base}, cap={self.cap}: "
                             f"use 0 < base <= cap, both finite seconds")
        if not (0 < self.half_life < math.inf):
            raise ValueError(f"half_life={self.half_life}: use finite seconds above 0")

    def delay_after(self, failures: int) -> float:
        """Seconds to wait before the next attempt, after ``failures`` failures in a row."""
        if failures < 0:
            raise ValueError(f"failures={failures}: a count of failures is 0 or more")
        doublings = failures - self.free_failures - 1
        if doublings < 0:
            return 0.0
        # 2.0 ** 1024 overflows; far below that the cap has been reached anyway
        return min(self.cap, self.base * 2.0 ** min(doublings, 1000))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt the store counted as a failure before checking it, or refused.

    ``wait`` is 0.0 when it was counted (then ``at`` is when, and ``before`` the
    subject's failures and last failure time as they were), else the seconds left to
    wait. Taking it back (it succeeded) restores ``before`` unless another failure was
    counted since, so that a success neither adds a failure nor restarts the fading.
    """

    subject: str
    wait: float
    at: float = 0.0
    before: tuple[int, float] = (0, 0.0)


def decayed(failures: int, last_failure_at: float, now: float, half_life: float) -> int:
    """What is left at ``now`` of ``failures`` whose newest was at ``last_failure_at``:
    halved once per whole ``half_life`` since (rounding down), never below 0."""
    quiet = now - last_failure_at
    if failures <= 0 or quiet < half_life:
        return max(0, failures)
    return failures >> min(int(quiet // half_life), 63)


#: The rule of the spec: 3 free failures, then 1 s doubling up to 15 minutes.
DEFAULT_RULE = ThrottleRule()


def delay_after(failures: int, rule: ThrottleRule = DEFAULT_RULE) -> float:
    """Seconds to wait after ``failures`` failures in a row under ``rule``."""
    return rule.delay_after(failures)


#: Sign-ups one client makes freely before it waits (1 s, then doubling), their count
#: halving with each hour without one: each costs an argon2 hash and a queued job, and
#: a class or an office behind one address signs up that many at once
#: (``ServerConfig.sign_ups_per_client``; :meth:`AccountService.take_sign_up`).
SIGN_UPS_FREE = 30
#: Their rule: a sign-up is counted before it is checked, so ``free_failures + 1`` of
#: them pass without a wait.
SIGN_UP_RULE = ThrottleRule(free_failures=SIGN_UPS_FREE - 1)
