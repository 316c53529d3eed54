"""A project's names of its assets on object storage, seen from several nodes: a name
another node changed (the same bytes uploaded again under another name) is read again
once :data:`~dawserver.asset_objects.NAME_RECHECK_S` has passed, and a node's first
listing keeps every name it read in one rewrite of the project's names file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dawserver import asset_objects
from dawserver.asset_store import AssetStore
from dawserver.storage import StorageUnavailable
from dawserver.storage.local import LocalObjectStore


def _wav(path: Path, level: float) -> Path:
    sf.write(path, np.full(480, level, dtype=np.float32), 48000, subtype="FLOAT")
    return path


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    yield path.read_bytes()


async def _listed_names(store: AssetStore, project_id: str) -> list[str]:
    """The names a listing shows (as the HTTP API lists a project's assets)."""
    names = store.project_names(project_id)
    return [(await asset_objects.pull_for(store, project_id, asset_id, names)).name
            for asset_id in await asset_objects.project_assets(store, project_id)]


@pytest.mark.asyncio
async def test_a_name_another_node_changed_is_seen_once_it_is_due(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = LocalObjectStore(tmp_path / "bucket")
    one = AssetStore(tmp_path / "node-1", objects=objects)
    two = AssetStore(tmp_path / "node-2", objects=objects)
    audio = _wav(tmp_path / "take.wav", 0.25)
    asset = await one.ingest_stream(_chunks(audio), project_id="p", name="first.wav")
    assert (await asset_objects.pull_for(one, "p", asset.id)).name == "first.wav"
    assert await _listed_names(one, "p") == ["first.wav"]

    again = await two.ingest_stream(_chunks(audio), project_id="p", name="second.wav")
    assert again.id == asset.id and again.name == "second.wav"
    # the names node 1 kept are due again (as after NAME_RECHECK_S)
    monkeypatch.setattr(asset_objects, "NAME_RECHECK_S", 0.0, raising=False)
    assert (await asset_objects.pull_for(one, "p", asset.id)).name == "second.wav"
    assert await _listed_names(one, "p") == ["second.wav"]
    assert one.project_name("p", asset.id) == "second.wav"  # kept on node 1 too


@pytest.mark.asyncio
async def test_a_nodes_first_listing_rewrites_the_names_file_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = LocalObjectStore(tmp_path / "bucket")
    one = AssetStore(tmp_path / "node-1", objects=objects)
    uploaded = [(await one.ingest_stream(_chunks(_wav(tmp_path / f"t{i}.wav", 0.1 * i)),
                                         project_id="p", name=f"take-{i}.wav")).name
                for i in range(1, 6)]
    other = AssetStore(tmp_path / "node-2", objects=objects)
    written: list[Path] = []
    write = other._write_atomic

    def counted(path: Path, data: bytes) -> None:
        written.append(path)
        write(path, data)

    monkeypatch.setattr(other, "_write_atomic", counted)
    assert sorted(await _listed_names(other, "p")) == uploaded  # in the store's order
    assert [path.name for path in written if path.name.endswith(".names.json")] == [
        "p.names.json"]
    assert sorted(other.project_names("p").values()) == uploaded


class FailingGets(LocalObjectStore):
    """A local object store whose GETs fail (counted) while ``down``."""

    down = False

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gets: dict[str, int] = {}

    async def get(self, key: str) -> bytes:
        self.gets[key] = self.gets.get(key, 0) + 1
        if self.down:
            raise StorageUnavailable("object storage cannot be reached (test)")
        return await super().get(key)


@pytest.mark.asyncio
async def test_a_listing_asks_each_name_once_while_the_store_cannot_tell(
        tmp_path: Path) -> None:
    objects = FailingGets(tmp_path / "bucket")
    one = AssetStore(tmp_path / "node-1", objects=objects)
    for i in range(1, 6):
        await one.ingest_stream(_chunks(_wav(tmp_path / f"t{i}.wav", 0.1 * i)),
                                project_id="p", name=f"take-{i}.wav")
    other = AssetStore(tmp_path / "node-2", objects=objects)
    for asset_id in await asset_objects.project_assets(other, "p"):
        await asset_objects.pull(other, asset_id)  # described on this node
    objects.down = True
    listed = await _listed_names(other, "p")
    assert len(listed) == 5  # under the descriptions' names
    members = {key: count for key, count in objects.gets.items()
               if key.startswith("assets/projects/")}
    assert len(members) == 5 and set(members.values()) == {1}


def test_the_name_reads_kept_drop_the_expired_ones_past_a_bound(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A node keeps when it read each name (of every asset of every project it looked
    up): past :data:`~dawserver.asset_objects.MAX_CHECKED` the expired reads go."""
    monkeypatch.setattr(asset_objects, "MAX_CHECKED", 3)
    store = AssetStore(tmp_path / "assets")
    asset_objects._keep_checked(store, "p1", {f"a{n}": f"old{n}.wav" for n in range(4)},
                                due_in=0.0)  # read a recheck ago: due again
    asset_objects._keep_checked(store, "p2", {"b": "new.wav"})
    assert [(key, name) for key, (_at, name) in asset_objects._checked(store).items()] == [
        (("p2", "b"), "new.wav")]
