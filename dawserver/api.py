"""The HTTP API next to the collaboration endpoint: health, projects, tokens, members, renders.

Deleting a project (``DELETE /projects/{id}``, an owner) is :mod:`dawserver.project_deletion`.

Every route but the health checks takes a token (``Authorization: Bearer`` or
``?token=``); errors are JSON ``{"error": "..."}`` with a message that says what
to do. The routes are declared through :mod:`dawserver.plugin_api` like a
plug-in's and served by :mod:`dawserver.core_plugin`.
"""

from __future__ import annotations

import io
import logging
import math
import time
from typing import Annotated, Any

import prometheus_client
import soundfile as sf
from aiohttp import web
from pydantic import BeforeValidator, Field, field_validator

from collab.errors import AuthError, ProjectNotFound, StoreError
from database import DatabaseError
from dsp_core.errors import DspError
from dsp_core.project import session_from_dict
from dsp_core.session import Session
from jobs.metrics import QUEUE_COLLECTOR

from . import project_deletion
from .access import apply_member_change
from .keys import BACKGROUND, CONFIG, ENGINES, ROOMS, STORE, TOKENS
from .permissions import PROJECT_MANAGE, PROJECT_READ, SERVER_PROJECTS
from .plugin_api import (
    PUBLIC,
    BadRequest,
    Conflict,
    Media,
    Model,
    NotFound,
    Query,
    Request,
    Role,
    Route,
    Unprocessable,
)
from .projects import import_session

MAX_RENDER_SECONDS = 600
MAX_NAME_LENGTH = 200
#: The most bytes of project JSON ``POST /projects`` reads (a whole project may be big).
MAX_PROJECT_JSON_BYTES = 16 * 1024 * 1024
#: The last timeline frame a render may start at: the engine's positions are int64.
MAX_START_FRAME = 2**62

log = logging.getLogger(__name__)


def _role(value: Any) -> Role:
    try:
        return Role.parse(str(value))
    except AuthError as exc:
        raise ValueError(str(exc)) from None


#: A role name; an unknown one is refused with the list of valid names.
RoleName = Annotated[Role, BeforeValidator(_role)]


class Health(Model):
    """The server is up; how many documents it holds in memory."""

    ok: bool
    documents: int


class ProjectSummary(Model):
    """A project in the list."""

    id: str
    name: str
    created_at: float


class NewProject(Model):
    """A project to create: empty, or from project JSON (docs/project-format.md)."""

    name: str | None = None
    project: dict[str, Any] | None = None


class ProjectName(Model):
    """A project's id and name."""

    id: str
    name: str


class ProjectDocument(Model):
    """A project's current shared document (docs/document-schema.md)."""

    id: str
    document: dict[str, Any]


class Rename(Model):
    """A project's new name (surrounding spaces are dropped)."""

    name: str

    @field_validator("name", mode="before")
    @classmethod
    def _one_line_name(cls, value: Any) -> str:
        name = value.strip() if isinstance(value, str) else ""
        if not name or len(name) > MAX_NAME_LENGTH:
            raise ValueError(f'send {{"name": "..."}} with 1..{MAX_NAME_LENGTH} characters, '
                             f"got {value!r}")
        return name


class DeletedProject(Model):
    """A deleted project: what went with it."""

    id: str
    name: str
    connections: int = Field(description="live connections closed (WebSocket 4411, WebRTC)")
    files: int = Field(description="files deleted: audio, peaks, bounce snapshots and renders")
    jobs_cancelled: int = Field(description="bounces and transcriptions that had not finished")
    roles: int = Field(description="ownership and granted roles forgotten")


class TokenRequest(Model):
    """Who a new token is for, and with which role."""

    role: RoleName = Role.EDITOR
    user: str | None = None


class IssuedToken(Model):
    """A new token and where to use it."""

    token: str
    role: Role
    user: str
    websocket: str


class Revoked(Model):
    """A revoked member and how many live connections were closed."""

    revoked: str
    disconnected: int


class RoleChange(Model):
    """The member's new role."""

    role: RoleName


class RoleChanged(Model):
    """A member's new role, their new token and how many live connections took it."""

    user: str
    role: Role
    token: str
    websocket: str
    changed: int


