"""The transcription service of a server: the ``transcription`` queue, transcripts into documents.

``setup_transcription(app)`` serves the ``transcription`` queue of the one job
queue (:mod:`jobs`, through ``app[BACKGROUND]``) with a
:class:`TranscriptionService` (at ``app[TRANSCRIPTION]``), and adds a
``cleanup_ctx`` that migrates the tables on start and lets the last document
writes land on shutdown.  What a job does is :mod:`transcription.jobs`.

A finished clip job writes its transcript into the project's shared document,
so every client sees it, and every job mirrors its state and progress into the
document's ``jobs`` map, in the order they happen.  Jobs belong to the
project's account (``project_account``).  The model comes from
``$DAW_WHISPER_MODEL`` (else the one ``dawserver models install`` assembled);
``$DAW_TRANSCRIBE_WORKERS`` jobs (default 1) run at once, each with a model of
its own, loaded once, with ``$DAW_TRANSCRIBE_THREADS`` CPU threads each
(default 0: all cores).  The HTTP routes are in :mod:`dawserver.transcription_api`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

import jobs
from collab.errors import ProjectNotFound, SchemaError
from jobs import JobContext, Permanent, UnknownJob
from transcription.errors import EditError, JobError
from transcription.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUE,
    QUEUED,
    RUNNING,
    Job,
    TranscriberPool,
    TranscriptionRequest,
    migrate,
    queue_settings,
    transcribe,
)
from transcription.models import ENV_MODEL
from transcription.registry import ModelRegistry
from transcription.transcript import Transcript

from .asset_objects import ensure_local
from .asset_store import AssetNotFound
from .assets import assets_of
from .authorization import project_account
from .keys import BACKGROUND, DATABASE, ROOMS
from .transcript_document import store_transcript
from .transcription_events import announce_done

log = logging.getLogger(__name__)

ENV_WORKERS = "DAW_TRANSCRIBE_WORKERS"
ENV_THREADS = "DAW_TRANSCRIBE_THREADS"


def _transcriber_factory():  # noqa: ANN202 - returns a Transcriber factory
    model = os.environ.get(ENV_MODEL) or None
    threads = int(os.environ.get(ENV_THREADS, "0"))

    def build():  # noqa: ANN202 - runs in a worker thread, once per model
        from transcription.engine import Transcriber

        return Transcriber(model, cpu_threads=threads)

    return build


class TranscriptionService:
    """Queues transcription jobs, runs them (the queue's handler) and writes their results."""

    def __init__(self, app: web.Application, pool: TranscriberPool) -> None:
        self.app = app
        self.pool = pool
        self._pending: set[asyncio.Task] = set()
        self._in_order = asyncio.Lock()  # FIFO: document writes keep the order of the changes

    @property
    def queue(self) -> jobs.JobQueue:
        """The job queue (the server has started)."""
        return self.app[BACKGROUND].queue

    async def submit(self, project_id: str, source: str | os.PathLike[str], *,
                     clip_id: str | None = None, start_s: float = 0.0,
                     end_s: float | None = None, language: str | None = None,
                     asset_id: str | None = None) -> Job:
        """Queue a job (in the database before this returns) and return it.

        With ``asset_id`` (the project's asset ``source`` is a copy of), the job reads
        the copy of that asset on the node that runs it, fetched then.
        """
        request = TranscriptionRequest(project_id=project_id, source=str(source),
                                       clip_id=clip_id, start_s=start_s, end_s=end_s,
                                       language=language, asset_id=asset_id)
        record = await self.queue.enqueue(QUEUE, request.to_payload(),
                                          account_id=project_account(project_id))
        job = Job.from_record(record)
        self._mirror(request, job.id, QUEUED, 0.0)
        return job

    async def get(self, project_id: str, job_id: str) -> Job:
        """The project's job ``job_id`` (:class:`JobError` if it has none)."""
        try:
            record = await self.queue.get(project_account(project_id), job_id)
        except UnknownJob:
            record = None
        if (record is None or record.queue != QUEUE
                or record.payload.get("project_id") != project_id):
            raise JobError(f"no transcription job {job_id!r} in this project")
        return Job.from_record(record)

    async def for_project(self, project_id: str) -> list[Job]:
        """Every job of a project, oldest first."""
        records = await self.queue.find(account_id=project_account(project_id), queue=QUEUE)
        return _made_for(project_id, records)

    async def for_projects(self, project_ids: list[str]) -> dict[str, list[Job]]:
        """:meth:`for_project` of each project, read in one query."""
        accounts = {project_id: project_account(project_id) for project_id in project_ids}
        records = await self.queue.find_many(accounts.values(), queue=QUEUE)
        return {project_id: _made_for(project_id, records[account])
                for project_id, account in accounts.items()}

    async def cancel(self, project_id: str, job_id: str) -> Job:
        """Cancel a queued or running job (a finished one is returned unchanged)."""
        job = await self.get(project_id, job_id)
        if job.status in (DONE, FAILED, CANCELLED):
            return job
        job = Job.from_record(await self.queue.cancel(project_account(project_id), job_id))
        if job.status == CANCELLED:
            self._mirror(job.request, job.id, CANCELLED, job.progress)
        return job

    # -- the queue's handler -------------------------------------------------------------

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        """Transcribe the job's request; write the transcript of a clip into its document."""
        request = TranscriptionRequest.from_payload(ctx.payload)
        job_id = ctx.job.id
        reached = 0.0

        def progress(fraction: float) -> None:
            nonlocal reached
            reached = fraction
            self._mirror(request, job_id, RUNNING, fraction)

        self._mirror(request, job_id, RUNNING, 0.0)
        try:
            transcript = await self._decode(ctx, request, progress)
            await ctx.confirm()  # cancelled from another node meanwhile: write nothing
        except Permanent as exc:
            log.warning("transcription job %s failed: %s", job_id, exc)
            self._mirror(request, job_id, FAILED, 0.0, str(exc))
            raise
        except (jobs.JobCancelled, asyncio.CancelledError):
            if ctx.shutting_down:  # given back: it runs again at the next start
                self._mirror(request, job_id, QUEUED, 0.0)
            elif ctx.cancel_requested:
                self._mirror(request, job_id, CANCELLED, reached)
            raise
        except Exception as exc:  # retried with backoff until its last attempt
            last = ctx.attempt >= ctx.job.max_attempts
            self._mirror(request, job_id, FAILED if last else QUEUED, 0.0, str(exc))
            raise
        if request.clip_id:
            await self._write_result(request, job_id, transcript)
        self._mirror(request, job_id, DONE, 1.0)
        await announce_done(self.app, request, job_id, transcript)
        return transcript.to_dict()

    async def _decode(self, ctx: JobContext, request: TranscriptionRequest,
                      progress: Callable[[float], None]) -> Transcript:
        """Transcribe the request's audio: its asset's file on this node, fetched into
        the cache and pinned while it is read (:class:`Permanent` if the asset is gone)."""
        registry = ModelRegistry(self.app[DATABASE])
        if request.asset_id is None:  # a file path, as jobs were queued before asset ids
            return await transcribe(ctx, self.pool, progress, registry=registry)
        store = await assets_of(self.app, request.project_id)
        try:
            async with ensure_local(store, [request.asset_id]) as paths:
                return await transcribe(ctx, self.pool, progress, registry=registry,
                                        source=str(paths[request.asset_id]))
        except AssetNotFound as exc:
            raise Permanent(f"cannot read asset {request.asset_id}: {exc}") from None

    # -- the shared document --------------------------------------------------------------

    def _mirror(self, request: TranscriptionRequest, job_id: str, status: str,
                progress: float, error: str = "") -> None:
        """Mirror a job's status and progress into the document's ``jobs`` map (in order)."""
        state = {"kind": "transcription", "clip": request.clip_id or "", "status": status,
                 "progress": float(progress), "error": error}
        task = asyncio.get_running_loop().create_task(
            self._write_state(request.project_id, job_id, state))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write_state(self, project_id: str, job_id: str, state: dict[str, Any]) -> None:
        async with self._in_order:
            try:
                async with self.app[ROOMS].use(project_id) as room:
                    await room.edit(lambda document: document.set_job(job_id, **state))
            except (ProjectNotFound, SchemaError) as exc:
                log.warning("progress of job %s not stored in project %s: %s", job_id,
                            project_id, exc)

    async def _write_result(self, request: TranscriptionRequest, job_id: str,
                            transcript: Transcript) -> None:
        try:
            async with self.app[ROOMS].use(request.project_id) as room:
                await room.edit(lambda document: store_transcript(
                    document, request.clip_id, transcript, asset_id=request.asset_id))
        except (ProjectNotFound, EditError, SchemaError) as exc:
            log.warning("transcript of job %s not stored in project %s: %s", job_id,
                        request.project_id, exc)

    async def close(self) -> None:
        """Wait for the document writes still under way."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


TRANSCRIPTION = web.AppKey("transcription", TranscriptionService)


def setup_transcription(app: web.Application) -> None:
    """Serve the ``transcription`` queue on ``app[BACKGROUND]``; migrate and flush in a context."""
    workers = max(1, int(os.environ.get(ENV_WORKERS, "1")))
    service = TranscriptionService(app, TranscriberPool(_transcriber_factory(), workers))
    app[TRANSCRIPTION] = service
    app[BACKGROUND].register(QUEUE, service.run, queue_settings(workers))
    app.cleanup_ctx.append(transcription_context)


async def transcription_context(app: web.Application) -> AsyncIterator[None]:
    """Migrate the job tables (before the queue opens); on shutdown, let the last writes land.

    The job worker stops before this context ends (it is started later), so every job's
    last state reaches the document while the rooms are still open.
    """
    await migrate(app[DATABASE])
    yield
    await app[TRANSCRIPTION].close()


def _made_for(project_id: str, records: list[jobs.JobRecord]) -> list[Job]:
    """The jobs of ``records`` (its account's queue, oldest first) made for ``project_id``."""
    return [Job.from_record(r) for r in records if r.payload.get("project_id") == project_id]
