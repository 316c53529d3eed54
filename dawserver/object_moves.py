"""Moving a project's audio when either region keeps its assets on object storage (S3).

:class:`~dawserver.file_moves.AssetMoveHook` copies between two asset directories
itself; when the source's or the target's :class:`~dawserver.asset_store.AssetStore`
has ``objects`` (:mod:`dawserver.asset_objects`) it calls :func:`copy_project` here,
which works for every pair: local disk → S3, S3 → local disk, S3 → S3 (another bucket,
prefix or endpoint).

For each asset the project uses (its local index, its memberships on the object store,
and takes recorded on this node but not yet published), every file of it (the audio,
its peaks, its description) is **streamed** from the source to the target, never held
whole in memory (an S3 target takes it as a multipart upload), unless the target
already holds the same bytes; each copy is then read back and checked (size and
SHA-256; the audio against its name, which is its SHA-256). Nothing of the source is
touched. The order on the target mirrors an upload there, so a crash at any point
leaves nothing that a rerun does not finish and nothing that looks whole but is not:

- object storage: the membership first (:func:`~dawserver.asset_objects.add_member`:
  a deletion of another project sharing the asset then keeps its audio), then the
  audio and peaks (written again when the target does not describe the asset, whatever
  bytes it holds: they may be forgotten audio being collected), then the description
  (an asset exists once it does), then a check that every object is there;
- local disk: the project's index entry first (the local membership, synced), then
  each file through a temporary file of its own name, synced, renamed into place and
  its folder synced, the description naming the target's path.

In the drop (``cleaning``) an asset with a membership but no description in the source
is an upload still writing it: :class:`UploadInFlight` makes the move wait (its job
retries) until it is done, or :data:`UPLOAD_IN_FLIGHT_S` after it was first seen (a
crashed upload, then forgotten with the project).

:func:`forget_source` is the drop's deletion in the source: the project leaves the
lists of takes waiting to be published first, then memberships and the descriptions of
assets no other project uses go at once, their audio and peaks after
:data:`~dawserver.asset_objects.FORGET_GRACE_S` (as for a deleted project), and the
node's local cache of them. :func:`copy_asset` and :func:`forget_asset` do the same
for one asset: an upload that ended after its account moved follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from . import asset_cache, asset_objects
from .asset_objects import AUDIO_EXTENSIONS, MEDIA_TYPES, object_key
from .asset_store import AssetNotFound, AssetStore
from .storage import ObjectNotFound, StorageError
from .storage.base import CHUNK

log = logging.getLogger(__name__)

#: ``report(files, bytes)``: what was copied (or found already there) so far.
Report = Callable[[int, int], None]


#: Seconds an upload may hold a membership in the source without its description (its
#: objects still being written) before the clean step takes it for a crashed upload.
UPLOAD_IN_FLIGHT_S = 600.0


class ObjectCopyFailed(StorageError):
    """A copy read back from the target differs from its source."""


class UploadInFlight(StorageError):
    """An upload to the source is still writing an asset of the project: the clean step
    waits for it (the move job retries) rather than forget its membership."""


@dataclass
class Copied:
    """What one :func:`copy_project` did."""

    files: int = 0  #: files written to the target
    kept: int = 0  #: files the target held already (the same bytes)
    bytes: int = 0  #: bytes written
    missing: int = 0  #: assets listed by the project but found nowhere in the source


async def has_project(store: AssetStore, project_id: str) -> bool:
    """Whether ``store`` holds anything of ``project_id`` (its index or memberships)."""
    if store._index(project_id).exists():  # noqa: SLF001 - the layout's owner is this pair
        return True
    return bool(await asset_objects.project_assets(store, project_id))


async def reachable(store: AssetStore, region: str) -> None:
    """:class:`StorageError` (saying so) if ``store``'s object store does not answer."""
    if store.objects is None:
        return
    try:
        await store.objects.exists("assets/objects/move-check")
    except StorageError as exc:
        raise StorageError(f"the object storage of region {region!r} cannot be reached "
                           f"({exc})") from exc


async def copy_project(source: AssetStore, target: AssetStore, project_id: str,
                       report: Report | None = None, *, cleaning: bool = False) -> Copied:
    """Copy ``project_id``'s assets from ``source`` to ``target`` and check every copy
    (see the module); repeatable, and a rerun after a crash finishes the job.

    ``cleaning`` (the clean step, before :func:`forget_source`): an asset whose
    membership is in the source but whose description is not yet (an upload writing it)
    raises :class:`UploadInFlight`, so the move waits for it, unless it has been so for
    :data:`UPLOAD_IN_FLIGHT_S` (a crashed upload): then it is logged and counted missing.
    """
    done = Copied()
    for asset_id in await asset_objects.project_assets(source, project_id):
        files = await _source_files(source, asset_id)
        if not files:
            if cleaning:
                await _wait_for_upload(source, project_id, asset_id)
            log.warning("project %s lists asset %s, which region storage %s does not "
                        "hold; nothing to copy", project_id, asset_id, source.root)
            done.missing += 1
            continue
        await copy_asset(source, target, project_id, asset_id, files, done, report)
    return done


