"""Server chores queued once per fixed window of time, whichever nodes ask.

Each node's loop asks, at the start of every window (``int(now // every_s)``), for the
window's jobs under an idempotency key naming the window, so however many nodes share the
database each job exists once and one worker runs it. The loop logs and survives every
failure (the database down for a while): the next window asks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from jobs import QueueSettings

log = logging.getLogger(__name__)

#: How a sweep runs: one at a time per worker, a few quick retries, a lease kept by beats.
SWEEP_SETTINGS = QueueSettings(max_attempts=3, backoff_base=30.0, backoff_cap=300.0,
                               lease_s=120.0, concurrency=1)


class Windowed:
    """A chore queued once per window of ``every_s`` seconds (:meth:`schedule`, which the
    subclass writes), by :meth:`run` on each node; ``clock`` gives the time in seconds."""

    every_s: float
    clock: Callable[[], float]
    #: What :meth:`schedule` queues, for the loop's log.
    chore = "the window's jobs"

    def window(self) -> int:
        """The number of the current window."""
        return int(self.clock() // self.every_s)

    async def schedule(self) -> object:
        """Queue this window's jobs (idempotent per window)."""
        raise NotImplementedError

    async def run(self) -> None:
        """Queue each window's jobs at its start, until cancelled."""
        while True:
            try:
                await self.schedule()
            except Exception as exc:  # the database may be down for a while
                log.warning("cannot queue %s: %s", self.chore, exc)
            await asyncio.sleep(self.every_s - self.clock() % self.every_s)
