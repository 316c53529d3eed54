"""``/api/v1``: thin adapters from the public resources to the core's services.

Each handler checks nothing the route declaration does not already (the permission,
the models); it reads through :mod:`.services` or calls the core's own handler, and
answers through :func:`.respond.answer` (ETag, sparse fields, 304). POSTs honour
``Idempotency-Key``; PATCH and DELETE honour ``If-Match``. Errors are problem details.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from accounts.errors import AccountMoving
from collab.errors import ProjectChanged, ProjectNotFound
from dsp_core.session import Session

from .. import api as core_api
from .. import assets as core_assets
from .. import bounces as core_bounces
from ..errors import Forbidden, NotFound, PreconditionFailed
from ..keys import ACCOUNTS, ROOMS, STORE
from ..permissions import ACCOUNT_READ, PROJECT_EDIT, PROJECT_MANAGE, PROJECT_READ, PROJECTS_CREATE
from ..plugin_api import Request, Route
from ..projects import import_session
from ..regions import account_region
from . import services
from .conditional import etag_of, require_match
from .fields import parse_fields
from .idempotency import idempotent
from .resources import (
    V1,
    Asset,
    AssetFilter,
    AssetPage,
    Bounce,
    BounceFilter,
    BouncePage,
    Deleted,
    Listing,
    NewProject,
    One,
    Project,
    ProjectChange,
    ProjectFilter,
    ProjectPage,
    Track,
    TrackPage,
)
from .respond import answer, representation
from .services import rfc3339
from .state import api_state

PROJECTS = f"{V1}/projects"
PROJECT = f"{PROJECTS}/{{project_id}}"
TRACKS = f"{PROJECT}/tracks"
ASSETS = f"{PROJECT}/assets"
BOUNCES = f"{PROJECT}/bounces"
CHANGED = ("the project changed while this request was checking If-Match; GET it again "
           "(without fields=) and retry with its ETag")
NO_PROJECTS_FOR_TOKENS = ("a project token acts for its one project and cannot create "
                          "projects; use an API key or a signed-in session")


def _matches(project: Project, query: ProjectFilter) -> bool:
    if query.role is not None and project.role != query.role:
        return False
    if query.name_contains and query.name_contains.lower() not in project.name.lower():
        return False
    if query.created_after is not None and project.created_at <= rfc3339(query.created_after):
        return False
    return query.created_before is None or project.created_at < rfc3339(query.created_before)


async def list_projects(request: Request) -> web.Response:
    """The projects you may open, oldest first.

    Filter with `role`, `name_contains`, `created_after`, `created_before`; page with
    `limit` and `cursor`; choose fields with `fields`.
    """
    query: ProjectFilter = request.query
    fields = parse_fields(query.fields, Project)
    found = [p for p in await services.projects(request.app, request.principal)
             if _matches(p, query)]
    page, after = api_state(request.context).cursors.page(
        "projects", found, lambda p: (p.created_at, p.id), query.limit, query.cursor)
    return answer(request, ProjectPage(data=page, next_cursor=after), fields=fields)


async def create_project(request: Request) -> web.Response:
    """Create an empty project in the account the request acts for.

    Send `Idempotency-Key` to make retries safe: the same key and body answer the
    first request's project again. A test-mode key makes a sandbox project, which only
    test-mode keys reach.
    """
    principal = request.principal
    if principal.via == "token" or principal.admin:
        raise Forbidden(NO_PROJECTS_FOR_TOKENS)
    app, name = request.app, request.body.name

    async def run() -> web.Response:
        # refused (409) while the account moves, before the document exists
        await app[ACCOUNTS].store.writable(principal.account_id)
        info = await import_session(app[STORE], Session(name=name), name=name,
                                    region=account_region(app, principal.account_id))
        # before anyone holds a role on it
        await api_state(request.context).sandbox.made(principal, principal.account_id,
                                                      info.project_id)
        try:
            await app[ACCOUNTS].store.own_project(principal.account_id, info.project_id)
        except AccountMoving:  # a move began meanwhile: leave no project without owner
            await app[STORE].delete_project(info.project_id)
            raise
        view = services.project_view(info, principal.role)
        return answer(request, view, status=201,
                      headers={"Location": f"{PROJECTS}/{view.id}"})

    return await idempotent(request, api_state(request.context).idempotency, run)


async def get_project(request: Request) -> web.Response:
    """One project and your role on it."""
    fields = parse_fields(request.query.fields, Project)
    found = await services.project(request.app, request.params["project_id"], request.role)
    return answer(request, found, fields=fields)


async def _current(request: Request) -> Project:
    """The project now, after checking ``If-Match`` against its ETag (412 if stale)."""
    found = await services.project(request.app, request.params["project_id"], request.role)
    require_match(request.headers, etag_of(representation(found)))
    return found


async def rename_project(request: Request) -> web.Response:
    """Rename the project (owner); send `If-Match` with its ETag to refuse a lost update.

    The check and the write are one conditional update: of two renames sent with the
    same ETag, one succeeds and the other answers 412. The update compares the name only
    (a rename A→B→A in between is not seen; docs/public-api.md, "Not done yet").
    """
    project_id, name = request.params["project_id"], request.body.name
    current = await _current(request)
    app = request.app
    try:
        await app[STORE].rename_project(
            project_id, name,
            expected=current.name if request.headers.get("If-Match") else None)
    except ProjectChanged:
        found = await services.project(app, project_id, request.role)
        raise PreconditionFailed(CHANGED, etag=etag_of(representation(found))) from None
    except ProjectNotFound:
        raise NotFound(f"there is no project {project_id!r}") from None
    try:
        async with app[ROOMS].use(project_id) as room:  # the document's name follows
            await room.edit(lambda document: document.rename(name))
    except ProjectNotFound:
        raise NotFound(f"there is no project {project_id!r}") from None
    found = await services.project(app, project_id, request.role)
    return answer(request, found)


async def delete_project(request: Request) -> web.Response:
    """Delete the project for good (owner): document, audio, bounces, roles.

    Send `If-Match` with its ETag to delete only the version you read.
    """
    await _current(request)
    deleted = await core_api.delete_project(request)
    return answer(request, Deleted(id=deleted.id, deleted=True))


async def list_tracks(request: Request) -> web.Response:
    """The project's tracks and their clips, in display order (read-only)."""
    query = request.query
    fields = parse_fields(query.fields, Track)
    project_id = request.params["project_id"]
    found = await services.tracks(request.app, project_id)
    page, after = api_state(request.context).cursors.page_in_place(
        f"tracks:{project_id}", found, lambda t: t.id, query.limit, query.cursor)
    return answer(request, TrackPage(data=page, next_cursor=after), fields=fields)


