"""A person's export: everything the platform holds about them, as one zip, made by a job.

:class:`ExportJob` serves the ``privacy.export`` queue of the one job queue. A
job (queued by ``POST /me/export``, :mod:`dawserver.privacy_routes`) belongs to
the person's account and writes ``<storage>/exports/<person>/<job id>.zip`` (``<storage>``:
the data directory, or the storage of the person's data region; with object storage
the archive is then put at ``exports/<person>/<job id>.zip`` there and the local copy
removed):

- ``README.txt``: what the archive is and how it is laid out;
- ``manifest.json``: who, when, every part with its size, and the files (``files``:
  the limit, how many bytes are held, and each file left out with its size and SHA-256);
- ``core/<part>.json``: the accounts' parts (:func:`accounts.export.account_parts`),
  the projects the person may open (with names), the comments they wrote in
  those projects' documents (``core/documents.json``), the transcription log of the
  projects they own (``core/transcriptions.json``: each decode's model version,
  language, length and confidence), and of their own account (not their
  organisations'): the developer webhooks with their delivery log
  (``core/webhooks.json``, never a signing secret) and the API usage meter's rows
  (``core/api_usage.json``), :mod:`dawserver.privacy_developer`; the sample library
  (``core/samples.json``, with their uploads under ``core/samples/``) and the content
  of the projects they own (``core/projects/<id>/``: ``project.json``,
  ``document.json``, ``assets.json`` and the audio under ``audio/``),
  :mod:`dawserver.privacy_files`;
- ``<plug-in>/<part>.json``: what each plug-in answers to ``account_export``.

Files (audio, samples) are held up to :data:`~dawserver.privacy_files.FILES_LIMIT`
bytes (2 GiB) in all; the rest is listed in the manifest. The job reports its progress
(0..1, with a note naming the step) as it goes; the archive is written in a worker
thread, under a temporary name first, streaming the files from disk.

An archive is kept ``config.export_keep_seconds`` (7 days by default) after its job is
done; then :class:`ExportExpiry` shows it expired and deletes it wherever it lies:
every hour each node queues one ``privacy.expire`` job (idempotency key: the hour), as
:mod:`dawserver.asset_collection` does, and one worker sweeps every region's object store
and local directory, the per-person and the older per-job places alike. An archive whose
job is still under way is never swept; one whose job was purged (finished jobs are kept
30 days, longer than any keeping period) always is. An archive that cannot be deleted now
is logged and left to the next sweep; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from accounts.export import account_parts
from accounts.pseudonyms import Pseudonymiser
from collab.errors import CollabError
from collab.scrub import authored, stored_doc
from jobs import DONE, JobContext, JobRecord, Permanent, QueueSettings, Retry
from transcription.registry import ModelRegistry

from .authorization import project_account
from .context import PluginContext
from .keys import ACCOUNTS, BACKGROUND, CONFIG, DATABASE, PLUGIN_CONTEXT_KEY, ROOMS, STORE
from .privacy_developer import usage_part, webhook_part
from .privacy_files import FILES_LIMIT, ExportFiles, project_content, sample_part
from .regions import account_storage
from .storage import ObjectStore, StorageError
from .storage.local import LocalObjectStore
from .storage.service import OBJECT_STORES, account_objects
from .windowed import SWEEP_SETTINGS, Windowed

log = logging.getLogger(__name__)

QUEUE = "privacy.export"
SETTINGS = QueueSettings(max_attempts=3, backoff_base=5.0, backoff_cap=120.0, lease_s=120.0,
                         concurrency=1)
CORE = "core"
README = """Max Booster Studio: your data
==============================

This archive holds what the platform keeps about the account {account}, as of
{generated} (UTC). manifest.json lists every part. Each folder holds the parts of
one component: "core" (your account, addresses, sign-in providers, organisations,
sessions, API keys, security log, invitations, projects, your comments in
project documents, the transcription log of your projects, your developer
webhooks with their delivery log, your API keys' usage per day, your sample
library and the content of the projects you own) and one folder per plug-in
(e.g. "distribution": releases, royalty splits and ledger lines). Every part is
JSON (UTF-8), except the files themselves.

