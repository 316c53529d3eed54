"""Moving an account's project audio with it: the :class:`AssetMoveHook`.

A project's uploaded and recorded audio lives in its region's asset directory
(:class:`~dawserver.asset_store.AssetStore`, ``STORAGE/assets``), and a clip's source in
the document is the file's path there. This :class:`~accounts.moving.MoveHook` moves the
assets of the projects an account owns:

- **copy** (before the switch, repeatable, resumable): every file of each asset the
  project lists (audio, description, peaks) is copied into the target's directory
  under the same name, through a temporary file renamed into place, unless the target
  already has the same bytes; the audio is checked against its name (its SHA-256) and
  every file against the source's hash. The description's ``path`` (the audio's path
  on this server) is rewritten to the target's. The project's index is written last, so an
  index in the target means its files are all there.
- **drop** (after the switch, after :class:`~dawserver.document_moves.DocumentMoveHook`
  routed the document to the target): what the project's index gained in the source
  since the copy (uploads and recordings made during the move land there until the
  document is routed) is copied again to where the account lives now (``region_of``),
  the document's clip sources that name a file in the source's directory are pointed
  at the target's copy (a server-made edit through the project's room, ``edit``), then
  the source's index goes and every asset of it no other project there lists
  (:meth:`AssetStore.forget_project`).

When either region keeps its assets on object storage (an ``s3://`` region storage:
local disk → S3, S3 → local disk, S3 → S3), both steps go through
:mod:`dawserver.object_moves` instead: each file is streamed to the target and read
back to check its size and SHA-256 before anything is recorded as copied; the drop
waits for uploads still writing an asset (:class:`~dawserver.object_moves.UploadInFlight`,
retried) and then deletes the source's memberships and descriptions (the audio after
the grace period of a deleted project's,
:func:`~dawserver.asset_objects.collect_forgotten`). The check before the fence
refuses only what cannot move: a region without an asset store, an object store that
does not answer, or two regions sharing one object store location.

:class:`ObjectMoveHook` moves objects of the regions' object stores (local directory or
S3 alike) under an account's prefixes (its projects' bounces, its export archives): each object is
streamed into the target unless it already holds the same bytes, and read back to
check its SHA-256; the drop step copies what came since to where the account lives
now, then deletes the source's objects it copied and checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from accounts.errors import Conflict

from . import object_moves
from .asset_store import AssetStore
from .storage import ObjectStore, StorageError

log = logging.getLogger(__name__)

ProjectsOf = Callable[[str], Awaitable[list[str]]]
#: ``await edit(project_id, change)``: ``change(document)`` made through the project's room.
Edit = Callable[[str, Callable[[Any], None]], Awaitable[None]]
#: ``note(text)``: how a move's copy goes, for its job's progress.
Note = Callable[[str], None]


class FilesNotMovable(Conflict):
    """An account's files could not be moved (object storage, or a file that differs)."""


