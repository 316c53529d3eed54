"""Assets on an object store (S3), with the asset directory as a bounded local cache.

When an :class:`~dawserver.asset_store.AssetStore` has ``objects``, the object store
holds every asset and which projects use it; the local directory keeps descriptions and
peaks of the assets this node has seen, and the audio of recently used ones for the C
engine (which reads local files), evicted oldest-used first beyond ``cache_bytes``.

Keys (under the store's prefix)::

    assets/objects/ab/<sha256>.<wav|flac|aiff>   the audio, as uploaded
    assets/objects/ab/<sha256>.peaks.npz         its peaks
    assets/objects/ab/<sha256>.json              its description: written last, so an
                                                 asset exists once this object does
    assets/projects/<project id>/<sha256>        membership: the project uses the asset;
                                                 JSON {"name": ...}, the name it was
                                                 uploaded there under (empty: from
                                                 before names were kept per project)
    assets/members/ab/<sha256>/<project id>      the same membership, found by asset
    assets/forgotten/<sha256>                    a project let it go (unix time): its
                                                 audio goes after a grace period if
                                                 then no project uses it

An upload is checked locally first. Its membership is written *before* its objects, so a
project deletion that looks at the asset's members (``assets/members/ab/<sha256>/``, a
short listing) either sees the upload or has already removed the description, which the
upload then finds missing and writes again. If the object store fails on the way, the
membership is taken back, nothing is recorded locally, and the caller answers 503.

A deleted project's assets that no other project uses stop existing at once (their
description goes) but their audio and peaks are deleted only by :func:`collect_forgotten`
once :data:`FORGET_GRACE_S` has passed with still no member and no description, so an
upload of the same bytes racing with the deletion never ends with a membership of
missing audio: the collection never deletes a description, keeps a local copy of what it
deletes and puts it back if a member joined meanwhile, and an upload that finds the
description writes again any audio or peaks missing. Each asset is marked forgotten
before its membership and description go, so a deletion cut short at any step is
finished by a rerun or by the collection.

The local cache never evicts a file that is pinned (:func:`ensure_local`,
:mod:`dawserver.asset_cache`) or a recorded take not yet published (:func:`keep_take`).

A take waits in the cache of the node that recorded it, where no other node's region
move sees it, so with data regions (:func:`follow_moves`) :func:`publish_pending` puts it
where its project lives *when it is published*, as an upload follows a moved account:
into the region the project's document is in then (through
:func:`~dawserver.object_moves.copy_asset` when that is not the region it was recorded
in), and, once it is there, asks again and follows the project if it moved meanwhile.
Each region it is copied into is noted first (``away/<asset id>`` in the node's asset
directory), and once the answer stays the same every other region noted loses it, so a
round cut short after a copy (a failure, a crash) leaves it, after its retry, only
where the project lives. A take whose project no region holds (deleted meanwhile) is
published nowhere: it stops waiting for it and leaves every region noted and the one it
was recorded in, its files going as a deleted project's do.
A move drops a region's documents before its assets, so a take found still at home
after it was published is there before the move's clean step looks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from dsp_core.peaks import Peaks, compute_peaks

from . import asset_cache
from .asset_store import _ASSET_ID, Asset, AssetError, AssetNotFound, AssetStore, named
from .storage import ObjectNotFound, ObjectStore, StorageError

log = logging.getLogger(__name__)

#: Seconds a forgotten asset's audio is kept before :func:`collect_forgotten` deletes it.
FORGET_GRACE_S = 3600.0
#: Seconds between attempts to publish a take the object store refused (doubling, capped).
PUBLISH_RETRY_S = (1.0, 300.0)

#: Per asset store: held while takes are published and while a region move takes a
#: project out of this store, so a publish never brings a moved project back.
_PUBLISHING: weakref.WeakKeyDictionary[
    AssetStore, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = weakref.WeakKeyDictionary()


def publishing(store: AssetStore) -> asyncio.Lock:
    """The lock :func:`publish_pending` holds per take; hold it to change what waits."""
    loop = asyncio.get_running_loop()
    held = _PUBLISHING.get(store)
    if held is None or held[0] is not loop:  # a lock serves the loop it was made for
        held = _PUBLISHING[store] = (loop, asyncio.Lock())
    return held[1]


#: ``await locate(project_id)``: the asset store of the region ``project_id`` lives in
#: now (None: no region knows it); :class:`StorageError` when that cannot be told now.
Locate = Callable[[str], Awaitable["AssetStore | None"]]
#: Per asset store: where its takes go (:func:`follow_moves`).
_LOCATORS: weakref.WeakKeyDictionary[AssetStore, Locate] = weakref.WeakKeyDictionary()


def follow_moves(store: AssetStore, locate: Locate) -> None:
    """Publish the takes ``store`` keeps where ``locate`` says their project lives then
    (see the module), not always into ``store``'s own object store."""
    _LOCATORS[store] = locate


MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "aiff": "audio/aiff"}
AUDIO_EXTENSIONS = tuple(MEDIA_TYPES)


def object_key(asset_id: str, suffix: str) -> str:
    """The key of one of an asset's objects (``wav``, ``peaks.npz``, ``json``, ...)."""
    return f"assets/objects/{asset_id[:2]}/{asset_id}.{suffix}"


def member_key(project_id: str, asset_id: str) -> str:
    """The key that records ``project_id`` using ``asset_id``."""
    return f"{_project_prefix(project_id)}{asset_id}"


def _project_prefix(project_id: str) -> str:
    return f"assets/projects/{_safe(project_id)}/"


def _safe(project_id: str) -> str:
    return re.sub(r'[^A-Za-z0-9._-]', '_', project_id)


def _members_prefix(asset_id: str) -> str:
    return f"assets/members/{asset_id[:2]}/{asset_id}/"


def _forgotten_key(asset_id: str) -> str:
    return f"assets/forgotten/{asset_id}"


async def _join(objects: ObjectStore, project_id: str, asset_id: str,
                name: str | None = None) -> None:
    body = b"" if name is None else json.dumps({"name": name}).encode()
    await objects.put(member_key(project_id, asset_id), body)
    await objects.put(_members_prefix(asset_id) + _safe(project_id), b"")


async def add_member(objects: ObjectStore, project_id: str, asset_id: str,
                     name: str | None = None) -> None:
    """Record that ``project_id`` uses ``asset_id``, under ``name`` when known (before its
    objects are written: see the module on deletions); a region move writes it as an
    upload does."""
    await _join(objects, project_id, asset_id, name)


async def _leave(objects: ObjectStore, project_id: str, asset_id: str) -> None:
    await objects.delete(_members_prefix(asset_id) + _safe(project_id))
    await objects.delete(member_key(project_id, asset_id))


def _objects(store: AssetStore) -> ObjectStore:
    if store.objects is None:
        raise RuntimeError("this asset store keeps its assets on local disk only")
    return store.objects


async def ingest_remote(store: AssetStore, tmp: Path, asset_id: str, size: int,
                        project_id: str, name: str, executor: Any = None) -> Asset:
    """Check an upload, put it in the object store, then cache and index it locally."""
    loop = asyncio.get_running_loop()
    objects = _objects(store)
    ext, audio, rate = await loop.run_in_executor(executor, store._check, tmp, name)
    peaks: Peaks | None = None
    # first: see the module on deletions
    await _join(objects, project_id, asset_id, os.path.basename(name))
    try:
        if not await objects.exists(object_key(asset_id, "json")):  # identical bytes: once
            peaks = await loop.run_in_executor(executor, compute_peaks, audio, rate)
            await objects.put_file(object_key(asset_id, ext), tmp,
                                   content_type=MEDIA_TYPES[ext])
            await objects.put(object_key(asset_id, "peaks.npz"), peaks.to_bytes())
            meta = {"id": asset_id, "format": ext, "sample_rate": rate,
                    "frames": int(audio.shape[1]), "channels": int(audio.shape[0]),
                    "name": os.path.basename(name), "bytes": size}
            await objects.put(object_key(asset_id, "json"), json.dumps(meta).encode(),
                              content_type="application/json")
        else:  # described: put back what an interrupted collection left missing
            if not await objects.exists(object_key(asset_id, ext)):
                await objects.put_file(object_key(asset_id, ext), tmp,
                                       content_type=MEDIA_TYPES[ext])
            if not await objects.exists(object_key(asset_id, "peaks.npz")):
                peaks = await loop.run_in_executor(executor, compute_peaks, audio, rate)
                await objects.put(object_key(asset_id, "peaks.npz"), peaks.to_bytes())
    except BaseException:
        with contextlib.suppress(StorageError):
            await _leave(objects, project_id, asset_id)
        raise
    asset = await loop.run_in_executor(executor, store._place, tmp, asset_id, size,
                                       project_id, name, ext, audio, rate, peaks)
    _keep_checked(store, project_id, {asset_id: os.path.basename(name)})
    asset_cache.cache_size(store).note(Path(asset.path))
    await asyncio.to_thread(evict, store, {asset.path})
    return asset