core/projects/<project id>/ holds each project you own through your own account:
project.json (the project file format; "dawserver import" reads the folder back,
its clips naming the files in audio/), document.json (the project document:
tracks, clips, markers, transcripts...), assets.json (every audio file of the
project, with its size and SHA-256) and audio/ (the files as uploaded or recorded).
core/samples.json lists your samples; core/samples/ holds the files you uploaded.
Files are included up to {limit} bytes in all; the others are listed in
manifest.json under "files" / "left_out" (with size and SHA-256) and stay
downloadable from the project or the sample library.

Secrets are never included: no password hash, second-factor secret, recovery
code, session id, CSRF token, API key or key hash, or webhook signing secret.
"""


def export_directory(app: web.Application, person_id: str) -> Path:
    """Where ``person_id``'s export archives are kept: ``exports/<person>`` in the storage
    of their data region (``<data_dir>/exports/<person>`` without regions), so that an
    erasure finds every one, whether or not its job is still on record."""
    return account_storage(app, person_id) / "exports" / person_id


def export_prefix(person_id: str) -> str:
    """The object keys of ``person_id``'s export archives start with this."""
    return f"exports/{person_id}/"


def export_key(person_id: str, job_id: str) -> str:
    """The object key of an export archive (in the person's region's object store)."""
    return f"{export_prefix(person_id)}{job_id}.zip"


def legacy_export_key(job_id: str) -> str:
    """Where an archive made before archives were kept per person is in object storage."""
    return f"exports/{job_id}.zip"


def archive_path(app: web.Application, person_id: str, job_id: str) -> Path:
    """The archive of ``person_id``'s export job ``job_id``."""
    return export_directory(app, person_id) / f"{job_id}.zip"


def legacy_archive_path(app: web.Application, person_id: str, job_id: str) -> Path:
    """Where an archive made before archives were kept per person is on disk."""
    return export_directory(app, person_id).parent / f"{job_id}.zip"


async def call_hook(plugins: PluginContext, impls: list[Any], **kwargs: Any
                    ) -> list[tuple[str, Any]]:
    """``(plug-in name, awaited result)`` of each of a hook's implementations ``impls``."""
    found = []
    for impl in impls:
        result = impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
        if inspect.isawaitable(result):
            result = await result
        found.append((plugins.manager.get_name(impl.plugin), result))
    return found


async def document_parts(app: web.Application, person_id: str, projects: list[dict[str, Any]],
                         pz: Pseudonymiser) -> list[dict[str, Any]]:
    """Name each project, and list the comments the person wrote in its document."""
    store, rooms, documents = app[STORE], app[ROOMS], []
    for entry in projects:
        project_id = entry["id"]
        info = await store.get_project(project_id)
        entry["name"] = info.name if info else ""
        if info is None:
            continue
        room = rooms.loaded(project_id)
        try:
            doc = room.doc if room is not None else await stored_doc(store, project_id)
        except CollabError as exc:
            log.warning("export for %s: cannot read project %s: %s", person_id, project_id, exc)
            continue
        comments = authored(doc, pz.is_person)
        if comments:
            documents.append({"project": project_id, "name": info.name, "comments": comments})
    return documents


async def transcription_log(app: web.Application, projects: list[dict[str, Any]]
                            ) -> list[dict[str, Any]]:
    """The transcription log of each project the person owns: every decode of its audio
    (model version, language, length, confidence, when)."""
    registry = ModelRegistry(app[DATABASE])
    log_of = []
    for entry in projects:
        if entry["owned"]:
            decodes = await registry.inferences(project_account(entry["id"]))
            if decodes:
                log_of.append({"project": entry["id"],
                               "decodes": [d.shown() for d in decodes]})
    return log_of


def scratch_directory(app: web.Application, person_id: str, job_id: str) -> Path:
    """Where export job ``job_id`` downloads files only kept in object storage (deleted
    once the archive is written)."""
    return export_directory(app, person_id) / f"{job_id}.files"