async def copy_asset(source: AssetStore, target: AssetStore, project_id: str,
                     asset_id: str, files: dict[str, _File] | None = None,
                     done: Copied | None = None, report: Report | None = None) -> Copied:
    """Copy one asset of ``project_id`` (every file of it, checked) from ``source`` to
    ``target``, in the order of an upload there (see the module); :class:`AssetNotFound`
    if ``source`` does not hold it whole."""
    done = Copied() if done is None else done
    files = await _source_files(source, asset_id) if files is None else files
    if not files:
        raise AssetNotFound(f"region storage {source.root} does not hold asset {asset_id} "
                            f"whole; nothing to copy")
    name = await asset_objects.project_name(source, project_id, asset_id)  # goes along
    if target.objects is not None:
        await asset_objects.add_member(target.objects, project_id, asset_id, name)
        # not described there (absent, or forgotten and in its grace period): its audio
        # is written again whatever bytes are there, as an upload does
        described = await target.objects.exists(object_key(asset_id, "json"))
    else:  # the index first: a deletion of another project sharing it keeps its files
        await asyncio.to_thread(_write_index, target, project_id, [asset_id], name)
        described = True
    # the audio and peaks first, the description last: it says the asset exists
    for suffix in sorted(files, key=lambda s: s == "json"):
        written = await _copy_file(source, target, asset_id, suffix, files[suffix],
                                   rewrite=not described)
        done.files += written > 0
        done.kept += written == 0
        done.bytes += max(written, 0)
        if report is not None:
            report(done.files + done.kept, done.bytes)
    if target.objects is not None:
        await _check_whole(target, asset_id, files)
    return done


async def _check_whole(target: AssetStore, asset_id: str, files: dict[str, _File]) -> None:
    """:class:`ObjectCopyFailed` if an object of the asset went from the target after it
    was written (a collection of it as forgotten that had begun before the membership)."""
    assert target.objects is not None
    for suffix in files:
        if not await target.objects.exists(object_key(asset_id, suffix)):
            raise ObjectCopyFailed(f"{object_key(asset_id, suffix)!r} went from the target "
                                   f"while it was copied; run the move again")


def _waiting_key(project_id: str, asset_id: str) -> str:
    return f"assets/moving/{asset_objects._safe(project_id)}/{asset_id}"  # noqa: SLF001


async def _wait_for_upload(source: AssetStore, project_id: str, asset_id: str) -> None:
    """:class:`UploadInFlight` while ``asset_id`` (a membership without a description)
    has been seen so for less than :data:`UPLOAD_IN_FLIGHT_S`; after that, return (it
    is taken for a crashed upload and forgotten with the project)."""
    if source.objects is None:
        return  # a local index is written after its files: never in flight
    key = _waiting_key(project_id, asset_id)
    try:
        since = float(await source.objects.get(key))
    except (ObjectNotFound, ValueError):
        since = time.time()
        await source.objects.put(key, str(since).encode())
    waited = time.time() - since
    if waited < UPLOAD_IN_FLIGHT_S:
        raise UploadInFlight(
            f"an upload of asset {asset_id} to project {project_id} in region storage "
            f"{source.root} is still being written ({waited:.0f} s); the move goes on once "
            f"it is done, or after {UPLOAD_IN_FLIGHT_S:.0f} s if it never is")
    log.warning("project %s has had a membership of asset %s without its objects in %s "
                "for %.0f s (a crashed upload): it is forgotten with the project",
                project_id, asset_id, source.root, waited)


async def forget_source(source: AssetStore, project_id: str) -> int:
    """Delete ``project_id``'s assets in ``source`` after its copy was switched to
    (see the module); how many objects and files went."""
    count = 0
    if source.objects is not None:
        # a collection over every marker: not under the lock, which holds up publishing
        count += await asset_objects.collect_forgotten(source)
        # first, and under the publishing lock: a take waiting to be published for it
        # (copied from here already) must never be published again for it, which would
        # bring its membership back
        async with asset_objects.publishing(source):
            await asyncio.to_thread(_unmark_pending, source, project_id)
            count += await asset_objects.forget_project(source, project_id, collect=False)
        for key in await source.objects.keys(_waiting_key(project_id, "")):
            await source.objects.delete(key)
    count += len(await asyncio.to_thread(source.forget_project, project_id))
    return count


