"""The live mix: one real-time render per room, exactly the engine's output, following edits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from helpers_audio import DictLoader
from lv2_helpers import MISBEHAVE, MODES, lv2_path  # noqa: F401
from room_helpers import project_room

from collab.room import Room
from collab.schema import ProjectDocument
from collab.store import open_store
from dawserver.live_mix import FRAME, LiveMix
from dawserver.projects import import_session
from dsp_core.effects import EffectSpec, lookahead_frames
from dsp_core.engine import Engine
from dsp_core.midi import Instrument, MidiClip
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]
RATE = 48000
SOURCES = {"noise": (0.3 * np.random.default_rng(5).standard_normal((1, 4 * RATE))
                     ).astype(np.float32)}
SOURCES["quiet"] = SOURCES["noise"] / 4  # below the lookahead limiter's ceiling
SOURCES["minus_quiet"] = -SOURCES["quiet"]


def factory(session: Session, rate: int) -> Engine:
    return Engine(session, sample_rate=rate, loader=DictLoader(SOURCES))


def session() -> Session:
    return Session(name="mix", tracks=[Track("t0", clips=[Clip("noise", 0, 4 * RATE)],
                                             gain_db=-6.0)])


@pytest_asyncio.fixture
async def room(tmp_path: Path):
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, session())
        async with project_room(info.project_id, store) as room:
            yield room


async def collect(mix: LiveMix, count: int) -> list:
    frames = []
    mix.taps.append(frames.append)
    async with asyncio.timeout(15):  # frames that stop coming fail here, not the whole run
        while len(frames) < count:
            await asyncio.sleep(0.02)
    mix.taps.remove(frames.append)
    return frames[:count]


def as_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio.T, -1.0, 1.0) * 32767.0).astype(np.int16)


async def test_a_stopped_transport_gives_silence_in_real_time(room: Room) -> None:
    before = time.monotonic()
    async with LiveMix(room, factory=factory) as mix:
        frames = await collect(mix, 15)
    assert all(f.timeline is None and not f.pcm.any() for f in frames)
    # Paced, not rendered at once: frame k is never made before k frames of real time
    # have passed since the mix started (a late mix catches up, but never runs ahead).
    period = FRAME / RATE
    assert all(f.made_at - before >= f.index * period for f in frames)
    assert frames[-1].index >= 14


async def test_playing_frames_are_exactly_the_engines_render(room: Room) -> None:
    await room.edit(lambda d: d.update_transport(playing=True, position=1234))
    async with LiveMix(room, factory=factory) as mix:
        mix.document_changed()
        frames = [f for f in await collect(mix, 12) if f.timeline is not None]
    start = frames[0].timeline
    assert (start - 1234) % FRAME == 0
    played = np.concatenate([f.pcm for f in frames])
    reference = factory(session(), RATE).render(start, played.shape[0])
    np.testing.assert_array_equal(played, as_int16(reference))


async def test_plugin_latency_is_reported_and_compensated_live(room: Room) -> None:
    """An inverted copy through a latency-adding limiter cancels the track live too."""
    def add_copy(doc) -> None:
        limiter = EffectSpec("lookahead_limiter", {"ceiling_db": 0.0, "lookahead_ms": 5.0})
        doc.update_track("t0", mute=True)
        doc.add_track(Track("dry"))
        doc.add_clip("dry", Clip("quiet", 0, 4 * RATE))
        doc.add_track(Track("copy", effects=[limiter]))
        doc.add_clip("copy", Clip("minus_quiet", 0, 4 * RATE))
        doc.update_transport(playing=True, position=FRAME)

    await room.edit(add_copy)
    async with LiveMix(room, factory=factory) as mix:
        mix.document_changed()
        frames = [f for f in await collect(mix, 12) if f.timeline is not None]
        assert mix.plugin_latency == lookahead_frames(5.0, RATE) > 0
        await room.edit(lambda d: d.update_track("copy", mute=True))
        mix.document_changed()
        await collect(mix, 3)
        dry = (await collect(mix, 2))[-1].pcm
    assert len(frames) > 5
    assert not np.concatenate([f.pcm for f in frames]).any()
    assert np.abs(dry).max() > 1000, "without the copy the dry track is heard"


async def test_a_fader_move_and_a_loop_reach_the_live_output(room: Room) -> None:
    await room.edit(lambda d: d.update_transport(playing=True, loop_enabled=True,
                                                 loop_start=0, loop_end=3 * FRAME))
    async with LiveMix(room, factory=factory) as mix:
        mix.document_changed()
        frames = [f for f in await collect(mix, 10) if f.timeline is not None]
        assert {f.timeline for f in frames} <= {0, FRAME, 2 * FRAME}
        loud = np.abs(frames[-1].pcm).mean()
        await room.edit(lambda d: d.set_track_gain("t0", -46.0))
        mix.document_changed()
        await collect(mix, 3)
        quiet = np.abs((await collect(mix, 2))[-1].pcm).mean()
    assert quiet < loud / 50


async def test_fader_moves_patch_the_mix_and_structure_edits_rebuild_at_most_every_100_ms(
        room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    async with LiveMix(room, factory=factory) as mix:
        conversions: list[float] = []  # when each full rebuild began (the loop's clock)
        original = room.document.to_session
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(room.document, "to_session",
                            lambda: conversions.append(loop.time()) or original())
        for gain in (-10.0, -12.0, -14.0):
            await room.edit(lambda d, g=gain: d.set_track_gain("t0", g))
            mix.document_changed()
        assert conversions == []
        assert mix._session.tracks[0].gain_db == -14.0
        for i in range(5):
            await room.edit(lambda d, i=i: d.add_clip("t0", Clip("noise", (i + 4) * RATE, 100)))
            mix.document_changed()
        async with asyncio.timeout(10):
            while len(mix._session.tracks[0].clips) < 6:
                await asyncio.sleep(0.02)
        # the five structure edits rebuilt the mix, never twice within 100 ms (however
        # long the edits' appends took: a slow disk spaces them out, never in)
        gaps = [b - a for a, b in zip(conversions, conversions[1:], strict=False)]
        assert conversions and all(gap >= 0.099 for gap in gaps), gaps


async def test_a_seek_in_the_document_moves_the_live_output_there(room: Room) -> None:
    await room.edit(lambda d: d.update_transport(playing=True, position=0))
    async with LiveMix(room, factory=factory) as mix:
        mix.document_changed()
        await collect(mix, 5)
        target = 2 * RATE + 777
        await room.edit(lambda d: d.update_transport(position=target))
        mix.document_changed()
        frames = await collect(mix, 12)
    after = [f for f in frames if f.timeline is not None and f.timeline >= target]
    assert after and after[0].timeline == target  # the first frame after the seek starts there
    assert all(b.timeline - a.timeline == FRAME for a, b in zip(after, after[1:], strict=False))
    played = np.concatenate([f.pcm for f in after])
    reference = factory(session(), RATE).render(target, played.shape[0])  # the offline render
    np.testing.assert_array_equal(played, as_int16(reference))


def held_pad(params: dict[str, object]) -> Callable[[ProjectDocument], None]:
    """An edit that mutes ``t0``, adds a ``keys`` synth track (``params``) holding one
    4-second note from frame 0, and plays from there."""
    def add_pad(doc: ProjectDocument) -> None:
        doc.update_track("t0", mute=True)
        doc.add_track(Track("keys"))
        doc.set_instrument("keys", Instrument("synth", params))
        clip = doc.add_midi_clip("keys", MidiClip(0, 4 * RATE))
        doc.add_note(clip, 57, 110, start=0, length=4 * RATE)
        doc.update_transport(playing=True, position=0)

    return add_pad


async def test_a_seek_into_a_held_midi_note_is_heard_live_as_rendered(room: Room) -> None:
    """Note chase: the live mix jumps into a held note and plays it from its first frame
    there, the same bits as the offline render from that frame."""
    await room.edit(held_pad({"osc1": "sine", "osc_mix": 0.0, "attack_ms": 0.0}))
    async with LiveMix(room, factory=factory) as mix:
        mix.document_changed()
        await collect(mix, 5)
        target = 2 * RATE + 777
        await room.edit(lambda d: d.update_transport(position=target))
        mix.document_changed()
        frames = await collect(mix, 12)
        played_session = mix._session
    after = [f for f in frames if f.timeline is not None and f.timeline >= target]
    assert after and after[0].timeline == target
    played = np.concatenate([f.pcm for f in after])
    assert np.abs(played[:FRAME].astype(np.int32)).max() > 3000  # heard at once
    reference = factory(played_session, RATE).render(target, played.shape[0])
    np.testing.assert_array_equal(played, as_int16(reference))


async def test_note_chase_turned_off_while_playing_leaves_the_next_seek_silent(
        room: Room) -> None:
    """The transport's ``chase_notes`` set false during playback reaches the engine: the
    next jump into the held note plays nothing (the other track is muted)."""
    await room.edit(held_pad({"osc1": "sine", "attack_ms": 0.0}))
    async with LiveMix(room, factory=factory) as mix:
        mix.document_changed()
        assert np.abs((await collect(mix, 5))[-1].pcm).max() > 3000  # the pad plays
        await room.edit(lambda d: d.update_transport(chase_notes=False))
        mix.document_changed()
        async with asyncio.timeout(10):
            while mix._session.chase_notes:  # the session is rebuilt
                await asyncio.sleep(0.02)
        target = 2 * RATE + 777
        await room.edit(lambda d: d.update_transport(position=target))
        mix.document_changed()
        frames = await collect(mix, 12)
    after = [f for f in frames if f.timeline is not None and f.timeline >= target]
    assert after and after[0].timeline == target
    assert not any(f.pcm.any() for f in after)


async def test_the_live_playhead_is_where_the_audio_sent_last_has_got_to(room: Room) -> None:
    await room.edit(lambda d: d.update_transport(playing=True, position=RATE))
    async with LiveMix(room, factory=factory) as mix:
        mix.document_changed()
        await collect(mix, 3)
    last = mix.last_frame  # stopped: no newer frame can come between the checks
    assert last.timeline is not None
    # A take's first frame is placed by the time it arrived, not by the frame's end.
    assert mix.timeline_now(last.made_at) == last.timeline
    assert mix.timeline_now(last.made_at + 0.005) == last.timeline + 240
    assert mix.timeline_now(last.made_at + 1.0) == last.timeline + FRAME  # at most a frame
    await room.edit(lambda d: d.update_transport(playing=False))
    async with LiveMix(room, factory=factory) as mix:
        await collect(mix, 2)
        assert mix.timeline_now() is None


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("lv2_path")
async def test_a_plugin_failing_while_playing_is_reported_and_restarted_by_the_thread(
        room: Room) -> None:
    await room.edit(lambda d: d.add_effect("t0", EffectSpec("lv2", {"uri": MISBEHAVE},
                                                            id="fx-1")))
    await room.edit(lambda d: d.update_transport(playing=True, position=0))
    told: list[str] = []
    async with LiveMix(room, factory=factory, on_plugins=told.append) as mix:
        await collect(mix, 3)
        assert mix.faults.failed == [] and told == []
        await room.edit(lambda d: d.set_effect_params("t0", 0, mode=float(MODES["nan"])))
        mix.document_changed()
        async with asyncio.timeout(10):
            while not mix.faults.failed:
                await asyncio.sleep(0.02)
        [fault] = mix.faults.failed
        assert (fault.owner, fault.effect, fault.uri, fault.engines) == (
            "t0", "fx-1", MISBEHAVE, ("live mix",))
        assert told and set(told) == {room.project_id}
        await room.edit(lambda d: d.set_effect_params("t0", 0, mode=float(MODES["pass"])))
        mix.document_changed()
        async with asyncio.timeout(10):  # the fixed control is in the mix's session: the
            # render thread applies it before it restarts the plug-ins
            while mix._session.tracks[0].effects[0].params["mode"] != MODES["pass"]:
                await asyncio.sleep(0.02)
        assert await mix.restart_plugins() == 1
        async with asyncio.timeout(10):
            while mix.faults.failed:
                await asyncio.sleep(0.02)
        await collect(mix, 5)
        assert mix.faults.failed == []
    assert await mix.restart_plugins() == 0  # stopped: nothing to restart