def _write_archive(path: Path, parts: dict[str, dict[str, Any]], manifest: dict[str, Any]
                   ) -> int:
    """Write the zip (README, manifest, one file per part, a :class:`~pathlib.Path`
    value copied from disk as it is); its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".partial")
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("README.txt", README.format(
                account=manifest["account"], generated=manifest["generated_at"],
                limit=manifest["files"]["limit_bytes"]))
            for component, found in parts.items():
                for name, value in found.items():
                    filename = f"{component}/{name}"
                    if isinstance(value, Path):
                        try:
                            archive.write(value, filename, zipfile.ZIP_STORED)
                        except FileNotFoundError:
                            manifest["files"]["left_out"].append({
                                "file": filename, "why": "gone before the archive was written"})
                            continue
                        size = archive.getinfo(filename).file_size
                    else:
                        if isinstance(value, bytes):
                            data = value
                        else:
                            filename += ".json"
                            data = json.dumps(value, indent=2, sort_keys=True,
                                              default=str).encode()
                        archive.writestr(filename, data)
                        size = len(data)
                    manifest["parts"].append({"file": filename, "component": component,
                                              "part": name, "bytes": size})
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.stat().st_size


async def active_person(app: web.Application, person_id: str | None) -> Any:
    """``person_id``'s account while it is active; None once it is closed or erased."""
    person = await app[ACCOUNTS].store.account(person_id) if person_id else None
    return person if person is not None and person.active else None


async def require_active(app: web.Application, person_id: str) -> None:
    """:class:`Permanent` unless ``person_id`` is still an active person: an erasure
    closes the account first, so an export that sees it active after publishing its
    archive finished before the erasure started deleting the person's archives."""
    if await active_person(app, person_id) is None:
        raise Permanent(f"person {person_id!r} was erased (or closed) during the export; "
                        "its archive is withdrawn")


@dataclass(frozen=True)
class ExportArchive:
    """Where one export job's archive is written (``path``) and, with object storage,
    published (``key`` in ``objects``), resolved once: an erased person's region is still
    known by their id."""

    path: Path
    objects: ObjectStore
    key: str

    @classmethod
    def of(cls, app: web.Application, person_id: str, job_id: str) -> ExportArchive:
        """The places of ``person_id``'s export job ``job_id``."""
        return cls(archive_path(app, person_id, job_id), account_objects(app, person_id),
                   export_key(person_id, job_id))

    async def publish(self) -> None:
        """With object storage, put the archive there and remove the local copy (a
        failure is retried); without, the local file is the archive."""
        if not self.objects.redirects:
            return
        try:
            await self.objects.put_file(self.key, self.path, content_type="application/zip")
        finally:
            self.path.unlink(missing_ok=True)

    async def withdraw(self) -> None:
        """Delete whatever of the archive was written, wherever (idempotent), and the
        person's folder if nothing else is left in it (it names them)."""
        await asyncio.to_thread(self._remove_local)
        if self.objects.redirects:
            await self.objects.delete(self.key)

    def _remove_local(self) -> None:
        """Remove the archive, its partial file and scratch files, then the empty folder."""
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".partial").unlink(missing_ok=True)
        shutil.rmtree(self.path.with_suffix(".files"), ignore_errors=True)
        with contextlib.suppress(OSError):  # not empty: other archives of the person
            self.path.parent.rmdir()


