"""The one durable job queue: jobs in the shared database, claimed under leases.

A job is a row of the ``jobs`` table (``jobs/migrations``): a named queue, a JSON
payload, the account it belongs to (the distribution column) and its state::

    queued ──claim──▶ running ──success──▶ done
      ▲                 │ ├──failure──▶ retrying ──(run_at)──▶ running …
      │                 │ ├──last attempt or Permanent──▶ dead   (a dead letter)
      │                 │ └──cancel──▶ cancelled
      └──requeue(dead)──┘

- **Leases.** :meth:`JobQueue.claim` takes due jobs of one queue and stamps them
  with a fresh ``lease_token`` and ``lease_until``; only that token may finish
  them.  A worker that dies leaves a lease that expires, and the job is claimed
  again (it counts as an attempt).  On PostgreSQL the claim is ``FOR UPDATE SKIP
  LOCKED``, so many nodes claim side by side without waiting on each other; on
  SQLite its single writer orders claims.
- **Heartbeats and progress.** :meth:`JobQueue.heartbeat` extends the lease and
  records progress; it tells the worker whether the job was cancelled or lost.
  Progress is the current attempt's: a claim, a retry and a release start it
  at 0 again.
- **Backoff.** A failed attempt waits :func:`jobs.backoff.backoff_delay` (exponential,
  equal jitter); after ``max_attempts`` it is a dead letter kept with its last
  error until someone calls :meth:`JobQueue.requeue`.
- **Idempotency keys.** :meth:`JobQueue.enqueue` with a key already used in that
  queue by that account returns the existing job instead of adding one.
- **Cancellation.** A waiting job is cancelled at once; a running one is asked to
  stop (its worker sees it on the next heartbeat, at once in the same process).
  Once asked, it never runs again: an attempt that then fails, a lease that then
  expires and a job given back by a stopping worker all end ``cancelled``.
- **Group commit.** Claims and finishes go through the database's
  :func:`database.group_commit`: on SQLite many of them at once share one commit
  (each in a savepoint of its own), which is what bounds a busy queue there.
- **Transactions.** ``enqueue(..., tx=tx)`` writes the job in the caller's
  transaction, so the job exists exactly when the change that asked for it does.
- **Dead-letter notices.** For a queue named with :meth:`JobQueue.watch_dead`, the
  transaction that makes one of its jobs a dead letter also enqueues a job on
  :data:`DEAD_NOTICES` naming it (once per death), so its owner hears of every way a
  job dies (its last attempt failed, it raised ``Permanent``, its workers stopped on
  every attempt) even across a crash: :mod:`jobs.dead_notices` runs them.
- **Traces.** :meth:`JobQueue.enqueue` runs in a ``jobs.enqueue`` span whose W3C
  ``traceparent`` it keeps in the job's row; the worker runs each attempt in a span
  that continues it (nothing is recorded while no tracer provider is configured).

:class:`jobs.worker.JobWorker` runs handlers for the queues.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from database import Database, Session, group_commit, load_migrations

from .backoff import backoff_delay
from .errors import JobQueueError, UnknownJob

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
_propagator = TraceContextTextMapPropagator()

#: The queue's schema (applied by :meth:`JobQueue.setup`).
MIGRATIONS = load_migrations("jobs", Path(__file__).with_name("migrations"))

#: The queue of notices that a watched queue's job died (:meth:`JobQueue.watch_dead`).
DEAD_NOTICES = "jobs.dead_notices"

QUEUED, RUNNING, RETRYING, DONE, DEAD, CANCELLED = (
    "queued", "running", "retrying", "done", "dead", "cancelled")
STATES = (QUEUED, RUNNING, RETRYING, DONE, DEAD, CANCELLED)
WAITING = frozenset({QUEUED, RETRYING})
FINISHED = frozenset({DONE, DEAD, CANCELLED})
#: Longest stored error text.
ERROR_CHARS = 2000
#: The longest a :class:`~jobs.errors.Retry` may put a job off (seconds), a year and a
#: day: a longer one (a remote ``Retry-After: 1e300``) would leave a job that is never
#: due, nor dead. A post not due yet asks for its time (a year out at most, mostly).
MAX_RETRY_AFTER_S = 366 * 86_400

_DUE = (
    "queue = ? AND ((state IN ('queued', 'retrying') AND run_at <= ?) "
    "OR (state = 'running' AND lease_until < ?))")


def _filter_queue_and_states(where: list[str], args: list[Any], queue: str | None,
                             states: Iterable[str] | None) -> None:
    """Add ``find``'s queue and state conditions (when given) to ``where`` and ``args``."""
    if queue is not None:
        where.append("queue = ?")
        args.append(queue)
    if states is not None:
        wanted = _known_states(states)
        where.append(f"state IN ({', '.join('?' * len(wanted))})")
        args.extend(wanted)