class RenderWindow(Query):
    """Which frames of the live document to render."""

    start: int = Field(0, ge=0, le=MAX_START_FRAME)
    frames: int = Field(48000, ge=1)


#: Scrapes this close together share one read of the job queue's figures (a burst of
#: anonymous GET /metrics costs one GROUP BY a second, not one each).
METRICS_QUEUE_MAX_AGE_S = 1.0


async def metrics(request: Request) -> web.Response:
    """Prometheus metrics of this process (text exposition format).

    The job queue's depth and oldest due job are read from the database now.
    """
    background = request.app[BACKGROUND]
    if background.started:
        try:
            await QUEUE_COLLECTOR.refresh(background.queue.db,
                                          sorted(background.queue.settings),
                                          max_age_s=METRICS_QUEUE_MAX_AGE_S)
        except DatabaseError as exc:  # the other metrics still matter: serve the last figures
            log.warning("cannot read the job queue's figures for /metrics: %s", exc)
    return web.Response(body=prometheus_client.generate_latest(),
                        headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})


async def healthz(request: Request) -> Health:
    """Liveness: the documents in memory."""
    return Health(ok=True, documents=len(request.app[ROOMS].rooms))


async def list_projects(request: Request) -> list[ProjectSummary]:
    """Every project (administrator token, ``dawserver token '*' --role owner``)."""
    projects = await request.app[STORE].list_projects()
    return [ProjectSummary(id=p.project_id, name=p.name, created_at=p.created_at)
            for p in projects]


async def create_project(request: Request) -> ProjectName:
    """Create a project, empty or from project JSON (administrator)."""
    body: NewProject = request.body
    name = body.name or "Untitled"
    try:
        session = (session_from_dict(body.project) if body.project is not None
                   else Session(name=name))
        info = await import_session(request.app[STORE], session, name=name)
    except DspError as exc:
        raise BadRequest(f"invalid project: {exc}") from None
    except StoreError as exc:
        raise Conflict(str(exc)) from None
    return ProjectName(id=info.project_id, name=info.name)


async def get_project(request: Request) -> ProjectDocument:
    """A project's current document as JSON (any role)."""
    project_id = request.params["project_id"]
    try:
        async with request.app[ROOMS].use(project_id) as room:
            return ProjectDocument(id=project_id, document=room.document.to_json())
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None


async def rename_project(request: Request) -> ProjectName:
    """Rename a project (owner); the list and the document's name agree."""
    project_id, name = request.params["project_id"], request.body.name
    try:
        async with request.app[ROOMS].use(project_id) as room:
            await room.edit(lambda document: document.rename(name))
        info = await request.app[STORE].rename_project(project_id, name)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    return ProjectName(id=info.project_id, name=info.name)


async def delete_project(request: Request) -> DeletedProject:
    """Delete the project for good (owner).

    Its document (every row of it), its live connections (WebSockets closed with
    4411), its audio, peaks, bounces and unfinished jobs, what plug-ins keep for it
    and every role on it go; the owning account's security log records
    ``project.deleted``. Deleting it again answers 404.
    """
    project_id = request.params["project_id"]
    deleted = await project_deletion.delete_project(
        request.app, project_id, actor=request.user, address=request.native.remote or "")
    if deleted is None:
        raise NotFound(f"there is no project {project_id!r}")
    return DeletedProject(id=project_id, name=deleted.name, connections=deleted.connections,
                          files=deleted.files, jobs_cancelled=deleted.jobs_cancelled,
                          roles=deleted.roles)


async def issue_token(request: Request) -> IssuedToken:
    """Issue a token for a user of the project with a role (owner)."""
    project_id = request.params["project_id"]
    body: TokenRequest = request.body
    user = body.user or "guest"
    token = request.app[TOKENS].issue(project_id, body.role, user)
    return IssuedToken(token=token, role=body.role, user=user,
                       websocket=f"{request.app[CONFIG].collab_url}/{project_id}")