class ExportJob:
    """The ``privacy.export`` queue's handler: gather every part, write the archive
    (holding at most ``files_limit`` bytes of files)."""

    def __init__(self, app: web.Application, files_limit: int = FILES_LIMIT) -> None:
        self.app, self.files_limit = app, files_limit

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        person_id = ctx.payload.get("person_id")
        person = await active_person(self.app, person_id)
        if person is None:
            if person_id:  # erased while an earlier attempt had written its archive
                await ExportArchive.of(self.app, person_id, ctx.job.id).withdraw()
            raise Permanent(f"there is no active person {person_id!r} to export")
        scratch = scratch_directory(self.app, person_id, ctx.job.id)
        try:
            return await self._export(ctx, person, scratch)
        except StorageError as exc:  # the object store did not answer: try again later
            raise Retry(str(exc)) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    async def _export(self, ctx: JobContext, person: Any, scratch: Path) -> dict[str, Any]:
        person_id, service = person.account_id, self.app[ACCOUNTS]
        context = self.app[PLUGIN_CONTEXT_KEY]
        ctx.progress(0.05, "account")
        core = await account_parts(service, person_id)
        ctx.progress(0.2, "documents")
        pz = Pseudonymiser.of(person_id, [person.name, *core["emails"]])
        core["documents"] = await document_parts(self.app, person_id, core["projects"], pz)
        core["transcriptions"] = await transcription_log(self.app, core["projects"])
        ctx.progress(0.3, "developer")
        core["webhooks"] = await webhook_part(context, person_id)
        core["api_usage"] = await usage_part(context, service, person_id)
        ctx.progress(0.4, "projects")
        files = ExportFiles(self.files_limit, scratch, CORE)
        core.update(await project_content(self.app, core["projects"], files))
        ctx.progress(0.5, "samples")
        core["samples"] = await sample_part(self.app, person_id, files)
        core.update(files.chosen)
        parts: dict[str, dict[str, Any]] = {CORE: core}
        ctx.progress(0.6, "plug-ins")
        impls = context.manager.hook.account_export.get_hookimpls()
        for plugin, found in await call_hook(context, impls, context=context,
                                             account_id=person_id):
            if found:
                parts.setdefault(plugin, {}).update(found)
        ctx.progress(0.85, "archive")
        await ctx.confirm()
        manifest = {"account": person_id, "job": ctx.job.id,
                    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "parts": [], "files": files.manifest()}
        archive = ExportArchive.of(self.app, person_id, ctx.job.id)
        await require_active(self.app, person_id)
        try:
            size = await ctx.run_in_thread(_write_archive, archive.path, parts, manifest)
            await archive.publish()
            # an erasure that ran since the check above missed this archive: withdraw it
            await require_active(self.app, person_id)
        except BaseException:  # erased, cancelled, or the object store failed
            await archive.withdraw()
            raise
        return {"bytes": size, "parts": [p["file"] for p in manifest["parts"]],
                "files_left_out": len(manifest["files"]["left_out"])}


#: The queue of the sweeps that delete expired archives, and the account of its jobs.
EXPIRE_QUEUE = "privacy.expire"
EXPIRE_ACCOUNT = "server:privacy.expire"
EXPIRE_SETTINGS = SWEEP_SETTINGS
#: Seconds between sweeps.
SWEEP_EVERY_S = 3600.0
#: Archives' keys (every region's store), per person and, before that, per job.
EXPORTS = "exports/"
#: Job ids looked up at once by a sweep.
LOOKUP_BATCH = 500


def archive_job(key: str) -> str | None:
    """The job id of an archive's key (``exports/<person>/<job>.zip``, or an older
    ``exports/<job>.zip``); None for any other key (a partial archive, scratch files)."""
    parts = key.split("/")
    if parts[0] != EXPORTS.rstrip("/") or len(parts) not in (2, 3):
        return None
    job_id = parts[-1].removesuffix(".zip")
    return job_id if job_id and job_id != parts[-1] else None


def sweep_due(record: JobRecord | None, keep_s: float, now: float) -> bool:
    """Whether a sweep deletes an archive whose job is ``record``: never while the job is
    under way; once ``keep_s`` passed since it finished; always once it was purged."""
    if record is None:
        return True
    if not record.finished or record.finished_at is None:
        return False
    return now >= record.finished_at + keep_s


@dataclass(frozen=True)
class StoredArchive:
    """An export archive found by a sweep: the store holding it, its key and job id."""

    store: ObjectStore
    key: str
    job_id: str


@dataclass
class Swept:
    """What one sweep did: archives deleted, kept (not yet due) and failed (left)."""

    deleted: int = 0
    kept: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, int]:
        """The sweep job's result."""
        return {"deleted": self.deleted, "kept": self.kept, "failed": self.failed}


def archive_places(app: web.Application) -> list[ObjectStore]:
    """Every store an archive may lie in: each region's object store, and for a region on
    object storage its local directory too (where an archive is written first)."""
    config, places = app[CONFIG], []
    for region, store in app[OBJECT_STORES].items():
        places.append(store)
        if store.redirects:
            places.append(LocalObjectStore(config.storage_of(region)))
    return places


async def stored_archives(store: ObjectStore) -> list[StoredArchive]:
    """The export archives in ``store`` (:class:`StorageError` when it cannot be read)."""
    return [StoredArchive(store, key, job_id) for key in await store.keys(EXPORTS)
            if (job_id := archive_job(key)) is not None]


