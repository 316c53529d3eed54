"""The dispatch sweeper: catches due targets that nothing will publish, and measures the
dispatcher's liveness.

Every round (the plug-in worker ``social.dispatch_sweeper``, every ``sweep_s``) it reads
the targets that are due (their post's publish time has come) and not yet published or
failed, and arms again (:meth:`Dispatcher.requeue`: a new job under a new idempotency
key) each one whose job is not alive:

- a ``scheduled`` target without a job, or whose job ended (done, dead, cancelled) or
  was lost;
- a ``publishing`` target past its ``publishing_until`` whose job ended, was lost, or is
  running under an expired lease (its worker was killed mid-call).

The new job's first step asks the network whether the post is already there
(``find_published``), so sweeping a target that did reach the network publishes it once.
A job that is queued, retrying (a backoff, a burst limit, a quota) or running under a
live lease is left alone, and so is every target of a post that is not ``scheduled`` or
``publishing``: a post waiting for approval is never armed, however due its targets are
(its last approval arms it), and does not count as due.

Liveness (Prometheus, :mod:`.metrics`): ``social_dispatch_oldest_due_seconds`` (the age
of the oldest due target not yet sent) and ``social_dispatch_due_targets``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from business.social import metrics
from business.social.dispatch import PUBLISH, Dispatcher
from dawserver.plugin_api import JobRecord

logger = logging.getLogger(__name__)

#: Due targets looked at per round (the oldest first).
SWEEP_BATCH = 500
_LOOKUP_BATCH = 500
_DUE = ("FROM social_post_targets t JOIN social_posts p ON p.account_id = t.account_id "
        "AND p.post_id = t.post_id WHERE t.state IN ('scheduled', 'publishing') "
        "AND p.deleted = 0 AND p.state IN ('scheduled', 'publishing') "
        "AND p.publish_at IS NOT NULL AND p.publish_at <= ? "
        "AND t.version = p.version")


@dataclass(frozen=True)
class Sweep:
    """What one round found: due targets, the oldest one's age, how many were re-armed."""

    due: int
    oldest_due_s: float
    requeued: int


class Sweeper:
    """Re-arms due targets whose job is not alive; sets the liveness gauges."""

    def __init__(self, db: Any, dispatcher: Dispatcher, *,
                 clock: Callable[[], float] = time.time, batch: int = SWEEP_BATCH) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.clock = clock
        self.batch = batch

    async def liveness(self) -> tuple[int, float]:
        """How many targets are due and unsent, and the oldest one's age in seconds."""
        now = self.clock()
        row = await self.db.fetchrow(f"SELECT COUNT(*) AS due, MIN(p.publish_at) AS oldest "
                                     f"{_DUE}", now)
        due = int(row["due"] or 0)
        oldest = max(0.0, now - row["oldest"]) if row["oldest"] is not None else 0.0
        metrics.DUE.set(due)
        metrics.OLDEST_DUE.set(oldest)
        return due, oldest

    async def sweep(self) -> Sweep:
        """One round: re-arm what nothing will publish; the round's figures."""
        due, oldest = await self.liveness()
        now = self.clock()
        rows = await self.db.fetch(
            "SELECT t.account_id, t.post_id, t.channel_id, t.state, t.job_id, "
            f"t.publishing_until {_DUE} ORDER BY p.publish_at LIMIT ?", now, self.batch)
        jobs = await self._jobs([r["job_id"] for r in rows if r["job_id"]])
        requeued = 0
        for row in rows:
            job = jobs.get((row["account_id"], row["job_id"]))
            if self._alive(job, now):
                continue
            if row["state"] == "publishing" and row["publishing_until"] > now:
                continue
            try:
                if await self.dispatcher.requeue(row["account_id"], row["post_id"],
                                                 row["channel_id"], row["job_id"]):
                    requeued += 1
                    logger.info("swept %s/%s on %s: its job was %s", row["account_id"],
                                row["post_id"], row["channel_id"],
                                job.state if job else "missing")
            except Exception:  # one target's failure must not stop the round
                logger.exception("re-arming %s/%s on %s failed", row["account_id"],
                                 row["post_id"], row["channel_id"])
        return Sweep(due, oldest, requeued)

    @staticmethod
    def _alive(job: JobRecord | None, now: float) -> bool:
        if job is None:
            return False
        if job.state in ("queued", "retrying"):
            return True
        return job.state == "running" and job.lease_until >= now

    async def _jobs(self, ids: list[str]) -> dict[tuple[str, str], JobRecord]:
        found: dict[tuple[str, str], JobRecord] = {}
        queue = self.dispatcher.queue
        for start in range(0, len(ids), _LOOKUP_BATCH):
            batch = ids[start:start + _LOOKUP_BATCH]
            for job in await queue.find(queue=PUBLISH, ids=batch, limit=len(batch)):
                found[(job.account_id, job.id)] = job
        return found
