"""Pacing a source: its moving-window rate limit and its quota, both counted by the
``limits`` library (in memory by default; pass a shared storage, such as Redis, so that
every worker of a deployment counts against the same window), and the back-off waits."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from limits import RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from business.analytics.errors import QuotaExhausted
from business.analytics.sources.spec import Backoff, RateLimit


class Pacer:
    """Waits for room in a source's rate window and spends its quota units.

    ``key`` separates the credentials that are limited apart (one app's client id); the
    quota key also carries the quota day in the source's reset time zone, so the count
    starts again at that midnight (YouTube: Pacific time).
    """

    def __init__(self, source: str, rate: RateLimit, *, key: str = "app",
                 storage: Storage | None = None) -> None:
        self.source = source
        self.rate = rate
        self.key = key
        storage = storage or MemoryStorage()
        self.window = MovingWindowRateLimiter(storage)
        self.item = RateLimitItemPerSecond(rate.requests, rate.per_s)
        self.quota = FixedWindowRateLimiter(storage)
        quota_item = RateLimitItemPerDay if rate.quota_period == "day" else RateLimitItemPerHour
        self.quota_item = quota_item(rate.units) if rate.units else None
        self.zone = ZoneInfo(rate.quota_reset_tz)
        #: Seconds spent waiting for the rate window (for tests and metrics).
        self.waited_s = 0.0

    def quota_period_start(self, now: datetime) -> datetime:
        """The start of the quota period that holds ``now``, in the reset time zone."""
        local = now.astimezone(self.zone)
        if self.rate.quota_period == "hour":
            return local.replace(minute=0, second=0, microsecond=0)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    def resets_at(self, now: datetime) -> datetime:
        """When the quota that holds ``now`` frees again (UTC)."""
        step = timedelta(hours=1) if self.rate.quota_period == "hour" else timedelta(days=1)
        local = self.quota_period_start(now) + step
        # re-anchor at local midnight (a DST change makes the day 23 or 25 hours)
        local = local.replace(tzinfo=None).replace(tzinfo=self.zone)
        return local.astimezone(UTC)

    async def acquire(self, now: datetime) -> None:
        """Spend one request's quota units, then wait for room in the rate window."""
        if self.quota_item is not None:
            period = self.quota_period_start(now).isoformat()
            if not await self.quota.hit(self.quota_item, self.source, self.key, period,
                                        cost=self.rate.unit_cost):
                resets = self.resets_at(now)
                raise QuotaExhausted(
                    f"the {self.rate.units:,} units of this {self.rate.quota_period} are "
                    f"spent; run again after {resets:%Y-%m-%d %H:%M} UTC",
                    resets_at=resets, source=self.source)
        while not await self.window.hit(self.item, self.source, self.key):
            stats = await self.window.get_window_stats(self.item, self.source, self.key)
            wait = max(0.005, stats.reset_time - time.time())
            self.waited_s += wait
            await asyncio.sleep(wait)


def backoff_delay(backoff: Backoff, attempt: int, rng: random.Random) -> float:
    """The wait before retry ``attempt`` (0-based): full jitter over base × 2^attempt."""
    return rng.uniform(0.0, min(backoff.max_s, backoff.base_s * 2 ** attempt))