async def pull(store: AssetStore, asset_id: str) -> Asset:
    """The asset's description (and peaks), fetched into the local directory if absent."""
    try:
        return store.asset(asset_id)
    except AssetNotFound:
        if not _ASSET_ID.match(asset_id) or store.objects is None:
            raise
    objects = _objects(store)
    try:
        meta = json.loads(await objects.get(object_key(asset_id, "json")))
        peaks = await objects.get(object_key(asset_id, "peaks.npz"))
    except ObjectNotFound:
        raise AssetNotFound(f"no asset {asset_id}") from None
    final = store._object(asset_id, meta["format"])
    described = Asset(path=str(final), **{k: meta[k] for k in (
        "id", "format", "sample_rate", "channels", "frames", "name", "bytes")})

    def write() -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        store._write_atomic(final.with_suffix(".peaks.npz"), peaks)
        store._write_atomic(final.with_suffix(".json"), json.dumps(
            described.__dict__).encode())

    await asyncio.to_thread(write)
    return store.asset(asset_id)


async def is_member(store: AssetStore, project_id: str, asset_id: str) -> bool:
    """Whether ``project_id`` uses ``asset_id`` (the local index, else the object store)."""
    if store.belongs(project_id, asset_id):
        return True
    if store.objects is None or not _ASSET_ID.match(asset_id):
        return False
    if await store.objects.exists(member_key(project_id, asset_id)):
        await asyncio.to_thread(_remember, store, project_id, asset_id)
        return True
    return False


def _remember(store: AssetStore, project_id: str, asset_id: str) -> None:
    with store._indexes:
        store._remember(project_id, asset_id)


def _note_names(store: AssetStore, project_id: str, found: dict[str, str | None]) -> None:
    with store._indexes:
        store._note_names(project_id, found)


#: Seconds this node trusts a project's name of an asset read from the object store (or
#: uploaded here) before it reads the membership again: another node may have uploaded
#: the same bytes to the project under another name since.
NAME_RECHECK_S = 60.0
#: Memberships read at once when a listing reads its project's names.
NAME_READS = 16
#: Seconds before a listing reads again the names the object store could not tell it.
NAME_RETRY_S = 5.0

#: Name reads kept per asset store before the expired ones (due again, so no better than
#: none) are dropped.
MAX_CHECKED = 10_000
#: Per asset store: (project id, asset id) → (when its name was read, monotonic; the name).
_CHECKED: weakref.WeakKeyDictionary[
    AssetStore, dict[tuple[str, str], tuple[float, str | None]]] = weakref.WeakKeyDictionary()


def _checked(store: AssetStore) -> dict[tuple[str, str], tuple[float, str | None]]:
    return _CHECKED.setdefault(store, {})


def _keep_checked(store: AssetStore, project_id: str, names: dict[str, str | None],
                  due_in: float | None = None) -> None:
    """Keep ``names`` as read now: due again in :data:`NAME_RECHECK_S` (or ``due_in``)."""
    now = time.monotonic()
    read_at = now - (0.0 if due_in is None else NAME_RECHECK_S - due_in)
    checked = _checked(store)
    checked.update({(project_id, asset_id): (read_at, name)
                    for asset_id, name in names.items()})
    if len(checked) > MAX_CHECKED:  # of every asset ever looked up, a deleted one's too
        for key in [key for key, (at, _) in checked.items() if _due(at, now)]:
            del checked[key]


def _due(read_at: float, now: float) -> bool:
    """Whether a name read at ``read_at`` (monotonic) is to be read again at ``now``."""
    return now - read_at >= NAME_RECHECK_S


def _name_due(store: AssetStore, project_id: str, asset_id: str) -> bool:
    known = _checked(store).get((project_id, asset_id))
    return known is None or _due(known[0], time.monotonic())


async def _read_member_names(store: AssetStore, project_id: str, asset_ids: list[str]
                             ) -> tuple[dict[str, str | None], list[str]]:
    """The names the memberships of ``asset_ids`` in ``project_id`` hold, and the ids
    with no membership there; an id the object store cannot answer for now is in
    neither (logged)."""
    objects = _objects(store)
    found: dict[str, str | None] = {}
    missing: list[str] = []

    async def read(asset_id: str) -> None:
        try:
            body = await objects.get(member_key(project_id, asset_id))
        except ObjectNotFound:
            missing.append(asset_id)
        except StorageError as exc:  # this node's name this time; asked again later
            log.warning("cannot read the name of asset %s in project %s: %s", asset_id,
                        project_id, exc)
        else:
            found[asset_id] = _member_name(body, project_id, asset_id)

    for at in range(0, len(asset_ids), NAME_READS):
        await asyncio.gather(*(read(asset_id) for asset_id in asset_ids[at:at + NAME_READS]))
    return found, missing