async def get_track(request: Request) -> web.Response:
    """One track of the project and its clips."""
    fields = parse_fields(request.query.fields, Track)
    track_id = request.params["track_id"]
    for track in await services.tracks(request.app, request.params["project_id"]):
        if track.id == track_id:
            return answer(request, track, fields=fields)
    raise NotFound(f"the project has no track {track_id!r}")


async def list_assets(request: Request) -> web.Response:
    """The audio uploaded to or recorded in the project, oldest first."""
    query: AssetFilter = request.query
    fields = parse_fields(query.fields, Asset)
    project_id = request.params["project_id"]
    every = (await services.assets(request.app, [project_id]))[project_id]
    found = [asset for asset in every if query.format is None or asset.format == query.format]
    page, after = api_state(request.context).cursors.page_in_place(
        f"assets:{project_id}", found, lambda a: a.id, query.limit, query.cursor)
    return answer(request, AssetPage(data=page, next_cursor=after), fields=fields)


async def get_asset(request: Request) -> web.Response:
    """One asset of the project: its format, figures and links."""
    fields = parse_fields(request.query.fields, Asset)
    asset = await core_assets.project_asset(request)
    return answer(request, services.asset_view(request.params["project_id"], asset),
                  fields=fields)


async def list_bounces(request: Request) -> web.Response:
    """The project's bounces, newest first; filter with `status`."""
    query: BounceFilter = request.query
    fields = parse_fields(query.fields, Bounce)
    found = [services.bounce_view(b) for b in await core_bounces.list_bounces(request)
             if query.status is None or b.status == query.status]
    page, after = api_state(request.context).cursors.page(
        f"bounces:{request.params['project_id']}", found,
        lambda b: (_negated(b.created_at), b.id), query.limit, query.cursor)
    return answer(request, BouncePage(data=page, next_cursor=after), fields=fields)


def _negated(text: str) -> str:
    """A key that sorts RFC 3339 times newest first (each digit mirrored)."""
    return text.translate(str.maketrans("0123456789", "9876543210"))


def _as_core(request: Request) -> Request:
    return dataclasses.replace(request, params={**request.params,
                                                "job": request.params["bounce_id"]})


async def get_bounce(request: Request) -> web.Response:
    """One bounce's state and progress; `audio_url` once it is done."""
    fields = parse_fields(request.query.fields, Bounce)
    found = await core_bounces.get_bounce(_as_core(request))
    return answer(request, services.bounce_view(found), fields=fields)


async def create_bounce(request: Request) -> web.Response:
    """Snapshot the project and queue its bounce (editor); poll it until `done`.

    Send `Idempotency-Key` to make retries safe: the same key and body answer the
    bounce the first request queued, and queue no other.
    """
    async def run() -> web.Response:
        found = services.bounce_view(await core_bounces.create_bounce(request))
        return answer(request, found, status=202,
                      headers={"Location": f"{BOUNCES.format(project_id=found.project_id)}/"
                                           f"{found.id}"})

    return await idempotent(request, api_state(request.context).idempotency, run)


def _route(method: str, path: str, handler: Any, permission: Any, response: Any,
           **extra: Any) -> Route:
    return Route(method=method, path=path, handler=handler, permission=permission,
                 response=response, problem=True, name=f"v1_{handler.__name__}", **extra)


ROUTES = [
    _route("GET", PROJECTS, list_projects, ACCOUNT_READ, ProjectPage, query=ProjectFilter),
    _route("POST", PROJECTS, create_project, PROJECTS_CREATE, Project, body=NewProject,
           status=201),
    _route("GET", PROJECT, get_project, PROJECT_READ, Project, query=One),
    _route("PATCH", PROJECT, rename_project, PROJECT_MANAGE, Project, body=ProjectChange),
    _route("DELETE", PROJECT, delete_project, PROJECT_MANAGE, Deleted),
    _route("GET", TRACKS, list_tracks, PROJECT_READ, TrackPage, query=Listing),
    _route("GET", f"{TRACKS}/{{track_id}}", get_track, PROJECT_READ, Track, query=One),
    _route("GET", ASSETS, list_assets, PROJECT_READ, AssetPage, query=AssetFilter),
    _route("GET", f"{ASSETS}/{{asset_id}}", get_asset, PROJECT_READ, Asset, query=One),
    _route("GET", BOUNCES, list_bounces, PROJECT_READ, BouncePage, query=BounceFilter),
    _route("POST", BOUNCES, create_bounce, PROJECT_EDIT, Bounce,
           body=core_bounces.BounceOptions, status=202),
    _route("GET", f"{BOUNCES}/{{bounce_id}}", get_bounce, PROJECT_READ, Bounce, query=One),
]
