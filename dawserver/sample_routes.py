"""HTTP routes of the sample library (see docs/samples.md).

- ``GET /samples?q=&tags=&bpm_min=&bpm_max=&half_double=&key=&relative=&type=&class=&cursor=``
  (viewer): one ranked page of the account's samples.
- ``GET /samples/{sample_id}`` (viewer): one sample.
- ``GET /samples/{sample_id}/preview?tempo=&key=`` (viewer): WAV of the sample stretched
  to ``tempo`` and shifted to ``key``.
- ``POST /samples/uploads?name=`` (editor): store an audio file in the account's upload
  folder and index it.
- ``POST /samples/index`` ``{"folder": ...}`` (editor): queue indexing a folder;
  ``GET /samples/index-jobs/{job_id}``: its state and progress.
- ``POST /projects/{project_id}/samples`` ``{"sample_id", "track_id", "position_s",
  "tempo", "key"}`` (editor of the project): the sample (matched, when asked) becomes a
  project asset through the asset store's ingest and a clip on a track.

An id of another account's sample or job answers 404 like a missing one.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from pydantic import ConfigDict, Field

from collab.errors import ProjectNotFound, SchemaError
from collab.schema import new_id
from dsp_core.audio_io import read_audio, resampled_length
from dsp_core.errors import AudioFileError
from dsp_core.session import Clip, Track
from jobs import UnknownJob
from samples import preview
from samples.errors import BadQuery, SampleNotFound
from samples.records import Sample
from samples.search import SampleQuery

from . import asset_objects
from .asset_store import Asset, AssetError, AssetStore
from .assets import assets_of
from .authorization import project_account
from .errors import storage_failed
from .keys import ACCOUNTS, ROOMS
from .permissions import PROJECT_EDIT, SAMPLES_EDIT, SAMPLES_READ
from .plugin_api import (
    BadRequest,
    Media,
    Model,
    NotFound,
    PayloadTooLarge,
    Query,
    Reply,
    Request,
    Route,
    Unprocessable,
    UnsupportedMediaType,
)
from .sample_service import QUEUE, SAMPLES
from .sample_uploads import UploadRefused, UploadTooLarge, store_upload
from .storage import StorageError

MAX_UPLOAD_BYTES = 64 << 20
UPLOAD_TYPES = ("audio/wav", "audio/flac", "audio/aiff", "audio/ogg", "application/octet-stream")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9 ._#()+-]+")
#: The most UTF-8 bytes of an upload's stem: room for " (n)" and the type in a 255-byte name.
MAX_STEM_BYTES = 200
#: The latest time a sample may be placed at in a project (24 hours).
MAX_POSITION_S = 24 * 3600.0


class SampleInfo(Model):
    """An indexed sample: what its name says and what was measured."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, populate_by_name=True)

    id: str
    provider: str = "local"
    name: str
    words: list[str]
    duration: float
    loudness_lufs: float | None
    peak_db: float
    bpm: float | None
    bpm_confidence: float
    key: str | None
    key_confidence: float
    type: str
    class_: str = Field(alias="class")
    class_confidence: float
    sample_rate: int | None
    channels: int | None
    preview: str


class SamplePage(Model):
    """One ranked page of samples, how many matched, and the next page's cursor."""

    samples: list[SampleInfo]
    total: int
    next_cursor: str | None


class SampleSearch(Query):
    """Text, tags (comma-separated), BPM range, key, type, class, and the page."""

    q: str = ""
    tags: str = ""
    bpm_min: float | None = None
    bpm_max: float | None = None
    half_double: bool = Field(False, description="also match half and double the tempo")
    key: str | None = None
    relative: bool = Field(False, description="also match the key's relative major/minor")
    type: str | None = Field(None, description="loop or one-shot")
    class_: str | None = Field(None, alias="class",
                               description="kick, snare, hat, bass, pad, vocal or other")
    provider: str = "local"
    cursor: str | None = None
    limit: int = 50


class PreviewQuery(Query):
    """The project's tempo (BPM) and key to match."""

    tempo: float | None = None
    key: str | None = None


class UploadQuery(Query):
    """The uploaded file's name (its words become tags)."""

    name: str = ""


class IndexFolder(Model):
    """A folder on the server to index (under the server's sample roots)."""

    folder: str


class IndexJob(Model):
    """A folder indexing job: state, progress (0..1), its note and, when done, the counts."""

    id: str
    state: str
    progress: float
    note: str
    result: dict | None
    error: str


class AddToProject(Model):
    """Which sample, onto which track (none: a new track) at which time, matched or not."""

    sample_id: str = Field(min_length=1)
    track_id: str | None = None
    position_s: float = Field(0.0, ge=0, le=MAX_POSITION_S, allow_inf_nan=False,
                              description="seconds from the project's start, up to 24 hours")
    tempo: float | None = None
    key: str | None = None


class AddedClip(Model):
    """The project asset the sample became and the clip that plays it."""

    asset_id: str
    track_id: str
    clip_id: str
    method: str