async def project_name(store: AssetStore, project_id: str, asset_id: str,
                       names: dict[str, str | None] | None = None) -> str | None:
    """The name ``project_id`` uploaded ``asset_id`` under (its latest upload there).

    With an object store, its membership's, kept on this node and read again once
    :data:`NAME_RECHECK_S` has passed; within a listing (``names``: the project's names
    the caller read once, :meth:`AssetStore.project_names`) every name of the project
    due is read then, and all are kept in one rewrite. This node's name (``names``)
    while the object store cannot say or holds no membership (a take not yet
    published); None when none was kept (an upload from before names were kept per
    project)."""
    if store.objects is None or not _ASSET_ID.match(asset_id):
        if names is None:  # a file read: off the event loop
            names = await asyncio.to_thread(store.project_names, project_id)
        return names.get(asset_id)
    known = _checked(store).get((project_id, asset_id))
    if known is not None and not _due(known[0], time.monotonic()):
        return known[1]
    due = [asset_id]
    if names is not None:  # a listing: the others due are read with it
        with contextlib.suppress(StorageError):  # then only this one
            due += [other for other in await project_assets(store, project_id)
                    if other != asset_id and _ASSET_ID.match(other)
                    and _name_due(store, project_id, other)]
    found, missing = await _read_member_names(store, project_id, due)
    if found:
        await asyncio.to_thread(_note_names, store, project_id, found)
    if names is None and asset_id not in found:
        names = await asyncio.to_thread(store.project_names, project_id)
    if names is not None:
        names.update(found)
        _keep_checked(store, project_id, {other: names.get(other) for other in missing})
        # the others it could not tell: this node's names for the rest of the listing
        _keep_checked(store, project_id, {
            other: names.get(other) for other in due[1:]
            if other not in found and other not in missing}, due_in=NAME_RETRY_S)
    _keep_checked(store, project_id, found)
    return names.get(asset_id) if names is not None else found[asset_id]


def _member_name(body: bytes, project_id: str, asset_id: str) -> str | None:
    """The name a membership object's body holds (None: empty, from before names)."""
    try:
        name = json.loads(body)["name"] if body else None
    except (ValueError, KeyError, TypeError):
        log.warning("membership of asset %s in project %s is not JSON; its name is "
                    "not shown", asset_id, project_id)
        return None
    return name if isinstance(name, str) else None


async def pull_for(store: AssetStore, project_id: str, asset_id: str,
                   names: dict[str, str | None] | None = None) -> Asset:
    """:func:`pull`, named as ``project_id`` named it: identical bytes are stored once,
    under the first upload's name, and another project never sees that name
    (``names``: the project's, read once for a list)."""
    asset = await pull(store, asset_id)
    return named(asset, await project_name(store, project_id, asset_id, names))


async def project_assets(store: AssetStore, project_id: str) -> list[str]:
    """Ids of the assets ``project_id`` uses: this node's order, then the others'."""
    local = store.project_assets(project_id)
    if store.objects is None:
        return local
    prefix = _project_prefix(project_id)
    remote = [key[len(prefix):] for key in await store.objects.keys(prefix)]
    return local + [asset_id for asset_id in remote if asset_id not in set(local)]


async def has_audio(store: AssetStore, asset: Asset) -> bool:
    """Whether ``asset``'s audio is there to read: in this node's cache, else in the
    object store (asked, nothing downloaded)."""
    if Path(asset.path).is_file():
        return True
    return store.objects is not None and await store.objects.exists(
        object_key(asset.id, asset.format))


#: Times :func:`local_file` fetches a file that evictions begun before its lease delete.
_FETCHES = 3


