"""Offline bounces of a project's live document: jobs with progress, download, cancel.

``setup_bounces(app)`` serves the ``bounce`` queue of the one job queue
(:mod:`jobs`, through ``app[BACKGROUND]``); :data:`ROUTES` are (token as for
every route):

- ``POST /projects/{id}/bounces`` ``{"sample_rate": 96000, "bit_depth": "24",
  "format": "flac", "tail": 2.0}`` (editor): snapshot the document and queue a bounce;
  ``"format": "adm"`` makes an ADM BWF of the immersive mix (docs/immersive.md).
- ``GET /projects/{id}/bounces[/{job}]`` (viewer): state, progress (0..1), figures.
- ``GET /projects/{id}/bounces/{job}/audio`` (viewer): the rendered file.
- ``DELETE /projects/{id}/bounces/{job}`` (editor): cancel; no partial file is left.

Asking for a bounce writes a snapshot of the document (its Yjs state) under
``<storage>/bounces/<project>/`` (``<storage>``: the data directory, or the
storage of the project's data region, :mod:`dawserver.regions`) and queues a job
naming it, so the bounce
survives a restart and any node sharing the data directory can render it.
The job renders the snapshot with a fresh engine in a worker thread (never on
the event loop), one at a time per server process, writes its progress, and
stops at the next block when cancelled, leaving no file.  When one finishes,
the plug-ins hear of it through the ``project_rendered`` hook, for the
project's account (e.g. the distribution module records the render for a
release); a render whose worker died before recording it is rendered, and
announced, again.  A stretched clip (stretch, pitch, warp markers, ``follow_tempo``)
plays the live mix's render of it: reused from memory or the project's derived audio,
else rendered first and kept there (:mod:`dawserver.clip_renders`); the first
:data:`STRETCH_SHARE` of the progress covers those renders.  The job states map to
the API's: ``queued`` and ``retrying`` are ``queued``, ``running`` is ``rendering``, ``dead`` is
``failed``; ``done`` and ``cancelled`` keep their names.

An ``lv2`` plug-in that fails during the render (hangs, crashes, outputs NaN) plays
bypassed in the file, as in the live engines, and an effect the snapshot's session
leaves out (not installed here, a bad control, over a cap) is not heard; the bounce
still finishes, and its ``bypassed`` list (each entry as ``GET
/projects/{id}/lv2/bypassed`` answers it, the engine ``bounce`` or ``document``) says
which, and the log warns of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from pycrdt import Doc
from pydantic import Field, field_validator, model_validator

from collab.errors import ProjectNotFound
from collab.schema import ProjectDocument
from dsp_core.audio_io import BIT_DEPTHS, EXPORT_RATES
from dsp_core.bounce import BounceStats, bounce
from dsp_core.engine import Engine
from dsp_core.errors import DspError
from dsp_core.immersive_adm import bounce_adm
from dsp_core.session import Session
from jobs import (
    CANCELLED,
    DEAD,
    DONE,
    QUEUED,
    RETRYING,
    RUNNING,
    JobContext,
    JobRecord,
    Permanent,
    QueueSettings,
    UnknownJob,
)

from . import clip_renders, lv2_faults, plugins
from .access import require_project
from .asset_store import AssetStore
from .assets import assets_of
from .authorization import project_account
from .clip_sources import playable_session
from .errors import storage_failed
from .keys import BACKGROUND, ROOMS
from .lv2_routes import BypassedPlugin
from .metrics import RENDER_REALTIME_FACTOR
from .permissions import PROJECT_EDIT, PROJECT_READ
from .plugin_api import (
    BadRequest,
    Conflict,
    Media,
    Model,
    NotFound,
    Request,
    Retry,
    Route,
)
from .regions import project_storage
from .storage import ObjectNotFound, ObjectStore, StorageError, StorageUnavailable
from .storage.service import object_response, project_objects

log = logging.getLogger(__name__)

FORMATS = {"wav": "audio/wav", "flac": "audio/flac", "adm": "audio/wav"}
#: adm: an ADM BWF (7.1.4 bed and objects, 24-bit; dsp_core.immersive_adm, docs/immersive.md)
EXTENSIONS = {"adm": "adm.wav"}
RENDERING, FAILED = "rendering", "failed"
#: The bounce states the API shows, by job state.
STATUS = {QUEUED: QUEUED, RETRYING: QUEUED, RUNNING: RENDERING, DONE: DONE, DEAD: FAILED,
          CANCELLED: CANCELLED}
#: The job queue bounces run on.
QUEUE = "bounce"
#: Where bounces' snapshots and files are kept in the region's object store.
PREFIX = "bounces"
#: One render at a time per process (a render keeps a core busy); a failed write
#: (a full disk) is tried again; bad input (a missing source) fails at once.
SETTINGS = QueueSettings(max_attempts=3, backoff_base=5.0, backoff_cap=120.0, lease_s=60.0,
                         concurrency=1)
FIGURES = ("frames", "seconds", "realtime_factor", "peak", "clipped")
#: The part of a bounce's progress its stretched clips' renders cover (when it has some).
STRETCH_SHARE = 0.5


@dataclass(frozen=True)
class BounceRequest:
    """A bounce job's payload: what to render, and where (paths under the bounce folder)."""

    project_id: str
    user: str
    sample_rate: int
    bit_depth: str
    format: str
    tail: float
    snapshot: str
    output: str
    strict: bool = False  # fail, keeping no file, rather than play an lv2 plug-in bypassed

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> BounceRequest:
        """The request a job's payload holds (:class:`Permanent` if it is not one)."""
        try:
            return cls(**payload)
        except TypeError as exc:
            raise Permanent(f"not a bounce request: {exc}") from None


