"""A person's erasure across the platform: a job with progress, after the account stopped.

``POST /me/delete`` (:mod:`dawserver.privacy_routes`) stops the account at once
(:meth:`accounts.erasure.AccountErasure.close`) and queues a ``privacy.erase``
job under the person's pseudonym. :class:`EraseJob` then, reporting progress:

1. asks every plug-in to forget the person (``account_erased``); the core's own
   implementation (:mod:`dawserver.core_plugin`) deletes the account's developer
   webhooks with their delivery log and its API usage rows, so this process's usage
   meter is flushed first: counts of the person's keys still in memory would otherwise
   be written back after the rows were deleted;
2. deletes the projects the person owned through their own account (not through an
   organisation) on which nobody else holds a role (:func:`own_projects_alone`), as an
   owner's ``DELETE /projects/{id}`` does (:mod:`dawserver.project_deletion`); projects
   shared with others stay, scrubbed in the next step;
3. scrubs every other project document the person could open: each mention of their
   id, name or address becomes the pseudonym and the comments they wrote are
   emptied (:func:`collab.scrub.scrub`), as a server edit of the live room, so
   connected clients see it; then the room folds its log into a new snapshot
   (:meth:`collab.room.Room.compact`), so the store keeps no update or snapshot
   that holds the old text;
4. deletes the person's export archives (and what an export stopped half-way left) and
   sample library (rows and uploads), then the job rows under the person's account:
   every export, and every finished job of any queue (:func:`forget_jobs`);
5. erases the core's rows and pseudonymises the security log
   (:meth:`accounts.erasure.AccountErasure.erase`), which records ``deletion``;
6. rewrites its own row, the person's receipt (``GET /privacy/erasures/{job}``, under
   the pseudonym), so that its payload and idempotency key name the pseudonym only.

The account row is deleted last, so a retried job still knows whom to forget;
every step is idempotent. An export racing the erasure leaves nothing behind: the
account is closed before this job starts, and an export re-checks it after publishing
its archive and withdraws it (:class:`dawserver.privacy_export.ExportArchive`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any

from aiohttp import web

from accounts.erasure import AccountErasure
from accounts.pseudonyms import Pseudonymiser, pseudonym_of
from collab.errors import ProjectNotFound
from collab.scrub import scrub
from jobs import CANCELLED, DONE, JobContext, QueueSettings

from .keys import ACCOUNTS, BACKGROUND, PLUGIN_CONTEXT_KEY, ROOMS
from .privacy_export import QUEUE as EXPORT_QUEUE
from .privacy_export import (
    call_hook,
    export_directory,
    export_prefix,
    legacy_archive_path,
    legacy_export_key,
)
from .project_deletion import delete_project
from .public_api.state import api_state
from .sample_service import SAMPLES
from .storage.service import account_objects

log = logging.getLogger(__name__)

QUEUE = "privacy.erase"
SETTINGS = QueueSettings(max_attempts=10, backoff_base=5.0, backoff_cap=600.0, lease_s=120.0,
                         concurrency=1)


async def scrub_project(app: web.Application, project_id: str, pz: Pseudonymiser) -> int:
    """Forget the person in one project's document (through its room) and fold its log;
    how many values changed."""
    changed: list[int] = []
    try:
        async with app[ROOMS].use(project_id) as room:
            await room.edit(lambda document: changed.append(
                scrub(document.doc, pz.text, pz.is_person)))
            # always: an update logged before may hold what a later edit deleted
            await room.compact()
    except ProjectNotFound:
        return 0
    return changed[0] if changed else 0


async def own_projects_alone(app: web.Application, person_id: str) -> list[str]:
    """The projects ``person_id`` owns through their own account (not an organisation's)
    on which no one else holds a role: an erasure deletes them."""
    store = app[ACCOUNTS].store
    alone = []
    for project_id, owner in sorted((await store.projects_of([person_id])).items()):
        others = [g for g in await store.grants_on(project_id) if g.grantee_id != person_id]
        if owner == person_id and not others:
            alone.append(project_id)
    return alone


async def delete_exports(app: web.Application, person_id: str) -> int:
    """Delete the person's export archives, and what exports that stopped half-way left;
    how many archives. Every one is found by its place (the person's folder and key
    prefix), also those whose jobs were purged; jobs still running are cancelled."""
    queue = app[BACKGROUND].queue
    records = await queue.find(account_id=person_id, queue=EXPORT_QUEUE)
    for record in records:
        if not record.finished:
            await queue.cancel(person_id, record.id)
    folder = export_directory(app, person_id)
    removed = len(list(folder.glob("*.zip"))) if folder.is_dir() else 0
    await asyncio.to_thread(shutil.rmtree, folder, True)
    objects = account_objects(app, person_id)
    if objects.redirects:
        for key in await objects.keys(export_prefix(person_id)):
            await objects.delete(key)
            removed += key.endswith(".zip")
    for record in records:  # archives made before they were kept per person
        legacy = legacy_archive_path(app, person_id, record.id)
        if legacy.exists():
            legacy.unlink()
            removed += 1
        legacy.with_suffix(".partial").unlink(missing_ok=True)
        await asyncio.to_thread(shutil.rmtree, legacy.with_suffix(".files"), True)
        if objects.redirects and await objects.exists(legacy_export_key(record.id)):
            await objects.delete(legacy_export_key(record.id))
            removed += 1
    return removed


#: The states of the person's jobs (of any queue) whose rows an erasure deletes: finished
#: ones, which the queue would purge later anyway. Waiting and running jobs of other
#: queues are their owners' (a plug-in cancels its own), and dead letters wait for an
#: operator; they stay.
FORGOTTEN_STATES = (DONE, CANCELLED)


async def forget_jobs(app: web.Application, person_id: str) -> int:
    """Delete the job rows under the person's account: every export (each cancelled by
    :func:`delete_exports`; a running one still writing then stops as a lost job and
    withdraws its archive) and every finished job; how many."""
    queue = app[BACKGROUND].queue
    deleted = await queue.delete_jobs(person_id, queue=EXPORT_QUEUE)
    return deleted + await queue.delete_jobs(person_id, states=FORGOTTEN_STATES)


async def forget_in_receipt(app: web.Application, ctx: JobContext, pseudonym: str) -> None:
    """Make the erasure job's own row (the receipt, keyed by the pseudonym and the job
    id) name the pseudonym instead of the person, in payload and idempotency key."""
    await app[BACKGROUND].queue.rewrite(ctx.job.account_id, ctx.job.id,
                                        {"pseudonym": pseudonym}, pseudonym)


class EraseJob:
    """The ``privacy.erase`` queue's handler: plug-ins, documents, exports, then the core."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        person_id = ctx.payload.get("person_id")
        service = self.app[ACCOUNTS]
        erasure = AccountErasure(service)
        if person_id is None:  # a retry after the receipt was rewritten
            return {"erased": True}
        if await service.store.account(person_id) is None:  # a retry after the last step
            await forget_in_receipt(self.app, ctx, pseudonym_of(person_id))
            return {"erased": True}
        pz = await erasure.pseudonymiser(person_id)
        projects = sorted({*(await service.projects(person_id)),
                           *(await service.store.projects_of([person_id]))})
        ctx.progress(0.05, "plug-ins")
        context = self.app[PLUGIN_CONTEXT_KEY]
        await api_state(context).usage.flush()  # before the core forgets the usage rows
        plugins = [name for name, _ in await call_hook(
            context, context.manager.hook.account_erased.get_hookimpls(), context=context,
            account_id=person_id, pseudonym=pz.pseudonym, names=list(pz.names))]
        alone = await own_projects_alone(self.app, person_id)
        for index, project_id in enumerate(alone):
            ctx.progress(0.1 + 0.2 * index / max(1, len(alone)), f"delete {project_id}")
            await delete_project(self.app, project_id, actor=person_id)
        shared = [project_id for project_id in projects if project_id not in alone]
        scrubbed = 0
        for index, project_id in enumerate(shared):
            ctx.progress(0.3 + 0.5 * index / max(1, len(shared)), f"project {project_id}")
            scrubbed += await scrub_project(self.app, project_id, pz)
        ctx.progress(0.85, "exports")
        exports = await delete_exports(self.app, person_id)
        samples = await self.app[SAMPLES].forget_account(person_id)
        jobs = await forget_jobs(self.app, person_id)
        ctx.progress(0.9, "account")
        rows = await erasure.erase(pz, detail={"projects": len(projects),
                                               "projects_deleted": len(alone),
                                               "plugins": plugins})
        await forget_in_receipt(self.app, ctx, pz.pseudonym)
        log.info("erased person %s as %s: %d projects (%d deleted), %d values scrubbed",
                 person_id, pz.pseudonym, len(projects), len(alone), scrubbed)
        return {"erased": True, "pseudonym": pz.pseudonym, "projects": len(projects),
                "projects_deleted": len(alone), "values_scrubbed": scrubbed,
                "exports_deleted": exports, "samples_deleted": samples, "jobs_deleted": jobs,
                "plugins": plugins, "rows": rows}


def setup_privacy_erase(app: web.Application, background: Any) -> None:
    """Serve the ``privacy.erase`` queue."""
    background.register(QUEUE, EraseJob(app), SETTINGS)
