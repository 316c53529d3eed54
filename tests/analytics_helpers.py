"""Shared helpers of the analytics tests: a migrated database on SQLite or PostgreSQL,
and a plug-in context with a real job queue for the ingestion jobs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from business.analytics.plugin import MIGRATIONS
from database import Database, open_database
from events import MIGRATIONS as EVENTS
from jobs import MIGRATIONS as JOBS


@contextlib.asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Database]:
    """The database at ``url`` with the job queue's, the bus's and analytics' tables."""
    async with open_database(url) as db:
        await db.migrate([*JOBS, *EVENTS])
        await db.migrate(MIGRATIONS)
        yield db


async def plugin_context(db: Database, tmp_path: Path,
                         settings: dict[str, Any] | None = None) -> Any:
    """A started analytics plug-in on ``db``: its job declared on a real job queue (no
    worker running: tests drive it with :func:`worker`), its services built."""
    import pluggy

    from business.analytics import plugin
    from dawserver.context import Declared, PluginContext
    from dawserver.plugins import _job_handler

    context = PluginContext(manager=pluggy.PluginManager("maxbooster"),
                            settings={"analytics": settings or {}}, data_dir=tmp_path, db=db)
    for event in plugin.events():
        context.events[event.name] = Declared("analytics", event)
    for job in plugin.jobs():
        context.jobs[job.name] = Declared("analytics", job)
        context.background.register(job.name, _job_handler(context, job), job.settings,
                                    owner="analytics")
    bus = await context.background.prepare(db)
    for event in plugin.events():
        bus.declare(event.name, event.payload, event.description)
    await plugin.startup(context)
    return context


def worker(context: Any) -> Any:
    """A job worker of ``context``'s queues (``await worker.run_once(name)``)."""
    from jobs import JobWorker

    return JobWorker(context.background.queue,
                     {name: q.handler for name, q in context.background.queues.items()},
                     poll_s=0.05)
