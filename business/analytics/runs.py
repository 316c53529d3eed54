"""Ingestion runs (``analytics_runs``): one source over a day range, queued as a job of the
one job queue under an idempotency key per account, source and window, with the progress
the job keeps (``complete_through``: the last day stored completely)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

INGEST_JOB = "analytics.ingest"
QUEUED, RUNNING, WAITING, DONE, STOPPED, FAILED = (
    "queued", "running", "waiting", "done", "stopped", "failed")


class RunNotFound(Exception):
    """The account has no ingestion run of that id."""


@dataclass(frozen=True)
class Run:
    """One ingestion run as stored."""

    account_id: str
    run_id: str
    source_id: str
    kind: str
    first_day: str
    last_day: str
    complete_through: str | None
    points: int
    pages: int
    gaps: int
    state: str
    job_id: str
    error: str
    created_at: float
    updated_at: float

    def public(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "account_id"}

    def fraction(self) -> float:
        """How much of the range is stored completely (0..1)."""
        first, last = date.fromisoformat(self.first_day), date.fromisoformat(self.last_day)
        if self.complete_through is None:
            return 0.0
        done = (date.fromisoformat(self.complete_through) - first).days + 1
        return max(0.0, min(1.0, done / ((last - first).days + 1)))


class Runs:
    """Ingestion runs of every account, scoped by account."""

    def __init__(self, db: Any, clock: Any = time.time) -> None:
        self.db = db
        self.clock = clock

    async def start(self, context: Any, account_id: str, source_id: str, kind: str,
                    first: date, last: date, key: str, tx: Any = None) -> tuple[Run, bool]:
        """Queue a run under idempotency ``key``: ``(run, new)``; the same key while its job
        is unfinished gives that run back; after it finished, a new run (key chained)."""
        for _ in range(8):
            run_id = uuid.uuid4().hex[:16]
            if tx is None:
                async with self.db.transaction() as own:
                    record = await self._enqueue(context, own, account_id, source_id, kind,
                                                 first, last, key, run_id)
                context.background.queue.wake(INGEST_JOB)
            else:
                record = await self._enqueue(context, tx, account_id, source_id, kind, first,
                                             last, key, run_id)
            mine = record.payload.get("run_id") == run_id
            if mine or not record.finished:
                run = await self._by_job(account_id, record.id, tx)
                return run, mine
            key = f"{key}/after/{record.id}"
        raise RuntimeError(f"too many finished runs under idempotency key {key!r}")

    async def _enqueue(self, context: Any, tx: Any, account_id: str, source_id: str,
                       kind: str, first: date, last: date, key: str, run_id: str) -> Any:
        record = await context.enqueue(INGEST_JOB, {"source_id": source_id, "run_id": run_id},
                                       account_id=account_id, idempotency_key=key, tx=tx)
        if record.payload.get("run_id") == run_id:
            now = self.clock()
            await tx.execute(
                "INSERT INTO analytics_runs (account_id, run_id, source_id, kind, first_day, "
                "last_day, state, job_id, created_at, updated_at) VALUES "
                "(?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)", account_id, run_id, source_id, kind,
                first.isoformat(), last.isoformat(), record.id, now, now)
        return record

    async def _by_job(self, account_id: str, job_id: str, tx: Any = None) -> Run:
        where = tx if tx is not None else self.db
        row = await where.fetchrow("SELECT * FROM analytics_runs WHERE account_id = ? AND "
                                   "job_id = ?", account_id, job_id)
        if row is None:
            raise RunNotFound(f"no ingestion run for job {job_id!r}")
        return Run(**row)

    async def get(self, account_id: str, run_id: str) -> Run:
        row = await self.db.fetchrow("SELECT * FROM analytics_runs WHERE account_id = ? AND "
                                     "run_id = ?", account_id, run_id)
        if row is None:
            raise RunNotFound(f"no ingestion run {run_id!r}; a back-fill answers its run_id")
        return Run(**row)

    async def of_source(self, account_id: str, source_id: str, limit: int = 50) -> list[Run]:
        rows = await self.db.fetch(
            "SELECT * FROM analytics_runs WHERE account_id = ? AND source_id = ? "
            "ORDER BY created_at DESC LIMIT ?", account_id, source_id, limit)
        return [Run(**r) for r in rows]

    async def update(self, account_id: str, run_id: str, **changes: Any) -> None:
        """Record progress or the outcome (``points`` and ``pages`` are added to)."""
        sets, args = ["updated_at = ?"], [self.clock()]
        for name, value in changes.items():
            if name in ("points", "pages", "gaps"):
                sets.append(f"{name} = {name} + ?")
            else:
                sets.append(f"{name} = ?")
            args.append(value)
        await self.db.execute(f"UPDATE analytics_runs SET {', '.join(sets)} "
                              "WHERE account_id = ? AND run_id = ?", *args, account_id, run_id)
