"""Deliveries: one record per (release, store), each attempt run by the one job queue.

The record (``dist_jobs``) says what is delivered and how it stands: action,
revision, fixed message id, gate snapshot, state, attempts, last error, and a log
of every transition (``dist_job_events``, for time-in-state metrics). States:
``queued`` → ``delivering`` → ``delivered``; a failure goes ``failed`` → ``retrying``,
or ``dead`` after the last attempt or a permanent error (HTTP 401, a file changed
since the gate). Every change of a record is a compare-and-set on its ``version``.

Running deliveries is the job queue's work (:mod:`jobs`, through the plug-in API):
arming a record (a first delivery, an update, a takedown, a re-send) enqueues one
``distribution.deliver`` job in the same transaction, under an idempotency key
naming the record's revision and arming, and the record names that job
(``run_id``). The queue holds the job under a lease kept by heartbeats, retries it
with exponential backoff and equal jitter (:func:`jobs.backoff_delay`), takes it
over when a worker dies, and keeps it as a dead letter after ``max_attempts`` or a
:class:`~jobs.Permanent` error. A job of an earlier arming finds its record re-armed
and sends nothing; one that finds an attempt of an earlier arming still running
waits for it to end, so an older revision never lands over a newer one.

A record of a sandbox release (made with a test-mode API key; ``sandboxed`` tells) is
simulated: its attempt contacts no store (neither a probe nor an upload) and ends
``delivered`` with :data:`SIMULATED` as its detail, announced like any other, so
test-mode webhooks hear it. Such a record is a sandbox object itself, marked (``mark``)
in the transaction that creates it, so test-mode keys reach it by its id (a retry).

Each message has a fixed id and stores deduplicate by it, so a re-sent message is
never accepted twice; before re-sending (any attempt after the first of an arming),
the handler asks a connector that can tell (``accepted(message_id)``) whether the
store already has the message, so a lost acknowledgement is not followed by a
second upload.

A record that ends ``delivered`` or ``dead`` announces it on the platform's event bus
(:data:`DELIVERED_EVENT`, :data:`DEAD_EVENT`) in the transaction of that change, so
each ending of each arming is announced once, however often attempts were retried or
taken over: developers' webhooks and other plug-ins hear "release delivered".
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from business.distribution import metrics
from business.distribution.errors import (
    DeliveryError,
    DistributionError,
    NotFoundError,
    NotRetryableError,
)
from business.distribution.presave import MarkSandbox, Publish, Sandboxed
from business.distribution.stores.base import DeliveryPackage, StoreConnector
from dawserver.plugin_api import JobContext, JobQueue, JobRecord, Permanent, QueueSettings

logger = logging.getLogger(__name__)

#: The job queue's queue that runs deliveries (a declared ``Job`` of the plug-in).
DELIVER = "distribution.deliver"
STATES = ("queued", "delivering", "delivered", "failed", "retrying", "dead")
#: States a record stays in until it is armed again.
SETTLED = frozenset({"delivered", "dead"})
ACTIONS = ("new", "update", "takedown")
#: Announced when a record ends delivered: the store accepted (or already had) the message.
DELIVERED_EVENT = "distribution.release_delivered"
#: Announced when a record ends dead: retries ran out, or the store refused for good.
DEAD_EVENT = "distribution.delivery_failed"
#: ``PipelineSettings`` fields from before deliveries ran on the job queue: the
#: server's job worker polls and survives its own errors now; accepted and ignored.
RETIRED_SETTINGS = ("poll_s", "error_backoff_cap")
#: Detail of the ``delivering`` entry of an attempt whose predecessor never recorded
#: its end (its worker died and the lease expired, or writing the outcome failed).
TAKEN_OVER = "taken over: the attempt before did not record its end"
#: Detail of the ``delivering`` entry of an attempt given back by a stopping worker.
RESUMED = "resumed after its worker stopped"
#: Detail of a sandbox release's delivery, which reached no store.
SIMULATED = "simulated in test mode: no store was contacted"
#: Record ids looked up in the job queue per query.
_LOOKUP_BATCH = 500
#: How often an attempt re-reads a record other attempts keep changing before retrying.
_START_TRIES = 5
#: How often (seconds) an attempt looks whether an earlier arming's attempt still runs:
#: first after the shorter wait, then twice as long each time up to the longer one.
_EARLIER_POLL_S = (0.2, 2.0)
_MESSAGE_NS = uuid.UUID("5b0c7f0e-6a55-4a43-9a55-0d1d57d2a7e1")

#: ``packager(account_id, release_id, store, action, message_id, snapshot_id)``.
Packager = Callable[[str, str, str, str, str, str], Awaitable[DeliveryPackage]]


@dataclass(frozen=True)
class PipelineSettings:
    """How deliveries run: attempts, backoff and lease (seconds), slots per server process.

    The first five are the ``distribution.deliver`` queue's settings
    (:meth:`queue_settings`); ``probe_before_resend`` asks the store whether it has
    a message before sending it again.
    """

    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    lease_s: float = 120.0
    concurrency: int = 4
    probe_before_resend: bool = True

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> PipelineSettings:
        """Settings from the plug-in's ``pipeline`` mapping (retired fields are ignored)."""
        known = {f.name for f in fields(cls)}
        retired = sorted(set(raw) & set(RETIRED_SETTINGS))
        if retired:
            logger.warning("distribution pipeline settings %s are no longer used: the "
                           "server's job worker runs deliveries; remove them", retired)
        unknown = sorted(set(raw) - known - set(RETIRED_SETTINGS))
        if unknown:
            raise DistributionError(f"unknown pipeline settings {unknown}; use "
                                    f"{sorted(known)}")
        return cls(**{name: value for name, value in raw.items() if name in known})

    def queue_settings(self) -> QueueSettings:
        """The ``distribution.deliver`` queue's settings."""
        return QueueSettings(max_attempts=self.max_attempts, backoff_base=self.backoff_base,
                             backoff_cap=self.backoff_cap, lease_s=self.lease_s,
                             concurrency=self.concurrency)


