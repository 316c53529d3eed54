"""The immersive mix streamed block by block for monitoring (dsp_core/immersive_live.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from immersive_helpers import FRAMES, loader, mixed_session

from dsp_core.errors import DspError
from dsp_core.immersive import ImmersiveRoute
from dsp_core.immersive_live import ImmersiveLiveEngine
from dsp_core.immersive_render import render_immersive

pytestmark = pytest.mark.timeout(60)


def streamed(engine: ImmersiveLiveEngine, frames: int, block: int) -> np.ndarray:
    return np.concatenate([engine.render(s, min(block, frames - s))
                           for s in range(0, frames, block)], axis=1)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("monitor,block", [("binaural", 960), ("stereo", 960),
                                           ("binaural", 128)])
def test_blocks_add_up_to_the_offline_render(monitor: str, block: int, backend: str) -> None:
    session = mixed_session()
    engine = ImmersiveLiveEngine(session, monitor=monitor, loader=loader(), backend=backend)
    live = streamed(engine, FRAMES, block)
    offline = render_immersive(session, monitor, loader=loader(), backend=backend)
    assert live.shape == (2, FRAMES) == offline.shape
    assert np.abs(offline).max() > 0.01
    np.testing.assert_allclose(live, offline, atol=2e-6)


def test_a_moved_object_glides_there_without_a_rebuild() -> None:
    session = mixed_session()
    engine = ImmersiveLiveEngine(session, monitor="stereo", loader=loader())
    engines = list(engine._engines)
    engine.render(0, 960)
    lead = session.tracks[0]
    moved = dataclasses.replace(session, tracks=[
        dataclasses.replace(lead, immersive=ImmersiveRoute("object", azimuth=-90.0)),
        *session.tracks[1:]])
    engine.apply(moved)
    assert engine._engines == engines  # the same engines: their state goes on
    glide = engine.render(960, 960)
    after = engine.render(1920, 960)
    offline = render_immersive(moved, "stereo", loader=loader())
    np.testing.assert_allclose(after, offline[:, 1920:2880], atol=2e-6)
    assert not np.allclose(glide, offline[:, 960:1920], atol=1e-4)  # still on its way


def test_a_new_route_rebuilds_and_an_unknown_monitor_is_refused() -> None:
    session = mixed_session()
    engine = ImmersiveLiveEngine(session, monitor="stereo", loader=loader())
    plain = session.tracks[3]
    routed = dataclasses.replace(session, tracks=[
        *session.tracks[:3], dataclasses.replace(plain, immersive=ImmersiveRoute(
            "object", azimuth=45.0))])
    engine.apply(routed)
    np.testing.assert_allclose(streamed(engine, FRAMES, 960),
                               render_immersive(routed, "stereo", loader=loader()), atol=2e-6)
    with pytest.raises(DspError, match="choose one of binaural, stereo"):
        ImmersiveLiveEngine(session, monitor="5.1", loader=loader())


@pytest.mark.parametrize("routed", [False, True])
def test_the_monitors_follow_the_projects_note_chase(routed: bool) -> None:
    """A synth pad held across a seek (a plain track, or an object): chased with the
    session's ``chase_notes`` on; off, also after an apply while playing, the seek is
    silent."""
    from dsp_core.midi import Instrument, MidiClip, Note
    from dsp_core.session import Session, Track

    route = ImmersiveRoute("object", azimuth=30.0) if routed else None
    pad = Track("keys", immersive=route, instrument=Instrument("synth", {"attack_ms": 0.0}),
                midi_clips=[MidiClip(0, 48000, [Note(57, 110, 0, 48000)])])
    session = Session(tracks=[pad])
    engine = ImmersiveLiveEngine(session, monitor="stereo")
    assert np.abs(engine.render(20000, 960)).max() > 0.01  # chased
    engine.apply(dataclasses.replace(session, chase_notes=False))
    assert not engine.render(30000, 960).any()
    off = ImmersiveLiveEngine(dataclasses.replace(session, chase_notes=False), monitor="stereo")
    assert not off.render(20000, 960).any()


@pytest.mark.parametrize("routed", [False, True])
def test_the_monitors_follow_the_projects_tempo_map(routed: bool) -> None:
    """A synth note written at 120 bpm one beat in, in a clip that follows the tempo, in
    a project at 60 bpm: the monitor hears it where the engine does, two seconds in (a
    part session without the tempo map played it at one)."""
    from dsp_core.engine import Engine
    from dsp_core.midi import Instrument, MidiClip, Note
    from dsp_core.session import Session, Track
    from dsp_core.tempo import TempoChange, TempoMap

    route = ImmersiveRoute("object", azimuth=0.0) if routed else None
    clip = MidiClip(0, 72000, [Note(69, 110, 24000, 4800)], follow_tempo=True,
                    source_bpm=120.0)
    pad = Track("keys", immersive=route, instrument=Instrument("synth"), midi_clips=[clip])
    session = Session(tracks=[pad], tempo=TempoMap([TempoChange(0, 60)]))
    mixed = Engine(dataclasses.replace(session, tracks=[dataclasses.replace(
        pad, immersive=None)])).render(0, 72000)
    heard = streamed(ImmersiveLiveEngine(session, monitor="stereo"), 72000, 960)
    first = [int(np.flatnonzero(np.abs(x).max(axis=0) > 1e-4)[0]) for x in (mixed, heard)]
    assert 48000 <= first[0] < 48100 and abs(first[1] - first[0]) < 16
