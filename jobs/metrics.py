"""Prometheus metrics of the job queue, read from the database at scrape time.

:data:`QUEUE_COLLECTOR` is registered with prometheus-client's default registry; the
server's ``/metrics`` route awaits :meth:`JobQueueCollector.refresh` (one grouped query)
before it renders the text, so every scrape sees the queue as it stands:

- ``jobs_queue_depth{queue, state}``: jobs ``queued``, ``retrying`` or ``running``;
- ``jobs_oldest_due_age_seconds{queue}``: how long the oldest job that is due (waiting
  with its run time passed) has waited, 0 when none is. A worker that stopped claiming
  shows as an age that grows.

Labels carry queue names only (declared by the components, a handful), never accounts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from database import Session

#: The states counted in ``jobs_queue_depth``.
DEPTH_STATES = ("queued", "retrying", "running")


@dataclass(frozen=True)
class QueueStats:
    """One queue's figures at one moment."""

    depth: dict[str, int]
    oldest_due_age_s: float


async def read_stats(db: Session, now: float) -> dict[str, QueueStats]:
    """Every queue's depth by state and the age of its oldest due job, at ``now``."""
    rows = await db.fetch(
        "SELECT queue, state, COUNT(*) AS n, "
        "MIN(CASE WHEN state <> 'running' AND run_at <= ? THEN run_at END) AS oldest "
        "FROM jobs WHERE state IN ('queued', 'retrying', 'running') GROUP BY queue, state",
        now)
    stats: dict[str, QueueStats] = {}
    for row in rows:
        known = stats.get(row["queue"]) or QueueStats({s: 0 for s in DEPTH_STATES}, 0.0)
        depth = {**known.depth, row["state"]: int(row["n"])}
        age = known.oldest_due_age_s
        if row["oldest"] is not None:
            age = max(age, now - float(row["oldest"]))
        stats[row["queue"]] = QueueStats(depth, age)
    return stats


class JobQueueCollector(Collector):
    """Serves the figures of the last :meth:`refresh` (queues seen once stay, at 0)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._stats: dict[str, QueueStats] = {}
        self._read_at = float("-inf")

    async def refresh(self, db: Session, queues: list[str] | None = None,
                      max_age_s: float = 0.0) -> None:
        """Read the queue figures now (unless read less than ``max_age_s`` ago: scrapes in
        a burst share one query); ``queues`` are shown even while empty."""
        now = self._clock()
        if max_age_s > 0 and now - self._read_at < max_age_s:
            return
        self._read_at = now
        fresh = await read_stats(db, now)
        empty = QueueStats({s: 0 for s in DEPTH_STATES}, 0.0)
        names = {*self._stats, *(queues or ()), *fresh}
        self._stats = {name: fresh.get(name, empty) for name in names}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges for prometheus-client."""
        depth = GaugeMetricFamily("jobs_queue_depth", "Jobs waiting or running, by queue",
                                  labels=["queue", "state"])
        age = GaugeMetricFamily("jobs_oldest_due_age_seconds",
                                "Seconds the oldest due job of a queue has waited",
                                labels=["queue"])
        for name, stats in sorted(self._stats.items()):
            for state, count in stats.depth.items():
                depth.add_metric([name, state], count)
            age.add_metric([name], stats.oldest_due_age_s)
        yield depth
        yield age


#: The process's collector (registered once, at import).
QUEUE_COLLECTOR = JobQueueCollector()
REGISTRY.register(QUEUE_COLLECTOR)
