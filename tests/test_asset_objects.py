"""Assets on S3 (SeaweedFS on loopback) seen from two nodes: a take recorded (or a sample
added) on one node is published, and another node with its own cache finds, fetches and
evicts it."""

from __future__ import annotations

import contextlib
import io
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf

from dawserver import asset_objects
from dawserver.asset_store import AssetNotFound, AssetStore
from dawserver.storage import (
    ObjectStore,
    StorageSettings,
    StorageUnavailable,
    open_object_store,
)

pytestmark = pytest.mark.asyncio


def take(tmp_path: Path, hz: float, seconds: float = 1.0) -> Path:
    t = np.arange(int(48000 * seconds)) / 48000
    path = tmp_path / f"take-{hz}.wav"
    sf.write(path, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 48000,
             subtype="FLOAT")
    return path


@contextlib.asynccontextmanager
async def bucket(s3_server, name: str, prefix: str = "") -> AsyncIterator[ObjectStore]:  # noqa: ANN001
    """The objects of a new bucket ``<name>-<random>`` on the S3 server, under key
    ``prefix`` if given."""
    settings = StorageSettings(**s3_server.settings())
    location = f"s3://{name}-{uuid.uuid4().hex[:10]}" + (f"/{prefix}" if prefix else "")
    async with open_object_store(location, settings) as objects:
        await objects.create_bucket()
        yield objects


@pytest_asyncio.fixture
async def objects(s3_server) -> AsyncIterator[ObjectStore]:  # noqa: ANN001
    """A new bucket of this test's own."""
    async with bucket(s3_server, "assets") as objects:
        yield objects


@pytest.fixture
def store(objects: ObjectStore, tmp_path: Path) -> AssetStore:
    """A node's assets on ``objects``, cached under ``tmp_path / "node"``."""
    return AssetStore(tmp_path / "node", objects=objects)


@pytest.fixture
def wav(tmp_path: Path) -> bytes:
    """A second of a 440 Hz take, the bytes of its WAV file."""
    return take(tmp_path, 440).read_bytes()


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as an upload's body streams it."""
    yield data


