"""HTTP routes and the background service for transcription and text-based editing.

``setup_transcription(app)`` adds a :class:`transcription.jobs.JobService`
(jobs in the server database, :mod:`transcription.job_store`, requeued
when the server starts again) and these routes (token as for every route; see
docs/transcription.md):

- ``POST /projects/{id}/clips/{clip}/transcribe`` ``{"language": "de"}`` (editor): queue a job.
- ``POST /projects/{id}/assets/{sha}/transcribe`` ``{"language": "de"}`` (editor): queue a
  job on a whole uploaded asset; the transcript stays in the job (no clip is written).
- ``GET /projects/{id}/transcription-jobs[/{job}]`` (viewer): state and progress.
- ``DELETE /projects/{id}/transcription-jobs/{job}`` (editor): cancel.
- ``GET /projects/{id}/clips/{clip}/transcript?format=json|srt|vtt|txt`` (viewer): export.
- ``POST /projects/{id}/clips/{clip}/transcript/edit`` ``{"delete": [3, 4]}`` or
  ``{"order": [0, 2, 1]}`` (editor): edit the audio by editing the words.
- ``POST /projects/{id}/clips/{clip}/transcript/undo`` and ``.../redo`` (editor): undo or
  redo the project's last text edit (the room's undo history).

Jobs live in the server's database (``transcription_jobs``, SQLite in the data
directory by default, PostgreSQL when configured).  Finished jobs write their
transcript into the project's shared document, so
every client sees it.  The model comes from ``$DAW_WHISPER_MODEL`` (else the
one ``dawserver models install`` assembled); ``$DAW_TRANSCRIBE_WORKERS``
worker threads (default 1) each load it once, with ``$DAW_TRANSCRIBE_THREADS``
CPU threads each (default 0: all cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from collab.errors import ProjectNotFound, SchemaError
from collab.tokens import Role
from dsp_core.errors import DspError
from transcription.editing import EditOptions
from transcription.errors import EditError, JobError, LanguageError, TranscriptionError
from transcription.formats import FORMATS, export
from transcription.job_store import JobStore
from transcription.jobs import DONE, Job, JobService
from transcription.languages import normalize_language
from transcription.models import ENV_MODEL

from .api import _body, _error, _grant
from .assets import _project_asset
from .keys import DATABASE, ROOMS
from .transcript_document import apply_text_edit, as_transcript, find_clip, store_transcript

log = logging.getLogger(__name__)

JOBS = web.AppKey("transcription_jobs", JobService)
PENDING = web.AppKey("transcription_pending_writes", set)
ENV_WORKERS = "DAW_TRANSCRIBE_WORKERS"
ENV_THREADS = "DAW_TRANSCRIBE_THREADS"
MEDIA_TYPES = {"json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt",
               "txt": "text/plain"}

routes = web.RouteTableDef()


def setup_transcription(app: web.Application) -> None:
    """Add the transcription service (a ``cleanup_ctx``) and its routes to ``app``."""
    app.cleanup_ctx.append(transcription_context)
    app.router.add_routes(routes)


def _transcriber_factory():  # noqa: ANN202 - returns a Transcriber factory
    model = os.environ.get(ENV_MODEL) or None
    threads = int(os.environ.get(ENV_THREADS, "0"))

    def build():  # noqa: ANN202 - runs in a worker thread, once per worker
        from transcription.engine import Transcriber

        return Transcriber(model, cpu_threads=threads)

    return build


async def transcription_context(app: web.Application) -> AsyncIterator[None]:
    """Open the job store, start the workers (requeueing jobs), stop them on shutdown."""
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
    model = Path(os.environ.get(ENV_MODEL) or "whisper-base").name
    transcript = job.transcript
    try:
        async with app[ROOMS].use(job.project_id) as room:
            await room.edit(lambda document: store_transcript(document, job.clip_id, transcript,
                                                              model))
    except (ProjectNotFound, EditError, SchemaError) as exc:
        log.warning("transcript of job %s not stored in project %s: %s", job.id,
                    job.project_id, exc)


def _accepted(project_id: str, job: Job) -> web.Response:
    """``202`` with the queued job and the URL to poll."""
    return web.json_response(
        {"job": _job_json(job), "url": f"/projects/{project_id}/transcription-jobs/{job.id}"},
        status=202)


def _job_json(job: Job, *, result: bool = True) -> dict[str, Any]:
    data = job.to_dict()
    if not result:
        data.pop("result")
    return data


async def _project_job(request: web.Request, minimum: Role) -> Job:
    project_id, job_id = request.match_info["project_id"], request.match_info["job_id"]
    await _grant(request, project_id, minimum)
    try:
        job = await request.app[JOBS].get(job_id)
    except JobError as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    if job.project_id != project_id:
        raise _error(web.HTTPNotFound, f"no transcription job {job_id!r} in this project")
    return job


@routes.post("/projects/{project_id}/clips/{clip_id}/transcribe")
async def transcribe_clip(request: web.Request) -> web.Response:
    """Queue the transcription of a clip: ``{"language": "de"}`` or detect (editor)."""
    project_id, clip_id = request.match_info["project_id"], request.match_info["clip_id"]
    await _grant(request, project_id, Role.EDITOR)
    body = await _body(request)
    try:
        language = normalize_language(body.get("language"))
    except LanguageError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None
    try:
        async with request.app[ROOMS].use(project_id) as room:
            ref = find_clip(room.document, clip_id)
    except (ProjectNotFound, EditError) as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    if not Path(ref.clip.source).is_file():
        raise _error(web.HTTPConflict, f"the source of clip {clip_id!r} "
                                       f"({ref.clip.source!r}) is missing on the server")
    rate = ref.session.sample_rate
    job = await request.app[JOBS].submit(
        project_id, ref.clip.source, clip_id=clip_id, start_s=ref.clip.offset / rate,
        end_s=(ref.clip.offset + ref.clip.length) / rate, language=language)
    return _accepted(project_id, job)


@routes.post("/projects/{project_id}/assets/{asset_id}/transcribe")
async def transcribe_asset(request: web.Request) -> web.Response:
    """Queue the transcription of a whole uploaded asset (editor); the job holds the result."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.EDITOR)
    body = await _body(request)
    try:
        language = normalize_language(body.get("language"))
    except LanguageError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None
    asset = await _project_asset(request)
    job = await request.app[JOBS].submit(project_id, asset.path, language=language)
    return _accepted(project_id, job)


