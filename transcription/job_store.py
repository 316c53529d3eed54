"""Transcription jobs in the process's database: the one ``transcription_jobs`` table.

The table is defined once, in ``transcription/migrations/``; its primary key
is ``(project_id, id)`` and ``project_id`` is its distribution column.  A
server hands its shared :class:`database.Database` to :class:`JobStore`; tools
and tests that need only the jobs use :func:`open_job_store`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from database import Database, load_migrations, open_database

from .errors import JobError
from .jobs import QUEUED, RUNNING, Job

TABLE = "transcription_jobs"
#: The table's migrations (applied by :meth:`JobStore.setup`).
MIGRATIONS = load_migrations("transcription", Path(__file__).with_name("migrations"))
JOB_COLUMNS = tuple(Job.__dataclass_fields__)

_COLUMNS = ", ".join(JOB_COLUMNS)
_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in JOB_COLUMNS
                     if c not in ("project_id", "id"))


def job_row(job: Job) -> dict[str, Any]:
    """A job as a flat row (``result`` as JSON text)."""
    row = asdict(job)
    row["result"] = json.dumps(job.result) if job.result is not None else None
    return row


def job_from_row(row: dict[str, Any]) -> Job:
    """A job from a flat row (see :func:`job_row`)."""
    data = dict(row)
    data["result"] = json.loads(data["result"]) if data.get("result") else None
    return Job(**{name: data[name] for name in JOB_COLUMNS})


class JobStore:
    """Where jobs persist: a started :class:`database.Database`; call :meth:`setup` once.

    Every method runs on the event loop.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def setup(self) -> None:
        """Create or upgrade the table (the transcription migrations; idempotent)."""
        await self.database.migrate(MIGRATIONS)

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


@contextlib.asynccontextmanager
async def open_job_store(database_url: str | None, data_dir: str | Path = "."
                         ) -> AsyncIterator[JobStore]:
    """A job store on a database of its own (``database_url`` as :func:`database.parse_url`)."""
    async with open_database(database_url, data_dir) as database:
        store = JobStore(database)
        await store.setup()
        yield store
