"""The server-side engine follows the document: edits show up in the next render."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopback import free_port
from lv2_helpers import MISBEHAVE, MODES, lv2_path  # noqa: F401
from nodepeer import NodePeer, eventually, node_ready, running_server
from room_helpers import project_room

from collab.store import open_store
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ENGINES, ROOMS, STORE, TOKENS
from dawserver.project_engine import ProjectEngine
from dawserver.projects import import_session
from dsp_core import EffectSpec, ProjectError
from dsp_core.session import Clip, Session, Track
from dsp_core.sources import SourceRefused

pytestmark = pytest.mark.asyncio
RATE = 48000


def sine_session(tmp_path: Path) -> Session:
    """Two tracks of a 440 Hz sine (a real FLAC file), no effects: output is linear in gain."""
    t = np.arange(RATE * 2) / RATE
    path = tmp_path / "sine.flac"
    sf.write(path, (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE)
    return Session(sample_rate=RATE, name="Sines", tracks=[
        Track(f"t{i}", clips=[Clip(str(path), 0, RATE * 2, id=f"c{i}")]) for i in range(2)])


def rms(block: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(block[:, RATE // 2:], dtype=np.float64))))


async def test_a_document_edit_is_in_the_next_render(tmp_path: Path) -> None:
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, sine_session(tmp_path))
        async with project_room(info.project_id, store) as room:
            engine = ProjectEngine(room, debounce=10.0)
            before = rms(await engine.render(0, RATE))
            await room.edit(lambda d: d.set_track_gain("t0", -120.0))
            await room.edit(lambda d: d.set_track_gain("t1", -6.0206))
            after = rms(await engine.render(0, RATE))
            assert after / before == pytest.approx(0.25, rel=0.02)
            await room.edit(lambda d: d.update_track("t1", mute=True))
            assert rms(await engine.render(0, RATE)) < before * 1e-4
            engine.close()


async def test_an_invalid_document_keeps_the_last_good_engine_state(tmp_path: Path) -> None:
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, sine_session(tmp_path))
        async with project_room(info.project_id, store) as room:
            engine = ProjectEngine(room, debounce=0.0)
            before = rms(await engine.render(0, RATE))
            # the clip now runs 10 s past the end of its 2 s source: the engine refuses it
            await room.edit(lambda d: d.update_clip("c0", length=RATE * 12))
            assert rms(await engine.render(0, RATE)) == pytest.approx(before, rel=1e-3)


async def test_clips_overlapping_in_the_live_document_are_layered(tmp_path: Path) -> None:
    """Two users can drop clips on one spot at once: the engine sums them, it never stalls."""
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, sine_session(tmp_path))
        async with project_room(info.project_id, store) as room:
            engine = ProjectEngine(room, debounce=0.0)
            await room.edit(lambda d: d.set_track_gain("t0", -120.0))
            one_sine = rms(await engine.render(0, RATE))
            await room.edit(lambda d: d.update_clip("c0", track="t1"))  # overlaps c1
            assert rms(await engine.render(0, RATE)) == pytest.approx(2 * one_sine, rel=1e-3)
            engine.close()


@pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))
async def test_a_node_clients_fader_move_is_heard_in_the_server_render(tmp_path: Path) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    async with running_server(config) as app, contextlib.AsyncExitStack() as stack:
        info = await import_session(app[STORE], sine_session(tmp_path), assets=app[ASSETS])
        node = await stack.enter_async_context(NodePeer())
        await node.call("connect", url=config.collab_url, room=info.project_id,
                        token=app[TOKENS].issue(info.project_id, "editor", "ana"))
        await node.wait_event("synced")
        engine = app[ENGINES].get(info.project_id)
        before = rms(await engine.render(0, RATE))
        await node.call("set_track", track="t0", field="gain_db", value=-120)
        await node.call("set_track", track="t1", field="gain_db", value=-6.0206)
        room = app[ROOMS].loaded(info.project_id)
        await eventually(lambda: room.document.track("t1")["gain_db"] == -6.0206)
        after = rms(await engine.render(0, RATE))
        assert after / before == pytest.approx(0.25, rel=0.02)


async def test_a_reverb_added_in_the_document_is_heard_and_follows_its_knobs(
        tmp_path: Path) -> None:
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, sine_session(tmp_path))
        async with project_room(info.project_id, store) as room:
            engine = ProjectEngine(room, debounce=0.0)
            dry = await engine.render(0, RATE)
            await room.edit(lambda d: d.add_effect(
                "t0", EffectSpec("reverb", {"room_size": 0.9, "mix": 1.0})))
            await room.edit(lambda d: d.add_effect("t1", EffectSpec("gate")))
            await room.edit(lambda d: d.add_effect("t1", EffectSpec("saturation")))
            await room.edit(lambda d: d.add_effect("t1", EffectSpec("chorus")))
            wet = await engine.render(0, RATE)
            assert np.abs(wet - dry).max() > 0.05 and np.isfinite(wet).all()
            await room.edit(lambda d: d.set_effect_params("t0", 0, mix=0.0))
            await room.edit(lambda d: d.remove_effect("t1", 2))
            await room.edit(lambda d: d.remove_effect("t1", 1))
            await room.edit(lambda d: d.remove_effect("t1", 0))
            # mix 0 and the chain emptied: after the parameter glide, the dry sound again
            again = await engine.render(RATE, RATE)  # the sine repeats every second
            np.testing.assert_allclose(again[:, RATE // 10:], dry[:, RATE // 10:], atol=1e-3)
            with pytest.raises(ProjectError, match=r"reverb.room_size = 3.0 is outside"):
                await room.edit(lambda d: d.set_effect_params("t0", 0, room_size=3.0))
            engine.close()


async def test_a_document_that_cannot_be_read_keeps_the_engine_rendering(tmp_path: Path) -> None:
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, sine_session(tmp_path))
        async with project_room(info.project_id, store) as room:
            engine = ProjectEngine(room, debounce=0.0)
            before = rms(await engine.render(0, RATE))
            # a bad MIDI value plays as none: the render goes on with the rest
            await room.edit(lambda d: d._roots["tracks"]["t0"].__setitem__(
                "instrument", {"kind": "synth", "params": [1, 2]}))
            assert rms(await engine.render(0, RATE)) == pytest.approx(before, rel=1e-3)
            # a track field no reader expects: that track is left out, the rest plays on
            await room.edit(lambda d: d.update_track("t1", mute=True))
            without_t1 = rms(await engine.render(0, RATE))
            await room.edit(lambda d: d.update_track("t1", mute=False))
            assert without_t1 < before
            await room.edit(lambda d: d._roots["tracks"]["t1"].__setitem__("channels", "two"))
            assert rms(await engine.render(0, RATE)) == pytest.approx(without_t1, rel=1e-3)
            assert any("track 't1'" in reason for reason in room.document.bypassed)
            engine.close()


async def test_each_source_is_resolved_once_while_edits_rebuild_the_session(
        tmp_path: Path) -> None:
    asked: list[str] = []
    refusals = {"/elsewhere.wav"}

    async def resolver(project_id: str, source: str) -> str:
        asked.append(source)
        if source in refusals:
            raise SourceRefused("not one of this project's assets")
        return source

    async with open_store(None, tmp_path) as store:
        session = sine_session(tmp_path)
        session.tracks[1].clips[0] = Clip("/elsewhere.wav", 0, RATE, id="c1")
        info = await import_session(store, session)
        async with project_room(info.project_id, store) as room:
            engine = ProjectEngine(room, debounce=10.0, resolver=resolver)
            first = rms(await engine.render(0, RATE))
            for db in (-6.0, -12.0, -3.0):
                await room.edit(lambda d, db=db: d.set_track_gain("t0", db))
                await engine.render(0, RATE)
            assert sorted(asked) == sorted({session.tracks[0].clips[0].source, "/elsewhere.wav"})
            assert [str(r.ref.item) for r in engine.refused] == ["c1"]  # left out, each time
            assert first > 0.1
            engine.close()


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("lv2_path")
async def test_a_failed_plugin_is_kept_with_its_time_told_and_restarted(tmp_path: Path) -> None:
    session = Session(sample_rate=RATE, tracks=[Track("t0", effects=[
        EffectSpec("lv2", {"uri": MISBEHAVE, "mode": float(MODES["nan"])}, id="fx-1")])])
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, session)
        async with project_room(info.project_id, store) as room:
            told: list[str] = []
            engine = ProjectEngine(room, debounce=0.01, on_plugins=told.append)
            assert await engine.restart_plugins() == 0  # no engine built yet
            await engine.render(0, 4800)
            [fault] = engine.faults.failed
            assert (fault.reason, fault.owner, fault.effect, fault.index, fault.uri) == (
                "failed", "t0", "fx-1", 0, MISBEHAVE)
            assert fault.engines == ("render",) and told == [info.project_id]
            await engine.render(4800, 4800)
            assert engine.faults.failed == [fault] and len(told) == 1  # the same, same time
            await room.edit(lambda d: d.set_effect_params("t0", 0, mode=float(MODES["pass"])))
            await engine.render(0, 4800)  # the fixed control reaches the bypassed plug-in
            assert await engine.restart_plugins() == 1
            assert engine.faults.failed == [] and len(told) == 2
            await engine.render(0, 4800)
            assert engine.faults.failed == []
            engine.close()
