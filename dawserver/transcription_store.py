"""Transcription jobs in the server's database (SQLite by default, PostgreSQL by config).

Implements :class:`transcription.jobs.JobStore` over :mod:`dawserver.database`;
the table's distribution key is ``project_id``, which leads its primary key.
"""

from __future__ import annotations

import time

from transcription.errors import JobError
from transcription.jobs import JOB_COLUMNS, QUEUED, RUNNING, Job, job_from_row, job_row

from .database import Database, Migration

TABLE = "transcription_jobs"

MIGRATIONS = [
    Migration("transcription", 1, "jobs", f"""
        CREATE TABLE {TABLE} (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            clip_id TEXT,
            source TEXT NOT NULL,
            start_s DOUBLE PRECISION NOT NULL DEFAULT 0,
            end_s DOUBLE PRECISION,
            language TEXT,
            status TEXT NOT NULL,
            progress DOUBLE PRECISION NOT NULL DEFAULT 0,
            result TEXT,
            error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (project_id, id)
        );
        CREATE INDEX {TABLE}_status ON {TABLE} (status)
    """),
]

_COLUMNS = ", ".join(JOB_COLUMNS)
_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in JOB_COLUMNS
                     if c not in ("project_id", "id"))


class DatabaseJobStore:
    """Jobs in a started :class:`dawserver.database.Database`; call :meth:`setup` once."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def setup(self) -> None:
        """Create the table (migrations) and distribute it when Citus is present."""
        if await self.database.migrate(MIGRATIONS):
            await self.database.distribute(TABLE, "project_id")

    async def save(self, job: Job) -> None:
        """Insert or update ``job``."""
        job.updated_at = time.time()
        row = job_row(job)
        marks = ", ".join("?" for _ in JOB_COLUMNS)
        await self.database.execute(
            f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({marks}) "
            f"ON CONFLICT (project_id, id) DO UPDATE SET {_UPDATES}",
            *(row[c] for c in JOB_COLUMNS))

    async def _jobs(self, where: str, *args: object) -> list[Job]:
        rows = await self.database.fetch(
            f"SELECT {_COLUMNS} FROM {TABLE} WHERE {where} ORDER BY created_at", *args)
        return [job_from_row(row) for row in rows]

    async def get(self, job_id: str) -> Job:
        """The job with ``job_id`` or :class:`JobError`."""
        found = await self._jobs("id = ?", job_id)
        if not found:
            raise JobError(f"no transcription job {job_id!r}")
        return found[0]

    async def for_project(self, project_id: str) -> list[Job]:
        """Every job of a project, oldest first."""
        return await self._jobs("project_id = ?", project_id)

    async def unfinished(self) -> list[Job]:
        """Jobs that are queued or were running, oldest first."""
        return await self._jobs("status IN (?, ?)", QUEUED, RUNNING)