def _info(sample: Sample, provider: str = "local") -> SampleInfo:
    return SampleInfo(**sample.to_json(), provider=provider,
                      preview=f"/samples/{sample.id}/preview")


def _cursor(offset: int | None) -> str | None:
    return None if offset is None else base64.urlsafe_b64encode(f"o{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        return int(text[1:]) if text.startswith("o") else -1
    except (ValueError, UnicodeDecodeError):
        return -1


async def search_samples(request: Request) -> SamplePage:
    """One ranked page of the account's samples (viewer)."""
    query: SampleSearch = request.query
    service = request.app[SAMPLES]
    try:
        provider = service.provider(query.provider)
        search = SampleQuery(
            text=query.q, tags=tuple(t.strip().lower() for t in query.tags.split(",")
                                     if t.strip()),
            bpm_min=query.bpm_min, bpm_max=query.bpm_max, tempo_multiples=query.half_double,
            key=query.key or None, relative_key=query.relative, kind=query.type or None,
            instrument=query.class_ or None, offset=_offset(query.cursor), limit=query.limit)
        found = await provider.search(request.account_id, search)
    except BadQuery as exc:
        raise BadRequest(str(exc)) from None
    return SamplePage(samples=[_info(s, provider.name) for s in found.samples],
                      total=found.total, next_cursor=_cursor(found.next_offset))


async def _sample(request: Request, account_id: str | None = None,
                  sample_id: str | None = None) -> tuple[str, Sample]:
    try:
        provider, sample = await request.app[SAMPLES].find(
            request.account_id if account_id is None else account_id,
            request.params["sample_id"] if sample_id is None else sample_id)
    except SampleNotFound as exc:
        raise NotFound(str(exc)) from None
    return provider.name, sample


async def get_sample(request: Request) -> SampleInfo:
    """One of the account's samples (viewer)."""
    provider, sample = await _sample(request)
    return _info(sample, provider)


async def preview_sample(request: Request) -> Reply:
    """The sample as WAV, stretched to ``tempo`` and shifted to ``key`` (viewer).

    ``X-Preview-Method`` says how: ``rubberband``, ``resample`` (pitch only) or ``none``.
    """
    provider, sample = await _sample(request)
    audio, rate, made = await _matched(request, provider, sample, request.query.tempo,
                                       request.query.key)
    data = await asyncio.to_thread(_wav_bytes, audio, rate)
    return Reply(data, media_type="audio/wav", headers={
        "X-Preview-Method": made.method, "X-Tempo-Ratio": f"{made.tempo_ratio:.6f}",
        "X-Semitones": str(made.semitones)})


async def _matched(request: Request, provider: str, sample: Sample, tempo: float | None,  # noqa: ANN202
                   key: str | None):
    path = await request.app[SAMPLES].provider(provider).fetch(sample.account_id, sample.id)
    try:
        ratio, shift = preview.plan(sample, tempo, key)
        audio, rate = await asyncio.to_thread(read_audio, path)
        made = await asyncio.to_thread(preview.render, audio, rate, ratio, shift)
    except BadQuery as exc:
        raise BadRequest(str(exc)) from None
    except AudioFileError:
        raise NotFound(f"the file of sample {sample.id!r} is gone from the server or no "
                       "longer reads as audio; index its folder again") from None
    return made.audio, made.sample_rate, made


def _wav_bytes(audio, rate: int) -> bytes:  # noqa: ANN001 - planar float32
    buffer = io.BytesIO()
    sf.write(buffer, audio.T, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


async def upload_sample(request: Request) -> SampleInfo:
    """Store an uploaded WAV/FLAC/AIFF/OGG file in the account's library and index it."""
    service = request.app[SAMPLES]
    name = _upload_name(request.query.name)
    if Path(name).suffix.lower() not in (".wav", ".flac", ".aif", ".aiff", ".ogg"):
        raise UnsupportedMediaType(f"{name!r}: name the file with its type (.wav, .flac, "
                                   ".aiff or .ogg) in ?name=")
    name = _short_stem(name)
    folder = service.upload_folder(request.account_id)
    try:
        target = await asyncio.to_thread(store_upload, folder, name, request.body)
    except UploadTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except UploadRefused as exc:
        raise UnsupportedMediaType(str(exc)) from None
    try:
        sample = await service.library.index_file(request.account_id, folder, target)
    except BadQuery as exc:  # it read as audio but could not be indexed: keep no file
        target.unlink(missing_ok=True)
        raise Unprocessable(str(exc)) from None
    return _info(sample)


def _upload_name(raw: str) -> str:
    """The upload's file name made safe: odd characters replaced and no leading dot (a
    hidden file is never indexed, so a re-index would drop its sample)."""
    name = _SAFE_NAME.sub("_", os.path.basename(raw or "upload.wav")).strip()
    return name.lstrip(". ")


def _short_stem(name: str) -> str:
    """``name`` with its stem cut to :data:`MAX_STEM_BYTES` of UTF-8 (on a character)."""
    path = Path(name)
    stem = path.stem.encode()[:MAX_STEM_BYTES].decode("utf-8", "ignore")
    return stem + path.suffix


async def index_folder(request: Request) -> Reply:
    """Queue indexing a folder of the server for the account (editor); 202 and the job."""
    service = request.app[SAMPLES]
    try:
        folder = service.allowed_folder(request.account_id, request.body.folder)
    except BadQuery as exc:
        raise BadRequest(str(exc)) from None
    record = await service.enqueue_index(request.account_id, folder)
    return Reply(_job(record), status=202,
                 headers={"Location": f"/samples/index-jobs/{record.id}"})


def _job(record) -> IndexJob:  # noqa: ANN001 - jobs.JobRecord
    return IndexJob(id=record.id, state=record.state, progress=record.progress,
                    note=record.note, result=record.result if isinstance(record.result, dict)
                    else None, error=record.last_error)


async def index_job(request: Request) -> IndexJob:
    """A folder indexing job of the account: state and progress (viewer)."""
    from .keys import BACKGROUND

    try:
        record = await request.app[BACKGROUND].queue.get(request.account_id,
                                                         request.params["job_id"])
    except UnknownJob:
        record = None
    if record is None or record.queue != QUEUE:
        raise NotFound(f"no sample indexing job {request.params['job_id']!r} in this account")
    return _job(record)


async def add_to_project(request: Request) -> AddedClip:
    """Put one of the project account's samples on a track as a clip (project editor)."""
    project_id = request.params["project_id"]
    body: AddToProject = request.body
    owner = project_account(project_id)
    if ACCOUNTS in request.app:
        owner = await request.app[ACCOUNTS].store.project_owner(project_id) or owner
    provider, sample = await _sample(request, account_id=owner, sample_id=body.sample_id)
    audio, rate, made = await _matched(request, provider, sample, body.tempo, body.key)
    store = await assets_of(request.app, project_id)
    stem = Path(sample.name).stem
    try:
        async with request.app[ROOMS].use(project_id) as room:
            if body.track_id and body.track_id not in room.document.track_ids():
                raise BadRequest(f"no track {body.track_id!r} in project {project_id!r}; "
                                 "leave track_id out to add the sample on a new track")
            asset = await _ingest(store, project_id, stem, audio, rate)
            ids: dict[str, str] = {}

            def change(document) -> None:  # noqa: ANN001 - collab.schema.ProjectDocument
                session_rate = document.sample_rate
                track_id = body.track_id or document.add_track(Track(
                    id=new_id("track"), name=stem, channels=min(asset.channels, 2)))
                clip = Clip(source=asset.id, position=round(body.position_s * session_rate),
                            length=resampled_length(asset.frames, asset.sample_rate,
                                                    session_rate))
                ids["track"], ids["clip"] = track_id, document.add_clip(track_id, clip)

            await room.edit(change)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    except SchemaError as exc:
        raise BadRequest(str(exc)) from None
    return AddedClip(asset_id=asset.id, track_id=ids["track"], clip_id=ids["clip"],
                     method=made.method)


async def _ingest(store: AssetStore, project_id: str, stem: str, audio: np.ndarray,
                  rate: int) -> Asset:
    """The rendered sample as a project asset (``AssetStore.ingest_file``), published to
    object storage when the store has one."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{stem}.wav"
        await asyncio.to_thread(sf.write, path, audio.T, rate, "FLOAT")
        try:
            asset = await asyncio.to_thread(store.ingest_file, path, project_id=project_id,
                                            name=f"{stem}.wav")
            if store.objects is not None:  # object storage holds every asset
                await asset_objects.publish(store, asset, project_id)
        except AssetError as exc:
            raise BadRequest(str(exc)) from None
        except StorageError as exc:
            raise storage_failed(exc, "the sample could not be stored") from None
    return asset


SAMPLE = "/samples/{sample_id}"

ROUTES = [
    Route(method="GET", path="/samples", handler=search_samples, permission=SAMPLES_READ,
          query=SampleSearch, response=SamplePage),
    Route(method="POST", path="/samples/uploads", handler=upload_sample,
          permission=SAMPLES_EDIT, query=UploadQuery, body=Media(*UPLOAD_TYPES),
          response=SampleInfo, max_body=MAX_UPLOAD_BYTES),
    Route(method="POST", path="/samples/index", handler=index_folder, permission=SAMPLES_EDIT,
          body=IndexFolder, response=IndexJob, status=202),
    Route(method="GET", path="/samples/index-jobs/{job_id}", handler=index_job,
          permission=SAMPLES_READ, response=IndexJob),
    Route(method="GET", path=SAMPLE, handler=get_sample, permission=SAMPLES_READ,
          response=SampleInfo),
    Route(method="GET", path=f"{SAMPLE}/preview", handler=preview_sample,
          permission=SAMPLES_READ, query=PreviewQuery, response=Media("audio/wav")),
    Route(method="POST", path="/projects/{project_id}/samples", handler=add_to_project,
          permission=PROJECT_EDIT, body=AddToProject, response=AddedClip, status=201),
]
