"""Stretch renders kept as derived audio beside the assets: reused by a restart or
another node, deleted once no clip of any project plays them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from helpers_audio import DictLoader
from room_helpers import project_room
from stretch_helpers import restart

import dsp_core.stretch as stretch_module
from collab.room import Room
from collab.store import open_store
from dawserver import derived_audio
from dawserver.asset_store import AssetStore
from dawserver.live_mix import LiveMix
from dawserver.projects import import_session
from dawserver.storage.local import LocalObjectStore
from dsp_core.engine import Engine
from dsp_core.session import Clip, Session, Track
from dsp_core.stretch import StretchSpec

pytestmark = [pytest.mark.timeout(60)]
RATE = 48000
KEY = "ab" + "c" * 62
#: The source clips name: an asset id (content hash), as in a project document; only a
#: source that names an asset has its renders kept beside the assets.
TONE = "7e" * 32
SOURCES = {TONE: (0.3 * np.sin(2 * np.pi * 330 * np.arange(RATE) / RATE)
                    ).astype(np.float32)[None, :]}
needs_rubberband = pytest.mark.skipif(not stretch_module.rubberband_available(),
                                      reason="needs the rubberband command (rubberband-cli)")


def audio(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (2, 4800)).astype(np.float32)


def test_the_derived_key_names_the_asset_not_the_local_path() -> None:
    spec = StretchSpec(1.5)
    asset = "e" * 64
    one = derived_audio.derived_key(f"/node-1/assets/objects/ee/{asset}.wav", spec, RATE)
    two = derived_audio.derived_key(f"/srv/two/assets/objects/ee/{asset}.wav", spec, RATE)
    assert one == two == derived_audio.derived_key(asset, spec, RATE)
    assert one != derived_audio.derived_key(asset, StretchSpec(1.25), RATE)
    assert one != derived_audio.derived_key(asset, spec, 44100)


@pytest.mark.asyncio
async def test_a_local_store_keeps_a_render_until_no_project_plays_it(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "assets")
    assert await derived_audio.load(store, "p1", KEY) is None
    rendered = audio(1)
    path = await derived_audio.save(store, "p1", KEY, rendered, RATE)
    assert path == derived_audio.local_path(store, KEY) and path.is_file()
    np.testing.assert_array_equal(await derived_audio.load(store, "p2", KEY), rendered)
    assert await derived_audio.used_by(store, "p1") == [KEY]
    assert await derived_audio.used_by(store, "p2") == [KEY]

    assert await derived_audio.prune(store, "p1", {KEY}) == []  # still played by p1
    assert await derived_audio.prune(store, "p1", set()) == []  # p2 still plays it
    assert path.is_file() and await derived_audio.used_by(store, "p1") == []
    assert await derived_audio.prune(store, "p2", set()) == [KEY]
    assert not path.exists()
    assert await derived_audio.load(store, "p2", KEY) is None


@pytest.mark.asyncio
async def test_renders_of_one_key_saved_at_once_all_succeed(tmp_path: Path) -> None:
    # two live mixes rendering the same stretch: they shared one '.part' file, so all but
    # the first rename failed and a reader could meet a file still being written
    store = AssetStore(tmp_path / "assets")
    rendered = np.random.default_rng(5).standard_normal((2, 4 * RATE)).astype(np.float32)
    paths = await asyncio.gather(*(derived_audio.save(store, f"p{n}", KEY, rendered, RATE)
                                   for n in range(8)))
    assert set(paths) == {derived_audio.local_path(store, KEY)}
    np.testing.assert_array_equal(await derived_audio.load(store, "p0", KEY), rendered)
    assert [p.name for p in paths[0].parent.iterdir()] == [paths[0].name]


@pytest.mark.asyncio
async def test_another_node_loads_a_render_from_the_object_store(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path / "bucket")
    one = AssetStore(tmp_path / "node-1", objects=objects)
    two = AssetStore(tmp_path / "node-2", objects=objects)
    rendered = audio(2)
    await derived_audio.save(one, "p1", KEY, rendered, RATE)
    assert not derived_audio.local_path(two, KEY).exists()
    np.testing.assert_array_equal(await derived_audio.load(two, "p1", KEY), rendered)
    assert derived_audio.local_path(two, KEY).is_file()  # now cached on node 2 too

    assert await derived_audio.prune(two, "p1", set()) == [KEY]
    assert not await objects.exists(derived_audio.object_key(KEY, derived_audio.SUFFIX))
    assert not derived_audio.local_path(two, KEY).exists()
    derived_audio.local_path(one, KEY).unlink()  # node 1's copy would age out of its cache
    assert await derived_audio.load(one, "p1", KEY) is None


@pytest.mark.asyncio
async def test_an_unreadable_local_copy_counts_as_missing(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "assets")
    path = derived_audio.local_path(store, KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a wav")
    assert await derived_audio.load(store, "p1", KEY) is None
    assert not path.exists()


@pytest_asyncio.fixture
async def room(tmp_path: Path):
    session = Session(name="s", tracks=[Track("t0", clips=[Clip(TONE, 0, RATE, id="c1")])])
    async with open_store(None, tmp_path / "docs") as store:
        info = await import_session(store, session)
        async with project_room(info.project_id, store) as room:
            yield room


def factory(session: Session, rate: int) -> Engine:
    return Engine(session, sample_rate=rate, loader=DictLoader(SOURCES))


async def _until(check, what: str) -> None:  # noqa: ANN001 - a zero-argument predicate
    deadline = time.monotonic() + 120.0  # a Rubber Band run on a loaded CI machine
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def _stretched_mix(room: Room, store: AssetStore) -> LiveMix:
    async def stores(project_id: str) -> AssetStore:
        assert project_id == room.project_id
        return store

    mix = LiveMix(room, factory=factory, stores=stores)
    mix.stretches.load = DictLoader(SOURCES)
    await mix.start()
    mix.document_changed()
    return mix


@needs_rubberband
@pytest.mark.asyncio
async def test_a_restarted_mix_on_another_node_reuses_the_render_then_prunes_it(
        room: Room, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = LocalObjectStore(tmp_path / "bucket")
    one = AssetStore(tmp_path / "node-1", objects=objects)
    two = AssetStore(tmp_path / "node-2", objects=objects)
    restart(monkeypatch)  # an empty render cache
    await room.edit(lambda d: d.update_clip("c1", stretch=1.5, length=RATE * 3 // 2))

    mix = await _stretched_mix(room, one)
    try:
        await _until(lambda: mix._session.tracks[0].clips, "the first render")
    finally:
        await mix.stop()
    [key] = await derived_audio.used_by(one, room.project_id)
    kept = derived_audio.object_key(key, derived_audio.SUFFIX)
    assert await objects.exists(kept)

    renders: list[object] = []

    def no_render(*args: object) -> np.ndarray:
        renders.append(args)
        raise AssertionError("node 2 rendered the clip again")

    restart(monkeypatch)  # nothing in memory
    monkeypatch.setattr(stretch_module, "render_stretch", no_render)
    mix = await _stretched_mix(room, two)
    try:
        await _until(lambda: mix._session.tracks[0].clips, "the render loaded on node 2")
        assert renders == [] and room.document.job("stretch-c1")["status"] == "done"
        assert derived_audio.local_path(two, key).is_file()

        await room.edit(lambda d: d.update_clip("c1", stretch=1.0, length=RATE))
        mix.document_changed()
        await _until(lambda: not objects.path(kept).exists(), "the prune")
        assert not await objects.exists(kept)
        assert await derived_audio.used_by(two, room.project_id) == []
        assert not derived_audio.local_path(two, key).exists()
    finally:
        await mix.stop()
