"""Jobs in their account's data region: one :class:`JobQueue` per region's database.

With data regions (docs/accounts.md, "Data regions") an account's rows live in its
region's database, and so do its jobs: :class:`RegionalJobQueue` holds one queue per
region and sends every call keyed by an account (enqueue, get, cancel, requeue) to that
account's region, so a job enqueued for an ``eu`` account is a row of the ``eu``
database only.  Reads that name no account (``find`` without one, ``dead_letters``,
``purge``) ask every region and merge.  :meth:`RegionalJobQueue.workers` makes one
:class:`JobWorker` per region, each claiming from its own database.

Which region an account is in is the caller's ``region_of(account_id)`` (for the
server, :func:`accounts.regions.region_of` over the configured regions).  A job
written inside a caller's transaction (``tx``) goes to the account's region, so the
transaction must be on that region's database, as for the accounts store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from database import Database, Session

from .errors import JobQueueError
from .queue import DEAD, JobQueue, JobRecord, QueueSettings
from .worker import Handler, JobWorker


class RegionalJobQueue:
    """One :class:`JobQueue` per region; calls keyed by an account go to its region.

    ``queues`` maps region names to queues; ``region_of`` names an account's region
    (it must answer one of ``queues``' names).
    """

    def __init__(self, queues: Mapping[str, JobQueue],
                 region_of: Callable[[str], str]) -> None:
        if not queues:
            raise JobQueueError("a regional job queue needs at least one region's queue")
        self.queues = dict(queues)
        self._region_of = region_of

    @classmethod
    def over(cls, databases: Mapping[str, Database], region_of: Callable[[str], str],
             settings: dict[str, QueueSettings] | None = None) -> RegionalJobQueue:
        """A queue on each database of ``{region: database}``, all with ``settings``."""
        return cls({name: JobQueue(db, dict(settings or {}))
                    for name, db in databases.items()}, region_of)

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions' names."""
        return tuple(self.queues)

    def region_of(self, account_id: str) -> str:
        """The region whose database holds ``account_id``'s jobs."""
        region = self._region_of(account_id)
        if region not in self.queues:
            raise JobQueueError(f"account {account_id!r} is in region {region!r}, which has "
                                f"no job queue here; regions: {list(self.queues)}")
        return region

    def queue_of(self, account_id: str) -> JobQueue:
        """The queue holding ``account_id``'s jobs."""
        return self.queues[self.region_of(account_id)]

    async def setup(self) -> None:
        """Create the ``jobs`` table in every region's database."""
        for queue in self.queues.values():
            await queue.setup()

    def configure(self, queue: str, settings: QueueSettings) -> None:
        """Set how ``queue`` runs, in every region."""
        for each in self.queues.values():
            each.configure(queue, settings)

    def settings_for(self, queue: str) -> QueueSettings:
        """How ``queue`` runs (the same in every region)."""
        return next(iter(self.queues.values())).settings_for(queue)

    # -- keyed by an account ------------------------------------------------------------

    async def enqueue(self, queue: str, payload: dict[str, Any], *, account_id: str,
                      idempotency_key: str | None = None, priority: int = 0,
                      delay_s: float = 0.0, max_attempts: int | None = None,
                      job_id: str | None = None, tx: Session | None = None) -> JobRecord:
        """Add a job in ``account_id``'s region (``tx`` must be on that region's database)."""
        return await self.queue_of(account_id).enqueue(
            queue, payload, account_id=account_id, idempotency_key=idempotency_key,
            priority=priority, delay_s=delay_s, max_attempts=max_attempts, job_id=job_id,
            tx=tx)

    async def get(self, account_id: str, job_id: str) -> JobRecord:
        """The job ``job_id`` of ``account_id`` (:class:`UnknownJob` if it has none)."""
        return await self.queue_of(account_id).get(account_id, job_id)

    async def cancel(self, account_id: str, job_id: str) -> JobRecord:
        """Cancel ``account_id``'s job in its region."""
        return await self.queue_of(account_id).cancel(account_id, job_id)

    async def requeue(self, account_id: str, job_id: str) -> JobRecord:
        """Run ``account_id``'s dead or cancelled job again, in its region."""
        return await self.queue_of(account_id).requeue(account_id, job_id)

    async def delete_jobs(self, account_id: str, *, queue: str | None = None,
                          states: Iterable[str] | None = None) -> int:
        """:meth:`JobQueue.delete_jobs` in ``account_id``'s region; how many."""
        return await self.queue_of(account_id).delete_jobs(account_id, queue=queue,
                                                           states=states)

    async def rewrite(self, account_id: str, job_id: str, payload: dict[str, Any],
                      idempotency_key: str | None) -> bool:
        """:meth:`JobQueue.rewrite` in ``account_id``'s region; whether the job exists."""
        return await self.queue_of(account_id).rewrite(account_id, job_id, payload,
                                                       idempotency_key)

    def wake(self, queue: str) -> None:
        """Wake this process's workers of ``queue`` in every region."""
        for each in self.queues.values():
            each.wake(queue)

    # -- over every region ------------------------------------------------------------

    async def find(self, *, account_id: str | None = None, queue: str | None = None,
                   states: Iterable[str] | None = None, ids: Iterable[str] | None = None,
                   limit: int = 1000, newest_first: bool = False) -> list[JobRecord]:
        """:meth:`JobQueue.find`: in the account's region, or merged over every region."""
        wanted_ids = None if ids is None else list(ids)
        wanted_states = None if states is None else list(states)

        async def one(q: JobQueue) -> list[JobRecord]:
            return await q.find(account_id=account_id, queue=queue, states=wanted_states,
                                ids=wanted_ids, limit=limit, newest_first=newest_first)

        if account_id is not None:
            return await one(self.queue_of(account_id))
        parts = await asyncio.gather(*(one(q) for q in self.queues.values()))
        merged = sorted((job for part in parts for job in part),
                        key=lambda j: (j.created_at, j.id), reverse=newest_first)
        return merged[:limit]

    async def find_many(self, account_ids: Iterable[str], *, queue: str | None = None,
                        states: Iterable[str] | None = None, limit_each: int = 1000
                        ) -> dict[str, list[JobRecord]]:
        """:meth:`JobQueue.find_many`: one query per region holding any of the accounts,
        the regions asked at once."""
        wanted = list(dict.fromkeys(account_ids))
        by_region: dict[str, list[str]] = {}
        for account_id in wanted:
            by_region.setdefault(self.region_of(account_id), []).append(account_id)
        wanted_states = None if states is None else list(states)
        parts = await asyncio.gather(*(
            self.queues[region].find_many(ids, queue=queue, states=wanted_states,
                                          limit_each=limit_each)
            for region, ids in by_region.items()))
        merged = {account_id: jobs for part in parts for account_id, jobs in part.items()}
        return {account_id: merged[account_id] for account_id in wanted}

    async def dead_letters(self, queue: str | None = None) -> list[JobRecord]:
        """Dead letters of every region."""
        return await self.find(queue=queue, states=[DEAD])

    async def purge(self, older_than_s: float) -> int:
        """Delete old finished jobs in every region; how many."""
        return sum(await asyncio.gather(*(q.purge(older_than_s)
                                          for q in self.queues.values())))

    def workers(self, handlers: Mapping[str, Handler], *, poll_s: float = 1.0
                ) -> dict[str, JobWorker]:
        """One (unstarted) worker per region serving ``handlers`` from its own database."""
        return {name: JobWorker(q, handlers, worker_id=None, poll_s=poll_s)
                for name, q in self.queues.items()}