def read_snapshot(path: Path) -> Session:
    """The session of a document snapshot (a Yjs update) written when a bounce was asked."""
    return read_update(path.read_bytes())


def read_update(update: bytes) -> Session:
    """The session of a document snapshot's bytes (a Yjs update)."""
    return read_document(update)[0]


def read_document(update: bytes) -> tuple[Session, list[str]]:
    """The session of a document snapshot's bytes (a Yjs update), and why each ``lv2``
    effect it leaves out is left out (``ProjectDocument.bypassed``)."""
    doc = Doc()
    doc.apply_update(update)
    document = ProjectDocument(doc)
    return document.to_session(), list(document.bypassed)


def bounce_prefix(project_id: str) -> str:
    """The folder of ``project_id``'s bounces under ``bounces/`` (a safe object key)."""
    return re.sub(r"[^A-Za-z0-9._=-]", "_", project_id)


class BounceRenderer:
    """The ``bounce`` queue's handler: renders a job's snapshot into its output file."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        """Render the job's snapshot; the figures and the output path are its result."""
        request = BounceRequest.from_payload(ctx.payload)
        directory = await bounce_directory(self.app, request.project_id)
        objects = await project_objects(self.app, request.project_id)
        snapshot_key = f"{PREFIX}/{request.snapshot}"
        output = directory / request.output  # rendered here, then stored (S3) from here
        try:
            update = await objects.get(snapshot_key)
        except ObjectNotFound:
            raise Permanent(f"the document snapshot of bounce {ctx.job.id} ({snapshot_key}) "
                            "is gone; ask for a new bounce") from None
        except StorageUnavailable as exc:
            raise Retry(str(exc)) from None
        # big documents: off the loop
        session, left_out = await asyncio.to_thread(read_document, update)
        store = await assets_of(self.app, request.project_id)
        session = await self._playable(store, request.project_id, session)
        share = STRETCH_SHARE if clip_renders.stretched_clips(session) else 0.0

        def stretched(done: int, total: int) -> None:
            ctx.check()  # cancelled between two clips' renders
            ctx.progress(share * done / total)

        try:
            prepared = await clip_renders.prepare(session, request.sample_rate, store=store,
                                                  project_id=request.project_id,
                                                  progress=stretched)
            with prepared:  # held until the engine has them
                stats = await ctx.run_in_thread(self._render, ctx, request, session, output,
                                                share)
            bypassed = await asyncio.to_thread(  # names from lilv's catalogue: off the loop
                lv2_faults.render_faults, stats.plugin_errors, session, left_out)
            if request.strict and bypassed:
                output.unlink(missing_ok=True)
                raise Permanent(
                    f"strict bounce: {len(bypassed)} lv2 plug-in(s) played bypassed, so no "
                    "file was kept: " + "; ".join(map(lv2_faults.describe, bypassed))
                    + "; fix them, or bounce without strict to keep the file")
            if objects.redirects:  # the object store keeps it; this copy is for the hooks
                await objects.put_file(f"{PREFIX}/{request.output}", output,
                                       content_type=FORMATS[request.format])
            await ctx.confirm()  # cancelled from another node meanwhile: keep no file
        except DspError as exc:
            output.unlink(missing_ok=True)  # a file cut short: it never runs again
            raise Permanent(str(exc)) from None
        except StorageUnavailable as exc:
            output.unlink(missing_ok=True)
            raise Retry(str(exc)) from None
        except BaseException:
            await self._stopped(ctx, request, objects, output)
            raise
        RENDER_REALTIME_FACTOR.labels(kind="bounce").observe(stats.realtime_factor)
        for fault in bypassed:
            log.warning("bounce %s of project %s plays an lv2 plug-in bypassed: %s",
                        ctx.job.id, request.project_id, lv2_faults.describe(fault))
        figures = {"frames": stats.frames, "seconds": round(stats.audio_seconds, 3),
                   "realtime_factor": round(stats.realtime_factor, 2),
                   "peak": round(stats.peak, 6), "clipped": stats.clipped}
        try:
            await plugins.emit_project_rendered(
                self.app, project_account(request.project_id), request.project_id,
                str(output), {"sample_rate": request.sample_rate,
                              "bit_depth": request.bit_depth, "format": request.format,
                              **figures})
        except Exception:  # a plug-in's failure does not undo the render
            log.exception("project_rendered hook failed for bounce %s of %s", ctx.job.id,
                          request.project_id)
        except BaseException:  # cancelled, or the server stopping, while the hook ran
            await self._stopped(ctx, request, objects, output)
            raise
        with contextlib.suppress(StorageError):  # kept until now: a stopped job runs again
            await objects.delete(snapshot_key)
        return {"output": request.output, **figures,
                "bypassed": [fault.to_json() for fault in bypassed]}

    @staticmethod
    async def _stopped(ctx: JobContext, request: BounceRequest, objects: ObjectStore,
                       output: Path) -> None:
        """A job cancelled, or given back by a stopping server, keeps no file; a cancelled
        one never runs again, so its snapshot goes too. Nothing is deleted when neither
        holds: another worker may have the job by now."""
        if not (ctx.cancel_requested or ctx.shutting_down):
            return
        output.unlink(missing_ok=True)
        if objects.redirects:
            with contextlib.suppress(StorageError):
                await objects.delete(f"{PREFIX}/{request.output}")
        if not ctx.shutting_down:
            with contextlib.suppress(StorageError):
                await drop_snapshot(objects, request.snapshot)

    @staticmethod
    async def _playable(store: AssetStore, project_id: str, session: Session) -> Session:
        """The session with its sources as local files of the project's own assets (fetched
        into the cache on object storage); :class:`Permanent` naming every clip that
        names anything else (another project's asset, a server path): nothing is read."""
        try:
            playable, refused = await playable_session(store, project_id, session)
        except StorageUnavailable as exc:
            raise Retry(str(exc)) from None
        if refused:
            raise Permanent("cannot bounce: " + "; ".join(map(str, refused)))
        return playable

    @staticmethod
    def _render(ctx: JobContext, request: BounceRequest, session: Session, output: Path,
                share: float = 0.0) -> BounceStats:
        """Render ``session``; its progress fills what ``share`` (the renders') left."""
        def progress(done: int, total: int) -> None:
            ctx.check()  # a cancelled render stops here; the writer drops its partial file
            ctx.progress(share + (1.0 - share) * (done / total if total else 1.0))

        output.parent.mkdir(parents=True, exist_ok=True)
        if request.format == "adm":
            return bounce_adm(session, output, request.sample_rate, request.tail, progress)
        with Engine(session, sample_rate=request.sample_rate) as engine:  # stops its workers
            return bounce(engine, output, request.bit_depth, request.tail, progress=progress)