def message_id_for(account_id: str, release_id: str, store: str, revision: int) -> str:
    """The fixed message id of one revision of a delivery."""
    return uuid.uuid5(_MESSAGE_NS, f"{account_id}/{release_id}/{store}/{revision}").hex


class DeliveryPipeline:
    """Delivery records: arming them on the job queue, the queue's handler, status, metrics."""

    def __init__(self, db: Any, queue: JobQueue, connectors: Iterable[StoreConnector],
                 packager: Packager, *, settings: PipelineSettings | None = None,
                 publish: Publish | None = None, sandboxed: Sandboxed | None = None,
                 mark: MarkSandbox | None = None) -> None:
        self.db = db
        self.sandboxed = sandboxed
        self.mark = mark
        self.publish = publish
        self.queue = queue
        self.connectors: dict[str, StoreConnector] = {c.name: c for c in connectors}
        self.packager = packager
        self.settings = settings or PipelineSettings()
        queue.configure(DELIVER, self.settings.queue_settings())

    # -- arming -------------------------------------------------------------------

    async def enqueue(self, account_id: str, release_id: str, stores: Iterable[str],
                      action: str = "new", *, redeliver: bool = False,
                      snapshot_id: str = "") -> list[dict[str, Any]]:
        """Create or re-arm the record of each store; idempotent for a repeated request.

        ``new`` on a record that already exists changes nothing, unless the record is
        dead and was never delivered: then, like ``update`` and ``takedown``, it starts
        a new revision (a new message, from ``snapshot_id``); ``redeliver`` sends the
        current revision's message again (the store deduplicates it).
        ``snapshot_id`` names what passed the gate (see ``Catalog.snapshot``): a new
        revision is packaged from it; a re-sent message keeps its own snapshot, so a
        message id always stands for the same content; a takedown without one keeps
        the record's, so it describes the release as delivered, not as edited since.
        """
        if action not in ACTIONS:
            raise DistributionError(f"action {action!r} is unknown; use one of {ACTIONS}")
        stores = list(stores)
        for store in stores:
            if store not in self.connectors:
                raise DistributionError(f"store {store!r} is not configured; configured: "
                                        f"{sorted(self.connectors)}")
        sandbox = await self._in_sandbox(account_id, release_id)
        records = [await self._arm(account_id, release_id, store, action, redeliver,
                                   snapshot_id, sandbox) for store in stores]
        self.queue.wake(DELIVER)
        return records

    async def _in_sandbox(self, account_id: str, release_id: str) -> bool:
        """Whether the release is a sandbox one whose new records are to be marked."""
        if self.sandboxed is None or self.mark is None:
            return False
        return await self.sandboxed(account_id, release_id)

    async def _arm(self, account_id: str, release_id: str, store: str, action: str,
                   redeliver: bool, snapshot_id: str, sandbox: bool = False
                   ) -> dict[str, Any]:
        """Create or re-arm one record and enqueue its job, in one transaction (a new
        record of a ``sandbox`` release is marked a sandbox object in it)."""
        now = time.time()
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        async with self.db.transaction() as tx:
            record = await tx.fetchrow(
                "SELECT * FROM dist_jobs WHERE account_id = ? AND release_id = ? AND store = ?"
                f"{lock}", account_id, release_id, store)
            if record is None:
                job_id, revision, version, snapshot = uuid.uuid4().hex, 1, 1, snapshot_id
            elif action != "new" or redeliver or await self._never_delivered(tx, record):
                job_id, version = record["job_id"], record["version"] + 1
                same = redeliver and action == record["action"]
                revision = record["revision"] if same else record["revision"] + 1
                # a takedown describes the release as delivered, not as edited since
                kept = same or (action == "takedown" and not snapshot_id)
                snapshot = record["snapshot_id"] if kept else snapshot_id
            else:
                return record
            message_id = message_id_for(account_id, release_id, store, revision)
            run = await self.queue.enqueue(
                DELIVER, {"delivery_id": job_id}, account_id=account_id,
                idempotency_key=f"{release_id}/{store}/r{revision}/v{version}", tx=tx)
            if record is None:
                await tx.execute(
                    "INSERT INTO dist_jobs (account_id, job_id, release_id, store, action, "
                    "revision, message_id, state, attempts, version, last_error, queued_at, "
                    "updated_at, delivered_at, snapshot_id, run_id) "
                    "VALUES (?, ?, ?, ?, ?, 1, ?, 'queued', 0, 1, '', ?, ?, NULL, ?, ?)",
                    account_id, job_id, release_id, store, action, message_id, now, now,
                    snapshot, run.id)
                if sandbox and self.mark is not None:
                    await self.mark(tx, account_id, job_id)
            else:
                await tx.execute(
                    "UPDATE dist_jobs SET action = ?, revision = ?, message_id = ?, "
                    "state = 'queued', attempts = 0, version = ?, last_error = '', "
                    "queued_at = ?, updated_at = ?, delivered_at = NULL, snapshot_id = ?, "
                    "run_id = ? WHERE account_id = ? AND job_id = ?",
                    action, revision, message_id, version, now, now, snapshot, run.id,
                    account_id, job_id)
            await self._event(tx, account_id, job_id, version, "queued", now,
                              f"{action} r{revision}")
            return await tx.fetchrow(
                "SELECT * FROM dist_jobs WHERE account_id = ? AND job_id = ?",
                account_id, job_id)

    @staticmethod
    async def _never_delivered(tx: Any, record: dict[str, Any]) -> bool:
        """Whether ``record`` is dead and no revision of it ever reached ``delivered``
        (a ``new`` request then starts a new revision rather than changing nothing)."""
        if record["state"] != "dead":
            return False
        delivered = await tx.fetchval(
            "SELECT COUNT(*) FROM dist_job_events WHERE account_id = ? AND job_id = ? "
            "AND state = 'delivered'", record["account_id"], record["job_id"])
        return not delivered

    @staticmethod
    async def _event(tx: Any, account_id: str, job_id: str, seq: int, state: str, at: float,
                     detail: str = "") -> None:
        await tx.execute(
            "INSERT INTO dist_job_events (account_id, job_id, seq, state, at, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)", account_id, job_id, seq, state, at, detail[:500])

    # -- running (the distribution.deliver job) ---------------------------------------

    async def handle(self, job: JobContext) -> dict[str, Any]:
        """Run one attempt of a record's job: package and send its message, or probe first.

        Returns the outcome (the job's result); raises :class:`~jobs.Permanent` for a
        failure retrying cannot help, and the failure itself for one the queue retries.
        """
        record = await self._record(job)
        ended = _ended(record, job)
        if ended is not None:
            return ended
        wait = _EARLIER_POLL_S[0]
        while await self._earlier_running(record, job):  # it may land an older revision
            await asyncio.sleep(wait)
            wait = min(2 * wait, _EARLIER_POLL_S[1])
            job.check()  # the worker's heartbeats keep the lease; no write of our own
            record = await self._record(job)
            ended = _ended(record, job)
            if ended is not None:
                return ended
        resend = record["attempts"] > 0  # an earlier attempt may have reached the store
        for _ in range(_START_TRIES):
            # An attempt whose lease ran out stops here rather than take the record from
            # the one that holds the job now; the race left between this and the start
            # is settled below.
            await job.confirm()
            started = await self._start(record, job.attempt)
            if started is not None:
                break
            # Another attempt of this run wrote between our read and our start: one whose
            # lease ran out (it stops at its next heartbeat and may never write again),
            # or one whose end landed first. Returning "superseded" here would end the
            # job while the record stays "delivering" for good; so, holding the lease,
            # read the record again and carry on from what it says.
            record = await self._record(job)
            ended = _ended(record, job)
            if ended is not None:
                return ended
            resend = True
        else:
            raise DeliveryError(f"delivery {record['job_id']} kept changing while starting")
        record = started
        try:
            detail = await self._send(record, resend)
        except DeliveryError as exc:
            return await self._failed(record, job, exc, str(exc), exc.retryable)
        except DistributionError as exc:
            return await self._failed(record, job, exc, str(exc), False)
        except Exception as exc:  # a connector bug: retried like a network error
            logger.exception("delivery %s: unexpected error", record["job_id"])
            return await self._failed(record, job, exc, f"{type(exc).__name__}: {exc}", True)
        if not await self._finish(record, "delivered", detail):
            return {"outcome": "superseded"}
        return {"outcome": "delivered", "message_id": record["message_id"]}

    async def _record(self, job: JobContext) -> dict[str, Any] | None:
        """The delivery record ``job`` runs, as stored now."""
        return await self.db.fetchrow(
            "SELECT * FROM dist_jobs WHERE account_id = ? AND job_id = ?",
            job.job.account_id, job.payload["delivery_id"])

    async def _earlier_running(self, record: dict[str, Any], job: JobContext) -> bool:
        """Whether a job of an earlier arming of ``record`` runs under a live lease: its
        attempt may be sending an older revision, which must reach the store first."""
        now = time.time()
        return any(run.id != job.job.id and run.lease_until > now
                   and run.payload.get("delivery_id") == record["job_id"]
                   for run in await self.queue.find(account_id=record["account_id"],
                                                    queue=DELIVER, states=("running",)))

    async def _start(self, record: dict[str, Any], attempt: int) -> dict[str, Any] | None:
        """Mark ``record`` delivering for ``attempt``; None if it changed meanwhile."""
        now, version = time.time(), record["version"] + 1
        detail = ""
        if record["state"] == "delivering":  # the attempt before never recorded its end
            detail = RESUMED if attempt == record["attempts"] else TAKEN_OVER
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE dist_jobs SET state = 'delivering', attempts = ?, version = ?, "
                "updated_at = ? WHERE account_id = ? AND job_id = ? AND version = ?",
                attempt, version, now, record["account_id"], record["job_id"],
                record["version"])
            if changed:
                await self._event(tx, record["account_id"], record["job_id"], version,
                                  "delivering", now, detail)
        if not changed:
            return None
        return {**record, "state": "delivering", "attempts": attempt, "version": version}

    async def _send(self, record: dict[str, Any], resend: bool) -> str:
        """Send the record's message (unless a probe finds it there); the outcome's detail.

        A sandbox release's is only simulated: no store is contacted."""
        if self.sandboxed is not None and await self.sandboxed(record["account_id"],
                                                               record["release_id"]):
            return SIMULATED
        connector = self.connectors.get(record["store"])
        if connector is None:
            raise DistributionError(f"store {record['store']!r} is not configured any more; "
                                    f"configured: {sorted(self.connectors)}")
        probe = getattr(connector, "accepted", None)
        if self.settings.probe_before_resend and probe and resend \
                and await probe(record["message_id"]):
            return "store already had it (status probe)"
        package = await self.packager(record["account_id"], record["release_id"],
                                      record["store"], record["action"], record["message_id"],
                                      record["snapshot_id"])
        receipt = await connector.deliver(package)
        return "store already had it" if receipt.duplicate else ""

    async def _failed(self, record: dict[str, Any], job: JobContext, exc: Exception,
                      error: str, retryable: bool) -> dict[str, Any]:
        """Record a failed attempt, then hand it to the queue: retried, or a dead letter."""
        if not await self._finish(record, "failed", error):
            return {"outcome": "superseded"}
        record = {**record, "version": record["version"] + 1}
        last = not retryable or job.attempt >= job.job.max_attempts
        if not await self._finish(record, "dead" if last else "retrying", error):
            return {"outcome": "superseded"}
        if last:
            raise Permanent(error) from exc
        raise exc

    async def _finish(self, record: dict[str, Any], state: str, detail: str = "") -> bool:
        """Move ``record`` to ``state`` (compare-and-set); False if it changed meanwhile."""
        now, version = time.time(), record["version"] + 1
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE dist_jobs SET state = ?, version = ?, updated_at = ?, last_error = ?, "
                "delivered_at = ? WHERE account_id = ? AND job_id = ? AND version = ?",
                state, version, now, detail[:1000], now if state == "delivered" else None,
                record["account_id"], record["job_id"], record["version"])
            if changed:
                await self._event(tx, record["account_id"], record["job_id"], version, state,
                                  now, detail)
                await self._announce(tx, record, state, now, detail)
        if changed:
            metrics.ended(state, record.get("queued_at"), now)
        if not changed:
            logger.info("delivery %s changed while delivering; result %s dropped",
                        record["job_id"], state)
        return bool(changed)

    async def _announce(self, tx: Any, record: dict[str, Any], state: str, at: float,
                        detail: str) -> None:
        """Publish the ending of ``record`` (delivered or dead) inside ``tx``."""
        if self.publish is None or state not in SETTLED:
            return
        payload = {name: record[name] for name in ("account_id", "release_id", "store",
                                                    "action", "revision", "message_id",
                                                    "attempts")}
        if state == "delivered":
            await self.publish(tx, DELIVERED_EVENT, {
                **payload, "delivered_at": at,
                "store_had_it": bool(detail) and detail != SIMULATED},
                account_id=record["account_id"])
        else:
            await self.publish(tx, DEAD_EVENT, {**payload, "error": detail[:1000], "at": at},
                               account_id=record["account_id"])

    # -- reading ------------------------------------------------------------------

    async def jobs(self, account_id: str, release_id: str | None = None
                   ) -> list[dict[str, Any]]:
        """The delivery records of an account (or of one release), as users see them."""
        if release_id is None:
            rows = await self.db.fetch(
                "SELECT * FROM dist_jobs WHERE account_id = ? ORDER BY release_id, store",
                account_id)
        else:
            rows = await self.db.fetch(
                "SELECT * FROM dist_jobs WHERE account_id = ? AND release_id = ? "
                "ORDER BY store", account_id, release_id)
        return await self._shown(rows)

    async def _shown(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` with the queue's word where it ended a job the record still awaits.

        A record is written by its job's attempts; when the queue ends a job with no
        attempt left to write (its last attempt's worker died), the record is shown
        ``dead`` with the queue's error, and may be retried.
        """
        waiting = [row["run_id"] for row in rows if row["state"] not in SETTLED
                   and row["run_id"]]
        ended = {}
        for start in range(0, len(waiting), _LOOKUP_BATCH):
            batch = waiting[start:start + _LOOKUP_BATCH]
            for run in await self.queue.find(queue=DELIVER, ids=batch, limit=len(batch)):
                if run.finished:
                    ended[(run.account_id, run.id)] = run
        if not ended:
            return rows
        shown = []
        for row in rows:
            run = ended.get((row["account_id"], row["run_id"]))
            if run is not None and row["state"] not in SETTLED:
                row = {**row, "state": "dead", "last_error":
                       f"the job queue ended its job ({run.state}): {run.last_error}"}
            shown.append(row)
        return shown

    async def on_dead(self, run: JobRecord) -> bool:
        """The queue gave ``run`` (a ``distribution.deliver`` job) up, however it died:
        end its record ``dead`` with the queue's error and announce it (:data:`DEAD_EVENT`)
        unless an attempt ended it already or it was armed again; whether it did.

        A job whose workers were killed on every attempt dies at its next claim without
        an attempt to write its record, which stayed ``delivering`` and was never
        announced (only :meth:`jobs` showed it dead)."""
        for _ in range(_START_TRIES):
            record = await self.db.fetchrow(
                "SELECT * FROM dist_jobs WHERE account_id = ? AND job_id = ?",
                run.account_id, run.payload.get("delivery_id"))
            if record is None or record["run_id"] != run.id or record["state"] in SETTLED:
                return False
            # requeued meanwhile (its next attempt writes the record): not dead any more
            if (await self.queue.get(run.account_id, run.id)).state != "dead":
                return False
            error = f"the job queue ended its job ({run.state}): {run.last_error}"
            if await self._finish(record, "dead", error):
                return True
        return False

    async def retry_dead(self, account_id: str, job_id: str, *,
                         release_id: str | None = None) -> dict[str, Any]:
        """Arm a dead record again (same message, attempts reset); with ``release_id``,
        only a record of that release (another is not found).

        Raises :class:`NotFoundError` for no such record, :class:`NotRetryableError` for
        one that is not dead."""
        record = await self.db.fetchrow(
            "SELECT * FROM dist_jobs WHERE account_id = ? AND job_id = ?", account_id, job_id)
        if record is None or release_id not in (None, record["release_id"]):
            where = "this account" if release_id is None else f"release {release_id!r}"
            raise NotFoundError(f"delivery job {job_id!r} does not exist for {where}")
        [record] = await self._shown([record])
        if record["state"] != "dead":
            raise NotRetryableError(f"job {job_id} is {record['state']}, only dead jobs "
                                    f"retry")
        return (await self.enqueue(account_id, record["release_id"], [record["store"]],
                                   record["action"], redeliver=True))[0]

    async def metrics(self, account_id: str | None = None) -> dict[str, Any]:
        """Records per state, attempts, seconds spent per state, and delivery lag."""
        where, args = ("WHERE account_id = ?", (account_id,)) if account_id else ("", ())
        jobs = await self._shown(await self.db.fetch(
            f"SELECT account_id, state, attempts, queued_at, delivered_at, run_id "
            f"FROM dist_jobs {where}", *args))
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
            if current["state"] in SETTLED and not same_job:
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


def _ended(record: dict[str, Any] | None, job: JobContext) -> dict[str, Any] | None:
    """The job's outcome if its record needs no attempt from it (None: run one).

    Raises :class:`~jobs.Permanent` for a record already dead.
    """
    if record is None or record["run_id"] != job.job.id:
        return {"outcome": "superseded"}  # the record was armed again since
    if record["state"] == "delivered":  # an attempt recorded it; the queue missed its end
        return {"outcome": "delivered", "message_id": record["message_id"]}
    if record["state"] == "dead":
        raise Permanent(record["last_error"])
    return None


def _summary(values: list[float]) -> Mapping[str, float | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    return {"count": len(values), "p50": round(statistics.median(values), 3),
            "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 3),
            "max": round(values[-1], 3)}
