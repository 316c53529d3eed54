"""The per-process usage meter: counts in memory, flushed to the database periodically.

Recording a request is a dictionary lookup and a few additions on the event loop (no
I/O); :meth:`UsageMeter.flush` hands the tallies gathered since the last flush to
:class:`~.store.UsageStore` in one transaction every ``flush_s`` seconds, and once more
when the server stops (:meth:`UsageMeter.run` is the core's worker ``public_api.usage``,
cancelled on shutdown while the database is still open). A flush that fails puts its
tallies back, to be added by the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .histogram import bucket_of
from .store import Tally, UsageKey, UsageStore, day_of

logger = logging.getLogger(__name__)
#: Seconds between flushes (the dashboard lags by at most this).
FLUSH_S = 10.0
DAY_S = 86400
#: The status of a rate-limit refusal.
TOO_MANY = 429


class UsageMeter:
    """Tallies of each (account, key, day) since the last flush."""

    def __init__(self, store: UsageStore, *, flush_s: float = FLUSH_S) -> None:
        self.store, self.flush_s = store, flush_s
        self._tallies: dict[UsageKey, Tally] = {}
        self._lock = asyncio.Lock()
        self._flushed_at = float("-inf")  # monotonic time of the last flush's start
        self._day, self._day_from, self._day_to = "", 0.0, 0.0  # the UTC day last seen

    def _day_of(self, at: float) -> str:
        if not self._day_from <= at < self._day_to:
            self._day = day_of(at)
            self._day_from = at - at % DAY_S
            self._day_to = self._day_from + DAY_S
        return self._day

    def record(self, account_id: str, key_id: str, status: int, latency_ms: float,
               at: float | None = None) -> None:
        """Count one answer of ``status`` to key ``key_id`` that took ``latency_ms``."""
        day = self._day_of(time.time() if at is None else at)
        tally = self._tallies.get((account_id, key_id, day))
        if tally is None:
            tally = self._tallies[(account_id, key_id, day)] = Tally()
        tally.requests += 1
        if status >= 400:
            tally.errors += 1
        if status == TOO_MANY:
            tally.rejected += 1
        tally.latency_ms_sum += latency_ms
        tally.buckets[bucket_of(latency_ms)] += 1

    @property
    def pending(self) -> int:
        """Requests counted but not flushed yet."""
        return sum(t.requests for t in self._tallies.values())

    async def flush(self, max_age_s: float = 0.0) -> int:
        """Write what was counted since the last flush; how many requests it held. With
        ``max_age_s``, nothing is written when the last flush began less than that long
        ago (a report asked for in a loop costs one flush a second, not one per call)."""
        async with self._lock:
            now = time.monotonic()
            if max_age_s and now - self._flushed_at < max_age_s:
                return 0
            self._flushed_at = now
            taken, self._tallies = self._tallies, {}
            try:
                await self.store.add(taken)
            except BaseException:
                for key, tally in taken.items():  # keep them for the next flush
                    self._tallies.setdefault(key, Tally()).merge(tally)
                raise
            return sum(t.requests for t in taken.values())

    async def run(self) -> None:
        """Flush every ``flush_s`` until cancelled, then flush once more."""
        try:
            while True:
                await asyncio.sleep(self.flush_s)
                try:
                    await self.flush()
                except Exception:
                    logger.exception("API usage flush failed; its counts wait for the next")
        finally:
            try:
                flushed = await self.flush()
                logger.debug("API usage: %d requests flushed at shutdown", flushed)
            except Exception:
                logger.exception("API usage: the last flush failed; %d requests unrecorded",
                                 self.pending)