def _known_states(states: Iterable[str]) -> list[str]:
    """``states``, sorted and once each; :class:`JobQueueError` for a state not in
    :data:`STATES`."""
    wanted = sorted(set(states))
    unknown = set(wanted) - set(STATES)
    if unknown:
        raise JobQueueError(f"unknown job states {sorted(unknown)}; use {STATES}")
    return wanted


@dataclass(frozen=True)
class QueueSettings:
    """How one queue runs: attempts, backoff (seconds), lease length, slots per worker."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    lease_s: float = 60.0
    #: Jobs of this queue one worker process runs at a time.
    concurrency: int = 1

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.concurrency < 1 or self.lease_s <= 0:
            raise JobQueueError(f"queue settings need max_attempts ≥ 1, concurrency ≥ 1 and "
                                f"lease_s > 0; got {self}")


@dataclass(frozen=True)
class JobRecord:
    """One job as stored."""

    account_id: str
    id: str
    queue: str
    payload: dict[str, Any]
    state: str
    priority: int
    attempts: int
    max_attempts: int
    run_at: float
    lease_until: float
    lease_token: str | None
    worker: str | None
    progress: float
    note: str
    result: Any
    last_error: str
    idempotency_key: str | None
    cancel_requested: bool
    created_at: float
    updated_at: float
    finished_at: float | None
    #: The W3C traceparent of the span that enqueued the job (None: not traced).
    traceparent: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobRecord:
        """A record from a ``jobs`` row (JSON columns decoded)."""
        fields = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        fields["payload"] = json.loads(row["payload"])
        fields["result"] = None if row["result"] is None else json.loads(row["result"])
        fields["cancel_requested"] = bool(row["cancel_requested"])
        return cls(**fields)

    @property
    def finished(self) -> bool:
        """Whether the job is done, dead or cancelled."""
        return self.state in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """The JSON form an API serves (no lease token)."""
        return {"account_id": self.account_id, "id": self.id, "queue": self.queue,
                "state": self.state, "attempts": self.attempts,
                "max_attempts": self.max_attempts, "progress": self.progress,
                "note": self.note, "result": self.result, "last_error": self.last_error,
                "idempotency_key": self.idempotency_key, "created_at": self.created_at,
                "updated_at": self.updated_at, "finished_at": self.finished_at}


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learnt: whether the job is still ours, and whether to stop."""

    held: bool
    cancel_requested: bool