class AssetMoveHook:
    """Copies the audio of an account's projects to the target region's asset directory
    and drops the source's after the switch (see the module).

    Parameters
    ----------
    assets:
        Every region's asset store.
    projects_of:
        ``await projects_of(account_id)``: the ids of the projects the account owns.
    edit:
        Makes a change to a project's document through its room (none: clip sources
        are left as they are).
    region_of:
        Where an account lives now (the target, once the move switched). Without it the
        drop copies to the first other region holding the project's index.
    """

    name = "assets"

    def __init__(
        self,
        assets: Mapping[str, AssetStore],
        projects_of: ProjectsOf,
        *,
        edit: Edit | None = None,
        region_of: Callable[[str], str] | None = None,
    ) -> None:
        self.assets = dict(assets)
        self.projects_of = projects_of
        self.edit = edit
        self.region_of = region_of
        #: account id → who hears how its copy goes (:meth:`watch`)
        self._watchers: dict[str, Note] = {}

    @contextlib.contextmanager
    def watch(self, account_id: str, note: Note) -> Iterator[None]:
        """Tell ``note`` how the copies of ``account_id``'s audio go inside the block."""
        self._watchers[account_id] = note
        try:
            yield
        finally:
            self._watchers.pop(account_id, None)

    async def check(self, account_id: str, source: str, target: str) -> None:
        """Refuse the move (:class:`FilesNotMovable`) when its audio cannot go now: a
        region without an asset store, an object store that does not answer, or two
        regions sharing one object store location; asked before anything is fenced."""
        missing = [r for r in (source, target) if r not in self.assets]
        if missing:
            raise FilesNotMovable(f"regions {missing} have no asset storage on this server; "
                                  f"the move was not begun")
        src, dst = self.assets[source], self.assets[target]
        if src.objects is None and dst.objects is None:
            return
        if same_place(src.objects, dst.objects):
            raise FilesNotMovable(
                f"regions {source!r} and {target!r} keep their assets in the same object "
                f"store location ({src.objects!r}); give each region its own bucket or "
                f"prefix. The move was not begun")
        for region in (source, target):
            try:
                await object_moves.reachable(self.assets[region], region)
            except StorageError as exc:
                raise FilesNotMovable(f"{exc}; the move was not begun, try again once it "
                                      f"answers") from exc

    async def copy(self, account_id: str, source: str, target: str) -> None:
        """Copy the audio of ``account_id``'s projects from ``source`` to ``target``."""
        src, dst = self.assets[source], self.assets[target]
        for project_id in await self.projects_of(account_id):
            copied = await self._copy_project(account_id, src, dst, project_id, target)
            log.info(
                "account %s: project %s: %d asset files copied to %s",
                account_id,
                project_id,
                copied,
                target,
            )

    async def _copy_project(self, account_id: str, src: AssetStore, dst: AssetStore,
                            project_id: str, target: str, *, cleaning: bool = False) -> int:
        """Copy one project's assets (either side on object storage: streamed and read
        back, :mod:`dawserver.object_moves`; ``cleaning``: waiting for uploads still
        writing one, :class:`~dawserver.object_moves.UploadInFlight`); the files written."""
        if src.objects is None and dst.objects is None:
            return await asyncio.to_thread(copy_project_assets, src, dst, project_id)
        note = self._watchers.get(account_id)

        def report(files: int, size: int) -> None:
            if note is not None:
                note(f"audio of project {project_id}: {files} files checked in {target}, "
                     f"{size / (1 << 20):.1f} MiB copied")

        done = await object_moves.copy_project(src, dst, project_id, report,
                                               cleaning=cleaning)
        return done.files

    async def drop(self, account_id: str, region: str) -> None:
        """Copy what came to ``region`` since the copy step to where the account lives
        now, point the documents at the moved audio and delete the audio in ``region``."""
        src = self.assets[region]
        if self.region_of is not None and self.region_of(account_id) == region:
            return  # not moved away (a move back and forth): nothing to delete
        for project_id in await self.projects_of(account_id):
            if not await object_moves.has_project(src, project_id):
                continue  # no audio here (or dropped by an earlier run): nothing to do
            target = await self._target(account_id, project_id, region)
            if target is None:
                continue  # nothing was copied anywhere: nothing may be deleted
            dst = self.assets[target]
            # uploads and recordings made during the move landed here: copy them too
            # (idempotent, hash-checked) before anything of the source is deleted
            copied = await self._copy_project(account_id, src, dst, project_id, target,
                                              cleaning=True)
            if copied:
                log.info(
                    "project %s: %d asset files copied again to %s", project_id, copied, target
                )
            if self.edit is not None:
                await self.edit(
                    project_id,
                    lambda document, s=src, d=dst: repoint_sources(document, s.root, d.root),
                )
            if src.objects is not None:
                removed = await object_moves.forget_source(src, project_id)
            else:
                removed = len(await asyncio.to_thread(src.forget_project, project_id))
            log.info("project %s: %d asset files deleted in %s", project_id, removed, region)

    async def _target(self, account_id: str, project_id: str, region: str) -> str | None:
        """Where ``project_id``'s assets go from ``region``: the account's region, or
        (without ``region_of``) the first other region holding the project's assets."""
        if self.region_of is not None:
            target = self.region_of(account_id)
            return target if target != region and target in self.assets else None
        for name, store in self.assets.items():
            if name != region and await object_moves.has_project(store, project_id):
                return name
        return None


def same_place(one: ObjectStore | None, other: ObjectStore | None) -> bool:
    """Whether two object stores are the same location (one bucket and prefix at one
    endpoint, or one directory): a move between them would delete what it copied."""
    if one is None or other is None:
        return False
    if one is other:
        return True

    def where(store: ObjectStore) -> tuple[Any, ...]:
        args = getattr(store, "_client_args", {})
        return (type(store).__name__, getattr(store, "root", None),
                getattr(store, "bucket", None), getattr(store, "prefix", None),
                args.get("endpoint_url"))

    return where(one) == where(other)


