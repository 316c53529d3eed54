"""A cached asset read while another process evicts from the same cache: the reader's
lease is taken before it looks for the file, so the eviction keeps it, and a file an
eviction that began earlier deletes anyway is fetched again, never a failed read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dawserver import asset_cache, asset_objects
from dawserver.asset_store import Asset, AssetStore
from dawserver.storage.local import LocalObjectStore

pytestmark = pytest.mark.asyncio


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    yield path.read_bytes()


async def _cached(tmp_path: Path) -> tuple[AssetStore, Asset]:
    """An asset uploaded through a node, cached there, its lease over."""
    audio = tmp_path / "take.wav"
    sf.write(audio, np.full(4800, 0.2, dtype=np.float32), 48000, subtype="FLOAT")
    store = AssetStore(tmp_path / "node", objects=LocalObjectStore(tmp_path / "bucket"))
    asset = await store.ingest_stream(_chunks(audio), project_id="p", name="take.wav")
    asset_cache.lease(store, asset.id, 0)
    assert Path(asset.path).is_file()
    return store, asset


async def test_an_eviction_while_a_cached_file_is_read_keeps_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, asset = await _cached(tmp_path)
    # another process sharing the directory, its cache over budget
    other = AssetStore(store.root, objects=store.objects, cache_bytes=0)
    evicted: list[Path] = []
    mark_used = asset_cache.mark_used

    def evict_then_mark(path: Path) -> None:  # the other process evicts just now
        evicted.extend(asset_objects.evict(other))
        mark_used(path)

    monkeypatch.setattr(asset_cache, "mark_used", evict_then_mark)
    path = await asset_objects.local_file(store, asset.id)
    assert evicted == [] and path.read_bytes()


async def test_a_file_an_earlier_eviction_deleted_is_fetched_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, asset = await _cached(tmp_path)
    mark_used = asset_cache.mark_used
    runs: list[Path] = []

    def deleted_then_mark(path: Path) -> None:  # an eviction that began before the lease
        if not runs:
            runs.append(path)
            path.unlink()
        mark_used(path)

    monkeypatch.setattr(asset_cache, "mark_used", deleted_then_mark)
    path = await asset_objects.local_file(store, asset.id)
    assert runs == [path] and path.read_bytes()