class JobQueue:
    """The jobs of one database: enqueue, claim, heartbeat, finish, cancel, requeue."""

    def __init__(self, db: Database, settings: dict[str, QueueSettings] | None = None, *,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.time
                 ) -> None:
        self.db = db
        self.settings: dict[str, QueueSettings] = dict(settings or {})
        self._rng = rng or random.Random()
        self._clock = clock
        self._wakes: dict[str, asyncio.Event] = {}
        self._cancel_listeners: dict[tuple[str, str], Callable[[], None]] = {}
        self._watched_dead: set[str] = set()

    async def setup(self) -> None:
        """Create the ``jobs`` table if needed (the server runs every migration at start)."""
        await self.db.migrate(MIGRATIONS)

    def configure(self, queue: str, settings: QueueSettings) -> None:
        """Set how ``queue`` runs (attempts, backoff, lease, concurrency)."""
        self.settings[queue] = settings

    def watch_dead(self, queue: str) -> None:
        """Have every death of a ``queue`` job enqueue a notice on :data:`DEAD_NOTICES`
        (``{"queue", "job_id"}``, under the dead job's account), in the same transaction."""
        self._watched_dead.add(queue)

    def settings_for(self, queue: str) -> QueueSettings:
        """How ``queue`` runs (defaults when not configured)."""
        return self.settings.get(queue) or QueueSettings()

    # -- enqueueing -----------------------------------------------------------------

    async def enqueue(self, queue: str, payload: dict[str, Any], *, account_id: str,
                      idempotency_key: str | None = None, priority: int = 0,
                      delay_s: float = 0.0, max_attempts: int | None = None,
                      job_id: str | None = None, tx: Session | None = None) -> JobRecord:
        """Add a job to ``queue`` (or return the one already added under ``idempotency_key``).

        A ``delay_s`` that is NaN or infinite is a :class:`JobQueueError`. With ``tx`` the
        job is written in the caller's transaction; call
        :meth:`wake` once it has committed so a worker in this process starts
        at once (others find it on their next poll).
        """
        try:
            text = json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise JobQueueError(f"payload of a {queue!r} job is not JSON: {exc}") from None
        if not math.isfinite(delay_s):  # its run_at would never come (NaN: no time at all)
            raise JobQueueError(f"a {queue!r} job's delay must be a number of seconds, "
                                f"not {delay_s}")
        with _tracer.start_as_current_span(f"jobs.enqueue {queue}", kind=SpanKind.PRODUCER,
                                           attributes={"jobs.queue": queue}):
            return await self._enqueue(queue, text, account_id, idempotency_key, priority,
                                       delay_s, max_attempts, job_id, tx)

    async def _enqueue(self, queue: str, text: str, account_id: str,
                       idempotency_key: str | None, priority: int, delay_s: float,
                       max_attempts: int | None, job_id: str | None, tx: Session | None
                       ) -> JobRecord:
        now = self._clock()
        attempts = max_attempts or self.settings_for(queue).max_attempts
        job_id = job_id or uuid.uuid4().hex
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        insert = (
            "INSERT INTO jobs (account_id, id, queue, payload, state, priority, attempts, "
            "max_attempts, run_at, idempotency_key, created_at, updated_at, traceparent) "
            "VALUES (?, ?, ?, ?, 'queued', ?, 0, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
        args = (account_id, job_id, queue, text, priority, attempts, now + delay_s,
                idempotency_key, now, now, carrier.get("traceparent"))
        if tx is None:
            async with self.db.transaction() as own:
                record = await self._insert(own, insert, args, queue, account_id,
                                            idempotency_key, job_id)
            self.wake(queue)
            return record
        return await self._insert(tx, insert, args, queue, account_id, idempotency_key,
                                  job_id)

    async def _insert(self, tx: Session, insert: str, args: tuple, queue: str,
                      account_id: str, idempotency_key: str | None, job_id: str
                      ) -> JobRecord:
        added = await tx.execute(insert, *args)
        if added or idempotency_key is None:
            row = await tx.fetchrow("SELECT * FROM jobs WHERE account_id = ? AND id = ?",
                                    account_id, job_id)
        else:
            row = await tx.fetchrow(
                "SELECT * FROM jobs WHERE account_id = ? AND queue = ? AND idempotency_key = ?",
                account_id, queue, idempotency_key)
        if row is None:
            raise JobQueueError(f"job {job_id} of account {account_id} already exists")
        return JobRecord.from_row(row)

    # -- reading ------------------------------------------------------------------------

    async def get(self, account_id: str, job_id: str) -> JobRecord:
        """The job ``job_id`` of ``account_id`` (:class:`UnknownJob` if it has none)."""
        row = await self.db.fetchrow("SELECT * FROM jobs WHERE account_id = ? AND id = ?",
                                     account_id, job_id)
        if row is None:
            raise UnknownJob(f"account {account_id} has no job {job_id}")
        return JobRecord.from_row(row)

    async def find(self, *, account_id: str | None = None, queue: str | None = None,
                   states: Iterable[str] | None = None, ids: Iterable[str] | None = None,
                   limit: int = 1000, newest_first: bool = False) -> list[JobRecord]:
        """Jobs, oldest first (or newest first), filtered by account, queue, state and job id.

        ``limit`` keeps the first jobs of that order: the newest ones with ``newest_first``.
        """
        where, args = [], []
        if account_id is not None:
            where.append("account_id = ?")
            args.append(account_id)
        if ids is not None:
            wanted_ids = sorted(set(ids))
            if not wanted_ids:
                return []
            where.append(f"id IN ({', '.join('?' * len(wanted_ids))})")
            args.extend(wanted_ids)
        _filter_queue_and_states(where, args, queue, states)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = "created_at DESC, id DESC" if newest_first else "created_at, id"
        rows = await self.db.fetch(
            f"SELECT * FROM jobs {clause} ORDER BY {order} LIMIT ?", *args, limit)
        return [JobRecord.from_row(row) for row in rows]

    async def find_many(self, account_ids: Iterable[str], *, queue: str | None = None,
                        states: Iterable[str] | None = None, limit_each: int = 1000
                        ) -> dict[str, list[JobRecord]]:
        """:meth:`find` for many accounts in one query: each account's jobs, oldest first.

        Every account asked for is a key (an empty list when it has no such job), and
        only those accounts' rows are read (``account_id IN (...)``: each account's
        partition).  ``limit_each`` keeps each account's oldest jobs, as ``limit`` does
        for one account in :meth:`find`, so one busy account never crowds out the rest.
        """
        wanted = list(dict.fromkeys(account_ids))
        found: dict[str, list[JobRecord]] = {account_id: [] for account_id in wanted}
        if not wanted:
            return found
        where = [f"account_id IN ({', '.join('?' * len(wanted))})"]
        args: list[Any] = list(wanted)
        _filter_queue_and_states(where, args, queue, states)
        rows = await self.db.fetch(
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY account_id "
            f"ORDER BY created_at, id) AS nth FROM jobs WHERE {' AND '.join(where)}) "
            "AS ranked WHERE nth <= ? ORDER BY account_id, created_at, id", *args, limit_each)
        for row in rows:
            found[row["account_id"]].append(JobRecord.from_row(row))
        return found

    async def dead_letters(self, queue: str | None = None) -> list[JobRecord]:
        """Jobs that failed for good (kept with their last error)."""
        return await self.find(queue=queue, states=[DEAD])

    # -- claiming and holding -------------------------------------------------------

    async def claim(self, queue: str, worker: str, limit: int = 1) -> list[JobRecord]:
        """Take up to ``limit`` due jobs of ``queue`` (and expired leases) for ``worker``."""
        now = self._clock()
        lease = now + self.settings_for(queue).lease_s
        token = uuid.uuid4().hex
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""

        async def take(tx: Session) -> list[JobRecord]:
            # a due job someone asked to cancel (its worker died, failed or stopped
            # after the ask) ends cancelled rather than running again
            await tx.execute(
                "UPDATE jobs SET state = 'cancelled', lease_until = 0, lease_token = NULL, "
                "last_error = 'cancelled', finished_at = ?, updated_at = ? "
                f"WHERE (account_id, id) IN (SELECT account_id, id FROM jobs WHERE {_DUE} "
                f"AND cancel_requested = 1{lock})", now, now, queue, now, now)
            rows = await tx.fetch(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, "
                "lease_token = ?, worker = ?, heartbeat_at = ?, updated_at = ?, progress = 0, "
                "note = '' "
                f"WHERE (account_id, id) IN (SELECT account_id, id FROM jobs WHERE {_DUE} "
                f"ORDER BY priority DESC, run_at, created_at LIMIT ?{lock}) RETURNING *",
                lease, token, worker, now, now, queue, now, now, limit)
            records = []
            for row in rows:
                try:
                    records.append(JobRecord.from_row(row))
                except (TypeError, ValueError) as exc:  # no handler can run it, ever
                    await self._bury_unreadable(tx, row, f"{exc}", now)
            return records

        records = await group_commit(self.db).run(take)  # shares a commit with finishes
        return sorted(records, key=lambda r: (-r.priority, r.run_at, r.created_at))

    async def _bury_unreadable(self, tx: Session, row: dict[str, Any], error: str,
                               now: float) -> None:
        """In the claim's transaction: make a claimed job whose stored JSON does not
        decode a dead letter, so the jobs claimed with it still run."""
        error = f"stored payload or result is not JSON: {error}"[:ERROR_CHARS]
        await tx.execute(
            "UPDATE jobs SET state = 'dead', last_error = ?, finished_at = ?, lease_until = 0, "
            "lease_token = NULL, updated_at = ? WHERE account_id = ? AND id = ? "
            "AND lease_token = ?", error, now, now, row["account_id"], row["id"],
            row["lease_token"])
        log.error("job %s (%s) of %s is a dead letter: %s", row["id"], row["queue"],
                  row["account_id"], error)
        if row["queue"] in self._watched_dead:
            await self._notice_dead(tx, JobRecord.from_row(
                {**row, "payload": "{}", "result": None}))

    async def heartbeat(self, job: JobRecord, progress: float | None = None,
                        note: str | None = None) -> Beat:
        """Extend ``job``'s lease and record its progress; whether it is still held.

        Progress is clamped to 0..1; a NaN leaves the stored progress as it was.
        """
        now = self._clock()
        sets, args = ["lease_until = ?", "heartbeat_at = ?", "updated_at = ?"], [
            now + self.settings_for(job.queue).lease_s, now, now]
        if progress is not None and not math.isnan(progress):
            sets.append("progress = ?")
            args.append(min(max(float(progress), 0.0), 1.0))
        if note is not None:
            sets.append("note = ?")
            args.append(note[:ERROR_CHARS])
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                f"UPDATE jobs SET {', '.join(sets)} WHERE account_id = ? AND id = ? "
                "AND lease_token = ? AND state = 'running' RETURNING cancel_requested",
                *args, job.account_id, job.id, job.lease_token)
        if row is None:
            return Beat(held=False, cancel_requested=False)
        return Beat(held=True, cancel_requested=bool(row["cancel_requested"]))

    # -- finishing ------------------------------------------------------------------------

    async def complete(self, job: JobRecord, result: Any = None) -> bool:
        """Mark a held job done with ``result`` (JSON); False if its lease was lost."""
        now = self._clock()
        return await self._finish(job, "state = 'done', progress = 1, result = ?, "
                                  "last_error = '', finished_at = ?",
                                  json.dumps(result), now)

    async def fail(self, job: JobRecord, error: str, *, permanent: bool = False,
                   retry_after: float | None = None) -> str:
        """Record a failed attempt: ``retrying`` after a backoff, or ``dead``; the new state.

        ``retry_after`` (seconds, at least 0) replaces the backoff; one that is NaN or
        infinite is ignored, so the job is retried and can still become a dead letter.

        ``""`` when the lease was lost (another worker holds the job now).  A job
        someone asked to cancel while it ran ends ``cancelled`` instead.
        """
        settings = self.settings_for(job.queue)
        now = self._clock()
        if await self._finish(job, "state = 'cancelled', last_error = ?, finished_at = ?",
                              f"cancelled; its last attempt failed: {error}"[:ERROR_CHARS],
                              now, cancel_requested=True):
            return CANCELLED
        error = error[:ERROR_CHARS]
        if permanent or job.attempts >= job.max_attempts:
            notice = self._notice_dead if job.queue in self._watched_dead else None
            done = await self._finish(job, "state = 'dead', last_error = ?, finished_at = ?",
                                      error, now, then=notice)
            if done:
                log.warning("job %s (%s) of %s is a dead letter after %d attempts: %s",
                            job.id, job.queue, job.account_id, job.attempts, error)
            return DEAD if done else ""
        if retry_after is not None and math.isfinite(retry_after):
            delay = min(max(0.0, retry_after), MAX_RETRY_AFTER_S)
        else:  # none asked for, or NaN or infinite: a run_at never due would never run
            delay = backoff_delay(job.attempts, settings.backoff_base, settings.backoff_cap,
                                  self._rng)
        done = await self._finish(job, "state = 'retrying', last_error = ?, run_at = ?, "
                                  "progress = 0", error, now + delay)
        if done:
            log.info("job %s (%s) failed attempt %d/%d, retrying in %.1f s: %s", job.id,
                     job.queue, job.attempts, job.max_attempts, delay, error)
        return RETRYING if done else ""

    async def cancelled(self, job: JobRecord, reason: str = "cancelled") -> bool:
        """Mark a held job cancelled (its handler stopped on request)."""
        return await self._finish(job, "state = 'cancelled', last_error = ?, finished_at = ?",
                                  reason, self._clock())

    async def release(self, job: JobRecord) -> bool:
        """Give a held job back unfinished (worker shutting down): not counted as an attempt."""
        return await self._finish(job, "state = 'queued', attempts = attempts - 1, run_at = ?, "
                                  "progress = 0, note = ''", self._clock())

    async def _finish(self, job: JobRecord, sets: str, *args: Any,
                      then: Callable[[Session, JobRecord], Awaitable[Any]] | None = None,
                      cancel_requested: bool = False) -> bool:
        """End a held job; many jobs ending at once share one commit (group commit).

        ``then(tx, job)`` runs in the same transaction once the job is ended; with
        ``cancel_requested`` only a job someone asked to cancel is ended."""
        only_cancelled = " AND cancel_requested = 1" if cancel_requested else ""

        async def finish(tx: Session) -> int:
            changed = await tx.execute(
                f"UPDATE jobs SET {sets}, lease_until = 0, lease_token = NULL, updated_at = ? "
                "WHERE account_id = ? AND id = ? AND lease_token = ? AND state = 'running'"
                f"{only_cancelled}",
                *args, self._clock(), job.account_id, job.id, job.lease_token)
            if changed and then is not None:
                await then(tx, job)
            return changed

        changed = await group_commit(self.db).run(finish)
        if changed:
            self.wake(job.queue)
            if then is not None:
                self.wake(DEAD_NOTICES)
        return bool(changed)

    async def _notice_dead(self, tx: Session, job: JobRecord) -> None:
        """In the transaction that made ``job`` dead: a notice naming it (its lease token
        keys it, so each death is told once, a requeued job's next death again)."""
        await self.enqueue(DEAD_NOTICES, {"queue": job.queue, "job_id": job.id},
                           account_id=job.account_id,
                           idempotency_key=f"{job.queue}/{job.id}/{job.lease_token}", tx=tx)

    # -- cancelling and requeueing -------------------------------------------------------

    async def cancel(self, account_id: str, job_id: str) -> JobRecord:
        """Cancel a job: a waiting one at once, a running one at its next heartbeat.

        Cancelling a finished job changes nothing; the job as it stands is returned.
        """
        now = self._clock()
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?, updated_at = ?, "
                "last_error = 'cancelled' WHERE account_id = ? AND id = ? "
                "AND state IN ('queued', 'retrying')", now, now, account_id, job_id)
            await tx.execute(
                "UPDATE jobs SET cancel_requested = 1, updated_at = ? "
                "WHERE account_id = ? AND id = ? AND state = 'running'", now, account_id,
                job_id)
        listener = self._cancel_listeners.get((account_id, job_id))
        if listener is not None:
            listener()
        return await self.get(account_id, job_id)

    async def requeue(self, account_id: str, job_id: str) -> JobRecord:
        """Give a dead or cancelled job a fresh set of attempts."""
        now = self._clock()
        changed = await self.db.execute(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?, updated_at = ?, "
            "finished_at = NULL, cancel_requested = 0, progress = 0 "
            "WHERE account_id = ? AND id = ? AND state IN ('dead', 'cancelled')",
            now, now, account_id, job_id)
        record = await self.get(account_id, job_id)
        if not changed:
            raise JobQueueError(f"job {job_id} is {record.state}; only a dead or cancelled "
                                "job can be requeued")
        self.wake(record.queue)
        return record

    async def delete_jobs(self, account_id: str, *, queue: str | None = None,
                          states: Iterable[str] | None = None) -> int:
        """Delete ``account_id``'s jobs (only ``queue``'s and those in ``states``, when
        given); how many. A running job deleted is lost to its worker, as when another
        worker takes it over: its handler stops at the next heartbeat, nothing is recorded.
        """
        where, args = ["account_id = ?"], [account_id]
        _filter_queue_and_states(where, args, queue, states)
        return await self.db.execute(f"DELETE FROM jobs WHERE {' AND '.join(where)}", *args)

    async def rewrite(self, account_id: str, job_id: str, payload: dict[str, Any],
                      idempotency_key: str | None) -> bool:
        """Replace a job's stored payload and idempotency key (e.g. to forget whom they
        named once the job no longer needs it); whether the job exists."""
        changed = await self.db.execute(
            "UPDATE jobs SET payload = ?, idempotency_key = ?, updated_at = ? "
            "WHERE account_id = ? AND id = ?", json.dumps(payload), idempotency_key,
            self._clock(), account_id, job_id)
        return bool(changed)

    async def purge(self, older_than_s: float) -> int:
        """Delete finished jobs (not dead letters) older than ``older_than_s``; how many."""
        return await self.db.execute(
            "DELETE FROM jobs WHERE state IN ('done', 'cancelled') AND finished_at < ?",
            self._clock() - older_than_s)

    # -- in-process signals ----------------------------------------------------------------

    def wake_event(self, queue: str) -> asyncio.Event:
        """The event a worker of ``queue`` in this process waits on between polls."""
        return self._wakes.setdefault(queue, asyncio.Event())

    def wake(self, queue: str) -> None:
        """Tell this process's worker of ``queue`` that a job may be due."""
        event = self._wakes.get(queue)
        if event is not None:
            event.set()

    def on_cancel(self, job: JobRecord, listener: Callable[[], None] | None) -> None:
        """Call ``listener`` when this process cancels ``job`` (None: stop listening)."""
        key = (job.account_id, job.id)
        if listener is None:
            self._cancel_listeners.pop(key, None)
        else:
            self._cancel_listeners[key] = listener
