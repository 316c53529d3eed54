"""The HTTP API next to the collaboration endpoint: projects, tokens, members, renders.

Every route takes a token (``Authorization: Bearer`` or ``?token=``); errors
are JSON ``{"error": "..."}`` with a message that says what to do.
"""

from __future__ import annotations

import io
import json
import math
import time
from typing import Any

import prometheus_client
import soundfile as sf
from aiohttp import web

from collab.errors import AuthError, ProjectNotFound, StoreError
from collab.tokens import Role
from dsp_core.errors import DspError
from dsp_core.project import session_from_dict
from dsp_core.session import Session

from .access import AccessDenied, apply_member_change, authorize, request_token
from .keys import CONFIG, ENGINES, ROOMS, STORE, TOKENS
from .projects import import_session

routes = web.RouteTableDef()
MAX_RENDER_SECONDS = 600
MAX_NAME_LENGTH = 200


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json")


async def _grant(request: web.Request, project_id: str, minimum: Role):
    try:
        return await authorize(request.app, project_id, request_token(request), minimum)
    except AccessDenied as exc:
        raise _error(web.HTTPForbidden, str(exc)) from None
    except AuthError as exc:
        raise _error(web.HTTPUnauthorized, str(exc)) from None


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise _error(web.HTTPBadRequest, "request body must be JSON") from None
    if not isinstance(data, dict):
        raise _error(web.HTTPBadRequest, "request body must be a JSON object")
    return data


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this process (text exposition format)."""
    return web.Response(body=prometheus_client.generate_latest(),
                        headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the documents in memory."""
    return web.json_response({"ok": True, "documents": len(request.app[ROOMS].rooms)})


@routes.get("/projects")
async def list_projects(request: web.Request) -> web.Response:
    """Every project (administrator token, ``dawserver token '*' --role owner``)."""
    await _grant(request, "*", Role.OWNER)
    projects = await request.app[STORE].list_projects()
    return web.json_response([{"id": p.project_id, "name": p.name, "created_at": p.created_at}
                              for p in projects])


@routes.post("/projects")
async def create_project(request: web.Request) -> web.Response:
    """Create a project: ``{"name": ..., "project": <project JSON>}`` (administrator)."""
    await _grant(request, "*", Role.OWNER)
    body = await _body(request)
    name = str(body.get("name") or "Untitled")
    try:
        session = session_from_dict(body["project"]) if "project" in body else Session(name=name)
        info = await import_session(request.app[STORE], session, name=name)
    except DspError as exc:
        raise _error(web.HTTPBadRequest, f"invalid project: {exc}") from None
    except StoreError as exc:
        raise _error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"id": info.project_id, "name": info.name}, status=201)


@routes.get("/projects/{project_id}")
async def get_project(request: web.Request) -> web.Response:
    """A project's current document as JSON (any role)."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.VIEWER)
    try:
        async with request.app[ROOMS].use(project_id) as room:
            return web.json_response({"id": project_id, "document": room.document.to_json()})
    except ProjectNotFound as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None


@routes.patch("/projects/{project_id}")
async def rename_project(request: web.Request) -> web.Response:
    """Rename a project: ``{"name": ...}`` (owner); the list and the document's name agree."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.OWNER)
    name = (await _body(request)).get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
        raise _error(web.HTTPBadRequest, f'send {{"name": "..."}} with 1..{MAX_NAME_LENGTH} '
                     f"characters, got {name!r}")
    name = name.strip()
    try:
        async with request.app[ROOMS].use(project_id) as room:
            await room.edit(lambda document: document.rename(name))
        info = await request.app[STORE].rename_project(project_id, name)
    except ProjectNotFound as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    return web.json_response({"id": info.project_id, "name": info.name})


@routes.post("/projects/{project_id}/tokens")
async def issue_token(request: web.Request) -> web.Response:
    """Issue a token: ``{"role": "editor", "user": "sam"}`` (owner)."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.OWNER)
    body = await _body(request)
    try:
        role = Role.parse(str(body.get("role", "editor")))
    except AuthError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None
    user = str(body.get("user") or "guest")
    token = request.app[TOKENS].issue(project_id, role, user)
    config = request.app[CONFIG]
    return web.json_response({"token": token, "role": role.value, "user": user,
                              "websocket": f"{config.collab_url}/{project_id}"}, status=201)


@routes.delete("/projects/{project_id}/members/{user}")
async def revoke_member(request: web.Request) -> web.Response:
    """Revoke every token of ``user`` on the project and disconnect them now (owner).

    Their WebSockets close with 4410 and their WebRTC connections (the live
    mix, their microphone) are closed too.
    """
    project_id, user = request.match_info["project_id"], request.match_info["user"]
    grant = await _grant(request, project_id, Role.OWNER)
    if user == grant.user and not grant.is_admin:
        raise _error(web.HTTPBadRequest, "owners cannot revoke themselves; ask another owner")
    await request.app[STORE].revoke(project_id, user, time.time())
    closed = await apply_member_change(request.app, project_id, user, None)
    return web.json_response({"revoked": user, "disconnected": closed})


@routes.put("/projects/{project_id}/members/{user}")
async def change_member_role(request: web.Request) -> web.Response:
    """Give ``user`` another role: ``{"role": "viewer"}`` (owner).

    The user's older tokens are revoked and a new one with the new role is
    returned; their live connections take the new role at once (a viewer's
    edits are refused and their microphone is no longer recorded).
    """
    project_id, user = request.match_info["project_id"], request.match_info["user"]
    grant = await _grant(request, project_id, Role.OWNER)
    if user == grant.user and not grant.is_admin:
        raise _error(web.HTTPBadRequest,
                     "owners cannot change their own role; ask another owner")
    try:
        role = Role.parse(str((await _body(request)).get("role", "")))
    except AuthError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None
    revoked = time.time()
    await request.app[STORE].revoke(project_id, user, revoked)
    token = request.app[TOKENS].issue(project_id, role, user,
                                      now=math.nextafter(revoked, math.inf))
    changed = await apply_member_change(request.app, project_id, user, role)
    config = request.app[CONFIG]
    return web.json_response({"user": user, "role": role.value, "token": token,
                              "websocket": f"{config.collab_url}/{project_id}",
                              "changed": changed})


@routes.get("/projects/{project_id}/render")
async def render(request: web.Request) -> web.Response:
    """Render ``frames`` frames from ``start`` of the live document as a float WAV (any role)."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.VIEWER)
    try:
        start = int(request.query.get("start", "0"))
        frames = int(request.query.get("frames", "48000"))
    except ValueError:
        raise _error(web.HTTPBadRequest, "start and frames must be integers") from None
    try:
        async with request.app[ROOMS].use(project_id) as room:
            rate = room.document.to_session().sample_rate
            if start < 0 or not 0 < frames <= MAX_RENDER_SECONDS * rate:
                raise _error(web.HTTPBadRequest,
                             f"frames must be in 1..{MAX_RENDER_SECONDS * rate}, start >= 0")
            audio = await request.app[ENGINES].get(project_id).render(start, frames)
    except ProjectNotFound as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    except DspError as exc:
        raise _error(web.HTTPUnprocessableEntity, f"cannot render: {exc}") from None
    buffer = io.BytesIO()
    sf.write(buffer, audio.T, rate, format="WAV", subtype="FLOAT")
    return web.Response(body=buffer.getvalue(), content_type="audio/wav")
