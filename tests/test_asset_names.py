"""Each project's own name for shared asset bytes, seen from another node of the same
object store (docs/http-api-assets.md): read once from the membership, kept, and never
another project's; an older membership without a name is asked once, and a store that
cannot answer leaves the description's name instead of failing the request."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dawserver import asset_objects
from dawserver.asset_store import AssetStore
from dawserver.storage import StorageUnavailable
from dawserver.storage.local import LocalObjectStore


class CountedGets(LocalObjectStore):
    """A local object store that counts the GETs of each key, and fails them on demand."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gets: dict[str, int] = {}
        self.down = False

    async def get(self, key: str) -> bytes:
        self.gets[key] = self.gets.get(key, 0) + 1
        if self.down:
            raise StorageUnavailable("object storage cannot be reached (test)")
        return await super().get(key)


async def shared_asset(tmp_path: Path) -> tuple[CountedGets, str]:
    """One node uploads a take to project a as "unreleased.wav" and publishes it; the
    object store now holds it, and its membership names it."""
    audio = tmp_path / "take.wav"
    sf.write(audio, np.linspace(-0.3, 0.3, 4800, dtype=np.float32), 48000, subtype="FLOAT")
    objects = CountedGets(tmp_path / "bucket")
    first = AssetStore(tmp_path / "node-1", objects=objects)
    asset = first.ingest_file(audio, project_id="a", name="unreleased.wav")
    await asset_objects.publish(first, asset, "a")
    return objects, asset.id


@pytest.mark.asyncio
async def test_another_node_reads_a_projects_name_once_from_its_membership(
        tmp_path: Path) -> None:
    objects, asset_id = await shared_asset(tmp_path)
    await asset_objects.add_member(objects, "b", asset_id, "beat.wav")
    other = AssetStore(tmp_path / "node-2", objects=objects)
    member = asset_objects.member_key("b", asset_id)
    for _ in range(3):
        assert (await asset_objects.pull_for(other, "b", asset_id)).name == "beat.wav"
        assert (await asset_objects.pull_for(other, "a", asset_id)).name == "unreleased.wav"
    assert objects.gets[member] == 1  # kept on this node once read


@pytest.mark.asyncio
async def test_an_older_membership_is_asked_once_and_a_store_outage_fails_nothing(
        tmp_path: Path) -> None:
    objects, asset_id = await shared_asset(tmp_path)
    await asset_objects.add_member(objects, "old", asset_id)  # written before names
    other = AssetStore(tmp_path / "node-2", objects=objects)
    member = asset_objects.member_key("old", asset_id)
    names = [(await asset_objects.pull_for(other, "old", asset_id)).name for _ in range(3)]
    assert names == ["unreleased.wav"] * 3  # the description's: nothing else was kept
    assert objects.gets[member] == 1  # "no name" is kept too: not asked on every read

    await asset_objects.add_member(objects, "c", asset_id, "c-take.wav")
    third = AssetStore(tmp_path / "node-3", objects=objects)
    await asset_objects.pull(third, asset_id)  # its description cached on this node
    objects.down = True
    assert (await asset_objects.pull_for(third, "c", asset_id)).name == "unreleased.wav"
    objects.down = False  # not kept while the store could not say: asked again
    assert (await asset_objects.pull_for(third, "c", asset_id)).name == "c-take.wav"


def _note_names(root: str, first: int, count: int, start: object) -> None:
    """In another process: note ``count`` names in project p of the store at ``root``."""
    store = AssetStore(Path(root))
    start.wait()  # type: ignore[attr-defined] - a multiprocessing Event
    for n in range(first, first + count):
        with store._indexes:
            store._note_name("p", f"{n:064x}", f"take-{n}.wav")


def test_processes_sharing_a_data_directory_keep_every_name(tmp_path: Path) -> None:
    """Several server processes may share one data directory (docs/scale-out.md): each
    rewrites a project's names file, and none may lose another's name (the asset would
    then show its first upload's name, maybe another project's)."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    AssetStore(tmp_path)
    workers = [context.Process(target=_note_names, args=(str(tmp_path), first, 600, start))
               for first in (0, 100_000)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    names = AssetStore(tmp_path).project_names("p")
    assert len(names) == 1200 and names[f"{100_599:064x}"] == "take-100599.wav"


@pytest.mark.asyncio
async def test_a_projects_names_are_read_off_the_event_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every asset route names its asset: the names file is read in a worker thread, so
    a slow disk never stalls the other requests."""
    objects, asset_id = await shared_asset(tmp_path)
    other = AssetStore(tmp_path / "node-2", objects=objects)
    read_in: list[threading.Thread] = []
    read = other.project_names

    def project_names(project_id: str) -> dict[str, str | None]:
        read_in.append(threading.current_thread())
        return read(project_id)

    monkeypatch.setattr(other, "project_names", project_names)
    assert (await asset_objects.pull_for(other, "a", asset_id)).name == "unreleased.wav"
    assert await asset_objects.project_name(other, "a", asset_id) == "unreleased.wav"
    assert read_in and threading.main_thread() not in read_in
