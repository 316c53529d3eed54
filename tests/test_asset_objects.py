"""Assets on S3 (SeaweedFS on loopback) seen from two nodes: a take recorded (or a sample
added) on one node is published, and another node with its own cache finds, fetches and
evicts it."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dawserver import asset_objects
from dawserver.asset_store import AssetNotFound, AssetStore
from dawserver.storage import StorageSettings, open_object_store

pytestmark = pytest.mark.asyncio


def take(tmp_path: Path, hz: float, seconds: float = 1.0) -> Path:
    t = np.arange(int(48000 * seconds)) / 48000
    path = tmp_path / f"take-{hz}.wav"
    sf.write(path, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 48000,
             subtype="FLOAT")
    return path


async def test_a_published_take_is_found_and_cached_by_another_node(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    settings = StorageSettings(**s3_server.settings())
    async with open_object_store(f"s3://nodes-{uuid.uuid4().hex[:10]}/a", settings) as objects:
        await objects.create_bucket()
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


async def test_identical_bytes_are_uploaded_once(s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    settings = StorageSettings(**s3_server.settings())
    async with open_object_store(f"s3://dedupe-{uuid.uuid4().hex[:10]}", settings) as objects:
        await objects.create_bucket()
        store = AssetStore(tmp_path / "node", objects=objects)
        data = take(tmp_path, 440).read_bytes()

        async def body():  # noqa: ANN202
            yield data

        first = await store.ingest_stream(body(), project_id="p1", name="a.wav")
        audio_key = asset_objects.object_key(first.id, "wav")
        await objects.delete(audio_key)  # a second upload must not put it again
        again = await store.ingest_stream(body(), project_id="p2", name="b.wav")
        assert again.id == first.id and not await objects.exists(audio_key)
        assert sorted(k.split("/")[2] for k in await objects.keys("assets/projects/")) == [
            "p1", "p2"]
        assert sf.info(io.BytesIO(data)).frames == first.frames


async def test_an_upload_to_object_storage_describes_its_channels_and_frames(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """A 4-channel (true-stereo IR) upload: another node reads 4 channels of 3000 frames."""
    settings = StorageSettings(**s3_server.settings())
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((3000, 4), np.float32), 48000, format="WAV", subtype="FLOAT")

    async def chunks():  # noqa: ANN202 - an async iterator of bytes
        yield buffer.getvalue()

    async with open_object_store(f"s3://ir-{uuid.uuid4().hex[:10]}/a", settings) as objects:
        await objects.create_bucket()
        one = AssetStore(tmp_path / "node-1", objects=objects)
        two = AssetStore(tmp_path / "node-2", objects=objects)
        uploaded = await one.ingest_stream(chunks(), project_id="p1", name="hall.wav")
        assert (uploaded.channels, uploaded.frames) == (4, 3000)
        pulled = await asset_objects.pull(two, uploaded.id)
        assert (pulled.channels, pulled.frames) == (4, 3000)
