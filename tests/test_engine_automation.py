"""Sample-accurate fader automation: C engine and numpy twin, lane edges, live edits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers_audio import DictLoader, noise_sources

from dsp_core import Bus, EffectSpec, Engine, Send
from dsp_core.session import AutomationLane, AutomationPoint, Clip, Session, Track

DC = 16384


def lane(*points: tuple[int, float] | tuple[int, float, str], mode: str = "read"
         ) -> AutomationLane:
    return AutomationLane(mode=mode, points=[AutomationPoint(*p, id=f"p{i}")
                                             for i, p in enumerate(points)])


def dc_session(rate: int, channels: int = 1, **automation: AutomationLane) -> Session:
    track = Track("t", channels=channels, clips=[Clip("dc", 0, DC)], automation=automation)
    return Session(sample_rate=rate, tracks=[track])


def dc_loader(channels: int = 1):
    def load(path: str, rate: int) -> np.ndarray:
        return np.ones((channels, DC * rate // 48000), dtype=np.float32)

    return load


def render(session: Session, backend: str, block: int, frames: int, loader,
           rate: int | None = None) -> np.ndarray:
    engine = Engine(session, sample_rate=rate, block_size=block, backend=backend, loader=loader)
    return engine.render(0, frames)


def test_a_gain_ramp_inside_a_block_lands_on_its_exact_frames() -> None:
    session = dc_session(48000, gain_db=lane((70, -60.0), (100, 0.0)))
    out = render(session, "native", 128, 256, dc_loader())
    centre = math.sqrt(0.5)
    left = out[0].astype(np.float64)
    np.testing.assert_allclose(left[:71], 1e-3 * centre, rtol=1e-6)  # held before the lane
    np.testing.assert_allclose(left[100:], centre, rtol=1e-6)
    expected = centre * 10 ** ((-60.0 + 60.0 * (np.arange(70, 101) - 70) / 30) / 20)
    np.testing.assert_allclose(left[70:101], expected, rtol=1e-6)
    np.testing.assert_array_equal(out[0], out[1])


def test_a_hold_point_steps_and_a_pan_move_follows_the_pan_law() -> None:
    session = dc_session(48000, gain_db=lane((50, -6.0, "hold"), (80, 0.0)),
                         pan=lane((100, -1.0), (200, 1.0)))
    out = render(session, "native", 64, 256, dc_loader()).astype(np.float64)
    g = 10 ** (-6 / 20)
    assert out[0, 79] == pytest.approx(g, rel=1e-6)  # hard left, held value
    assert out[1, 79] == pytest.approx(0.0, abs=1e-7)
    assert out[0, 80] == pytest.approx(1.0, rel=1e-6)  # the step at the next point
    angle = (np.arange(100, 201) - 100) / 100 * math.pi / 2
    np.testing.assert_allclose(out[0, 100:201], np.cos(angle), atol=5e-7)
    np.testing.assert_allclose(out[1, 100:201], np.sin(angle), atol=5e-7)


@pytest.mark.parametrize("rate", [48000, 192000])
def test_c_and_twin_agree_bit_for_bit_whatever_the_block(rate: int) -> None:
    """Breakpoints inside blocks of 64, 128 and 100 frames, with inserts and sends: the
    automated tracks give the same bits in C and twin, whatever the block size; with a
    plain track in the mix they agree to the whole render's 2e-5 (docs/engine.md)."""
    sources = noise_sources(rate, 0.1)
    frames = sources["mono"].shape[1]
    tracks = [
        Track("m", channels=1, clips=[Clip("mono", 0, frames)],
              effects=[EffectSpec("gain", {"gain_db": -3.0})],
              sends=[Send("fx", -6.0)],
              automation={"gain_db": lane((10, -40.0), (1000, 3.0), (1003, -12.0, "hold"),
                                          (3000, 0.0)),
                          "pan": lane((500, -0.5), (2500, 0.75)),
                          "mute": lane((2000, 1.0), (2301, 0.0))}),
        Track("s", channels=2, clips=[Clip("stereo", 0, frames)],
              automation={"pan": lane((0, 1.0), (4000, -1.0))}),
        Track("q", channels=1, clips=[Clip("mono", 0, frames)], mute=True,
              automation={"gain_db": lane((0, 0.0))}),
        Track("plain", channels=1, clips=[Clip("mono", 0, frames)], gain_db=-6.0,
              automation={"gain_db": lane((0, -20.0), (100, 0.0), mode="off")}),
    ]
    session = Session(sample_rate=rate, tracks=tracks, buses=[Bus("fx", effects=[
        EffectSpec("delay", {"time_ms": 3.0, "feedback": 0.3, "mix": 0.5})])])
    loader = DictLoader(sources)
    reference = render(session, "reference", 128, frames, loader)
    for block in (64, 128, 100):
        native = render(session, "native", block, frames, loader)
        np.testing.assert_allclose(native, reference, rtol=0, atol=2e-5)
    automated = Session(sample_rate=rate, tracks=tracks[:3], buses=session.buses)
    reference = render(automated, "reference", 128, frames, loader)
    for block in (64, 128, 100):
        np.testing.assert_array_equal(render(automated, "native", block, frames, loader),
                                      reference)
    assert np.abs(reference).max() > 0.1