async def export_records(app: web.Application, job_ids: Iterable[str]
                         ) -> dict[str, JobRecord]:
    """The export jobs on record among ``job_ids``, by id."""
    queue, wanted, found = app[BACKGROUND].queue, sorted(set(job_ids)), {}
    for start in range(0, len(wanted), LOOKUP_BATCH):
        batch = wanted[start:start + LOOKUP_BATCH]
        for record in await queue.find(queue=QUEUE, ids=batch, limit=len(batch)):
            found[record.id] = record
    return found


class ExportExpiry(Windowed):
    """Deletes export archives past keeping: queues one sweep per window and runs it.

    Parameters
    ----------
    app:
        The server application (its object stores and job queue).
    keep_s:
        How long an archive is kept after its job is done.
    every_s:
        Seconds per window: one sweep per window, however many nodes.
    clock:
        The time in seconds (``time.time``).
    """

    chore = "the sweep of expired export archives"

    def __init__(self, app: web.Application, keep_s: float, *,
                 every_s: float = SWEEP_EVERY_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.app, self.keep_s, self.every_s, self.clock = app, keep_s, every_s, clock
        self._task: asyncio.Task | None = None

    def expires_at(self, record: JobRecord) -> float | None:
        """When the archive of export ``record`` expires: ``keep_s`` after its job was
        done (None while it is not done)."""
        if record.state != DONE or record.finished_at is None:
            return None
        return record.finished_at + self.keep_s

    def expired(self, record: JobRecord) -> bool:
        """Whether export ``record`` is done and its archive past keeping now."""
        at = self.expires_at(record)
        return at is not None and self.clock() >= at

    async def schedule(self) -> JobRecord:
        """Queue this window's sweep (once, however many nodes ask); the job."""
        window = self.window()
        return await self.app[BACKGROUND].queue.enqueue(
            EXPIRE_QUEUE, {"window": window}, account_id=EXPIRE_ACCOUNT,
            idempotency_key=f"expire/{window}")

    async def handle(self, job: JobContext) -> dict[str, int]:
        """The ``privacy.expire`` job: one sweep."""
        return (await self.sweep()).to_json()

    async def sweep(self) -> Swept:
        """Delete every archive due (:func:`sweep_due`); one that fails is left for the
        next sweep and the others go on."""
        swept, found = Swept(), []
        for store in archive_places(self.app):
            try:
                found += await stored_archives(store)
            except StorageError as exc:
                swept.failed += 1
                log.warning("cannot list the export archives in %r (next sweep): %s",
                            store, exc)
        records = await export_records(self.app, (a.job_id for a in found))
        now = self.clock()
        for archive in found:
            if not sweep_due(records.get(archive.job_id), self.keep_s, now):
                swept.kept += 1
            elif await self._delete(archive):
                swept.deleted += 1
            else:
                swept.failed += 1
        if swept.deleted or swept.failed:
            log.info("export archives swept: %s", swept.to_json())
        return swept

    async def _delete(self, archive: StoredArchive) -> bool:
        """Delete one archive; False (logged) when its store fails."""
        try:
            await archive.store.delete(archive.key)
        except (StorageError, OSError) as exc:
            log.warning("cannot delete the expired export archive %s (next sweep): %s",
                        archive.key, exc)
            return False
        return True

    async def start(self, app: web.Application) -> None:
        """``on_startup``: run the loop (every ``cleanup_ctx``, the job queue's among
        them, has started by then)."""
        self._task = asyncio.create_task(self.run(), name="privacy:expire-exports")

    async def stop(self, app: web.Application) -> None:
        """``on_shutdown``: stop the loop (before the job queue closes)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


#: The server's sweep of expired export archives.
EXPORT_EXPIRY = web.AppKey("export_expiry", ExportExpiry)


def setup_privacy_export(app: web.Application, background: Any) -> None:
    """Serve the ``privacy.export`` queue, and sweep expired archives every hour."""
    background.register(QUEUE, ExportJob(app), SETTINGS)
    expiry = app[EXPORT_EXPIRY] = ExportExpiry(app, app[CONFIG].export_keep_seconds)
    background.register(EXPIRE_QUEUE, expiry.handle, EXPIRE_SETTINGS)
    app.on_startup.append(expiry.start)
    app.on_shutdown.append(expiry.stop)
