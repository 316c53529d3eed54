"""``/api/v1`` transcripts: the clips' transcripts in the project document, and the
transcription jobs that make them (thin adapters over :mod:`dawserver.transcription_api`).

A transcript's id is its clip's id; its times count from the clip's start. A job on a
clip writes the clip's transcript into the document when it is done; it can be
cancelled while queued or running. A transcript's words edit the clip's audio: delete
some, or play them in another order (the core's text edit); the project's text edits can
be undone and redone, last first (the room's undo history, as in the studio).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from aiohttp import web
from pydantic import Field

from collab.errors import ProjectNotFound, SchemaError
from collab.schema import ProjectDocument
from transcription.jobs import Job
from transcription.languages import joined_words
from transcription.transcript import Transcript as Spoken

from .. import transcription_api as core
from ..errors import Conflict, NotFound
from ..keys import ROOMS
from ..permissions import PROJECT_EDIT, PROJECT_READ
from ..plugin_api import Empty, Model, Request, Route
from .fields import parse_fields
from .idempotency import idempotent
from .resources import Listing, One, Resource
from .respond import answer
from .routes import PROJECT
from .services import rfc3339
from .state import api_state

log = logging.getLogger(__name__)

TRANSCRIPTS = f"{PROJECT}/transcripts"
JOBS = f"{PROJECT}/transcription-jobs"
#: The project's history of text edits (one per project, not per transcript).
EDITS = f"{PROJECT}/transcript-edits"
NOTHING_TO = ("there is no text edit to {direction} in project {project_id!r}: the history "
              "holds the edits made since the project was last opened on this server, and "
              "{hint}")
HINTS = {"undo": "each undo takes back one of them, last first",
         "redo": "only undone edits can be redone, until a new edit is made"}


class Word(Model):
    """One word and its span in seconds from the clip's start."""

    text: str
    start_s: float
    end_s: float
    probability: float = Field(description="the recogniser's confidence, 0 to 1")


class TranscriptSummary(Resource):
    """A clip's transcript, without its words."""

    id: str = Field(description="the clip's id")
    language: str
    model: str
    duration_s: float
    word_count: int
    text: str


class Transcript(TranscriptSummary):
    """A clip's transcript with every word and its timing."""

    words: list[Word]


class TranscriptPage(Model):
    """A page of transcripts, by clip id."""

    data: list[TranscriptSummary]
    next_cursor: str | None


class TranscriptionJob(Resource):
    """A transcription job: follow it until `status` is done, failed or cancelled."""

    id: str
    clip_id: str | None
    language: str | None = Field(description="asked for; null: detected")
    status: str = Field(description="queued, running, done, failed or cancelled")
    progress: float
    error: str | None
    created_at: str = Field(description="RFC 3339, UTC")
    updated_at: str = Field(description="RFC 3339, UTC")
    transcript_url: str | None = Field(description="the clip's transcript, once done")


class TranscriptionJobPage(Model):
    """A page of transcription jobs, oldest first."""

    data: list[TranscriptionJob]
    next_cursor: str | None


class JobFilter(Listing):
    """Transcription jobs, filtered by status."""

    status: str | None = Field(None, pattern="^(queued|running|done|failed|cancelled)$")


class NewTranscriptionJob(core.TranscribeOptions):
    """Transcribe a clip in a language (a code, alias or English name), or detect it."""

    clip_id: str = Field(min_length=1, max_length=200)


class TranscriptEdit(core.TextEdit):
    """Delete the words at these indices (`delete`), or play them in this order (`order`);
    `ripple: false` leaves gaps where words were deleted instead of closing them; `words`,
    the words you read, refuses (409) an edit another one overtook."""


class EditedTranscript(Model):
    """The ids of the clips that now play the transcript's words (the first is the edited
    clip; a deletion splits it)."""

    clips: list[str]


class TranscriptEditStep(Model):
    """A text edit undone or redone: the project's clips now, and whether another step
    can be taken either way."""

    clips: list[str] = Field(description="the ids of every clip in the project now")
    can_undo: bool = Field(description="whether a text edit is left to undo")
    can_redo: bool = Field(description="whether an undone text edit is left to redo")


def _summary(clip_id: str, spoken: Spoken) -> dict[str, Any]:
    words = spoken.words
    return {"id": clip_id, "language": spoken.language, "model": spoken.model,
            "duration_s": round(spoken.duration, 6), "word_count": len(words),
            "text": joined_words([w.word.strip() for w in words], spoken.language)}


def summary_view(clip_id: str, spoken: Spoken) -> TranscriptSummary:
    """A clip's transcript as the public API lists it (no words)."""
    return TranscriptSummary(**_summary(clip_id, spoken))


def transcript_view(clip_id: str, spoken: Spoken) -> Transcript:
    """A clip's transcript as the public API shows it, with every word."""
    return Transcript(**_summary(clip_id, spoken), words=[
        Word(text=w.word.strip(), start_s=w.start, end_s=w.end, probability=w.probability)
        for w in spoken.words])


