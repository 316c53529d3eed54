"""Deleting a project for good: its document, live room, files, jobs, plug-ins' data, roles.

:func:`delete_project` is what ``DELETE /projects/{project_id}`` (an owner,
:mod:`dawserver.api`) and a person's erasure (:mod:`dawserver.privacy_erase`) run.
In this order, so that a deletion cut short (a crash) can be asked for again by the
owner, whose role is forgotten last:

1. the project's data region and directories are looked up (its document's region is
   known only while the store holds it);
2. the collaboration store deletes every row of the project, in one transaction
   (:meth:`collab.store.Store.delete_project`): from then on an append or a load of it
   fails, so nothing brings it back;
3. its live room is unloaded and its WebSockets closed with 4411
   (:meth:`collab.registry.RoomRegistry.close_deleted`), its WebRTC connections too;
   with ``--redis`` another process's room finds out at its next write or catch-up
   (within ``poll_seconds`` while it has clients) and closes its own;
4. its unfinished jobs (bounces, transcriptions) are cancelled and its transcription
   log (the model version, language, length and confidence of each decode) deleted;
5. its files are deleted: the bounce folder (``STORAGE/bounces/<project>``: snapshots
   and renders) and its assets (``STORAGE/assets``: the index, and every audio file,
   description and peaks file no other project lists);
6. the plug-ins forget it (``project_deleted``; distribution its record of renders);
7. the owning account's security log records ``project.deleted`` and the accounts
   store forgets its ownership and every role granted on it.

Finished job records (bounce and transcription jobs name the project) stay until the
queue purges finished jobs (30 days).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from jobs import QUEUED, RETRYING, RUNNING, UnknownJob
from transcription.registry import ModelRegistry

from . import asset_objects, derived_audio, plugins
from .assets import REGION_ASSETS
from .authorization import project_account
from .bounces import bounce_prefix
from .keys import ACCOUNTS, BACKGROUND, CONFIG, DATABASE, ROOMS, STORE
from .regions import account_region, project_region
from .rtc import RTC
from .storage.service import OBJECT_STORES

log = logging.getLogger(__name__)

#: The security-log action of a deleted project (under its owning account).
PROJECT_DELETED = "project.deleted"


@dataclass
class Deletion:
    """What deleting a project removed."""

    project_id: str
    #: The account that owned it ("" for a project made without accounts).
    owner: str = ""
    name: str = ""
    connections: int = 0
    jobs_cancelled: int = 0
    #: Entries of its transcription log deleted.
    decodes: int = 0
    files: int = 0
    plugins: list[str] = field(default_factory=list)
    roles: int = 0


async def project_exists(app: web.Application, project_id: str) -> bool:
    """Whether the store holds ``project_id`` or an account still owns it (a deletion
    cut short before its last step)."""
    if await app[STORE].get_project(project_id) is not None:
        return True
    return ACCOUNTS in app and await app[ACCOUNTS].store.project_owner(project_id) is not None


async def delete_project(app: web.Application, project_id: str, *, actor: str,
                         address: str = "") -> Deletion | None:
    """Delete ``project_id`` and everything of it (see the module); None if there is no
    such project. ``actor`` (who asked) and ``address`` go to the owner's security log."""
    if not await project_exists(app, project_id):
        return None
    accounts = app[ACCOUNTS].store if ACCOUNTS in app else None
    owner = (await accounts.project_owner(project_id) or "") if accounts else ""
    info = await app[STORE].get_project(project_id)
    deleted = Deletion(project_id, owner, info.name if info else "")
    # 1. where its files are: asked before the store forgets the project's region (after a
    # deletion cut short, the owner's region, where a project made for them lives)
    region = (await project_region(app, project_id) if info is not None or not owner
              else account_region(app, owner))
    assets = app[REGION_ASSETS][region]
    bounces = _inside(app[CONFIG].storage_of(region) / "bounces", project_id)
    # 2. the document, in one transaction; 3. the live room and connections
    await app[STORE].delete_project(project_id)
    deleted.connections = await app[ROOMS].close_deleted(project_id)
    deleted.connections += await _close_rtc(app, project_id)
    # 4. jobs; 5. files
    deleted.jobs_cancelled = await _cancel_jobs(app, project_id)
    deleted.decodes = await ModelRegistry(app[DATABASE]).forget(project_account(project_id))
    deleted.files = await asyncio.to_thread(_delete_files, assets.forget_project, bounces,
                                            project_id)
    deleted.files += await _delete_objects(app, region, project_id)
    # its stretch renders (full processed copies of its audio), unless another plays them
    deleted.files += len(await derived_audio.prune(assets, project_id, in_use=()))
    # 6. plug-ins; 7. the security log, then ownership and roles
    deleted.plugins = await plugins.emit_project_deleted(app, owner, project_id)
    if accounts is not None:
        grantees = [grant.grantee_id for grant in await accounts.grants_on(project_id)]
        if owner:
            await accounts.audit(owner, actor, PROJECT_DELETED, target=project_id,
                                 address=address, detail={
                                     "name": deleted.name, "files": deleted.files,
                                     "connections": deleted.connections})
        deleted.roles = sum((await accounts.forget_project(project_id)).values())
        for grantee in grantees:  # a role taken away rotates their sessions, as always
            await app[ACCOUNTS].roles_changed(grantee)
    log.info("deleted project %s (owner %s): %d connections closed, %d files, %d jobs "
             "cancelled", project_id, owner or "none", deleted.connections, deleted.files,
             deleted.jobs_cancelled)
    return deleted


def _inside(root: Path, project_id: str) -> Path | None:
    """``root/project_id`` when that names a folder directly inside ``root`` (never
    ``root`` itself or above it, whatever the id holds)."""
    folder = root / project_id
    if project_id in ("", ".", "..") or folder.parent != root or "/" in project_id:
        return None
    return folder


async def _close_rtc(app: web.Application, project_id: str) -> int:
    service = app.get(RTC)
    return await service.close_project(project_id) if service is not None else 0


async def _cancel_jobs(app: web.Application, project_id: str) -> int:
    """Cancel the project's jobs that have not finished (a running bounce stops at its
    next block and keeps no file); how many."""
    if BACKGROUND not in app:
        return 0
    queue, account = app[BACKGROUND].queue, project_account(project_id)
    cancelled = 0
    for record in await queue.find(account_id=account, states=(QUEUED, RETRYING, RUNNING)):
        try:
            await queue.cancel(account, record.id)
        except UnknownJob:  # finished and purged meanwhile
            continue
        cancelled += 1
    return cancelled


async def _delete_objects(app: web.Application, region: str, project_id: str) -> int:
    """Delete the project's objects in its region's object store (S3): bounces, and the
    assets no other project uses; how many."""
    assets, objects = app[REGION_ASSETS][region], app[OBJECT_STORES][region]
    if not objects.redirects:  # local disk: _delete_files did it
        return 0
    count = await asset_objects.forget_project(assets, project_id)
    for key in await objects.keys(f"bounces/{bounce_prefix(project_id)}/"):
        await objects.delete(key)
        count += 1
    return count


def _delete_files(forget_assets: Callable[[str], list[Path]], bounces: Path | None,
                  project_id: str) -> int:
    """Delete the project's assets (``forget_assets``) and bounce folder; files deleted."""
    removed = len(forget_assets(project_id))
    if bounces is not None and bounces.is_dir():
        removed += sum(1 for path in bounces.rglob("*") if path.is_file())
        shutil.rmtree(bounces)
    return removed
