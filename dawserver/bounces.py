"""Offline bounces of a project's live document: jobs with progress, download, cancel.

``setup_bounces(app)`` adds the service; :data:`ROUTES` are (token as for every route):

- ``POST /projects/{id}/bounces`` ``{"sample_rate": 96000, "bit_depth": "24",
  "format": "flac", "tail": 2.0}`` (editor): snapshot the document and queue a bounce.
- ``GET /projects/{id}/bounces[/{job}]`` (viewer): state, progress (0..1), figures.
- ``GET /projects/{id}/bounces/{job}/audio`` (viewer): the rendered file.
- ``DELETE /projects/{id}/bounces/{job}`` (editor): cancel; no partial file is left.

Bounces render the snapshot taken when they were asked for with a fresh engine in
a worker thread (never on the event loop), one at a time.  When one finishes,
the plug-ins hear of it through the ``project_rendered`` hook, for the project's
account (e.g. the distribution module records the render for a release).  Jobs live in memory: a
server restart forgets them (the document they came from is durable).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, field_validator, model_validator

from collab.errors import ProjectNotFound
from dsp_core.audio_io import BIT_DEPTHS, EXPORT_RATES
from dsp_core.bounce import bounce
from dsp_core.engine import Engine
from dsp_core.errors import DspError
from dsp_core.session import Session

from . import plugins
from .keys import CONFIG, ROOMS
from .permissions import PROJECT_EDIT, PROJECT_READ
from .plugin_api import BadRequest, Conflict, Media, Model, NotFound, Request, Route

log = logging.getLogger(__name__)

FORMATS = {"wav": "audio/wav", "flac": "audio/flac"}
QUEUED, RENDERING, DONE, FAILED, CANCELLED = "queued", "rendering", "done", "failed", "cancelled"


class BounceCancelled(Exception):
    """Raised inside the render when the job was cancelled."""


@dataclass
class BounceJob:
    """One bounce: what was asked, where it stands, what it produced."""

    id: str
    project_id: str
    user: str
    sample_rate: int
    bit_depth: str
    fmt: str
    tail: float
    path: Path
    status: str = QUEUED
    progress: float = 0.0
    error: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {"id": self.id, "project": self.project_id, "status": self.status,
                "progress": round(self.progress, 4), "sample_rate": self.sample_rate,
                "bit_depth": self.bit_depth, "format": self.fmt, "error": self.error,
                "created_at": self.created_at, **self.figures,
                "audio": f"/projects/{self.project_id}/bounces/{self.id}/audio"
                if self.status == DONE else None}


class BounceService:
    """Queued bounce jobs rendered one at a time off the event loop."""

    def __init__(self, app: web.Application, directory: Path) -> None:
        self.app = app
        self.directory = directory
        self.jobs: dict[str, BounceJob] = {}
        self._gate = asyncio.Semaphore(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, job: BounceJob, session: Session) -> None:
        """Queue ``job`` to render ``session`` (a snapshot of the document)."""
        self.jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._run(job, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: BounceJob, session: Session) -> None:
        async with self._gate:
            if job.cancel.is_set():
                job.status = CANCELLED
                return
            job.status = RENDERING
            loop = asyncio.get_running_loop()
            try:
                stats = await loop.run_in_executor(None, self._render, job, session)
            except BounceCancelled:
                job.status = CANCELLED
                return
            except (DspError, OSError) as exc:
                job.status, job.error = FAILED, str(exc)
                log.warning("bounce %s of %s failed: %s", job.id, job.project_id, exc)
                return
            job.figures = {"frames": stats.frames, "seconds": round(stats.audio_seconds, 3),
                           "realtime_factor": round(stats.realtime_factor, 2),
                           "peak": round(stats.peak, 6), "clipped": stats.clipped}
            job.progress, job.status = 1.0, DONE
        await plugins.emit_project_rendered(
            self.app, plugins.project_account(job.project_id), job.project_id, str(job.path),
            {"sample_rate": job.sample_rate, "bit_depth": job.bit_depth, "format": job.fmt,
             **job.figures})

    def _render(self, job: BounceJob, session: Session):  # noqa: ANN202 - BounceStats
        engine = Engine(session, sample_rate=job.sample_rate)

        def progress(done: int, total: int) -> None:
            if job.cancel.is_set():
                raise BounceCancelled(job.id)
            job.progress = done / total if total else 1.0

        job.path.parent.mkdir(parents=True, exist_ok=True)
        return bounce(engine, job.path, job.bit_depth, job.tail, progress=progress)

    async def close(self) -> None:
        """Cancel every job and wait for the renders to stop."""
        for job in self.jobs.values():
            job.cancel.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


BOUNCES = web.AppKey("bounces", BounceService)


def setup_bounces(app: web.Application) -> None:
    """Add the bounce service to ``app`` (its routes: :data:`ROUTES`)."""
    app.cleanup_ctx.append(_bounce_context)


async def _bounce_context(app: web.Application) -> AsyncIterator[None]:
    service = BounceService(app, app[CONFIG].data_dir / "bounces")
    app[BOUNCES] = service
    yield
    await service.close()


def _rate_problem(rate: Any) -> str | None:
    if isinstance(rate, int) and rate in EXPORT_RATES:
        return None
    return (f"sample_rate {rate!r} is not supported; use one of "
            f"{', '.join(map(str, EXPORT_RATES))}")


class BounceOptions(Model):
    """How to bounce: rate (default: the project's), bit depth, format, tail seconds."""

    sample_rate: Annotated[int, Field(json_schema_extra={"enum": list(EXPORT_RATES)})] | None = None
    bit_depth: str = Field("32f", json_schema_extra={"enum": list(BIT_DEPTHS)})
    format: str = Field("wav", json_schema_extra={"enum": list(FORMATS)})
    tail: float = Field(0.0, ge=0, le=60)

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
        if self.format not in FORMATS or (self.format == "flac" and self.bit_depth == "32f"):
            raise ValueError(f"format {self.format!r} is not supported with bit depth "
                             f"{self.bit_depth}; use wav (any depth) or flac (24 or 16)")
        return self


class Bounce(Model):
    """A bounce job: its state, progress (0..1), options and, once done, figures and file."""

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


def _job(request: Request) -> BounceJob:
    job = request.app[BOUNCES].jobs.get(request.params["job"])
    if job is None or job.project_id != request.params["project_id"]:
        raise NotFound(f"no bounce {request.params['job']!r} in this project")
    return job


async def create_bounce(request: Request) -> Bounce:
    """Snapshot the live document and queue its bounce (editor)."""
    project_id, options = request.params["project_id"], request.body
    try:
        async with request.app[ROOMS].use(project_id) as room:
            session = room.document.to_session()
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    rate = options.sample_rate or session.sample_rate
    if problem := _rate_problem(rate):
        raise BadRequest(problem)
    if not session.tracks or session.length == 0:
        raise Conflict("the project has no clips to bounce; add audio first")
    service = request.app[BOUNCES]
    job_id = uuid.uuid4().hex[:16]
    job = BounceJob(id=job_id, project_id=project_id, user=request.user, sample_rate=rate,
                    bit_depth=options.bit_depth, fmt=options.format, tail=float(options.tail),
                    path=service.directory / project_id / f"{job_id}.{options.format}")
    service.submit(job, session)
    return Bounce(**job.public())


async def list_bounces(request: Request) -> list[Bounce]:
    """Every bounce of the project, newest first (viewer)."""
    project_id = request.params["project_id"]
    jobs = [j for j in request.app[BOUNCES].jobs.values() if j.project_id == project_id]
    return [Bounce(**j.public()) for j in sorted(jobs, key=lambda j: -j.created_at)]


async def get_bounce(request: Request) -> Bounce:
    """One bounce's state and progress (viewer)."""
    return Bounce(**_job(request).public())


async def bounce_audio(request: Request) -> web.StreamResponse:
    """The rendered file of a finished bounce (viewer)."""
    job = _job(request)
    if job.status != DONE:
        raise Conflict(f"bounce {job.id} is {job.status}, not done; poll "
                       f"GET /projects/{job.project_id}/bounces/{job.id}")
    return web.FileResponse(job.path, headers={
        "Content-Type": FORMATS[job.fmt],
        "Content-Disposition": f'attachment; filename="{job.project_id}-{job.id}.{job.fmt}"'})


async def cancel_bounce(request: Request) -> Bounce:
    """Cancel a queued or running bounce (editor)."""
    job = _job(request)
    job.cancel.set()
    return Bounce(**job.public())


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