def document_transcripts(document: ProjectDocument) -> dict[str, Spoken]:
    """The transcripts in a project document, by clip id (clips without one left out, and
    those an editor's client wrote malformed: one of them must not hide the others)."""
    found = {}
    for clip_id in document.clip_source_map():
        try:
            spoken = document.transcript(clip_id)
        except SchemaError as exc:
            log.warning("transcript left out of the listing: %s", exc)
            continue
        if spoken is not None:
            found[clip_id] = spoken
    return found


async def project_transcripts(app: web.Application, project_id: str) -> dict[str, Spoken]:
    """The transcripts in a project's current document, by clip id (REST).

    Raises :class:`NotFound` when the store holds no such project.
    """
    try:
        async with app[ROOMS].use(project_id) as room:
            return document_transcripts(room.document)
    except ProjectNotFound:
        raise NotFound(f"there is no project {project_id!r}") from None


async def projects_jobs(app: web.Application, project_ids: list[str]) -> dict[str, list[Job]]:
    """Each project's transcription jobs, oldest first, read in one query (GraphQL)."""
    return await app[core.TRANSCRIPTION].for_projects(project_ids)


def transcripts_scope(project_id: str) -> str:
    """The cursor list of a project's transcripts (REST's pages and GraphQL's)."""
    return f"transcripts:{project_id}"


def jobs_scope(project_id: str) -> str:
    """The cursor list of a project's transcription jobs (REST's pages and GraphQL's)."""
    return f"transcription-jobs:{project_id}"


def job_key(job: Any) -> tuple[str, str]:
    """A job's place in its list (REST's or GraphQL's view of it): oldest first, then by
    id; the cursors' position."""
    return job.created_at, str(job.id)


async def _transcripts(request: Request) -> dict[str, Spoken]:
    return await project_transcripts(request.app, request.params["project_id"])


async def list_transcripts(request: Request) -> web.Response:
    """The project's transcripts (one per transcribed clip), by clip id, without words."""
    query: Listing = request.query
    fields = parse_fields(query.fields, TranscriptSummary)
    found = [summary_view(c, s) for c, s in (await _transcripts(request)).items()]
    page, after = api_state(request.context).cursors.page(
        transcripts_scope(request.params["project_id"]), found, lambda t: (t.id,),
        query.limit, query.cursor)
    return answer(request, TranscriptPage(data=page, next_cursor=after), fields=fields)


async def get_transcript(request: Request) -> web.Response:
    """One clip's transcript: every word with its start and end (seconds from the clip's
    start) and confidence. 409 when the transcript stored in the project is malformed (an
    editor's client wrote it so): transcribe the clip again to replace it; the listing
    leaves such a transcript out."""
    fields = parse_fields(request.query.fields, Transcript)
    project_id, clip_id = request.params["project_id"], request.params["clip_id"]
    try:
        async with request.app[ROOMS].use(project_id) as room:
            known = clip_id in room.document.clip_source_map()
            spoken = room.document.transcript(clip_id) if known else None
    except ProjectNotFound:
        raise NotFound(f"there is no project {project_id!r}") from None
    except SchemaError as exc:  # an editor's client wrote it wrong; it says what to do
        raise Conflict(str(exc)) from None
    if spoken is None:
        raise NotFound(f"clip {clip_id!r} has no transcript: POST "
                       f"{JOBS.format(project_id=request.params['project_id'])} "
                       f'{{"clip_id": "{clip_id}"}} to make one')
    return answer(request, transcript_view(clip_id, spoken), fields=fields)


async def edit_transcript(request: Request) -> web.Response:
    """Edit a clip's audio through its transcript's words (editor): delete some, or play
    them in a new order; word indices count from 0 in the transcript's `words`. Send
    `Idempotency-Key` to make retries safe (a deletion repeated deletes more words)."""
    async def run() -> web.Response:
        edited = await core.edit_transcript(request)
        return answer(request, EditedTranscript(clips=edited.clips))

    return await idempotent(request, api_state(request.context).idempotency, run)


async def _history_step(request: Request, direction: str) -> TranscriptEditStep:
    """Undo or redo (``direction``) the project's last text edit, as the studio does."""
    project_id = request.params["project_id"]
    try:
        async with request.app[ROOMS].use(project_id) as room:
            done = await (room.undo() if direction == "undo" else room.redo())
            step = TranscriptEditStep(clips=sorted(room.document.clip_source_map()),
                                      can_undo=room.can_undo, can_redo=room.can_redo)
    except ProjectNotFound:
        raise NotFound(f"there is no project {project_id!r}") from None
    if not done:
        raise Conflict(NOTHING_TO.format(direction=direction, project_id=project_id,
                                         hint=HINTS[direction]))
    return step


async def undo_transcript_edit(request: Request) -> web.Response:
    """Undo the project's last text edit of a transcript (editor).

    The project's clips, transcripts and sound are as before it. Edits are undone last
    first, whichever clip they edited, as the studio's undo does; 409 when none is left
    (the history holds the edits made since the project was last opened on this server).
    Send `Idempotency-Key` to make retries safe (an undo repeated takes back one more
    edit)."""
    async def run() -> web.Response:
        return answer(request, await _history_step(request, "undo"))

    return await idempotent(request, api_state(request.context).idempotency, run)


