"""The local asset cache over an object store: pins and unpublished takes are never
evicted, a take survives an object store outage, and a project deletion racing with
another project's upload of the same bytes never leaves a membership of missing audio."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from dawserver import asset_cache, asset_objects, object_moves, recording
from dawserver.asset_store import AssetStore
from dawserver.storage import StorageUnavailable
from dawserver.storage.local import LocalObjectStore
from dawserver.take_journal import TakeJournal, TakeLock

pytestmark = pytest.mark.asyncio


def take(tmp_path: Path, hz: float, seconds: float = 1.0) -> Path:
    t = np.arange(int(48000 * seconds)) / 48000
    path = tmp_path / f"take-{hz}.wav"
    sf.write(path, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 48000,
             subtype="FLOAT")
    return path


class FlakyObjects(LocalObjectStore):
    """The local object store with an outage switch (``down``) and a hook run before
    each delete (to interleave another node's work exactly where a race would)."""

    down = False
    before_delete = None

    async def put(self, key, chunks, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if self.down:
            raise StorageUnavailable("the object store is down (test)")
        return await super().put(key, chunks, **kwargs)

    async def put_file(self, key, path, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if self.down:
            raise StorageUnavailable("the object store is down (test)")
        return await super().put_file(key, path, **kwargs)

    async def delete(self, key):  # noqa: ANN001, ANN201
        if self.before_delete is not None:
            await self.before_delete(key)
        return await super().delete(key)


async def stream(path: Path):  # noqa: ANN201
    yield path.read_bytes()


async def test_a_pinned_file_is_not_evicted_until_its_pin_goes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asset_cache, "LEASE_S", 0.0)  # pins alone, no leases
    objects = FlakyObjects(tmp_path / "bucket")
    one = AssetStore(tmp_path / "node-1", objects=objects)
    two = AssetStore(tmp_path / "node-2", objects=objects, cache_bytes=200_000)
    first = await one.ingest_stream(stream(take(tmp_path, 220)), project_id="p",
                                    name="a.wav")
    second = await one.ingest_stream(stream(take(tmp_path, 330)), project_id="p",
                                     name="b.wav")
    async with asset_objects.ensure_local(two, [first.id]) as paths:
        await asset_objects.local_file(two, second.id)  # 192 kB each: over the bound
        assert paths[first.id].is_file()  # pinned: kept although least recently used
        assert asset_cache.cache_size(two).total > two.cache_bytes
    await asset_objects.local_file(two, second.id)
    assert not paths[first.id].exists()  # the pin went: evicted now
    assert asset_cache.cache_size(two).total <= two.cache_bytes


async def test_a_file_just_fetched_is_leased_so_the_next_fetch_keeps_it(
        tmp_path: Path) -> None:
    objects = FlakyObjects(tmp_path / "bucket")
    one = AssetStore(tmp_path / "node-1", objects=objects)
    two = AssetStore(tmp_path / "node-2", objects=objects, cache_bytes=200_000)
    first = await one.ingest_stream(stream(take(tmp_path, 220)), project_id="p",
                                    name="a.wav")
    second = await one.ingest_stream(stream(take(tmp_path, 330)), project_id="p",
                                     name="b.wav")
    # a bounce fetches its sources one by one, then renders: source 1 must stay
    path = await asset_objects.local_file(two, first.id)
    await asset_objects.local_file(two, second.id)
    assert path.is_file()
    asset_cache.lease(two, first.id, 0)  # the lease ends
    await asset_objects.local_file(two, second.id)
    assert not path.exists()


async def test_a_stale_pin_of_a_dead_process_does_not_count(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "node", objects=FlakyObjects(tmp_path / "bucket"))
    with asset_cache.pinned(store, ["a" * 64]):
        assert asset_cache.pinned_ids(store) == {"a" * 64}
        later = time.time() + asset_cache.PIN_MAX_AGE_S + 1
        assert asset_cache.pinned_ids(store, now=later) == set()


async def test_a_take_outlives_an_object_store_outage(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recording, "place_passes", lambda document, track, source, passes:
                        document.placed.append(source) or ["clip"])
    objects = FlakyObjects(tmp_path / "bucket")
    store = AssetStore(tmp_path / "node", objects=objects, cache_bytes=1)
    recorder = FakeRecorder(store, tmp_path)
    objects.down = True
    await recorder.finish()
    assert recorder.placed  # placed in the document (by asset id) although S3 failed
    asset_id = recorder.placed[0]
    local = Path(store.asset(asset_id).path)
    assert local.is_file()
    assert list(asset_cache.pending(store)) == [asset_id]
    assert asset_objects.evict(store) == []  # the only copy: never evicted
    objects.down = False
    await asyncio.wait_for(recording.publish_soon(store), 10)
    assert asset_cache.pending(store) == {}
    assert await objects.exists(asset_objects.object_key(asset_id, "json"))
    assert await objects.exists(asset_objects.member_key("p", asset_id))
    assert asset_objects.evict(store) == [local]  # now a cache copy


async def test_a_take_is_retried_until_the_object_store_is_back(tmp_path: Path) -> None:
    objects = FlakyObjects(tmp_path / "bucket")
    store = AssetStore(tmp_path / "node", objects=objects)
    asset = store.ingest_file(take(tmp_path, 220), project_id="p", name="t.wav")
    asset_objects.keep_take(store, asset, "p")
    objects.down = True
    task = asyncio.create_task(asset_objects.publish_until_done(store, delays=(0.01, 0.02)))
    await asyncio.sleep(0.1)
    assert not task.done() and asset_cache.pending(store) == {asset.id: ["p"]}
    objects.down = False
    await asyncio.wait_for(task, 10)
    assert await asset_objects.is_member(AssetStore(tmp_path / "other", objects=objects),
                                         "p", asset.id)


async def test_an_upload_racing_with_a_deletion_keeps_its_asset(tmp_path: Path) -> None:
    objects = FlakyObjects(tmp_path / "bucket")
    one = AssetStore(tmp_path / "node-1", objects=objects)
    two = AssetStore(tmp_path / "node-2", objects=objects)
    audio = take(tmp_path, 440)
    asset = await one.ingest_stream(stream(audio), project_id="p1", name="a.wav")
    description = asset_objects.object_key(asset.id, "json")

    async def upload_meanwhile(key: str) -> None:
        if key == description:  # p2 uploads the same bytes as p1's deletion decides
            objects.before_delete = None
            await two.ingest_stream(stream(audio), project_id="p2", name="b.wav")

    objects.before_delete = upload_meanwhile
    await asset_objects.forget_project(one, "p1")
    assert await objects.exists(description)
    assert await objects.exists(asset_objects.object_key(asset.id, "wav"))
    assert await asset_objects.collect_forgotten(one, grace_s=0) == 0
    assert await objects.exists(asset_objects.object_key(asset.id, "wav"))


async def test_an_unused_asset_goes_after_the_grace_period(tmp_path: Path) -> None:
    objects = FlakyObjects(tmp_path / "bucket")
    store = AssetStore(tmp_path / "node", objects=objects)
    asset = await store.ingest_stream(stream(take(tmp_path, 440)), project_id="p1",
                                      name="a.wav")
    shared_take = take(tmp_path, 550)  # written once: a float WAV's PEAK chunk holds the time
    shared = await store.ingest_stream(stream(shared_take), project_id="p1", name="s.wav")
    await store.ingest_stream(stream(shared_take), project_id="p2", name="s.wav")
    await asset_objects.forget_project(store, "p1")
    assert not await objects.exists(asset_objects.object_key(asset.id, "json"))
    assert await objects.exists(asset_objects.object_key(asset.id, "wav"))  # grace
    assert await objects.exists(asset_objects.object_key(shared.id, "json"))  # p2 uses it
    assert await asset_objects.collect_forgotten(store) == 0  # not yet
    assert await asset_objects.collect_forgotten(store, grace_s=0) == 2  # wav and peaks
    assert await objects.keys(f"assets/objects/{asset.id[:2]}/{asset.id}.") == []
    assert await objects.exists(asset_objects.object_key(shared.id, "wav"))


async def test_a_failed_upload_takes_its_membership_back(tmp_path: Path) -> None:
    objects = FlakyObjects(tmp_path / "bucket")
    store = AssetStore(tmp_path / "node", objects=objects)
    original = objects.put_file

    async def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise StorageUnavailable("down (test)")

    objects.put_file = fail
    with pytest.raises(StorageUnavailable):
        await store.ingest_stream(stream(take(tmp_path, 440)), project_id="p", name="a.wav")
    objects.put_file = original
    assert await objects.keys("assets/") == []


class FakeRecorder:
    """A :class:`recording.TakeRecorder` with a written take and a room that records
    what it was asked to place (the audio path of each clip)."""

    def __init__(self, store: AssetStore, tmp_path: Path) -> None:
        self.placed: list[str] = []
        room = SimpleNamespace(project_id="p", edit=self._edit)
        mix = SimpleNamespace(room=room, sample_rate=48000,
                              playhead=SimpleNamespace(session_rate=48000))
        self.recorder = recording.TakeRecorder(mix=mix, track=None, assets=store)
        path = store.root / "tmp" / "t.take.wav"
        writer = sf.SoundFile(path, "w", samplerate=48000, channels=1, subtype="FLOAT",
                              format="WAV")
        writer.write(np.full(4800, 0.1, np.float32))
        journal = TakeJournal("p", "", ["t1"], 48000, 48000)
        self.recorder._take = recording.Take(path, writer, 0, ["t1"], journal,
                                             TakeLock(path), frames=4800)

    async def _edit(self, change) -> None:  # noqa: ANN001
        change(SimpleNamespace(track_ids=lambda: ["t1"], placed=self.placed))

    async def finish(self) -> None:
        await self.recorder._finish()


async def test_takes_kept_by_a_previous_run_are_published_at_startup(tmp_path: Path) -> None:
    objects = FlakyObjects(tmp_path / "bucket")
    store = AssetStore(tmp_path / "node", objects=objects)
    asset = store.ingest_file(take(tmp_path, 220), project_id="p", name="t.wav")
    asset_objects.keep_take(store, asset, "p")  # S3 was down, then the server stopped
    async with recording.kept_takes([store])(None), asyncio.timeout(10):
        while asset_cache.pending(store):
            await asyncio.sleep(0.01)
    assert await objects.exists(asset_objects.member_key("p", asset.id))


async def test_a_use_keeps_the_file_unchanged_and_decides_what_goes_first(
        tmp_path: Path) -> None:
    """Using cached audio marks its access time, not its modification time (decoders key
    their caches on that), and eviction takes the least recently used file first."""
    objects = FlakyObjects(tmp_path / "bucket")
    store = AssetStore(tmp_path / "node", objects=objects)
    first = await store.ingest_stream(stream(take(tmp_path, 440)), project_id="p",
                                      name="a.wav")
    second = await store.ingest_stream(stream(take(tmp_path, 550)), project_id="p",
                                       name="b.wav")
    a, b = Path(first.path), Path(second.path)
    modified = a.stat().st_mtime_ns
    await asset_objects.local_file(store, second.id)
    await asset_objects.local_file(store, first.id)  # used last
    assert a.stat().st_mtime_ns == modified
    assert a.stat().st_atime_ns > b.stat().st_atime_ns
    for asset_id in (first.id, second.id):  # their leases end
        asset_cache.lease(store, asset_id, 0)
    store.cache_bytes = a.stat().st_size  # room for one of the two
    assert asset_objects.evict(store) == [b]
    assert a.is_file()


async def test_files_deleted_with_their_project_or_membership_leave_the_cache_total(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The running total falls by what an asset that left its project here (or its
    whole project) deleted, so eviction does not act on files that are gone."""
    monkeypatch.setattr(asset_cache, "LEASE_S", 0.0)  # nothing held by a fresh lease
    store = AssetStore(tmp_path / "node", objects=FlakyObjects(tmp_path / "bucket"))
    first = await store.ingest_stream(stream(take(tmp_path, 220)), project_id="p1",
                                      name="a.wav")
    second = await store.ingest_stream(stream(take(tmp_path, 330, 2.0)), project_id="p2",
                                       name="b.wav")
    total = asset_cache.cache_size(store)
    total.scan_if_due()  # the last scan for the next five minutes
    assert total.total == Path(first.path).stat().st_size + Path(second.path).stat().st_size
    await object_moves.forget_asset(store, "p1", first.id)
    assert not Path(first.path).exists()
    assert total.total == Path(second.path).stat().st_size
    store.forget_project("p2")
    assert not Path(second.path).exists()
    assert total.total == 0
