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
    assets/projects/<project id>/<sha256>        membership: the project uses the asset

An upload is checked locally first; if the object store fails on the way, nothing is
recorded (no description, no membership, nothing in the local index) and the caller
answers 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from dsp_core.peaks import Peaks, compute_peaks

from .asset_store import _ASSET_ID, Asset, AssetNotFound, AssetStore
from .storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "aiff": "audio/aiff"}
AUDIO_EXTENSIONS = tuple(MEDIA_TYPES)


def object_key(asset_id: str, suffix: str) -> str:
    """The key of one of an asset's objects (``wav``, ``peaks.npz``, ``json``, ...)."""
    return f"assets/objects/{asset_id[:2]}/{asset_id}.{suffix}"


def member_key(project_id: str, asset_id: str) -> str:
    """The key that records ``project_id`` using ``asset_id``."""
    return f"{_project_prefix(project_id)}{asset_id}"


def _project_prefix(project_id: str) -> str:
    return f"assets/projects/{re.sub(r'[^A-Za-z0-9._-]', '_', project_id)}/"


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
    if not await objects.exists(object_key(asset_id, "json")):  # identical bytes: stored once
        peaks = await loop.run_in_executor(executor, compute_peaks, audio, rate)
        await objects.put_file(object_key(asset_id, ext), tmp, content_type=MEDIA_TYPES[ext])
        await objects.put(object_key(asset_id, "peaks.npz"), peaks.to_bytes())
        meta = {"id": asset_id, "format": ext, "sample_rate": rate,
                "frames": int(audio.shape[0]), "channels": int(audio.shape[1]),
                "name": os.path.basename(name), "bytes": size}
        await objects.put(object_key(asset_id, "json"), json.dumps(meta).encode(),
                          content_type="application/json")
    await objects.put(member_key(project_id, asset_id), b"")
    asset = await loop.run_in_executor(executor, store._place, tmp, asset_id, size,
                                       project_id, name, ext, audio, rate, peaks)
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


async def project_assets(store: AssetStore, project_id: str) -> list[str]:
    """Ids of the assets ``project_id`` uses: this node's order, then the others'."""
    local = store.project_assets(project_id)
    if store.objects is None:
        return local
    prefix = _project_prefix(project_id)
    remote = [key[len(prefix):] for key in await store.objects.keys(prefix)]
    return local + [asset_id for asset_id in remote if asset_id not in set(local)]


async def local_file(store: AssetStore, asset_id: str) -> Path:
    """The asset's audio on local disk (downloaded into the cache if absent), marked
    recently used; :class:`AssetNotFound` if there is no such asset."""
    asset = await pull(store, asset_id)
    path = Path(asset.path)
    if not path.is_file():
        if store.objects is None:
            raise AssetNotFound(f"the audio of asset {asset_id} is missing on the server")
        try:
            await store.objects.download(object_key(asset_id, asset.format), path)
        except ObjectNotFound:
            raise AssetNotFound(f"the audio of asset {asset_id} is gone") from None
        log.info("cached asset %s (%d bytes)", asset_id, asset.bytes)
    os.utime(path)
    await asyncio.to_thread(evict, store, {str(path)})
    return path


def source_asset_id(store: AssetStore, source: str) -> str | None:
    """The asset id a clip source names when it is a file of this store's ``objects/``."""
    path = Path(source)
    if path.parent.parent != store.root / "objects":
        return None
    asset_id = path.name.split(".")[0]
    return asset_id if _ASSET_ID.match(asset_id) else None


def evict(store: AssetStore, keep: Collection[str] = ()) -> list[Path]:
    """Delete cached audio, least recently used first, until the cache is within
    ``cache_bytes`` (only when an object store holds the assets); the files deleted."""
    if store.objects is None:
        return []
    files = []
    for path in (store.root / "objects").glob("*/*"):
        if path.suffix.lstrip(".") in AUDIO_EXTENSIONS:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    removed = []
    for _, size, path in sorted(files):
        if total <= store.cache_bytes:
            break
        if str(path) in keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    if removed:
        log.info("asset cache: evicted %d files", len(removed))
    return removed


async def forget_project(store: AssetStore, project_id: str) -> int:
    """Delete ``project_id``'s memberships in the object store and every asset no other
    project uses (description first, so it stops existing at once); objects deleted."""
    objects = _objects(store)
    prefix = _project_prefix(project_id)
    mine = [key[len(prefix):] for key in await objects.keys(prefix)]
    for asset_id in mine:
        await objects.delete(member_key(project_id, asset_id))
    used = {key.rsplit("/", 1)[1] for key in await objects.keys("assets/projects/")}
    deleted = len(mine)
    for asset_id in mine:
        if asset_id in used or not _ASSET_ID.match(asset_id):
            continue
        for key in await objects.keys(f"assets/objects/{asset_id[:2]}/{asset_id}."):
            if key.endswith(".json"):
                await objects.delete(key)
                deleted += 1
        for key in await objects.keys(f"assets/objects/{asset_id[:2]}/{asset_id}."):
            await objects.delete(key)
            deleted += 1
    return deleted


async def publish(store: AssetStore, asset: Asset, project_id: str) -> None:
    """Put an asset stored locally (a recorded take) into the object store for
    ``project_id``: audio and peaks, then its description, then the membership."""
    objects = _objects(store)
    if not await objects.exists(object_key(asset.id, "json")):
        path = Path(asset.path)
        await objects.put_file(object_key(asset.id, asset.format), path,
                               content_type=MEDIA_TYPES[asset.format])
        await objects.put_file(object_key(asset.id, "peaks.npz"), path.with_suffix(
            ".peaks.npz"))
        meta = {k: v for k, v in asset.__dict__.items() if k != "path"}
        await objects.put(object_key(asset.id, "json"), json.dumps(meta).encode(),
                          content_type="application/json")
    await objects.put(member_key(project_id, asset.id), b"")