async def test_a_published_take_is_found_and_cached_by_another_node(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    async with bucket(s3_server, "nodes", prefix="a") as objects:
        one = AssetStore(tmp_path / "node-1", objects=objects)
        two = AssetStore(tmp_path / "node-2", objects=objects, cache_bytes=200_000)
        recorded = one.ingest_file(take(tmp_path, 220), project_id="p1", name="take.wav")
        await asset_objects.publish(one, recorded, "p1")

        assert two.project_assets("p1") == []  # nothing local on node 2 yet
        assert await asset_objects.project_assets(two, "p1") == [recorded.id]
        assert await asset_objects.is_member(two, "p1", recorded.id)
        assert not await asset_objects.is_member(two, "p2", recorded.id)
        path = await asset_objects.local_file(two, recorded.id)
        assert path.parent.parent == two.root / "objects"
        assert path.read_bytes() == Path(recorded.path).read_bytes()
        assert two.peaks(recorded.id).frames == recorded.frames

        other = one.ingest_file(take(tmp_path, 330), project_id="p1", name="take2.wav")
        await asset_objects.publish(one, other, "p1")
        second = await asset_objects.local_file(two, other.id)  # 192 kB each: over the bound
        assert second.is_file() and path.is_file()  # the older one is still leased
        asset_objects.asset_cache.lease(two, recorded.id, 0)  # its lease ends
        await asset_objects.local_file(two, other.id)
        assert not path.exists()  # the older one was evicted
        assert (await asset_objects.local_file(two, recorded.id)).is_file()  # and comes back

        with pytest.raises(AssetNotFound):
            await asset_objects.local_file(two, "e" * 64)


async def test_identical_bytes_are_uploaded_once(
        objects: ObjectStore, store: AssetStore, wav: bytes, tmp_path: Path) -> None:
    first = await store.ingest_stream(chunks(wav), project_id="p1", name="a.wav")
    written: list[str] = []

    class Recording:  # a second upload must not put the asset's objects again
        async def put(self, key: str, *args, **kwargs) -> int:  # noqa: ANN002, ANN003
            written.append(key)
            return await objects.put(key, *args, **kwargs)

        async def put_file(self, key: str, *args, **kwargs) -> int:  # noqa: ANN002, ANN003
            written.append(key)
            return await objects.put_file(key, *args, **kwargs)

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(objects, name)

    second = AssetStore(tmp_path / "node", objects=Recording())
    again = await second.ingest_stream(chunks(wav), project_id="p2", name="b.wav")
    assert again.id == first.id
    assert not [key for key in written if key.startswith("assets/objects/")]
    assert sorted(k.split("/")[2] for k in await objects.keys("assets/projects/")) == [
        "p1", "p2"]
    assert sf.info(io.BytesIO(wav)).frames == first.frames


async def test_an_upload_to_object_storage_describes_its_channels_and_frames(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """A 4-channel (true-stereo IR) upload: another node reads 4 channels of 3000 frames."""
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((3000, 4), np.float32), 48000, format="WAV", subtype="FLOAT")
    async with bucket(s3_server, "ir", prefix="a") as objects:
        one = AssetStore(tmp_path / "node-1", objects=objects)
        two = AssetStore(tmp_path / "node-2", objects=objects)
        uploaded = await one.ingest_stream(chunks(buffer.getvalue()), project_id="p1",
                                           name="hall.wav")
        assert (uploaded.channels, uploaded.frames) == (4, 3000)
        pulled = await asset_objects.pull(two, uploaded.id)
        assert (pulled.channels, pulled.frames) == (4, 3000)


class Failing:
    """An object store that fails its ``fail_at``-th write (put or delete) as a store
    that cannot be reached does, and passes everything else through."""

    def __init__(self, objects, fail_at: int) -> None:  # noqa: ANN001 - an ObjectStore
        self._objects = objects
        self.fail_at = fail_at
        self.writes = 0

    def _write(self, key: str) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise StorageUnavailable(f"write {self.writes} ({key}) failed (injected)")

    async def put(self, key: str, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self._write(key)
        await self._objects.put(key, *args, **kwargs)

    async def delete(self, key: str) -> None:
        self._write(key)
        await self._objects.delete(key)

    def __getattr__(self, name: str):  # noqa: ANN204 - whatever the store has
        return getattr(self._objects, name)


#: Writes one project's deletion makes for one asset it alone uses (marker, two
#: memberships, marker anew, description).
FORGET_WRITES = 5


async def collected(store: AssetStore) -> None:
    """Run the collection as the hourly job would, past every grace, until it settles."""
    later = time.time() + 2 * asset_objects.FORGET_GRACE_S
    while await asset_objects.collect_forgotten(store, now=later):
        pass


@pytest.mark.parametrize("fail_at", range(1, FORGET_WRITES + 1))
async def test_a_deletion_cut_short_at_any_step_and_run_again_leaves_nothing(
        objects: ObjectStore, store: AssetStore, wav: bytes, tmp_path: Path,
        fail_at: int) -> None:
    await store.ingest_stream(chunks(wav), project_id="p1", name="a.wav")
    failing = AssetStore(tmp_path / "node", objects=Failing(objects, fail_at))
    with pytest.raises(StorageUnavailable):
        await asset_objects.forget_project(failing, "p1")
    await asset_objects.forget_project(store, "p1")  # the rerun (a move's job retries)
    await collected(store)
    assert await objects.keys("assets/") == []


@pytest.mark.parametrize("fail_at", range(1, FORGET_WRITES + 1))
async def test_a_deletion_cut_short_never_collects_an_asset_another_project_uses(
        objects: ObjectStore, store: AssetStore, wav: bytes, tmp_path: Path,
        fail_at: int) -> None:
    shared = (await store.ingest_stream(chunks(wav), project_id="p1", name="a.wav")).id
    await store.ingest_stream(chunks(wav), project_id="p2", name="a.wav")
    kept = sorted(k for k in await objects.keys("assets/objects/"))
    failing = AssetStore(tmp_path / "node", objects=Failing(objects, fail_at))
    with contextlib.suppress(StorageUnavailable):  # fewer writes: a shared asset stays
        await asset_objects.forget_project(failing, "p1")
    await collected(store)  # before the rerun, and after it
    await asset_objects.forget_project(store, "p1")
    await collected(store)
    assert sorted(await objects.keys("assets/objects/")) == kept
    assert await asset_objects.project_assets(store, "p2") == [shared]
    assert await objects.keys("assets/forgotten/") == []


async def test_the_audio_of_a_crashed_upload_goes_with_its_project(
        objects: ObjectStore, store: AssetStore) -> None:
    """A membership whose upload never wrote the description: its audio is collected."""
    asset_id = "c" * 64
    await asset_objects.add_member(objects, "p1", asset_id)
    await objects.put(asset_objects.object_key(asset_id, "wav"), b"RIFF")
    await asset_objects.forget_project(store, "p1")
    await collected(store)
    assert await objects.keys("assets/") == []


class Joined:
    """An object store that, once, runs ``upload`` right after its first ``method`` call
    whose key ends with (or, for ``keys``, starts with) ``key``: an upload of the same
    bytes joining at that point of a collection."""

    def __init__(self, objects, method: str, key: str, upload) -> None:  # noqa: ANN001
        self._objects = objects
        self.method, self.key, self.upload = method, key, upload
        self.fired = False

    def __getattr__(self, name: str):  # noqa: ANN204 - whatever the store has
        found = getattr(self._objects, name)
        if name != self.method:
            return found

        async def hooked(key: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            result = await found(key, *args, **kwargs)
            hit = key.startswith(self.key) if name == "keys" else key.endswith(self.key)
            if hit and not self.fired:
                self.fired = True
                await self.upload()
            return result
        return hooked


@pytest.mark.parametrize(("method", "key"), [
    ("keys", "assets/members/"),  # after the member check
    ("exists", ".json"),  # after the description check
    ("keys", "assets/objects/"),  # after the listing
    ("delete", ".peaks.npz"),
    ("delete", ".wav"),
])
async def test_an_upload_joining_a_collection_anywhere_keeps_its_asset_whole(
        objects: ObjectStore, store: AssetStore, wav: bytes, tmp_path: Path, method: str,
        key: str) -> None:
    asset_id = (await store.ingest_stream(chunks(wav), project_id="p1", name="a.wav")).id
    await asset_objects.forget_project(store, "p1")
    other = AssetStore(tmp_path / "node-2", objects=objects)

    async def upload() -> None:
        await other.ingest_stream(chunks(wav), project_id="p2", name="a.wav")

    joined = Joined(objects, method, key, upload)
    await collected(AssetStore(tmp_path / "node", objects=joined))
    assert joined.fired
    await collected(store)  # a later run changes nothing
    assert sorted(await objects.keys("assets/objects/")) == sorted(
        asset_objects.object_key(asset_id, suffix)
        for suffix in ("json", "peaks.npz", "wav"))
    third = AssetStore(tmp_path / "node-3", objects=objects)
    assert await asset_objects.project_assets(third, "p2") == [asset_id]
    path = await asset_objects.local_file(third, asset_id)
    assert path.read_bytes() == wav
    await asset_objects.forget_project(store, "p2")
    await collected(store)
    assert await objects.keys("assets/") == []


async def test_an_upload_finding_the_description_writes_missing_audio_again(
        objects: ObjectStore, store: AssetStore, wav: bytes, tmp_path: Path) -> None:
    """Audio and peaks deleted under a description (a collection cut short before it
    put them back) are written again by the next upload of the same bytes."""
    asset_id = (await store.ingest_stream(chunks(wav), project_id="p1", name="a.wav")).id
    for suffix in ("wav", "peaks.npz"):
        await objects.delete(asset_objects.object_key(asset_id, suffix))
    other = AssetStore(tmp_path / "node-2", objects=objects)
    await other.ingest_stream(chunks(wav), project_id="p2", name="a.wav")
    for suffix in ("wav", "peaks.npz"):
        assert await objects.exists(asset_objects.object_key(asset_id, suffix))


async def test_forget_project_can_leave_the_collection_to_its_caller(
        objects: ObjectStore, store: AssetStore) -> None:
    asset_id = "d" * 64
    await objects.put(asset_objects.object_key(asset_id, "wav"), b"RIFF")
    await objects.put(f"assets/forgotten/{asset_id}", b"0")  # long past its grace
    await asset_objects.forget_project(store, "p1", collect=False)
    assert await objects.exists(asset_objects.object_key(asset_id, "wav"))
    await asset_objects.forget_project(store, "p1")
    assert await objects.keys("assets/") == []