async def local_file(store: AssetStore, asset_id: str) -> Path:
    """The asset's audio on local disk (downloaded into the cache if absent), marked
    recently used and leased for :data:`~dawserver.asset_cache.LEASE_S` (not evicted
    meanwhile); :class:`AssetNotFound` if there is no such asset."""
    asset = await pull(store, asset_id)
    path = Path(asset.path)
    # first: an eviction (of any process) from now on keeps it; the caller reads it next
    asset_cache.lease(store, asset_id)
    for attempt in range(_FETCHES):
        if not path.is_file():
            if store.objects is None:
                raise AssetNotFound(f"the audio of asset {asset_id} is missing on the server")
            try:
                await store.objects.download(object_key(asset_id, asset.format), path)
            except ObjectNotFound:
                raise AssetNotFound(f"the audio of asset {asset_id} is gone") from None
            log.info("cached asset %s (%d bytes)", asset_id, asset.bytes)
        try:
            asset_cache.mark_used(path)
            break
        except FileNotFoundError:  # evicted by a run that began before the lease
            if store.objects is None or attempt == _FETCHES - 1:
                raise
    asset_cache.cache_size(store).note(path)
    await asyncio.to_thread(evict, store, {str(path)})
    return path


@contextlib.asynccontextmanager
async def ensure_local(store: AssetStore, asset_ids: Collection[str]
                       ) -> AsyncIterator[dict[str, Path]]:
    """Pin ``asset_ids`` and bring their audio into the local cache; inside the ``async
    with`` block none of them is evicted (by this or another process). Yields asset id →
    local path. Use it around every build, render or bounce that reads cached files;
    :class:`AssetNotFound` for a missing asset."""
    with asset_cache.pinned(store, asset_ids):
        paths = {asset_id: await local_file(store, asset_id) for asset_id in asset_ids}
        yield paths


def source_asset_id(store: AssetStore, source: str) -> str | None:
    """The asset id a clip source names when it is a file of this store's ``objects/``."""
    path = Path(source)
    if path.parent.parent != store.root / "objects":
        return None
    asset_id = path.name.split(".")[0]
    return asset_id if _ASSET_ID.match(asset_id) else None


def evict(store: AssetStore, keep: Collection[str] = ()) -> list[Path]:
    """Delete cached audio, least recently used first, until the cache is within
    ``cache_bytes`` (only when an object store holds the assets); the files deleted.
    Pinned files and takes not yet published are never deleted. The size is a running
    total (:class:`~dawserver.asset_cache.CacheSize`), not a scan of the directory."""
    if store.objects is None:
        return []
    size = asset_cache.cache_size(store)
    size.scan_if_due()
    if size.total <= store.cache_bytes:
        return []
    protected = asset_cache.pinned_ids(store)
    removed = []
    for path, _ in size.oldest_first():
        if size.total <= store.cache_bytes:
            break
        asset_id = path.name.split(".")[0]
        if str(path) in keep or asset_id in protected:
            continue
        if _delete_unless_used(store, path, asset_id):
            removed.append(path)
    if removed:
        log.info("asset cache: evicted %d files", len(removed))
    return removed


