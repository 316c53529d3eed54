"""The delivery pipeline: one durable job per (release, store), retried until delivered.

States: ``queued`` → ``delivering`` → ``delivered``; a failure goes to ``retrying``
(exponential backoff with jitter) or, after ``max_attempts`` or a permanent error,
to ``dead`` with the last error. Every change is a compare-and-set on the job's
``version`` and is logged in ``dist_job_events`` (for time-in-state metrics).
A worker holds a job with a lease; a crashed worker's jobs are taken over when
their lease expires. Each message has a fixed id and stores deduplicate by it,
so a re-sent message is never accepted twice; before re-sending (any attempt after
the first), the pipeline asks a connector that can tell (``accepted(message_id)``)
whether the store already has the message, so a lost acknowledgement is not
followed by a second upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from business.distribution.errors import DeliveryError, DistributionError, NotFoundError
from business.distribution.stores.base import DeliveryPackage, StoreConnector

logger = logging.getLogger(__name__)

STATES = ("queued", "delivering", "delivered", "failed", "retrying", "dead")
ACTIONS = ("new", "update", "takedown")
_MESSAGE_NS = uuid.UUID("5b0c7f0e-6a55-4a43-9a55-0d1d57d2a7e1")

#: ``packager(account_id, release_id, store, action, message_id, snapshot_id)``.
Packager = Callable[[str, str, str, str, str, str], Awaitable[DeliveryPackage]]


@dataclass
class PipelineSettings:
    """Retry and scheduling knobs (seconds)."""

    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    lease_s: float = 120.0
    poll_s: float = 1.0
    concurrency: int = 4
    #: Longest wait before the worker tries again after its own error (e.g. database down).
    error_backoff_cap: float = 30.0
    #: Ask the store whether it has a message before sending it again.
    probe_before_resend: bool = True


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): equal jitter."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def message_id_for(account_id: str, release_id: str, store: str, revision: int) -> str:
    """The fixed message id of one revision of a job."""
    return uuid.uuid5(_MESSAGE_NS, f"{account_id}/{release_id}/{store}/{revision}").hex


class DeliveryPipeline:
    """Enqueues jobs and runs a worker that delivers them through store connectors."""

    def __init__(self, db: Any, connectors: Iterable[StoreConnector], packager: Packager, *,
                 settings: PipelineSettings | None = None, worker_id: str | None = None,
                 rng: random.Random | None = None) -> None:
        self.db = db
        self.connectors: dict[str, StoreConnector] = {c.name: c for c in connectors}
        self.packager = packager
        self.settings = settings or PipelineSettings()
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self._rng = rng or random.Random()
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    # -- enqueueing ---------------------------------------------------------------

    async def enqueue(self, account_id: str, release_id: str, stores: Iterable[str],
                      action: str = "new", *, redeliver: bool = False,
                      snapshot_id: str = "") -> list[dict[str, Any]]:
        """Create or re-arm the job of each store; idempotent for a repeated request.

        ``new`` on a job that already exists changes nothing; ``update`` and
        ``takedown`` start a new revision (a new message); ``redeliver`` sends the
        current revision's message again (the store deduplicates it).
        ``snapshot_id`` names what passed the gate (see ``Catalog.snapshot``): a new
        revision is packaged from it; a re-sent message keeps its own snapshot, so a
        message id always stands for the same content.
        """
        if action not in ACTIONS:
            raise DistributionError(f"action {action!r} is unknown; use one of {ACTIONS}")
        jobs = []
        for store in stores:
            if store not in self.connectors:
                raise DistributionError(f"store {store!r} is not configured; configured: "
                                        f"{sorted(self.connectors)}")
            jobs.append(await self._enqueue_one(account_id, release_id, store, action,
                                                redeliver, snapshot_id))
        self._wake.set()
        return jobs

    async def _enqueue_one(self, account_id: str, release_id: str, store: str, action: str,
                           redeliver: bool, snapshot_id: str) -> dict[str, Any]:
        now = time.time()
        async with self.db.transaction() as tx:
            job = await tx.fetchrow(
                "SELECT * FROM dist_jobs WHERE account_id = ? AND release_id = ? AND store = ?",
                account_id, release_id, store)
            if job is None:
                job_id = uuid.uuid4().hex
                await tx.execute(
                    "INSERT INTO dist_jobs (account_id, job_id, release_id, store, action, "
                    "revision, message_id, state, attempts, version, next_attempt_at, "
                    "lease_until, worker, last_error, queued_at, updated_at, delivered_at, "
                    "snapshot_id) "
                    "VALUES (?, ?, ?, ?, ?, 1, ?, 'queued', 0, 1, ?, 0, '', '', ?, ?, NULL, ?)",
                    account_id, job_id, release_id, store, action,
                    message_id_for(account_id, release_id, store, 1), now, now, now,
                    snapshot_id)
                await self._event(tx, account_id, job_id, 1, "queued", now, f"{action} r1")
            elif action != "new" or redeliver:
                same = redeliver and action == job["action"]
                revision = job["revision"] if same else job["revision"] + 1
                snapshot = job["snapshot_id"] if same else snapshot_id
                version = job["version"] + 1
                await tx.execute(
                    "UPDATE dist_jobs SET action = ?, revision = ?, message_id = ?, "
                    "state = 'queued', attempts = 0, version = ?, next_attempt_at = ?, "
                    "last_error = '', queued_at = ?, updated_at = ?, delivered_at = NULL, "
                    "snapshot_id = ? WHERE account_id = ? AND job_id = ?",
                    action, revision, message_id_for(account_id, release_id, store, revision),
                    version, now, now, now, snapshot, account_id, job["job_id"])
                await self._event(tx, account_id, job["job_id"], version, "queued", now,
                                  f"{action} r{revision}")
            row = await tx.fetchrow(
                "SELECT * FROM dist_jobs WHERE account_id = ? AND release_id = ? AND store = ?",
                account_id, release_id, store)
        return row

    @staticmethod
    async def _event(tx: Any, account_id: str, job_id: str, seq: int, state: str, at: float,
                     detail: str = "") -> None:
        await tx.execute(
            "INSERT INTO dist_job_events (account_id, job_id, seq, state, at, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)", account_id, job_id, seq, state, at, detail[:500])

    # -- working ------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[dict[str, Any]]:
        now = time.time()
        due = await self.db.fetch(
            "SELECT account_id, job_id, version, state FROM dist_jobs WHERE "
            "(state IN ('queued', 'retrying', 'failed') AND next_attempt_at <= ?) OR "
            "(state = 'delivering' AND lease_until < ?) ORDER BY next_attempt_at LIMIT ?",
            now, now, limit)
        claimed = []
        for job in due:
            async with self.db.transaction() as tx:
                version = job["version"] + 1
                changed = await tx.execute(
                    "UPDATE dist_jobs SET state = 'delivering', worker = ?, lease_until = ?, "
                    "attempts = attempts + 1, version = ?, updated_at = ? WHERE account_id = ? "
                    "AND job_id = ? AND version = ?",
                    self.worker_id, now + self.settings.lease_s, version, now,
                    job["account_id"], job["job_id"], job["version"])
                if not changed:
                    continue
                detail = "lease expired, taken over" if job["state"] == "delivering" else ""
                await self._event(tx, job["account_id"], job["job_id"], version, "delivering",
                                  now, detail)
                claimed.append(await tx.fetchrow(
                    "SELECT * FROM dist_jobs WHERE account_id = ? AND job_id = ?",
                    job["account_id"], job["job_id"]))
        return claimed

    async def _finish(self, job: dict[str, Any], state: str, error: str = "",
                      delay: float = 0.0) -> bool:
        now = time.time()
        version = job["version"] + 1
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE dist_jobs SET state = ?, version = ?, updated_at = ?, last_error = ?, "
                "next_attempt_at = ?, lease_until = 0, worker = '', delivered_at = ? "
                "WHERE account_id = ? AND job_id = ? AND version = ?",
                state, version, now, error[:1000], now + delay,
                now if state == "delivered" else None,
                job["account_id"], job["job_id"], job["version"])
            if changed:
                await self._event(tx, job["account_id"], job["job_id"], version, state, now,
                                  error)
        if not changed:
            logger.info("job %s changed while delivering; result %s dropped", job["job_id"],
                        state)
        return bool(changed)

    async def _heartbeat(self, job: dict[str, Any]) -> None:
        """Extend the lease of a job while its delivery runs (slow uploads keep it)."""
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                await self.db.execute(
                    "UPDATE dist_jobs SET lease_until = ? WHERE account_id = ? AND job_id = ? "
                    "AND version = ?", time.time() + self.settings.lease_s, job["account_id"],
                    job["job_id"], job["version"])
            except Exception:  # the next beat tries again; the lease outlives one miss
                logger.exception("job %s: lease not extended", job["job_id"])

    async def _deliver(self, job: dict[str, Any]) -> str:
        heartbeat = asyncio.create_task(self._heartbeat(job))
        try:
            return await self._attempt(job)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _attempt(self, job: dict[str, Any]) -> str:
        connector = self.connectors[job["store"]]
        probe = getattr(connector, "accepted", None)
        try:
            if self.settings.probe_before_resend and probe and job["attempts"] > 1 \
                    and await probe(job["message_id"]):
                detail = "store already had it (status probe)"
            else:
                package = await self.packager(job["account_id"], job["release_id"],
                                              job["store"], job["action"], job["message_id"],
                                              job["snapshot_id"])
                receipt = await connector.deliver(package)
                detail = "store already had it" if receipt.duplicate else ""
        except DeliveryError as exc:
            return await self._failed(job, str(exc), exc.retryable)
        except DistributionError as exc:
            return await self._failed(job, str(exc), False)
        except Exception as exc:  # a connector bug must not stop the worker
            logger.exception("job %s: unexpected error", job["job_id"])
            return await self._failed(job, f"{type(exc).__name__}: {exc}", True)
        await self._finish(job, "delivered", detail)
        return "delivered"

    async def _failed(self, job: dict[str, Any], error: str, retryable: bool) -> str:
        if not await self._finish(job, "failed", error):
            return "superseded"
        job = {**job, "version": job["version"] + 1}
        if not retryable or job["attempts"] >= self.settings.max_attempts:
            await self._finish(job, "dead", error)
            return "dead"
        delay = backoff_delay(job["attempts"], self.settings.backoff_base,
                              self.settings.backoff_cap, self._rng)
        await self._finish(job, "retrying", error, delay)
        return "retrying"

    async def run_once(self) -> int:
        """Claim up to ``concurrency`` due jobs and deliver them at once; how many.

        A worker claims only what it works on right away, so every claimed job's
        lease is kept alive by a heartbeat and never expires while it waits.
        """
        jobs = await self._claim(self.settings.concurrency)
        await asyncio.gather(*(self._deliver(job) for job in jobs))
        return len(jobs)

    async def run(self) -> None:
        """Deliver forever (until cancelled): keep up to ``concurrency`` jobs in flight.

        The worker survives its own errors (a database outage, a bug): it logs them,
        waits (exponential backoff up to ``error_backoff_cap``) and goes on. A job
        whose outcome could not be recorded stays ``delivering`` and is taken over
        when its lease expires.
        """
        running: set[asyncio.Task] = set()
        errors = 0
        try:
            while True:
                free = self.settings.concurrency - len(running)
                try:
                    jobs = await self._claim(free) if free > 0 else []
                except Exception:
                    errors += 1
                    delay = backoff_delay(errors, max(self.settings.poll_s, 0.01),
                                          self.settings.error_backoff_cap, self._rng)
                    logger.exception("delivery worker %s: claiming jobs failed (%d in a row); "
                                     "trying again in %.2f s", self.worker_id, errors, delay)
                    await asyncio.sleep(delay)
                    continue
                errors = 0
                for job in jobs:
                    task = asyncio.create_task(self._deliver(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(self._reap)
                if not jobs:
                    self._wake.clear()
                    # not wait_for: on Python 3.11 it swallows a cancellation that
                    # arrives just as the wake-up does, and stop() then waits forever
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.settings.poll_s):
                            await self._wake.wait()
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _reap(self, task: asyncio.Task) -> None:
        """Log a delivery whose outcome could not be recorded; wake the worker."""
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("delivery worker %s: a job's outcome was not recorded (%r); its "
                         "lease will expire and it will be taken over", self.worker_id,
                         task.exception())

    async def start(self) -> None:
        """Run the worker in the background."""
        if self._task is not None:
            raise DistributionError("the delivery worker is already started")
        self._task = asyncio.create_task(self.run(), name=f"delivery-{self.worker_id}")

    async def stop(self) -> None:
        """Stop the worker; jobs in flight are taken over later by lease expiry."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> DeliveryPipeline:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- reading ------------------------------------------------------------------

    async def jobs(self, account_id: str, release_id: str | None = None
                   ) -> list[dict[str, Any]]:
        """The jobs of an account (or of one release)."""
        if release_id is None:
            return await self.db.fetch(
                "SELECT * FROM dist_jobs WHERE account_id = ? ORDER BY release_id, store",
                account_id)
        return await self.db.fetch(
            "SELECT * FROM dist_jobs WHERE account_id = ? AND release_id = ? ORDER BY store",
            account_id, release_id)

    async def retry_dead(self, account_id: str, job_id: str) -> dict[str, Any]:
        """Put a dead job back in the queue (same message, attempts reset)."""
        job = await self.db.fetchrow(
            "SELECT * FROM dist_jobs WHERE account_id = ? AND job_id = ?", account_id, job_id)
        if job is None:
            raise NotFoundError(f"delivery job {job_id!r} does not exist for this account")
        if job["state"] != "dead":
            raise DistributionError(f"job {job_id} is {job['state']}, only dead jobs retry")
        return (await self.enqueue(account_id, job["release_id"], [job["store"]],
                                   job["action"], redeliver=True))[0]

    async def metrics(self, account_id: str | None = None) -> dict[str, Any]:
        """Jobs per state, attempts, seconds spent per state, and delivery lag."""
        where, args = ("WHERE account_id = ?", (account_id,)) if account_id else ("", ())
        jobs = await self.db.fetch(f"SELECT state, attempts, queued_at, delivered_at "
                                   f"FROM dist_jobs {where}", *args)
        events = await self.db.fetch(f"SELECT account_id, job_id, seq, state, at FROM "
                                     f"dist_job_events {where} ORDER BY account_id, job_id, "
                                     f"seq", *args)
        counts = {state: 0 for state in STATES}
        for job in jobs:
            counts[job["state"]] += 1
        in_state: dict[str, float] = {state: 0.0 for state in STATES}
        transitions: dict[str, int] = {state: 0 for state in STATES}
        now = time.time()
        followers = [*events[1:], None] if events else []
        for current, following in zip(events, followers, strict=True):
            same_job = following is not None and (
                following["account_id"], following["job_id"]) == (
                current["account_id"], current["job_id"])
            if current["state"] in ("delivered", "dead") and not same_job:
                continue
            end = following["at"] if same_job else now
            in_state[current["state"]] += max(0.0, end - current["at"])
            transitions[current["state"]] += 1
        lags = sorted(j["delivered_at"] - j["queued_at"] for j in jobs if j["delivered_at"])
        return {
            "jobs": counts,
            "attempts": sum(j["attempts"] for j in jobs),
            "seconds_in_state": {s: round(v, 3) for s, v in in_state.items()},
            "entries_into_state": transitions,
            "delivery_lag_s": _summary(lags),
        }


def _summary(values: list[float]) -> Mapping[str, float | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    return {"count": len(values), "p50": round(statistics.median(values), 3),
            "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 3),
            "max": round(values[-1], 3)}