async def forget_asset(store: AssetStore, project_id: str, asset_id: str) -> None:
    """Take ``asset_id`` out of ``project_id`` in ``store`` (an upload that landed in the
    region its account left): its membership and index entry go, and the asset itself
    when no other project uses it (on object storage: its description at once, its
    audio after the grace period, as :func:`~dawserver.asset_objects.forget_project`)."""
    if store.objects is not None:
        await asset_objects.forget_member(store, project_id, asset_id)
    await asyncio.to_thread(_unindex, store, project_id, asset_id)


def _unindex(store: AssetStore, project_id: str, asset_id: str) -> None:
    """Take ``asset_id`` out of the project's local index; its local files go when no
    other index lists it and no reader has it pinned or leased
    (:func:`~dawserver.asset_cache.in_use`: a render may be reading them), else they
    stay as cached files, which eviction deletes once no one uses them."""
    index = store._index(project_id)  # noqa: SLF001 - the layout's owner is this pair
    with store._indexes:  # noqa: SLF001
        store._forget_name(project_id, asset_id)  # noqa: SLF001
        rest = [a for a in store.project_assets(project_id) if a != asset_id]
        if index.exists():
            if rest:
                store._write_atomic(index, "".join(f"{a}\n" for a in rest).encode())  # noqa: SLF001
            else:
                index.unlink()
        for other in (store.root / "projects").glob("*.txt"):
            if asset_id in other.read_text().split():
                return
        if asset_id in asset_cache.in_use(store):
            log.info("asset %s left project %s here but is in use: its files stay cached",
                     asset_id, project_id)
            return
        cached = asset_cache.cache_size(store)
        for path in (store.root / "objects" / asset_id[:2]).glob(f"{asset_id}.*"):
            cached.delete(path)


def _unmark_pending(store: AssetStore, project_id: str) -> None:
    """Take ``project_id`` out of every take's list of projects waiting to be published
    (each list rewritten without it; a list left empty goes)."""
    for asset_id, projects in asset_cache.pending(store).items():
        if project_id in projects:
            asset_cache.unmark_pending(store, asset_id, [project_id])


# -- reading the source ---------------------------------------------------------------

@dataclass(frozen=True)
class _File:
    """One file of an asset in the source: on its object store, or on local disk."""

    key: str | None  # the object's key (None: the local file)
    path: Path


async def _source_files(store: AssetStore, asset_id: str) -> dict[str, _File]:
    """Suffix → where to read each file of ``asset_id``: the object store when it
    describes the asset, else this node's local files (a take not yet published)."""
    folder = store.root / "objects" / asset_id[:2]
    if store.objects is not None and await store.objects.exists(object_key(asset_id, "json")):
        prefix = f"assets/objects/{asset_id[:2]}/{asset_id}."
        files = {key[len(prefix):]: _File(key, folder / key.rsplit("/", 1)[1])
                 for key in await store.objects.keys(prefix)}
        return files if _whole(files) else {}
    return await local_files(store, asset_id)


async def local_files(store: AssetStore, asset_id: str) -> dict[str, _File]:
    """Suffix → this node's local file of each file of ``asset_id`` (for
    :func:`copy_asset`: a take waiting to be published, never evicted, whatever the
    region's object store holds of it); empty unless they are whole."""
    folder = store.root / "objects" / asset_id[:2]

    def local() -> dict[str, _File]:
        return {path.name.split(".", 1)[1]: _File(None, path)
                for path in sorted(folder.glob(f"{asset_id}.*"))}

    files = await asyncio.to_thread(local)
    return files if _whole(files) else {}


def _whole(files: dict[str, _File]) -> bool:
    """Whether ``files`` has a description and audio (else: evicted audio, or no
    description; nothing to copy)."""
    return "json" in files and any(s in files for s in AUDIO_EXTENSIONS)


async def _read(store: AssetStore, file: _File) -> AsyncIterator[bytes]:
    if file.key is not None:
        assert store.objects is not None
        async for chunk in store.objects.stream(file.key):
            yield chunk
        return
    with open(file.path, "rb") as src:  # noqa: ASYNC230 - 1 MiB reads, as put_file does
        while chunk := await asyncio.to_thread(src.read, CHUNK):
            yield chunk


async def _description(store: AssetStore, file: _File) -> dict:
    data = json.loads(b"".join([chunk async for chunk in _read(store, file)]))
    data.pop("path", None)
    return data


# -- writing the target ---------------------------------------------------------------

async def _copy_file(source: AssetStore, target: AssetStore, asset_id: str, suffix: str,
                     file: _File, *, rewrite: bool = False) -> int:
    """Make the target hold ``file`` (checked); bytes written, 0 if it held them (never
    with ``rewrite``, but for the description)."""
    if suffix == "json":
        meta = await _description(source, file)
        return await _put_description(target, asset_id, meta)
    want = asset_id if suffix in AUDIO_EXTENSIONS else None  # the audio's name is its hash
    if want is None:
        want = await _digest(_read(source, file))
    if not rewrite and await _target_digest(target, asset_id, suffix) == want:
        return 0
    size = await _write(target, asset_id, suffix, _read(source, file), want)
    return size


