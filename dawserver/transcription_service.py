"""The transcription service of a server: jobs in its database, transcripts into documents.

``setup_transcription(app)`` adds a :class:`transcription.jobs.JobService` (jobs in
the process's one database, :mod:`transcription.job_store`, requeued when the
server starts again) as a ``cleanup_ctx``. A finished job writes its transcript into the
project's shared document, so every client sees it, and every job mirrors its
state and progress into the document's ``jobs`` map. The model comes from
``$DAW_WHISPER_MODEL`` (else the one ``dawserver models install`` assembled);
``$DAW_TRANSCRIBE_WORKERS`` worker threads (default 1) each load it once, with
``$DAW_TRANSCRIBE_THREADS`` CPU threads each (default 0: all cores). The HTTP
routes are in :mod:`dawserver.transcription_api`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from collab.errors import ProjectNotFound, SchemaError
from transcription.errors import EditError
from transcription.job_store import JobStore
from transcription.jobs import DONE, Job, JobService
from transcription.models import ENV_MODEL

from .keys import DATABASE, ROOMS
from .transcript_document import store_transcript

log = logging.getLogger(__name__)

JOBS = web.AppKey("transcription_jobs", JobService)
PENDING = web.AppKey("transcription_pending_writes", set)
ENV_WORKERS = "DAW_TRANSCRIBE_WORKERS"
ENV_THREADS = "DAW_TRANSCRIBE_THREADS"


def setup_transcription(app: web.Application) -> None:
    """Add the transcription service (a ``cleanup_ctx``) to ``app``."""
    app.cleanup_ctx.append(transcription_context)


def _transcriber_factory():  # noqa: ANN202 - returns a Transcriber factory
    model = os.environ.get(ENV_MODEL) or None
    threads = int(os.environ.get(ENV_THREADS, "0"))

    def build():  # noqa: ANN202 - runs in a worker thread, once per worker
        from transcription.engine import Transcriber

        return Transcriber(model, cpu_threads=threads)

    return build


async def transcription_context(app: web.Application) -> AsyncIterator[None]:
    """Set up the job store, start the workers (requeueing jobs), stop them on shutdown."""
    store = JobStore(app[DATABASE])
    await store.setup()
    async with _serve(app, store):
        yield


@contextlib.asynccontextmanager
async def _serve(app: web.Application, store: JobStore) -> AsyncIterator[None]:
    service = JobService(store, _transcriber_factory(),
                         workers=max(1, int(os.environ.get(ENV_WORKERS, "1"))))
    pending: set[asyncio.Task] = set()
    app[JOBS], app[PENDING] = service, pending

    in_order = asyncio.Lock()  # FIFO: document writes keep the order of the changes

    def on_change(job: Job) -> None:
        loop = asyncio.get_running_loop()
        writes = [_write_progress(app, job.project_id, job.id, _job_state(job), in_order)]
        if job.status == DONE and job.clip_id and job.result is not None:
            writes.append(_write_result(app, job))
        for write in writes:
            task = loop.create_task(write)
            pending.add(task)
            task.add_done_callback(pending.discard)

    service.add_listener(on_change)
    try:
        async with service:
            yield
    finally:
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _job_state(job: Job) -> dict[str, Any]:
    return {"kind": "transcription", "clip": job.clip_id or "", "status": job.status,
            "progress": float(job.progress), "error": job.error or ""}


async def _write_progress(app: web.Application, project_id: str, job_id: str,
                          state: dict[str, Any], in_order: asyncio.Lock) -> None:
    """Mirror a job's status and progress into the shared document (``jobs`` map)."""
    async with in_order:
        try:
            async with app[ROOMS].use(project_id) as room:
                await room.edit(lambda document: document.set_job(job_id, **state))
        except (ProjectNotFound, SchemaError) as exc:
            log.warning("progress of job %s not stored in project %s: %s", job_id,
                        project_id, exc)


async def _write_result(app: web.Application, job: Job) -> None:
    transcript = job.transcript
    try:
        async with app[ROOMS].use(job.project_id) as room:
            await room.edit(lambda document: store_transcript(document, job.clip_id, transcript))
    except (ProjectNotFound, EditError, SchemaError) as exc:
        log.warning("transcript of job %s not stored in project %s: %s", job.id,
                    job.project_id, exc)
