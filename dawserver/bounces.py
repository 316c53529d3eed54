"""Offline bounces of a project's live document: jobs with progress, download, cancel.

``setup_bounces(app)`` adds these routes (token as for every route):

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
from typing import Any

from aiohttp import web

from collab.errors import ProjectNotFound
from collab.tokens import Role
from dsp_core.audio_io import BIT_DEPTHS, EXPORT_RATES
from dsp_core.bounce import bounce
from dsp_core.engine import Engine
from dsp_core.errors import DspError
from dsp_core.session import Session

from . import plugins
from .api import _body, _error, _grant
from .keys import CONFIG, ROOMS

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
routes = web.RouteTableDef()


def setup_bounces(app: web.Application) -> None:
    """Add the bounce service and its routes to ``app``."""
    app.cleanup_ctx.append(_bounce_context)
    app.router.add_routes(routes)


async def _bounce_context(app: web.Application) -> AsyncIterator[None]:
    service = BounceService(app, app[CONFIG].data_dir / "bounces")
    app[BOUNCES] = service
    yield
    await service.close()


def _options(body: dict[str, Any], session: Session) -> tuple[int, str, str, float]:
    rate = body.get("sample_rate", session.sample_rate)
    bit_depth = str(body.get("bit_depth", "32f"))
    fmt = str(body.get("format", "wav")).lower()
    tail = body.get("tail", 0.0)
    if not isinstance(rate, int) or rate not in EXPORT_RATES:
        raise _error(web.HTTPBadRequest, f"sample_rate {rate!r} is not supported; use one of "
                     f"{', '.join(map(str, EXPORT_RATES))}")
    if bit_depth not in BIT_DEPTHS:
        raise _error(web.HTTPBadRequest, f"bit_depth {bit_depth!r} is not supported; "
                     f"use one of {', '.join(BIT_DEPTHS)}")
    if fmt not in FORMATS or (fmt == "flac" and bit_depth == "32f"):
        raise _error(web.HTTPBadRequest, f"format {fmt!r} is not supported with bit depth "
                     f"{bit_depth}; use wav (any depth) or flac (24 or 16)")
    if not isinstance(tail, int | float) or not 0 <= tail <= 60:
        raise _error(web.HTTPBadRequest, f"tail {tail!r} must be seconds between 0 and 60")
    return rate, bit_depth, fmt, float(tail)


def _job(request: web.Request) -> BounceJob:
    job = request.app[BOUNCES].jobs.get(request.match_info["job"])
    if job is None or job.project_id != request.match_info["project_id"]:
        raise _error(web.HTTPNotFound, f"no bounce {request.match_info['job']!r} in this project")
    return job


@routes.post("/projects/{project_id}/bounces")
async def create_bounce(request: web.Request) -> web.Response:
    """Snapshot the live document and queue its bounce (editor)."""
    project_id = request.match_info["project_id"]
    grant = await _grant(request, project_id, Role.EDITOR)
    body = await _body(request)
    try:
        async with request.app[ROOMS].use(project_id) as room:
            session = room.document.to_session()
    except ProjectNotFound as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    rate, bit_depth, fmt, tail = _options(body, session)
    if not session.tracks or session.length == 0:
        raise _error(web.HTTPConflict, "the project has no clips to bounce; add audio first")
    service = request.app[BOUNCES]
    job_id = uuid.uuid4().hex[:16]
    job = BounceJob(id=job_id, project_id=project_id, user=grant.user, sample_rate=rate,
                    bit_depth=bit_depth, fmt=fmt, tail=tail,
                    path=service.directory / project_id / f"{job_id}.{fmt}")
    service.submit(job, session)
    return web.json_response(job.public(), status=202)


@routes.get("/projects/{project_id}/bounces")
async def list_bounces(request: web.Request) -> web.Response:
    """Every bounce of the project, newest first (viewer)."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.VIEWER)
    jobs = [j for j in request.app[BOUNCES].jobs.values() if j.project_id == project_id]
    return web.json_response([j.public() for j in sorted(jobs, key=lambda j: -j.created_at)])


@routes.get("/projects/{project_id}/bounces/{job}")
async def get_bounce(request: web.Request) -> web.Response:
    """One bounce's state and progress (viewer)."""
    await _grant(request, request.match_info["project_id"], Role.VIEWER)
    return web.json_response(_job(request).public())


@routes.get("/projects/{project_id}/bounces/{job}/audio")
async def bounce_audio(request: web.Request) -> web.StreamResponse:
    """The rendered file of a finished bounce (viewer)."""
    await _grant(request, request.match_info["project_id"], Role.VIEWER)
    job = _job(request)
    if job.status != DONE:
        raise _error(web.HTTPConflict, f"bounce {job.id} is {job.status}, not done; poll "
                     f"GET /projects/{job.project_id}/bounces/{job.id}")
    return web.FileResponse(job.path, headers={
        "Content-Type": FORMATS[job.fmt],
        "Content-Disposition": f'attachment; filename="{job.project_id}-{job.id}.{job.fmt}"'})


@routes.delete("/projects/{project_id}/bounces/{job}")
async def cancel_bounce(request: web.Request) -> web.Response:
    """Cancel a queued or running bounce (editor)."""
    await _grant(request, request.match_info["project_id"], Role.EDITOR)
    job = _job(request)
    job.cancel.set()
    return web.json_response(job.public())