class ObjectMoveHook:
    """Moves the objects of an account under ``await prefixes_of(account_id)`` between
    the regions' object stores (see the module).

    Parameters
    ----------
    name:
        The hook's name (recorded in the move's progress: keep it stable).
    objects:
        Every region's object store.
    prefixes_of:
        ``await prefixes_of(account_id)``: the key prefixes of the account's objects
        (its projects' bounces, its export archives).
    region_of:
        Where an account lives now (the target, once the move switched).
    """

    def __init__(
        self,
        name: str,
        objects: Mapping[str, ObjectStore],
        prefixes_of: Callable[[str], Awaitable[list[str]]],
        region_of: Callable[[str], str],
    ) -> None:
        self.name = name
        self.objects = dict(objects)
        self.prefixes_of = prefixes_of
        self.region_of = region_of

    async def _keys(self, account_id: str, store: ObjectStore) -> list[str]:
        keys: list[str] = []
        for prefix in await self.prefixes_of(account_id):
            keys.extend(await store.keys(prefix))
        return sorted(set(keys))

    async def check(self, account_id: str, source: str, target: str) -> None:
        """Nothing to refuse: objects between the regions' stores can always be copied."""

    async def copy(self, account_id: str, source: str, target: str) -> None:
        """Copy the account's objects from ``source`` to ``target`` (checked by hash)."""
        await self._copy(account_id, source, target)

    async def _copy(self, account_id: str, source: str, target: str) -> list[str]:
        """Copy as :meth:`copy` does; the keys the target now holds the same bytes of."""
        src, dst = self.objects[source], self.objects[target]
        copied, checked = 0, []
        for key in await self._keys(account_id, src):
            digest = await object_sha256(src, key)
            if await dst.exists(key) and await object_sha256(dst, key) == digest:
                checked.append(key)
                continue
            await dst.put(key, src.stream(key))
            if await object_sha256(dst, key) != digest:
                raise FilesNotMovable(
                    f"the copy of {key!r} in region {target!r} differs "
                    f"from the original; run the move again"
                )
            checked.append(key)
            copied += 1
        log.info("account %s: %d %s objects copied to %s", account_id, copied, self.name, target)
        return checked

    async def drop(self, account_id: str, region: str) -> None:
        """Copy what came to ``region`` since the copy step to where the account lives
        now, then delete the account's objects in ``region`` that were copied (one
        written after this drop listed them stays, for a later run to copy)."""
        target = self.region_of(account_id)
        if target == region:
            return  # not moved away (a move back and forth): nothing to delete
        src = self.objects[region]
        for key in await self._copy(account_id, region, target):
            await src.delete(key)


async def object_sha256(store: ObjectStore, key: str) -> str:
    """The SHA-256 of a stored object's bytes, in hex (streamed)."""
    digest = hashlib.sha256()
    async for chunk in store.stream(key):
        digest.update(chunk)
    return digest.hexdigest()


def copy_project_assets(source: AssetStore, target: AssetStore, project_id: str) -> int:
    """Copy ``project_id``'s assets and then its index (blocking); files copied."""
    copied = 0
    index = source._index(project_id)  # noqa: SLF001 - the layout's owner is this pair
    if not index.exists():
        return 0
    for asset_id in source.project_assets(project_id):
        folder = Path("objects") / asset_id[:2]
        for path in sorted((source.root / folder).glob(f"{asset_id}.*")):
            rel = folder / path.name
            if path.suffix == ".json":  # the description names its audio's path
                if write_file(target.root / rel, described_in(path, source.root, target.root)):
                    copied += 1
            elif copy_file(path, target.root / rel):
                copied += 1
            if path.name.split(".", 1)[1] in ("wav", "flac", "aiff") and (
                sha256(target.root / rel) != asset_id
            ):
                raise FilesNotMovable(
                    f"the audio {rel} does not hash to its name in "
                    f"{target.root}; the move stops, nothing is deleted"
                )
    names = source._names(project_id)  # noqa: SLF001 - the names each upload had there
    if names.exists():
        copy_file(names, target._names(project_id))  # noqa: SLF001
    copy_file(index, target._index(project_id))  # noqa: SLF001
    return copied


def copy_file(source: Path, target: Path) -> bool:
    """Make ``target`` hold ``source``'s bytes (renamed into place); False if it did."""
    if (
        target.exists()
        and target.stat().st_size == source.stat().st_size
        and (sha256(target) == sha256(source))
    ):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.moving")
    with open(source, "rb") as src, open(partial, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    if sha256(partial) != sha256(source):
        partial.unlink(missing_ok=True)
        raise FilesNotMovable(f"the copy of {source} changed on the way; run the move again")
    os.replace(partial, target)
    return True


def described_in(description: Path, source_root: Path, target_root: Path) -> bytes:
    """An asset's description (JSON) with its audio's path moved to ``target_root``."""
    data = json.loads(description.read_bytes())
    path = Path(data.get("path", ""))
    if path.is_relative_to(source_root):
        data["path"] = str(target_root / path.relative_to(source_root))
    return json.dumps(data).encode()


def write_file(target: Path, data: bytes) -> bool:
    """Make ``target`` hold ``data`` (renamed into place); False if it did already."""
    if target.exists() and target.read_bytes() == data:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.moving")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target)
    return True


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def repoint_sources(document: Any, source_root: Path, target_root: Path) -> int:
    """Point every clip whose source is a file under ``source_root`` at the same name
    under ``target_root``; how many clips changed."""
    changed = 0
    for clip_id, clip_source in document.clip_source_map().items():
        path = Path(clip_source)
        if path.is_relative_to(source_root):
            document.update_clip(clip_id, source=str(target_root / path.relative_to(source_root)))
            changed += 1
    return changed
