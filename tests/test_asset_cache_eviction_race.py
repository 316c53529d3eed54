"""A cached asset read while another process evicts from the same cache: the reader's
lease is taken before it looks for the file, so the eviction keeps it, and a file an
eviction that began earlier deletes anyway is fetched again, never a failed read."""

from __future__ import annotations

import os
import time
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


async def test_a_lease_taken_after_an_eviction_read_the_pins_keeps_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that leases (and finds the file) just after an eviction of another
    process read the pins: the eviction reads them again before it deletes."""
    store, asset = await _cached(tmp_path)
    other = AssetStore(store.root, objects=store.objects, cache_bytes=0)
    pinned_ids = asset_cache.pinned_ids
    reads: list[set[str]] = []

    def then_a_reader_leases(store_: AssetStore, now: float | None = None) -> set[str]:
        reads.append(pinned_ids(store_, now))
        if len(reads) == 1:  # the reader comes between the read and the delete
            asset_cache.lease(store, asset.id)
            assert Path(asset.path).is_file()
        return reads[-1]

    monkeypatch.setattr(asset_cache, "pinned_ids", then_a_reader_leases)
    assert asset_objects.evict(other) == []
    assert Path(asset.path).read_bytes() and reads[0] == set() and asset.id in reads[1]
    assert not list(Path(asset.path).parent.glob("*" + asset_cache.EVICTING_SUFFIX))
    monkeypatch.setattr(asset_cache, "pinned_ids", pinned_ids)
    asset_cache.lease(store, asset.id, 0)  # its lease over: now it goes
    assert asset_objects.evict(other) == [Path(asset.path)]
    assert not Path(asset.path).exists()
    assert not list(Path(asset.path).parent.glob("*" + asset_cache.EVICTING_SUFFIX))


async def test_a_file_a_crash_left_aside_mid_eviction_is_swept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, asset = await _cached(tmp_path)
    path = Path(asset.path)
    aside = path.with_name(path.name + asset_cache.EVICTING_SUFFIX)
    path.rename(aside)  # a process killed between moving it aside and deleting it
    size = asset_cache.CacheSize(store.root)
    size.scan_if_due()
    assert aside.exists()  # perhaps another process's eviction in progress: kept a while
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + asset_cache.RESCAN_S + 1)
    size.scan_if_due(now=float("inf"))
    assert not aside.exists() and size.total == 0


async def test_two_evictions_of_one_file_keep_a_reader_s_fresh_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two evictions (threads or processes) of one file, and a reader between them:
    the first moves the old copy aside and decides to delete it; the reader leases
    and fetches the file again; the second (its pins read before the lease) moves the
    fresh copy aside, and the first deletes its copy before the second reads the pins
    again and puts the fresh copy back. Each moves the file aside under a name of its
    own, so the first never deletes the reader's copy."""
    store, asset = await _cached(tmp_path)
    path = Path(asset.path)
    first = AssetStore(store.root, objects=store.objects, cache_bytes=0)
    second = AssetStore(store.root, objects=store.objects, cache_bytes=0)
    asset_cache.cache_size(second).scan_if_due()  # the second knows the file already
    fresh = path.read_bytes()
    rename, delete, pinned_ids = os.rename, asset_cache.CacheSize.delete, asset_cache.pinned_ids
    renames: list[Path] = []
    first_aside: list[Path] = []
    second_evicted: list[Path] = []

    def renamed(source: Path, target: Path) -> None:
        if renames:  # the second eviction's move: the reader came just before it
            asset_cache.lease(store, asset.id)
            assert not path.exists()
            path.write_bytes(fresh)  # fetched again
        renames.append(Path(target))
        rename(source, target)

    def deleted(self: asset_cache.CacheSize, doomed: Path) -> None:
        if not first_aside:  # the first eviction deletes, the second already began
            first_aside.append(doomed)
            second_evicted.extend(asset_objects.evict(second))
        delete(self, doomed)

    def pins(store_: AssetStore, now: float | None = None) -> set[str]:
        if len(renames) == 2 and first_aside:  # the first deletes before this read
            first_aside[0].unlink(missing_ok=True)
        return pinned_ids(store_, now)

    monkeypatch.setattr(os, "rename", renamed)
    monkeypatch.setattr(asset_cache.CacheSize, "delete", deleted)
    monkeypatch.setattr(asset_cache, "pinned_ids", pins)
    assert asset_objects.evict(first) == [path]  # its old copy
    assert len(renames) == 2 and renames[0] != renames[1]
    assert second_evicted == [] and path.read_bytes() == fresh  # the reader's copy
    assert not list(path.parent.glob("*" + asset_cache.EVICTING_SUFFIX))