async def _digest(chunks: AsyncIterator[bytes]) -> str:
    digest = hashlib.sha256()
    async for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


async def _target_digest(target: AssetStore, asset_id: str, suffix: str) -> str | None:
    """The SHA-256 of the target's file (None: absent)."""
    if target.objects is not None:
        try:
            return await _digest(target.objects.stream(object_key(asset_id, suffix)))
        except ObjectNotFound:
            return None
    path = _local_path(target, asset_id, suffix)
    if not path.is_file():
        return None
    return await asyncio.to_thread(_file_sha256, path)


async def _write(target: AssetStore, asset_id: str, suffix: str,
                 chunks: AsyncIterator[bytes], want: str) -> int:
    """Stream ``chunks`` into the target's file, read it back and check its SHA-256
    against ``want`` (:class:`ObjectCopyFailed` if it differs: nothing is trusted)."""
    size = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal size
        async for chunk in chunks:
            size += len(chunk)
            yield chunk

    if target.objects is not None:
        key = object_key(asset_id, suffix)
        written = await target.objects.put(key, counted(), content_type=MEDIA_TYPES.get(
            suffix, "application/octet-stream"))
        got_size, got = await _sized_digest(target.objects.stream(key))
        if got != want or got_size != written:
            await target.objects.delete(key)
            raise ObjectCopyFailed(f"the copy of {key!r} read back from the target differs "
                                   f"from its source ({got_size} bytes, SHA-256 {got}, "
                                   f"expected {want}); it was deleted, run the move again")
        return written
    path = _local_path(target, asset_id, suffix)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    partial = await asyncio.to_thread(_temporary, path)
    try:
        with open(partial, "wb") as out:  # noqa: ASYNC230 - every write in a thread
            async for chunk in counted():
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(_sync, out)
        got = await asyncio.to_thread(_file_sha256, partial)
        if got != want:
            raise ObjectCopyFailed(f"the copy of {path.name} differs from its source "
                                   f"(SHA-256 {got}, expected {want}); run the move again")
        await asyncio.to_thread(_replace, partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return size


async def _put_description(target: AssetStore, asset_id: str, meta: dict) -> int:
    """Write the asset's description (on local disk: naming the target's audio path)."""
    if target.objects is not None:
        key = object_key(asset_id, "json")
        if await target.objects.exists(key):  # described there (by another upload): kept
            return 0
        data = json.dumps(meta).encode()
        await target.objects.put(key, data, content_type="application/json")
        if json.loads(await target.objects.get(key)) != meta:
            raise ObjectCopyFailed(f"the description {key!r} read back from the target "
                                   f"differs from its source; run the move again")
        return len(data)
    path = _local_path(target, asset_id, "json")
    described = {**meta, "path": str(_local_path(target, asset_id, meta["format"]))}
    data = json.dumps(described).encode()

    def write() -> int:
        with contextlib.suppress(FileNotFoundError, ValueError):
            there = json.loads(path.read_bytes())
            if there.get("id") == asset_id and there.get("path") == described["path"]:
                return 0  # described there already (by another upload): kept
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = _temporary(path)
        try:
            with open(partial, "wb") as out:
                out.write(data)
                _sync(out)
            _replace(partial, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return len(data)

    return await asyncio.to_thread(write)


def _write_index(target: AssetStore, project_id: str, asset_ids: list[str],
                 name: str | None = None) -> None:
    """Add ``asset_ids`` to the project's index in ``target`` (before their files), under
    ``name`` when known, and sync it to disk."""
    index = target._index(project_id)  # noqa: SLF001 - the layout's owner is this pair
    with target._indexes:  # noqa: SLF001
        index.parent.mkdir(parents=True, exist_ok=True)
        for asset_id in asset_ids:
            target._remember(project_id, asset_id, name)  # noqa: SLF001
        with open(index, "rb") as written:
            os.fsync(written.fileno())
    _sync_dir(index.parent)


async def _sized_digest(chunks: AsyncIterator[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _local_path(store: AssetStore, asset_id: str, suffix: str) -> Path:
    return store.root / "objects" / asset_id[:2] / f"{asset_id}.{suffix}"


def _temporary(path: Path) -> Path:
    """A new temporary file beside ``path``, named for no other writer (another runner
    of the same move included)."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                    suffix=".moving")
    os.close(handle)
    return Path(name)


def _replace(partial: Path, path: Path) -> None:
    """Rename ``partial`` (synced) to ``path`` and sync the directory, so the rename
    outlives a crash."""
    os.replace(partial, path)
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _sync(out: object) -> None:
    out.flush()  # type: ignore[attr-defined]
    os.fsync(out.fileno())  # type: ignore[attr-defined]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