def _delete_unless_used(store: AssetStore, path: Path, asset_id: str) -> bool:
    """Delete the cached ``path`` unless ``asset_id`` is pinned or leased now; whether it
    did. A reader pins (or leases) before it looks for the file, so the pins are read
    just before the file is moved aside (under a name of this eviction's own), and again
    after: the file of a reader that leased between the two reads is put back, and one
    that comes later fetches it again, as after any eviction; it is never deleted under
    a reader. A reader that leased and found the file in the moment before the move,
    and opens it while it is aside, still finds it missing."""
    size = asset_cache.cache_size(store)
    if asset_id in asset_cache.pinned_ids(store):
        return False
    aside = path.with_name(f"{path.name}.{uuid.uuid4().hex}{asset_cache.EVICTING_SUFFIX}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:  # gone already (its project deleted, another eviction)
        size.forget(path)
        return False
    if asset_id in asset_cache.pinned_ids(store):
        try:  # a reader that fetched it again meanwhile wrote the same bytes
            os.replace(aside, path)
        except FileNotFoundError:  # swept as a crash's leftover: fetched again if read
            size.forget(path)
            return False
        with contextlib.suppress(FileNotFoundError):
            asset_cache.mark_used(path)  # it was wanted just now
        size.note(path)
        return False
    size.delete(aside)
    size.forget(path)
    return True


async def forget_project(store: AssetStore, project_id: str, *, collect: bool = True
                         ) -> int:
    """Delete ``project_id``'s memberships in the object store and the description of
    every asset no other project uses (so it stops existing at once); its audio goes in
    :func:`collect_forgotten` after :data:`FORGET_GRACE_S`. Objects deleted.

    Each asset is marked forgotten *before* its membership goes, so a deletion cut short
    anywhere (a crash, an object store failure, a cancelled move) leaves nothing that no
    listing finds: a rerun finds the memberships left, and :func:`collect_forgotten`
    finishes what the markers name. It starts with :func:`collect_forgotten` unless
    ``collect`` is false (a caller holding a lock runs it before taking the lock)."""
    objects = _objects(store)
    if collect:
        await collect_forgotten(store)
    prefix = _project_prefix(project_id)
    deleted = 0
    for asset_id in [key[len(prefix):] for key in await objects.keys(prefix)]:
        deleted += await forget_member(store, project_id, asset_id)
    return deleted


async def forget_member(store: AssetStore, project_id: str, asset_id: str) -> int:
    """Take ``asset_id`` out of ``project_id`` in the object store: it is marked forgotten,
    its membership goes, and, when no other project uses it, its description at once and
    its audio after :data:`FORGET_GRACE_S`, as :func:`forget_project` does. Objects
    deleted."""
    objects = _objects(store)
    if _ASSET_ID.match(asset_id):  # first: a marker of a used asset is only dropped
        await _mark_forgotten(objects, asset_id)
    await _leave(objects, project_id, asset_id)
    return 1 + await _forget_if_unused(objects, asset_id)


async def _mark_forgotten(objects: ObjectStore, asset_id: str) -> None:
    await objects.put(_forgotten_key(asset_id), str(time.time()).encode())


async def _forget_if_unused(objects: ObjectStore, asset_id: str) -> int:
    """Delete ``asset_id``'s description when no project uses it, marked forgotten (anew:
    its grace starts now) for :func:`collect_forgotten`; objects deleted (0 or 1)."""
    if not _ASSET_ID.match(asset_id) or await objects.keys(_members_prefix(asset_id)):
        return 0
    try:
        description = await objects.get(object_key(asset_id, "json"))
    except ObjectNotFound:
        return 0
    await _mark_forgotten(objects, asset_id)  # before: a crash next leaves it found
    await objects.delete(object_key(asset_id, "json"))
    if await objects.keys(_members_prefix(asset_id)):  # an upload joined meanwhile
        await objects.put(object_key(asset_id, "json"), description,
                          content_type="application/json")
        return 0
    return 1


async def collect_forgotten(store: AssetStore, *, grace_s: float = FORGET_GRACE_S,
                            now: float | None = None) -> int:
    """Finish the assets marked forgotten more than ``grace_s`` ago; objects deleted.

    A marked asset that a project uses (again) only loses its marker. One with no member
    but still a description (a deletion cut short before the description went) loses
    its description, and its grace starts again. One with neither loses its audio and
    peaks (never a description: see :func:`_collect`), which are put back if a member
    joined meanwhile. Runs at the start of each :func:`forget_project` and every
    ``asset_collection_seconds`` as a job (:mod:`dawserver.asset_collection`)."""
    objects = _objects(store)
    now = time.time() if now is None else now
    deleted = 0
    for key in await objects.keys("assets/forgotten/"):
        asset_id = key.rsplit("/", 1)[1]
        try:
            since = float(await objects.get(key))
        except (ObjectNotFound, ValueError):
            since = 0.0
        if now - since < grace_s:
            continue
        if not _ASSET_ID.match(asset_id) or await objects.keys(_members_prefix(asset_id)):
            await objects.delete(key)
        elif await objects.exists(object_key(asset_id, "json")):
            deleted += await _forget_if_unused(objects, asset_id)  # marks it anew
        else:
            deleted += await _collect(store, objects, asset_id, key)
    return deleted


async def _collect(store: AssetStore, objects: ObjectStore, asset_id: str,
                   marker: str) -> int:
    """Delete the audio and peaks of ``asset_id`` (found with no member and no
    description); objects deleted. Never its description: an upload of the same bytes
    joining meanwhile may have just written it. Each object is copied to local disk
    first, and the members are read again after the deletions: if one joined meanwhile
    (its upload may have written the same bytes before a deletion), the copies are put
    back, so the asset is whole again; else the marker goes."""
    prefix = f"assets/objects/{asset_id[:2]}/{asset_id}."
    listed = [key for key in await objects.keys(prefix) if not key.endswith(".json")]
    deleted = 0
    with tempfile.TemporaryDirectory(dir=store.root / "tmp", prefix="collect-") as tmp:
        copies: dict[str, Path] = {}
        for key in listed:
            copy = Path(tmp) / str(len(copies))
            try:
                await objects.download(key, copy)
            except ObjectNotFound:  # gone meanwhile (another collection)
                continue
            copies[key] = copy
        for key in copies:
            await objects.delete(key)
            deleted += 1
        if await objects.keys(_members_prefix(asset_id)):  # an upload joined meanwhile
            for key, copy in copies.items():
                ext = key.rsplit(".", 1)[1]
                await objects.put_file(key, copy, content_type=MEDIA_TYPES.get(
                    ext, "application/octet-stream"))
            return 0
    await objects.delete(marker)
    return deleted


async def publish(store: AssetStore, asset: Asset, project_id: str) -> None:
    """Put an asset stored locally (a recorded take) into the object store for
    ``project_id``: the membership first (see the module on deletions), then audio and
    peaks, then its description."""
    objects = _objects(store)
    # first: see the module on deletions
    await _join(objects, project_id, asset.id, store.project_name(project_id, asset.id))
    if not await objects.exists(object_key(asset.id, "json")):
        path = Path(asset.path)
        await objects.put_file(object_key(asset.id, asset.format), path,
                               content_type=MEDIA_TYPES[asset.format])
        await objects.put_file(object_key(asset.id, "peaks.npz"), path.with_suffix(
            ".peaks.npz"))
        meta = {k: v for k, v in asset.__dict__.items() if k != "path"}
        await objects.put(object_key(asset.id, "json"), json.dumps(meta).encode(),
                          content_type="application/json")
        return
    # described: put back what an interrupted collection left missing
    path = Path(asset.path)
    if not await objects.exists(object_key(asset.id, asset.format)):
        await objects.put_file(object_key(asset.id, asset.format), path,
                               content_type=MEDIA_TYPES[asset.format])
    if not await objects.exists(object_key(asset.id, "peaks.npz")):
        await objects.put_file(object_key(asset.id, "peaks.npz"),
                               path.with_suffix(".peaks.npz"))


def keep_take(store: AssetStore, asset: Asset, project_id: str) -> None:
    """Mark a take stored locally as waiting to be published for ``project_id``: it is
    never evicted, and :func:`publish_pending` puts it into the object store."""
    asset_cache.mark_pending(store, asset.id, project_id)
    asset_cache.cache_size(store).note(Path(asset.path))


async def publish_pending(store: AssetStore) -> int:
    """Publish every take waiting in this node's cache (:func:`keep_take`), each where
    its project lives now when the store follows moves (:func:`follow_moves`); how many
    were published. A take that cannot be published now (a
    :class:`~dawserver.storage.StorageError`, an :class:`AssetError` or an
    :class:`OSError`) is logged with its id and waits for the next round; the others
    are published meanwhile."""
    locate = _LOCATORS.get(store)
    done = 0
    for asset_id in asset_cache.pending(store):
        try:
            async with publishing(store):
                done += await _publish_take(store, asset_id, locate)
        except (StorageError, AssetError, OSError) as exc:
            log.warning("recorded take %s could not be published yet (%s); it waits and "
                        "is tried again", asset_id, exc)
    return done


async def _publish_take(store: AssetStore, asset_id: str, locate: Locate | None) -> bool:
    """Publish one waiting take for every project it waits for (under the publishing
    lock); whether it was published for one. A project no region holds (deleted
    meanwhile) no longer waits for it, and it leaves this region for that project as
    for one it went away with: its membership here, the node's index entry, and its
    files when no other project here uses them and no reader has them in use."""
    # read again under the lock: a region move may have taken a project out
    projects = asset_cache.pending(store).get(asset_id, [])
    try:
        asset = store.asset(asset_id)
    except AssetNotFound:  # deleted with its project meanwhile
        asset_cache.clear_pending(store, asset_id)
        await asyncio.to_thread(_forget_away, store, asset_id, None)
        return False
    published = False
    away = []  # projects it went to in another region, or deleted: they leave this one
    for project_id in projects:
        if locate is None:
            await publish(store, asset, project_id)
            published = True
            continue
        where = await _publish_where_it_lives(store, asset, project_id, locate)
        published = published or where is not None
        if where is not store:
            away.append(project_id)
    for project_id in away:  # after every project's publish: its files go here
        await _forget_here(store, project_id, asset.id)
    # only those done: a mark added meanwhile waits for the next round
    asset_cache.unmark_pending(store, asset_id, projects)
    if asset_id not in asset_cache.pending(store):  # notes of projects a move took out
        await asyncio.to_thread(_forget_away, store, asset_id, None)
    return published


async def _publish_where_it_lives(store: AssetStore, asset: Asset, project_id: str,
                                  locate: Locate) -> AssetStore | None:
    """Publish ``asset`` (recorded in ``store``) for ``project_id`` into the region the
    project lives in, asked again once it is there until the answer stays the same (a
    move that switched meanwhile: it follows); that region's asset store, or None when
    no region holds the project (deleted): then it is published nowhere.

    Every other region it went to for the project (but ``store``'s: the caller's) then
    loses it, in this round or in an earlier one cut short after a copy (a failure, a
    crash): each is noted in ``away/`` before it is written (:func:`_note_away`), so the
    take ends only where the project lives."""
    from . import object_moves  # imported here: object_moves builds on this module

    async def put(into: AssetStore) -> None:
        if into is store:
            await publish(store, asset, project_id)
        else:  # from this node's files: the bucket of the region it was recorded in
            # may describe it without holding it whole (a collection cut short)
            await asyncio.to_thread(_note_away, store, asset.id, project_id, into)
            await object_moves.copy_asset(store, into, project_id, asset.id,
                                          await object_moves.local_files(store, asset.id))

    where = await locate(project_id)
    while where is not None:
        await put(where)
        now = await locate(project_id)
        if now is where:
            break
        if now is not None:
            log.info("take %s of project %s follows its move to %s", asset.id,
                     project_id, now.root)
        where = now
    if where is None:
        log.info("take %s is not published for project %s, which no data region holds "
                 "(deleted)", asset.id, project_id)
    # told apart by directory: another asset store of the same region may stand for it
    keep = () if where is None else (where.root,)
    for went in await asyncio.to_thread(_went_away, store, asset.id, project_id):
        if went.root not in (*keep, store.root):
            await object_moves.forget_asset(went, project_id, asset.id)
    await asyncio.to_thread(_forget_away, store, asset.id, project_id)
    return where


def _away(store: AssetStore, asset_id: str) -> Path:
    """The note of the regions a take waiting in ``store`` was copied into: one line
    ``<project id> TAB <that region's asset directory>`` per copy begun."""
    return store.root / "away" / asset_id


def _note_away(store: AssetStore, asset_id: str, project_id: str, into: AssetStore
               ) -> None:
    """Note, before the first write there, that the take goes into ``into`` for
    ``project_id`` (synced: a crash next must not lose it)."""
    path = _away(store, asset_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as notes:
        notes.write(f"{project_id}\t{into.root}\n")
        notes.flush()
        os.fsync(notes.fileno())


def _away_notes(store: AssetStore, asset_id: str) -> list[tuple[str, str]]:
    try:
        text = _away(store, asset_id).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [(project, root) for project, _, root in
            (line.partition("\t") for line in text.splitlines()) if root]


def _went_away(store: AssetStore, asset_id: str, project_id: str) -> list[AssetStore]:
    """The asset stores of the regions the take was copied into for ``project_id``
    (:func:`_note_away`), among this node's regions (:func:`follow_moves`)."""
    regions = {str(region.root): region for region in list(_LOCATORS)}
    went: list[AssetStore] = []
    for project, root in _away_notes(store, asset_id):
        if project != project_id:
            continue
        region = regions.get(root)
        if region is None:
            log.warning("take %s of project %s was copied into %s, which is no data region "
                        "of this node now; delete it there", asset_id, project_id, root)
        elif region not in went:
            went.append(region)
    return went


def _forget_away(store: AssetStore, asset_id: str, project_id: str | None) -> None:
    """Drop the notes of ``project_id`` (None: of every project) from the take's note of
    where it went; a note left empty goes."""
    path = _away(store, asset_id)
    rest = [(project, root) for project, root in _away_notes(store, asset_id)
            if project_id is not None and project != project_id]
    if not rest:
        path.unlink(missing_ok=True)
        return
    store._write_atomic(path, "".join(f"{p}\t{r}\n" for p, r in rest).encode("utf-8"))


async def _forget_here(store: AssetStore, project_id: str, asset_id: str) -> None:
    """Take a take published for ``project_id`` in another region out of ``store``
    (the region it was recorded in): its membership and index entry, and its files when
    no other project here uses it."""
    from . import object_moves  # imported here: object_moves builds on this module

    await object_moves.forget_asset(store, project_id, asset_id)


async def publish_until_done(store: AssetStore, *, delays: tuple[float, float] = PUBLISH_RETRY_S
                             ) -> None:
    """Retry :func:`publish_pending` with doubling delays until nothing waits (a
    background task of the recorder; takes still waiting at a restart are published by
    the next one)."""
    delay, most = delays
    while asset_cache.pending(store):
        await publish_pending(store)  # each take that failed is logged there
        if not asset_cache.pending(store):
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, most)
