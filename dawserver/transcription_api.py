"""HTTP routes for transcription and text-based editing.

The jobs run in :mod:`dawserver.transcription_service`, on the one job queue. The
routes (token as for every route; see docs/transcription.md):

- ``POST /projects/{id}/clips/{clip}/transcribe`` ``{"language": "de"}`` (editor): queue a job.
- ``POST /projects/{id}/assets/{sha}/transcribe`` ``{"language": "de"}`` (editor): queue a
  job on a whole uploaded asset; the transcript stays in the job (no clip is written).
- ``GET /projects/{id}/transcription-jobs[/{job}]`` (viewer): state and progress.
- ``DELETE /projects/{id}/transcription-jobs/{job}`` (editor): cancel.
- ``GET /projects/{id}/transcription-log`` (viewer): every decode of the project's audio
  (model version, language, length, confidence), from the model registry.
- ``GET /projects/{id}/clips/{clip}/transcript?format=json|srt|vtt|txt`` (viewer): export.
- ``POST /projects/{id}/clips/{clip}/transcript/edit`` ``{"delete": [3, 4]}`` or
  ``{"order": [0, 2, 1]}`` (editor): edit the audio by editing the words.
- ``POST /projects/{id}/clips/{clip}/transcript/undo`` and ``.../redo`` (editor): undo or
  redo the project's last text edit (the room's undo history).

Jobs live in the server's database, in the job queue's ``jobs`` table (queue
``transcription``; SQLite in the data directory by default, PostgreSQL when configured).
A job of another project is not found (404).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from collab.errors import ProjectNotFound, SchemaError
from dsp_core.errors import DspError
from dsp_core.sources import SourceRefused
from transcription.editing import EditOptions
from transcription.errors import EditError, JobError, LanguageError, TranscriptionError
from transcription.formats import FORMATS, export
from transcription.jobs import Job
from transcription.languages import normalize_language
from transcription.registry import ModelRegistry

from . import asset_objects
from .access import require_project
from .asset_store import Asset, AssetNotFound
from .assets import assets_of, project_asset
from .authorization import project_account
from .clip_sources import local_source, project_asset_id
from .keys import DATABASE, ROOMS
from .permissions import PROJECT_EDIT, PROJECT_READ
from .plugin_api import (
    BadRequest,
    Conflict,
    Empty,
    Media,
    Model,
    NotFound,
    Query,
    Reply,
    Request,
    Route,
)
from .transcript_document import apply_text_edit, find_clip
from .transcription_service import TRANSCRIPTION

MEDIA_TYPES = {"json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt",
               "txt": "text/plain"}


class TranscribeOptions(Model):
    """The spoken language (a code, alias or English name); none or "auto": detect it."""

    language: str | None = None

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        try:
            return normalize_language(value)
        except LanguageError as exc:
            raise ValueError(str(exc)) from None


class TranscriptionJob(Model):
    """A transcription job: state, progress (0..1), error and, when done, the transcript."""

    project_id: str
    source: str = Field(description="the id of the asset transcribed")
    id: str
    clip_id: str | None
    start_s: float
    end_s: float | None
    language: str | None
    status: str
    progress: float
    result: dict[str, Any] | None = None
    error: str | None
    created_at: float
    updated_at: float


class Queued(Model):
    """A queued job and the URL to poll."""

    job: TranscriptionJob
    url: str


class TranscriptFormat(Query):
    """The export format of a transcript."""

    format: str = "json"

    @field_validator("format", mode="before")
    @classmethod
    def _known_format(cls, value: Any) -> str:
        fmt = str(value).lower()
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        return fmt


class TextEdit(Model):
    """Delete words (``delete``: indices) or play them in a new order (``order``).

    ``ripple: false`` leaves gaps where words were deleted instead of closing them.
    ``words``: the words' texts as the caller saw them, in order; when the transcript
    holds other words by the time the edit runs (a collaborator's edit came first), the
    edit is refused (409) and changes nothing, instead of applying the indices to them.
    """

    delete: list[int] | None = None
    order: list[int] | None = None
    ripple: bool = True
    words: list[str] | None = Field(
        None, max_length=100_000,
        description="The words' texts as you read them, in order: when the transcript holds "
                    "others by the time the edit runs, it is refused (409), nothing edited.")

    @model_validator(mode="after")
    def _one_edit(self) -> TextEdit:
        if (self.delete is None) == (self.order is None):
            raise ValueError('give either "delete": [word indices] or "order": [word '
                             'indices], not both')
        return self


class EditedClips(Model):
    """The ids of the clips that now play the words."""

    clips: list[str]


class Undone(Model):
    """The last text edit was undone; the project's clips now."""

    undo: bool
    clips: list[str]


class Redone(Model):
    """The last undone text edit was redone; the project's clips now."""

    redo: bool
    clips: list[str]


def _accepted(project_id: str, job: Job) -> Queued:
    """The queued job and the URL to poll."""
    return Queued(job=_job_json(job),
                  url=f"/projects/{project_id}/transcription-jobs/{job.id}")


def _job_json(job: Job, *, result: bool = True) -> dict[str, Any]:
    """The job as the API shows it: its source is the asset's id, never a server path."""
    data = job.to_dict()
    asset_id = data.pop("asset_id")
    data["source"] = asset_id or Path(job.source).name
    if not result:
        data.pop("result")
    return data


async def _project_job(request: Request) -> Job:
    await require_project(request.app, request.params["project_id"])
    try:
        return await request.app[TRANSCRIPTION].get(request.params["project_id"],
                                                    request.params["job_id"])
    except JobError as exc:
        raise NotFound(str(exc)) from None


async def transcribe_clip(request: Request) -> Queued:
    """Queue the transcription of a clip in a language, or detect it (editor)."""
    project_id, clip_id = request.params["project_id"], request.params["clip_id"]
    try:
        async with request.app[ROOMS].use(project_id) as room:
            ref = find_clip(room.document, clip_id)
    except (ProjectNotFound, EditError) as exc:
        raise NotFound(str(exc)) from None
    asset = await _clip_asset(request, project_id, clip_id, ref.clip.source)
    rate = ref.session.sample_rate
    job = await request.app[TRANSCRIPTION].submit(
        project_id, asset.path, clip_id=clip_id, start_s=ref.clip.offset / rate,
        end_s=(ref.clip.offset + ref.clip.length) / rate, language=request.body.language,
        asset_id=asset.id)
    return _accepted(project_id, job)


async def _clip_asset(request: Request, project_id: str, clip_id: str, source: str
                      ) -> Asset:
    """The project's asset a clip plays, described without fetching its audio: the job
    fetches that where it runs (409 for anything but one of the project's assets)."""
    store = await assets_of(request.app, project_id)
    with _refused_as_conflict(clip_id):
        asset_id = await project_asset_id(store, project_id, source)
        try:
            asset = await asset_objects.pull(store, asset_id)
        except AssetNotFound:
            asset = None
        if asset is None or not await asset_objects.has_audio(store, asset):
            raise SourceRefused(f"asset {asset_id} of this project is gone; upload it again")
        return asset


async def _clip_file(request: Request, project_id: str, clip_id: str, source: str) -> str:
    """The local file of a clip's source when it is one of the project's assets (409 if
    not: the server never reads another project's asset or a server path)."""
    store = await assets_of(request.app, project_id)
    with _refused_as_conflict(clip_id):
        return await local_source(store, project_id, source)


@contextlib.contextmanager
def _refused_as_conflict(clip_id: str) -> Iterator[None]:
    try:
        yield
    except SourceRefused as exc:
        raise Conflict(f"cannot use the audio of clip {clip_id!r}: {exc}") from None


async def transcribe_asset(request: Request) -> Queued:
    """Queue the transcription of a whole uploaded asset (editor; 409 when its audio is
    gone); the job holds the result."""
    project_id = request.params["project_id"]
    asset = await project_asset(request)
    if not await asset_objects.has_audio(await assets_of(request.app, project_id), asset):
        raise Conflict(f"the audio of asset {asset.id} is gone; upload it again")
    job = await request.app[TRANSCRIPTION].submit(project_id, asset.path,
                                                  language=request.body.language,
                                                  asset_id=asset.id)
    return _accepted(project_id, job)


async def list_jobs(request: Request) -> list[TranscriptionJob]:
    """The project's transcription jobs, oldest first, without results (viewer)."""
    await require_project(request.app, request.params["project_id"])
    jobs = await request.app[TRANSCRIPTION].for_project(request.params["project_id"])
    return [TranscriptionJob(**_job_json(job, result=False)) for job in jobs]


class Decode(Model):
    """One decode of the project's audio, as the model registry logged it."""

    id: str
    model_name: str
    model_version: int
    language: str
    duration_s: float
    #: Mean word probability (None: no words were heard).
    confidence: float | None
    created_at: float


async def list_decodes(request: Request) -> list[Decode]:
    """The project's transcription log, oldest first: which model version decoded how
    much audio in which language, and how sure it was (viewer)."""
    await require_project(request.app, request.params["project_id"])
    registry = ModelRegistry(request.app[DATABASE])
    decodes = await registry.inferences(project_account(request.params["project_id"]))
    return [Decode(**d.shown()) for d in decodes]


async def get_job(request: Request) -> TranscriptionJob:
    """One job: status, progress (0..1), error and, when done, the transcript (viewer)."""
    return TranscriptionJob(**_job_json(await _project_job(request)))


async def cancel_job(request: Request) -> TranscriptionJob:
    """Cancel a queued or running job (editor)."""
    await require_project(request.app, request.params["project_id"])
    try:
        job = await request.app[TRANSCRIPTION].cancel(request.params["project_id"],
                                                      request.params["job_id"])
    except JobError as exc:
        raise NotFound(str(exc)) from None
    return TranscriptionJob(**_job_json(job, result=False))


async def get_transcript(request: Request) -> Reply:
    """The clip's transcript from the document as json, srt, vtt or txt (viewer)."""
    project_id, clip_id = request.params["project_id"], request.params["clip_id"]
    fmt = request.query.format
    try:
        async with request.app[ROOMS].use(project_id) as room:
            find_clip(room.document, clip_id)
            stored = room.document.transcript(clip_id)
    except (ProjectNotFound, EditError) as exc:
        raise NotFound(str(exc)) from None
    except SchemaError as exc:  # an editor's client wrote it wrong; it says what to do
        raise Conflict(str(exc)) from None
    if stored is None:
        raise NotFound(f"clip {clip_id!r} has no transcript yet: POST "
                       f"/projects/{project_id}/clips/{clip_id}/transcribe")
    return Reply(export(stored, fmt), media_type=MEDIA_TYPES[fmt])


async def edit_transcript(request: Request) -> EditedClips:
    """Edit audio through words: delete them or play them in a new order (editor).

    Answers the ids of the clips that now play the words.
    """
    project_id, clip_id = request.params["project_id"], request.params["clip_id"]
    edit: TextEdit = request.body
    options = EditOptions(ripple=edit.ripple)
    try:
        async with request.app[ROOMS].use(project_id) as room:
            ref = find_clip(room.document, clip_id)
            _order(edit, _words_now(room.document, clip_id, edit.words))  # refused early
            from dsp_core.audio_io import load_source

            path = await _clip_file(request, project_id, clip_id, ref.clip.source)
            audio = await asyncio.get_running_loop().run_in_executor(
                None, load_source, path, ref.session.sample_rate)
            pieces: list[str] = []

            def change(document) -> None:  # noqa: ANN001 - collab.schema.ProjectDocument
                # read again: another edit may have landed while the audio loaded
                order = _order(edit, _words_now(document, clip_id, edit.words))
                pieces.extend(apply_text_edit(document, clip_id, order, audio, options))

            await room.edit(change, undoable=True)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    except (EditError, SchemaError, DspError, TranscriptionError) as exc:
        raise BadRequest(str(exc)) from None
    return EditedClips(clips=pieces)


async def undo_text_edit(request: Request) -> Undone:
    """Undo the project's last text edit: clips, transcripts and sound as before (editor)."""
    return Undone(undo=True, clips=await _undo_step(request, "undo"))


async def redo_text_edit(request: Request) -> Redone:
    """Redo the project's last undone text edit (editor)."""
    return Redone(redo=True, clips=await _undo_step(request, "redo"))


async def _undo_step(request: Request, direction: str) -> list[str]:
    try:
        async with request.app[ROOMS].use(request.params["project_id"]) as room:
            done = await (room.undo() if direction == "undo" else room.redo())
            document = room.document.to_json()
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    if not done:
        raise Conflict(f"no text edit to {direction} in this project (the history starts "
                       "when the project is loaded)")
    return sorted(document["clips"])


def _words_now(document: Any, clip_id: str, seen: list[str] | None) -> int:
    """How many words the clip's transcript holds now; Conflict when the caller saw
    others (``seen``: their texts), so indices never land on words it did not mean."""
    find_clip(document, clip_id)  # EditError if the clip went meanwhile
    stored = document.transcript(clip_id)
    words = [w.word.strip() for w in stored.words] if stored else []
    if seen is not None and [w.strip() for w in seen] != words:
        raise Conflict(f"the transcript of clip {clip_id!r} changed since you read it (it "
                       f"holds {len(words)} words, you sent {len(seen)}): read it again and "
                       "choose the words anew; nothing was edited")
    return len(words)


def _order(edit: TextEdit, count: int) -> list[int]:
    if edit.order is not None:
        return edit.order
    bad = [i for i in edit.delete or [] if not 0 <= i < count]
    if bad:
        raise EditError(f"word indices {bad} are outside 0..{count - 1}")
    gone = set(edit.delete or [])
    return [i for i in range(count) if i not in gone]


PROJECT = "/projects/{project_id}"
CLIP = f"{PROJECT}/clips/{{clip_id}}"
#: The most bytes of a text edit (word indices of a long transcript).
MAX_TEXT_EDIT_BYTES = 1024 * 1024
JOB = f"{PROJECT}/transcription-jobs/{{job_id}}"

ROUTES = [
    Route(method="POST", path=f"{CLIP}/transcribe", handler=transcribe_clip,
          permission=PROJECT_EDIT, body=TranscribeOptions, response=Queued, status=202),
    Route(method="POST", path=f"{PROJECT}/assets/{{asset_id}}/transcribe",
          handler=transcribe_asset, permission=PROJECT_EDIT, body=TranscribeOptions,
          response=Queued, status=202),
    Route(method="GET", path=f"{PROJECT}/transcription-jobs", handler=list_jobs,
          permission=PROJECT_READ, response=list[TranscriptionJob]),
    Route(method="GET", path=f"{PROJECT}/transcription-log", handler=list_decodes,
          permission=PROJECT_READ, response=list[Decode]),
    Route(method="GET", path=JOB, handler=get_job, permission=PROJECT_READ,
          response=TranscriptionJob),
    Route(method="DELETE", path=JOB, handler=cancel_job, permission=PROJECT_EDIT,
          response=TranscriptionJob),
    Route(method="GET", path=f"{CLIP}/transcript", handler=get_transcript,
          permission=PROJECT_READ, query=TranscriptFormat,
          response=Media(*MEDIA_TYPES.values())),
    Route(method="POST", path=f"{CLIP}/transcript/edit", handler=edit_transcript,
          permission=PROJECT_EDIT, body=TextEdit, response=EditedClips,
          max_body=MAX_TEXT_EDIT_BYTES),
    Route(method="POST", path=f"{CLIP}/transcript/undo", handler=undo_text_edit,
          permission=PROJECT_EDIT, body=Empty, response=Undone),
    Route(method="POST", path=f"{CLIP}/transcript/redo", handler=redo_text_edit,
          permission=PROJECT_EDIT, body=Empty, response=Redone),
]