def test_a_mute_lane_steps_at_its_frames_and_replaces_the_static_mute() -> None:
    session = dc_session(48000, mute=lane((0, 0.0), (100, 1.0, "linear"), (164, 0.0)))
    session.tracks[0].mute = True  # the lane, being read, decides
    out = render(session, "native", 128, 256, dc_loader())[0]
    assert out[99] == pytest.approx(math.sqrt(0.5), rel=1e-6)
    assert not out[100:164].any()
    assert out[164] == pytest.approx(math.sqrt(0.5), rel=1e-6)


def test_a_lane_that_is_off_or_written_is_ignored() -> None:
    static = render(dc_session(48000), "native", 128, 512, dc_loader())
    for mode in ("off", "write"):
        session = dc_session(48000, gain_db=lane((0, -60.0), (100, 0.0), mode=mode))
        np.testing.assert_array_equal(render(session, "native", 128, 512, dc_loader()), static)
    for mode in ("touch", "latch"):
        session = dc_session(48000, gain_db=lane((0, -60.0), mode=mode))
        assert render(session, "native", 128, 512, dc_loader())[0, 300] < 1e-3


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_leaving_a_lane_glides_back_to_the_fader_and_entering_it_jumps(backend: str) -> None:
    session = dc_session(48000, gain_db=lane((0, -40.0)))
    engine = Engine(session, block_size=128, backend=backend, loader=dc_loader())
    first = engine.render(0, 256)
    assert first[0, -1] == pytest.approx(0.01 * math.sqrt(0.5), rel=1e-6)
    session.tracks[0].automation = {}
    engine.apply(session)
    after = engine.render(256, 8192)[0].astype(np.float64)
    steps = np.abs(np.diff(np.concatenate([[first[0, -1]], after])))
    assert steps.max() < 0.01  # a 10 ms glide from -40 dB up to 0 dB, no click
    assert after[-1] == pytest.approx(math.sqrt(0.5), rel=1e-4)
    session.tracks[0].automation = {"gain_db": lane((0, -40.0))}
    engine.apply(session)  # entering a lane plays its value at once (documented)
    assert engine.render(8448, 64)[0, 0] == pytest.approx(0.01 * math.sqrt(0.5), rel=1e-6)


def test_points_scale_to_the_render_rate() -> None:
    session = dc_session(48000, gain_db=lane((100, -60.0), (101, 0.0)))
    out = render(session, "native", 128, 1024, dc_loader(), rate=192000)
    assert out[0, 400] == pytest.approx(1e-3 * math.sqrt(0.5), rel=1e-6)
    assert out[0, 404] == pytest.approx(math.sqrt(0.5), rel=1e-6)
