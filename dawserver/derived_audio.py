"""Derived audio (stretch renders) kept beside the assets, so a restart or another node
reuses them, and deleted once no clip of any project uses them.

A render is named by its **derived key**: :meth:`dsp_core.stretch.StretchSpec.key` of the
source's asset id (not the local path, which differs between nodes) and the render rate.
Where it lives, in the source's data region (its project's :class:`AssetStore`)::

    objects/ab/<key>.derived.wav                      local: float32 WAV in the asset cache
    assets/objects/ab/<key>.derived.wav               object store: the same file
    assets/derived-uses/ab/<key>/<project id>         object store: the project uses it
    assets/derived-projects/<project id>/<key>        the same use, found by project

Without an object store the local directory holds the uses too (``derived-index/`` with
the same keys as files). The local copy is an ordinary cached file: counted, leased and
evicted least recently used first by :mod:`dawserver.asset_cache` when an object store
holds the original, never evicted when the local file is the only copy.

A use is written *before* the audio (like an asset's membership), so :func:`prune` of
another project either sees it or has already deleted the audio, which the next
:func:`load` then misses: the clip renders again and :func:`save` writes it back.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Collection
from pathlib import Path

import numpy as np
import soundfile

from dsp_core.sources import asset_id_of
from dsp_core.stretch import StretchSpec

from . import asset_cache
from .asset_objects import _safe, evict, object_key
from .asset_store import AssetStore
from .storage import ObjectNotFound, part_file

log = logging.getLogger(__name__)
SUFFIX = "derived.wav"


def derived_key(source: str, spec: StretchSpec, sample_rate: int) -> str:
    """The key of ``source`` rendered by ``spec`` at ``sample_rate`` (by asset id when
    ``source`` names an asset, so every node finds the same key)."""
    return spec.key(asset_id_of(source) or source, sample_rate)


def local_path(store: AssetStore, key: str) -> Path:
    """Where the derived audio ``key`` is cached on this node."""
    return store.root / "objects" / key[:2] / f"{key}.{SUFFIX}"


def _use_key(key: str, project_id: str) -> str:
    return f"assets/derived-uses/{key[:2]}/{key}/{_safe(project_id)}"


def _project_key(project_id: str, key: str = "") -> str:
    return f"assets/derived-projects/{_safe(project_id)}/{key}"


def _index(store: AssetStore) -> Path:
    return store.root / "derived-index"


async def _put_mark(store: AssetStore, name: str) -> None:
    if store.objects is not None:
        await store.objects.put(name, b"")
        return
    path = _index(store) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


async def _delete_mark(store: AssetStore, name: str) -> None:
    if store.objects is not None:
        await store.objects.delete(name)
        return
    path = _index(store) / name
    path.unlink(missing_ok=True)
    for parent in path.parents:  # leave no empty folders behind
        if parent == _index(store):
            break
        try:
            parent.rmdir()
        except OSError:
            break


async def _marks(store: AssetStore, prefix: str) -> list[str]:
    if store.objects is not None:
        return await store.objects.keys(prefix)
    folder = _index(store) / prefix
    if not folder.is_dir():
        return []
    return sorted(prefix + path.name for path in folder.iterdir() if path.is_file())


def _read(path: Path) -> np.ndarray:
    audio, _ = soundfile.read(path, dtype="float32", always_2d=True)
    return np.ascontiguousarray(audio.T)


def _write(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    # a temporary file of its own: two renders of one key at once must not share one
    handle, tmp = part_file(path)
    try:
        with os.fdopen(handle, "wb") as out:
            soundfile.write(out, np.ascontiguousarray(audio.T), sample_rate, subtype="FLOAT",
                            format="WAV")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


async def use(store: AssetStore, project_id: str, key: str) -> None:
    """Record that a clip of ``project_id`` plays the derived audio ``key``."""
    await _put_mark(store, _use_key(key, project_id))
    await _put_mark(store, _project_key(project_id, key))


async def load(store: AssetStore, project_id: str, key: str) -> np.ndarray | None:
    """The derived audio ``key`` (channels × frames), from the local cache or the object
    store, recorded as used by ``project_id``; None when nobody stored it yet."""
    await use(store, project_id, key)  # first: see the module on deletions
    path = local_path(store, key)
    if not path.is_file():
        if store.objects is None:
            return None
        try:
            await store.objects.download(object_key(key, SUFFIX), path)
        except ObjectNotFound:
            return None
    asset_cache.mark_used(path)
    asset_cache.lease(store, key)
    asset_cache.cache_size(store).note(path)
    try:
        return await asyncio.to_thread(_read, path)
    except (OSError, RuntimeError) as exc:  # a torn or foreign file: render it again
        log.warning("derived audio %s is unreadable (%s); rendering it again", key, exc)
        path.unlink(missing_ok=True)
        return None


async def save(store: AssetStore, project_id: str, key: str, audio: np.ndarray,
               sample_rate: int) -> Path:
    """Keep the rendered ``audio`` under ``key`` (local cache, then the object store),
    used by ``project_id``; the local file."""
    await use(store, project_id, key)
    path = local_path(store, key)
    await asyncio.to_thread(_write, path, audio, sample_rate)
    asset_cache.lease(store, key)
    asset_cache.cache_size(store).note(path)
    if store.objects is not None:
        await store.objects.put_file(object_key(key, SUFFIX), path, content_type="audio/wav")
        await asyncio.to_thread(evict, store, {str(path)})
    return path


async def used_by(store: AssetStore, project_id: str) -> list[str]:
    """The derived keys ``project_id`` uses."""
    prefix = _project_key(project_id)
    return [name[len(prefix):] for name in await _marks(store, prefix)]


async def prune(store: AssetStore, project_id: str, in_use: Collection[str]) -> list[str]:
    """Drop ``project_id``'s uses of derived audio not in ``in_use`` (its clips no longer
    play them) and delete the audio no project uses any more; the keys deleted."""
    deleted = []
    for key in await used_by(store, project_id):
        if key in in_use:
            continue
        await _delete_mark(store, _use_key(key, project_id))
        await _delete_mark(store, _project_key(project_id, key))
        if await _marks(store, f"assets/derived-uses/{key[:2]}/{key}/"):
            continue  # another project still plays it
        if store.objects is not None:
            await store.objects.delete(object_key(key, SUFFIX))
        path = local_path(store, key)
        path.unlink(missing_ok=True)
        asset_cache.cache_size(store).forget(path)
        deleted.append(key)
    if deleted:
        log.info("project %s: deleted %d derived renders no clip uses", project_id,
                 len(deleted))
    return deleted