async def revoke_member(request: Request) -> Revoked:
    """Revoke every token of ``user`` on the project and disconnect them now (owner).

    Their WebSockets close with 4410 and their WebRTC connections (the live
    mix, their microphone) are closed too.
    """
    project_id, user = request.params["project_id"], request.params["user"]
    if user == request.user and not request.principal.admin:
        raise BadRequest("owners cannot revoke themselves; ask another owner")
    await _held(request, project_id)
    await request.app[STORE].revoke(project_id, user, time.time())
    closed = await apply_member_change(request.app, project_id, user, None)
    return Revoked(revoked=user, disconnected=closed)


async def change_member_role(request: Request) -> RoleChanged:
    """Give ``user`` another role (owner).

    The user's older tokens are revoked and a new one with the new role is
    returned; their live connections take the new role at once (a viewer's
    edits are refused and their microphone is no longer recorded).
    """
    project_id, user = request.params["project_id"], request.params["user"]
    if user == request.user and not request.principal.admin:
        raise BadRequest("owners cannot change their own role; ask another owner")
    role = request.body.role
    await _held(request, project_id)
    revoked = time.time()
    await request.app[STORE].revoke(project_id, user, revoked)
    token = request.app[TOKENS].issue(project_id, role, user,
                                      now=math.nextafter(revoked, math.inf))
    changed = await apply_member_change(request.app, project_id, user, role)
    return RoleChanged(user=user, role=role, token=token, changed=changed,
                       websocket=f"{request.app[CONFIG].collab_url}/{project_id}")


async def _held(request: Request, project_id: str) -> None:
    """404 unless the store holds ``project_id`` (a deleted project keeps no rows)."""
    if await request.app[STORE].get_project(project_id) is None:
        raise NotFound(f"there is no project {project_id!r}")


async def render(request: Request) -> web.Response:
    """Render ``frames`` frames from ``start`` of the live document as a float WAV (any role)."""
    project_id, window = request.params["project_id"], request.query
    try:
        async with request.app[ROOMS].use(project_id) as room:
            rate = room.document.to_session().sample_rate
            if window.frames > MAX_RENDER_SECONDS * rate:
                raise BadRequest(f"frames must be in 1..{MAX_RENDER_SECONDS * rate}, "
                                 "start >= 0")
            audio = await request.app[ENGINES].get(project_id).render(window.start,
                                                                      window.frames)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    except DspError as exc:
        raise Unprocessable(f"cannot render: {exc}") from None
    buffer = io.BytesIO()
    sf.write(buffer, audio.T, rate, format="WAV", subtype="FLOAT")
    return web.Response(body=buffer.getvalue(), content_type="audio/wav")


PROJECT = "/projects/{project_id}"

ROUTES = [
    Route(method="GET", path="/metrics", handler=metrics, permission=PUBLIC,
          response=Media("text/plain")),
    Route(method="GET", path="/healthz", handler=healthz, permission=PUBLIC, response=Health),
    Route(method="GET", path="/projects", handler=list_projects, permission=SERVER_PROJECTS,
          response=list[ProjectSummary]),
    Route(method="POST", path="/projects", handler=create_project, permission=SERVER_PROJECTS,
          body=NewProject, response=ProjectName, status=201,
          max_body=MAX_PROJECT_JSON_BYTES),
    Route(method="GET", path=PROJECT, handler=get_project, permission=PROJECT_READ,
          response=ProjectDocument),
    Route(method="PATCH", path=PROJECT, handler=rename_project, permission=PROJECT_MANAGE,
          body=Rename, response=ProjectName),
    Route(method="DELETE", path=PROJECT, handler=delete_project, permission=PROJECT_MANAGE,
          response=DeletedProject),
    Route(method="POST", path=f"{PROJECT}/tokens", handler=issue_token,
          permission=PROJECT_MANAGE, body=TokenRequest, response=IssuedToken, status=201),
    Route(method="DELETE", path=f"{PROJECT}/members/{{user}}", handler=revoke_member,
          permission=PROJECT_MANAGE, response=Revoked),
    Route(method="PUT", path=f"{PROJECT}/members/{{user}}", handler=change_member_role,
          permission=PROJECT_MANAGE, body=RoleChange, response=RoleChanged),
    Route(method="GET", path=f"{PROJECT}/render", handler=render, permission=PROJECT_READ,
          query=RenderWindow, response=Media("audio/wav")),
]
