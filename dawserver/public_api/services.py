"""What ``/api/v1`` and GraphQL read, over the core's services: one place for both.

Every function takes the aiohttp application and the request's principal; they add
no rules of their own beyond turning the core's records into the public resources.
Reads of many projects are batched (one query for their rows, whatever their number).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from accounts.service import PROJECT_ROLES
from collab.errors import ProjectNotFound
from collab.schema import ProjectDocument
from collab.store import ProjectInfo

from .. import asset_objects
from .. import bounces as core_bounces
from ..asset_store import AssetNotFound, named
from ..assets import assets_of
from ..declarations import Principal
from ..errors import NotFound
from ..keys import ACCOUNTS, PLUGIN_CONTEXT_KEY, ROOMS, STORE
from .resources import Asset, Bounce, BypassedLv2Plugin, Clip, Project, Track, rfc3339
from .state import api_state


def _stronger(a: str | None, b: str) -> str:
    return b if a is None or PROJECT_ROLES.index(b) > PROJECT_ROLES.index(a) else a


async def project_roles(app: web.Application, principal: Principal) -> dict[str, str]:
    """``{project_id: role}`` of every project the principal may open.

    A person: theirs, their organisations' and those granted to them. An organisation
    (an organisation's key, or a person acting for it with ``?account=``): the ones it
    owns (with the caller's role) and those granted to it. A project token: its project.
    A key sees only the projects of its mode (test: the sandbox, live: the rest).
    """
    roles = await _all_project_roles(app, principal)
    context = app.get(PLUGIN_CONTEXT_KEY)
    if principal.via != "key" or context is None:
        return roles
    return {pid: roles[pid] for pid in await api_state(context).sandbox.filter(principal, roles)}


async def _all_project_roles(app: web.Application, principal: Principal) -> dict[str, str]:
    if principal.via == "token" or principal.admin or ACCOUNTS not in app:
        return {principal.account_id: principal.role} if principal.account_id else {}
    service = app[ACCOUNTS]
    account = await service.store.account(principal.account_id)
    if account is None:
        return {}
    if account.is_person:
        return await service.projects(account.account_id)
    roles: dict[str, str] = {}
    for project_id in await service.store.projects_of([account.account_id]):
        roles[project_id] = principal.role
    for grant in await service.store.grants_to([account.account_id]):
        roles[grant.project_id] = _stronger(roles.get(grant.project_id), grant.role)
    return roles


async def project_infos(app: web.Application, project_ids: list[str]) -> dict[str, ProjectInfo]:
    """The store's rows of ``project_ids`` (one query), by id; missing ones left out."""
    return await app[STORE].get_projects(project_ids)


def project_view(info: ProjectInfo, role: str) -> Project:
    """A project as the public API shows it."""
    return Project(id=info.project_id, name=info.name, created_at=rfc3339(info.created_at),
                   role=role)


async def projects(app: web.Application, principal: Principal) -> list[Project]:
    """Every project the principal may open (two or three queries, not one per project)."""
    roles = await project_roles(app, principal)
    infos = await project_infos(app, list(roles))
    return [project_view(info, roles[pid]) for pid, info in infos.items()]


async def project(app: web.Application, project_id: str, role: str) -> Project:
    """One project (its role already checked by the route); 404 when it is gone."""
    info = await app[STORE].get_project(project_id)
    if info is None:
        raise NotFound(f"there is no project {project_id!r}")
    return project_view(info, role)


async def tracks(app: web.Application, project_id: str) -> list[Track]:
    """The tracks and clips of the project's current document, in display order (REST).

    Raises :class:`NotFound` when the store holds no such project.
    """
    try:
        async with app[ROOMS].use(project_id) as room:
            return document_tracks(room.document)
    except ProjectNotFound:
        raise NotFound(f"there is no project {project_id!r}") from None


def document_tracks(document: ProjectDocument) -> list[Track]:
    """The tracks and clips of a project document, in display order (REST and GraphQL)."""
    session = document.to_session()
    return [Track(id=t.id, name=t.name, position=index, channels=t.channels,
                  gain_db=t.gain_db, pan=t.pan, mute=t.mute, solo=t.solo,
                  clips=[Clip(id=c.id, source=c.source, position=c.position, length=c.length,
                              offset=c.offset, gain_db=c.gain_db, fade_in=c.fade_in,
                              fade_out=c.fade_out) for c in t.clips])
            for index, t in enumerate(session.tracks)]


def asset_view(project_id: str, asset: Any) -> Asset:
    """A stored asset as the public API shows it (its links are the core's routes)."""
    base = f"/projects/{project_id}/assets/{asset.id}"
    return Asset(id=asset.id, name=asset.name, format=asset.format,
                 sample_rate=asset.sample_rate, channels=asset.channels, frames=asset.frames,
                 duration=asset.duration, bytes=asset.bytes, download_url=base,
                 peaks_url=f"{base}/peaks")


async def assets(app: web.Application, project_ids: list[str]) -> dict[str, list[Asset]]:
    """The assets of each project, oldest first (read from the asset stores' indexes)."""
    def read(store: Any, project_id: str) -> list[Asset]:
        found, names = [], store.project_names(project_id)
        for asset_id in store.project_assets(project_id):
            try:
                found.append(asset_view(project_id, named(store.asset(asset_id),
                                                          names.get(asset_id))))
            except AssetNotFound:  # deleted meanwhile
                continue
        return found

    stores = [await assets_of(app, pid) for pid in project_ids]
    if any(store.objects is not None for store in stores):  # object storage holds them
        return {pid: await _listed(store, pid) for store, pid in zip(stores, project_ids,
                                                                    strict=True)}
    lists = await asyncio.to_thread(
        lambda: [read(store, pid) for store, pid in zip(stores, project_ids, strict=True)])
    return dict(zip(project_ids, lists, strict=True))


async def _listed(store: Any, project_id: str) -> list[Asset]:
    """A project's assets on object storage, its names read once."""
    names = await asyncio.to_thread(store.project_names, project_id)
    return [asset_view(project_id, await asset_objects.pull_for(store, project_id, asset_id,
                                                                names))
            for asset_id in await asset_objects.project_assets(store, project_id)]


def bounce_view(core: core_bounces.Bounce) -> Bounce:
    """A bounce as the public API shows it."""
    return Bounce(id=core.id, project_id=core.project, status=core.status,
                  progress=core.progress, sample_rate=core.sample_rate,
                  bit_depth=core.bit_depth, format=core.format, error=core.error,
                  created_at=rfc3339(core.created_at), seconds=core.seconds, peak=core.peak,
                  audio_url=core.audio,
                  bypassed=[BypassedLv2Plugin(reason=b.reason, owner=b.owner, effect=b.effect,
                                           uri=b.uri, name=b.name, message=b.message)
                            for b in core.bypassed])