@routes.get("/projects/{project_id}/transcription-jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """The project's transcription jobs, oldest first, without results (viewer)."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.VIEWER)
    jobs = await request.app[JOBS].store.for_project(project_id)
    return web.json_response([_job_json(job, result=False) for job in jobs])


@routes.get("/projects/{project_id}/transcription-jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    """One job: status, progress (0..1), error and, when done, the transcript (viewer)."""
    return web.json_response(_job_json(await _project_job(request, Role.VIEWER)))


@routes.delete("/projects/{project_id}/transcription-jobs/{job_id}")
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a queued or running job (editor)."""
    job = await _project_job(request, Role.EDITOR)
    return web.json_response(_job_json(await request.app[JOBS].cancel(job.id), result=False))


@routes.get("/projects/{project_id}/clips/{clip_id}/transcript")
async def get_transcript(request: web.Request) -> web.Response:
    """The clip's transcript from the document as ``?format=json|srt|vtt|txt`` (viewer)."""
    project_id, clip_id = request.match_info["project_id"], request.match_info["clip_id"]
    await _grant(request, project_id, Role.VIEWER)
    fmt = request.query.get("format", "json").lower()
    if fmt not in FORMATS:
        raise _error(web.HTTPBadRequest,
                     f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    try:
        async with request.app[ROOMS].use(project_id) as room:
            find_clip(room.document, clip_id)
            stored = room.document.transcript(clip_id)
    except (ProjectNotFound, EditError) as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    if stored is None:
        raise _error(web.HTTPNotFound, f"clip {clip_id!r} has no transcript yet: POST "
                                       f"/projects/{project_id}/clips/{clip_id}/transcribe")
    return web.Response(text=export(as_transcript(stored), fmt), content_type=MEDIA_TYPES[fmt],
                        charset="utf-8")


@routes.post("/projects/{project_id}/clips/{clip_id}/transcript/edit")
async def edit_transcript(request: web.Request) -> web.Response:
    """Edit audio through words: ``{"delete": [i, ...]}`` or ``{"order": [...]}`` (editor).

    ``"ripple": false`` leaves gaps where words were deleted instead of
    closing them.  Answers the ids of the clips that now play the words.
    """
    project_id, clip_id = request.match_info["project_id"], request.match_info["clip_id"]
    await _grant(request, project_id, Role.EDITOR)
    body = await _body(request)
    options = EditOptions(ripple=bool(body.get("ripple", True)))
    try:
        async with request.app[ROOMS].use(project_id) as room:
            ref = find_clip(room.document, clip_id)
            stored = room.document.transcript(clip_id)
            count = sum(len(s.words) for s in stored.segments) if stored else 0
            order = _order(body, count)
            from dsp_core.audio_io import load_source

            audio = await asyncio.get_running_loop().run_in_executor(
                None, load_source, ref.clip.source, ref.session.sample_rate)
            pieces: list[str] = []

            def change(document) -> None:  # noqa: ANN001 - collab.schema.ProjectDocument
                pieces.extend(apply_text_edit(document, clip_id, order, audio, options))

            await room.edit(change, undoable=True)
    except ProjectNotFound as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    except (EditError, SchemaError, DspError, TranscriptionError) as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None
    return web.json_response({"clips": pieces})


@routes.post("/projects/{project_id}/clips/{clip_id}/transcript/undo")
async def undo_text_edit(request: web.Request) -> web.Response:
    """Undo the project's last text edit: clips, transcripts and sound as before (editor)."""
    return await _undo_step(request, "undo")


@routes.post("/projects/{project_id}/clips/{clip_id}/transcript/redo")
async def redo_text_edit(request: web.Request) -> web.Response:
    """Redo the project's last undone text edit (editor)."""
    return await _undo_step(request, "redo")


async def _undo_step(request: web.Request, direction: str) -> web.Response:
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.EDITOR)
    try:
        async with request.app[ROOMS].use(project_id) as room:
            done = await (room.undo() if direction == "undo" else room.redo())
            document = room.document.to_json()
    except ProjectNotFound as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    if not done:
        raise _error(web.HTTPConflict, f"no text edit to {direction} in this project (the "
                                       "history starts when the project is loaded)")
    return web.json_response({direction: True, "clips": sorted(document["clips"])})


def _order(body: dict[str, Any], count: int) -> list[int]:
    if "order" in body:
        order = body["order"]
    elif "delete" in body:
        gone = body["delete"]
        if not isinstance(gone, list) or not all(isinstance(i, int) for i in gone):
            raise EditError(f'"delete" must be a list of word indices, got {gone!r}')
        bad = [i for i in gone if not 0 <= i < count]
        if bad:
            raise EditError(f"word indices {bad} are outside 0..{count - 1}")
        order = [i for i in range(count) if i not in set(gone)]
    else:
        raise EditError('give "delete": [word indices] or "order": [word indices]')
    if not isinstance(order, list) or not all(isinstance(i, int) for i in order):
        raise EditError(f'"order" must be a list of word indices, got {order!r}')
    return order