async def bounce_directory(app: web.Application, project_id: str) -> Path:
    """Where ``project_id``'s bounces keep their snapshots and files: ``bounces`` in the
    storage of its data region (``<data_dir>/bounces`` without regions)."""
    return await project_storage(app, project_id) / "bounces"


def setup_bounces(app: web.Application) -> None:
    """Serve the ``bounce`` queue on ``app[BACKGROUND]`` (its routes: :data:`ROUTES`)."""
    app[BACKGROUND].register(QUEUE, BounceRenderer(app), SETTINGS,
                             on_dead=functools.partial(drop_dead_bounce, app))


async def drop_dead_bounce(app: web.Application, record: JobRecord) -> None:
    """A bounce that died never runs again: delete its snapshot (its notice is retried
    while storage cannot be reached)."""
    try:
        request = BounceRequest.from_payload(record.payload)
    except Permanent:
        log.warning("dead bounce %s has no bounce payload; nothing to delete", record.id)
        return
    try:
        objects = await project_objects(app, request.project_id)
    except ProjectNotFound:  # deleted with its project's bounces
        return
    await drop_snapshot(objects, request.snapshot)


async def drop_snapshot(objects: ObjectStore, snapshot: str) -> None:
    """Delete a bounce's snapshot (``snapshot``: its name under :data:`PREFIX`)."""
    await objects.delete(f"{PREFIX}/{snapshot}")