async def redo_transcript_edit(request: Request) -> web.Response:
    """Redo the project's last undone text edit of a transcript (editor).

    409 when none is left (a new text edit clears what was undone). Send
    `Idempotency-Key` to make retries safe (a redo repeated puts back one more edit)."""
    async def run() -> web.Response:
        return answer(request, await _history_step(request, "redo"))

    return await idempotent(request, api_state(request.context).idempotency, run)


def job_view(project_id: str, job: Job) -> TranscriptionJob:
    """A transcription job as the public API shows it."""
    done = job.status == "done" and job.clip_id is not None
    return TranscriptionJob(
        id=job.id, clip_id=job.clip_id, language=job.language, status=job.status,
        progress=job.progress, error=job.error or None, created_at=rfc3339(job.created_at),
        updated_at=rfc3339(job.updated_at),
        transcript_url=f"{TRANSCRIPTS.format(project_id=project_id)}/{job.clip_id}"
        if done else None)


async def create_transcription_job(request: Request) -> web.Response:
    """Queue the transcription of a clip (editor); follow the job until it is `done`, then
    read the clip's transcript. Send `Idempotency-Key` to make retries safe."""
    async def run() -> web.Response:
        body: NewTranscriptionJob = request.body
        as_core = dataclasses.replace(
            request, params={**request.params, "clip_id": body.clip_id},
            body=core.TranscribeOptions(language=body.language))
        queued = await core.transcribe_clip(as_core)
        project_id = request.params["project_id"]
        job = await request.app[core.TRANSCRIPTION].get(project_id, queued.job.id)
        return answer(request, job_view(project_id, job), status=202,
                      headers={"Location": f"{JOBS.format(project_id=project_id)}/{job.id}"})

    return await idempotent(request, api_state(request.context).idempotency, run)


async def list_transcription_jobs(request: Request) -> web.Response:
    """The project's transcription jobs, oldest first; filter with `status`."""
    query: JobFilter = request.query
    fields = parse_fields(query.fields, TranscriptionJob)
    project_id = request.params["project_id"]
    jobs = await request.app[core.TRANSCRIPTION].for_project(project_id)
    found = [job_view(project_id, j) for j in jobs
             if query.status is None or j.status == query.status]
    page, after = api_state(request.context).cursors.page(
        jobs_scope(project_id), found, job_key, query.limit, query.cursor)
    return answer(request, TranscriptionJobPage(data=page, next_cursor=after), fields=fields)


async def get_transcription_job(request: Request) -> web.Response:
    """One transcription job's state and progress; `transcript_url` once it is done."""
    fields = parse_fields(request.query.fields, TranscriptionJob)
    job = await core._project_job(request)  # noqa: SLF001 - the core's own 404 rule
    return answer(request, job_view(request.params["project_id"], job), fields=fields)


async def cancel_transcription_job(request: Request) -> web.Response:
    """Cancel a queued or running transcription job (editor); a finished job is answered
    unchanged. `Idempotency-Key` is taken, as on every POST."""
    async def run() -> web.Response:
        cancelled = await core.cancel_job(request)
        project_id = request.params["project_id"]
        return answer(request, job_view(project_id, Job(**cancelled.model_dump())))

    return await idempotent(request, api_state(request.context).idempotency, run)


def _route(method: str, path: str, handler: Any, permission: Any, response: Any,
           **extra: Any) -> Route:
    return Route(method=method, path=path, handler=handler, permission=permission,
                 response=response, problem=True, name=f"v1_{handler.__name__}", **extra)


ROUTES = [
    _route("GET", TRANSCRIPTS, list_transcripts, PROJECT_READ, TranscriptPage, query=Listing),
    _route("GET", f"{TRANSCRIPTS}/{{clip_id}}", get_transcript, PROJECT_READ, Transcript,
           query=One),
    _route("GET", JOBS, list_transcription_jobs, PROJECT_READ, TranscriptionJobPage,
           query=JobFilter),
    _route("POST", JOBS, create_transcription_job, PROJECT_EDIT, TranscriptionJob,
           body=NewTranscriptionJob, status=202),
    _route("GET", f"{JOBS}/{{job_id}}", get_transcription_job, PROJECT_READ,
           TranscriptionJob, query=One),
    _route("POST", f"{JOBS}/{{job_id}}/cancel", cancel_transcription_job, PROJECT_EDIT,
           TranscriptionJob, body=Empty),
    _route("POST", f"{TRANSCRIPTS}/{{clip_id}}/edit", edit_transcript, PROJECT_EDIT,
           EditedTranscript, body=TranscriptEdit, max_body=core.MAX_TEXT_EDIT_BYTES),
    _route("POST", f"{EDITS}/undo", undo_transcript_edit, PROJECT_EDIT, TranscriptEditStep,
           body=Empty),
    _route("POST", f"{EDITS}/redo", redo_transcript_edit, PROJECT_EDIT, TranscriptEditStep,
           body=Empty),
]