def _rate_problem(rate: Any) -> str | None:
    if isinstance(rate, int) and rate in EXPORT_RATES:
        return None
    return (f"sample_rate {rate!r} is not supported; use one of "
            f"{', '.join(map(str, EXPORT_RATES))}")


class BounceOptions(Model):
    """How to bounce: rate (default: the project's), bit depth, format, tail seconds, and
    whether an ``lv2`` plug-in played bypassed fails the bounce (``strict``)."""

    sample_rate: Annotated[int, Field(json_schema_extra={"enum": list(EXPORT_RATES)})] | None = None
    bit_depth: str = Field("32f", json_schema_extra={"enum": list(BIT_DEPTHS)})
    format: str = Field("wav", json_schema_extra={"enum": list(FORMATS)})
    tail: float = Field(0.0, ge=0, le=60)
    strict: bool = Field(False, description="fail the bounce, keeping no file, when an lv2 "
                                            "plug-in would play bypassed in it (failed "
                                            "during the render, or left out); by default the "
                                            "file is kept and the job lists them in bypassed")

    @field_validator("sample_rate")
    @classmethod
    def _supported_rate(cls, rate: int | None) -> int | None:
        if rate is not None and (problem := _rate_problem(rate)):
            raise ValueError(problem)
        return rate

    @field_validator("bit_depth", mode="before")
    @classmethod
    def _supported_depth(cls, value: Any) -> str:
        depth = str(value)
        if depth not in BIT_DEPTHS:
            raise ValueError(f"bit_depth {depth!r} is not supported; "
                             f"use one of {', '.join(BIT_DEPTHS)}")
        return depth

    @field_validator("format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> str:
        return str(value).lower()

    @field_validator("tail", mode="before")
    @classmethod
    def _tail_seconds(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 60:
            raise ValueError(f"tail {value!r} must be seconds between 0 and 60")
        return value

    @model_validator(mode="after")
    def _format_fits_depth(self) -> BounceOptions:
        if self.format == "adm" and "bit_depth" not in self.model_fields_set:
            self.bit_depth = "24"  # ADM BWF is written as 24-bit PCM
        if self.format == "adm" and self.bit_depth != "24":
            raise ValueError(f"format 'adm' is written as 24-bit PCM; leave bit_depth out or "
                             f"ask for 24, not {self.bit_depth}")
        if self.format not in FORMATS or (self.format == "flac" and self.bit_depth == "32f"):
            raise ValueError(f"format {self.format!r} is not supported with bit depth "
                             f"{self.bit_depth}; use wav (any depth) or flac (24 or 16)")
        return self


class Bounce(Model):
    """A bounce job: its state, progress (0..1), options and, once done, figures, file and
    the ``lv2`` plug-ins it played bypassed."""

    id: str
    project: str
    status: str = Field(json_schema_extra={"enum": [QUEUED, RENDERING, DONE, FAILED,
                                                    CANCELLED]})
    progress: float
    sample_rate: int
    bit_depth: str
    format: str
    error: str
    created_at: float
    frames: int | None = None
    seconds: float | None = None
    realtime_factor: float | None = None
    peak: float | None = None
    clipped: int | None = None
    audio: str | None
    bypassed: list[BypassedPlugin] = Field(
        default_factory=list,
        description="once done: the lv2 plug-ins the file plays bypassed (failed during "
                    "the render, engine 'bounce') or leaves out (engine 'document')")


def _view(record: JobRecord) -> Bounce:
    """A bounce job as the API shows it."""
    request, result = record.payload, record.result or {}
    status = STATUS[record.state]
    failed = status == FAILED or record.state == RETRYING
    return Bounce(id=record.id, project=request["project_id"], status=status,
                  progress=round(record.progress, 4), sample_rate=request["sample_rate"],
                  bit_depth=request["bit_depth"], format=request["format"],
                  error=record.last_error if failed else "", created_at=record.created_at,
                  **{name: result[name] for name in FIGURES if name in result},
                  audio=f"/projects/{request['project_id']}/bounces/{record.id}/audio"
                  if status == DONE else None,
                  bypassed=result.get("bypassed", []))


async def _record(request: Request) -> JobRecord:
    """The bounce the path names, of the path's project (404 otherwise: a deleted
    project's records stay until purged)."""
    project_id, job_id = request.params["project_id"], request.params["job"]
    await require_project(request.app, project_id)
    with contextlib.suppress(UnknownJob):
        record = await request.app[BACKGROUND].queue.get(project_account(project_id), job_id)
        if record.queue == QUEUE and record.payload.get("project_id") == project_id:
            return record
    raise NotFound(f"no bounce {job_id!r} in this project")


#: The longest mix a bounce renders (its file and the queue it holds are bounded by it).
MAX_BOUNCE_SECONDS = 24 * 3600.0


async def create_bounce(request: Request) -> Bounce:
    """Snapshot the live document and queue its bounce (editor)."""
    project_id, options = request.params["project_id"], request.body
    try:
        async with request.app[ROOMS].use(project_id) as room:
            session = room.document.to_session()
            snapshot = room.doc.get_update()
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    rate = options.sample_rate or session.sample_rate
    if problem := _rate_problem(rate):
        raise BadRequest(problem)
    if not session.tracks or session.length == 0:
        raise Conflict("the project has no clips to bounce; add audio first")
    seconds = session.length / session.sample_rate + options.tail
    if seconds > MAX_BOUNCE_SECONDS:
        raise Conflict(f"the project runs {seconds / 3600:.1f} hours to its last clip or "
                       f"note; a bounce is at most {MAX_BOUNCE_SECONDS / 3600:.0f} hours: "
                       "move or delete what lies past that")
    job_id = uuid.uuid4().hex[:16]
    bounce_request = BounceRequest(
        project_id=project_id, user=request.user, sample_rate=rate,
        bit_depth=options.bit_depth, format=options.format, tail=float(options.tail),
        strict=options.strict,
        snapshot=f"{bounce_prefix(project_id)}/{job_id}.snapshot",
        output=f"{bounce_prefix(project_id)}/{job_id}."
               f"{EXTENSIONS.get(options.format, options.format)}")
    objects = await project_objects(request.app, project_id)
    try:  # in the object store: any node may render it, after a restart too
        await objects.put(f"{PREFIX}/{bounce_request.snapshot}", snapshot)
    except StorageError as exc:
        raise storage_failed(exc, "the bounce could not be queued") from None
    record = await request.app[BACKGROUND].queue.enqueue(
        QUEUE, asdict(bounce_request), account_id=project_account(project_id), job_id=job_id)
    return _view(record)


async def list_bounces(request: Request) -> list[Bounce]:
    """Every bounce of the project, newest first (viewer)."""
    project_id = request.params["project_id"]
    await require_project(request.app, project_id)
    records = await request.app[BACKGROUND].queue.find(
        account_id=project_account(project_id), queue=QUEUE, newest_first=True)
    return [_view(r) for r in records if r.payload.get("project_id") == project_id]


async def get_bounce(request: Request) -> Bounce:
    """One bounce's state and progress (viewer)."""
    return _view(await _record(request))


async def bounce_audio(request: Request) -> web.StreamResponse:
    """The rendered file of a finished bounce (viewer)."""
    record = await _record(request)
    job = _view(record)
    if job.status != DONE:
        raise Conflict(f"bounce {job.id} is {job.status}, not done; poll "
                       f"GET /projects/{job.project}/bounces/{job.id}")
    objects = await project_objects(request.app, job.project)
    try:  # S3: a redirect to a presigned URL; local disk: the file
        return await object_response(request.app, objects,
                                     f"{PREFIX}/{record.result['output']}",
                                     filename=f"{job.project}-{job.id}."
                                              f"{EXTENSIONS.get(job.format, job.format)}",
                                     content_type=FORMATS[job.format])
    except ObjectNotFound:  # the router answers an unreachable store (503, Retry-After)
        raise NotFound(f"the file of bounce {job.id} is gone; ask for a new bounce") from None


async def cancel_bounce(request: Request) -> Bounce:
    """Cancel a queued or running bounce (editor); a running one stops at its next block."""
    record = await _record(request)
    record = await request.app[BACKGROUND].queue.cancel(record.account_id, record.id)
    if record.state == CANCELLED:  # it will never run: nothing needs its snapshot
        objects = await project_objects(request.app, record.payload["project_id"])
        with contextlib.suppress(StorageError):
            await drop_snapshot(objects, record.payload["snapshot"])
    return _view(record)


BOUNCES_PATH = "/projects/{project_id}/bounces"
JOB_PATH = f"{BOUNCES_PATH}/{{job}}"

ROUTES = [
    Route(method="POST", path=BOUNCES_PATH, handler=create_bounce, permission=PROJECT_EDIT,
          body=BounceOptions, response=Bounce, status=202),
    Route(method="GET", path=BOUNCES_PATH, handler=list_bounces, permission=PROJECT_READ,
          response=list[Bounce]),
    Route(method="GET", path=JOB_PATH, handler=get_bounce, permission=PROJECT_READ,
          response=Bounce),
    Route(method="GET", path=f"{JOB_PATH}/audio", handler=bounce_audio,
          permission=PROJECT_READ, response=Media(*FORMATS.values())),
    Route(method="DELETE", path=JOB_PATH, handler=cancel_bounce, permission=PROJECT_EDIT,
          response=Bounce),
]
