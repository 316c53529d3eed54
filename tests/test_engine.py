"""Engine behaviour: pan law, clip placement, fades, mute/solo, glides, live edits."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from dsp_core import ArrayError, Clip, DspError, Engine, Session, Track, mix
from dsp_core.effects import EffectSpec
from dsp_core.session import Bus, Send
from tests.helpers_audio import DictLoader, busy_session, noise_sources

BACKENDS = ["native", "reference"]


def _dc_loader(frames: int = 48000) -> DictLoader:
    impulse = np.zeros((1, frames), dtype=np.float32)
    impulse[0, 5] = 1.0
    return DictLoader({"ones": np.ones((1, frames), dtype=np.float32),
                       "ones2": np.ones((2, frames), dtype=np.float32),
                       "impulse": impulse})


def _one_track(**kwargs) -> Session:
    clip = kwargs.pop("clip", Clip(source="ones", position=0, length=4000))
    return Session(sample_rate=48000, tracks=[Track(id="a", clips=[clip], **kwargs)])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pan", [-1.0, -0.5, 0.0, 0.3, 1.0])
def test_mix_follows_equal_power_pan_law(backend: str, pan: float) -> None:
    tracks = np.ones((1, 64), dtype=np.float32)
    out = mix(tracks, np.array([0.5], np.float32), np.array([pan], np.float32), backend=backend)
    angle = (pan + 1) * math.pi / 4
    np.testing.assert_allclose(out[0], 0.5 * math.cos(angle), atol=1e-7)
    np.testing.assert_allclose(out[1], 0.5 * math.sin(angle), atol=1e-7)


@pytest.mark.parametrize("bad", [
    (np.ones((2, 8)), np.ones(2, np.float32), np.zeros(2, np.float32)),
    (np.ones((2, 8), np.float32), np.ones(3, np.float32), np.zeros(2, np.float32)),
    (np.ones((2, 8), np.float32), np.ones(2, np.float32), np.full(2, 1.5, np.float32)),
    (np.ones(8, np.float32), np.ones(1, np.float32), np.zeros(1, np.float32)),
])
def test_mix_rejects_bad_arrays_with_a_clear_error(bad) -> None:
    with pytest.raises(ArrayError):
        mix(*bad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_lands_on_its_exact_frame(backend: str) -> None:
    session = _one_track(clip=Clip(source="impulse", position=1000, offset=3, length=100))
    out = Engine(session, backend=backend, loader=_dc_loader()).render(0, 2048)
    hits = np.flatnonzero(out[0])
    assert hits.tolist() == [1002]  # impulse at source frame 5, offset 3 -> clip frame 2
    assert out[0, 1002] == pytest.approx(math.cos(math.pi / 4), abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fades_ramp_linearly(backend: str) -> None:
    clip = Clip(source="ones", position=0, length=1000, fade_in=100, fade_out=200)
    out = Engine(_one_track(clip=clip, pan=-1.0), backend=backend, loader=_dc_loader())
    left = out.render(0, 1000)[0]
    np.testing.assert_allclose(left[:100], np.arange(100) / 100, atol=1e-6)
    np.testing.assert_allclose(left[100:800], 1.0, atol=1e-6)
    np.testing.assert_allclose(left[800:], np.arange(199, -1, -1) / 200, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_solo_silences_the_other_tracks_and_mute_silences_its_own(backend: str) -> None:
    tracks = [Track(id=f"t{i}", clips=[Clip(source="ones", position=0, length=512)], pan=-1.0,
                    gain_db=20 * math.log10(i + 1)) for i in range(3)]
    session = Session(sample_rate=48000, tracks=tracks)
    session.tracks[1].solo = True
    out = Engine(session, backend=backend, loader=_dc_loader()).render(0, 512)
    np.testing.assert_allclose(out[0], 2.0, rtol=1e-6)
    session.tracks[1].solo = False
    session.tracks[2].mute = True
    out = Engine(session, backend=backend, loader=_dc_loader()).render(0, 512)
    np.testing.assert_allclose(out[0], 3.0, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stereo_track_uses_balance_law(backend: str) -> None:
    session = _one_track(clip=Clip(source="ones2", position=0, length=256), channels=2,
                         pan=0.5)
    out = Engine(session, backend=backend, loader=_dc_loader()).render(0, 256)
    np.testing.assert_allclose(out[0], 0.5, atol=1e-6)
    np.testing.assert_allclose(out[1], 1.0, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pre_fader", [True, False])
def test_send_reaches_its_bus_at_the_right_level(backend: str, pre_fader: bool) -> None:
    # A mono track of ones, fader -6 dB panned hard left, one send at -12 dB to a bus
    # panned hard right, so what reaches the right channel came through the send only.
    fader, send_level = 10 ** (-6 / 20), 10 ** (-12 / 20)
    session = _one_track(gain_db=-6.0, pan=-1.0,
                         sends=[Send(bus="aux", level_db=-12.0, pre_fader=pre_fader)])
    session.buses = [Bus(id="aux", pan=1.0)]
    out = Engine(session, backend=backend, loader=_dc_loader()).render(0, 2048)
    np.testing.assert_allclose(out[0], fader, rtol=1e-5)
    # Pre-fader: the mono source is sent centred (level times sqrt(1/2) to each side) and
    # the bus keeps its right side.  Post-fader: the send taps the hard-left signal, whose
    # right side is silent, so nothing reaches the right channel.
    expected_right = send_level * math.sqrt(0.5) if pre_fader else 0.0
    np.testing.assert_allclose(out[1], expected_right, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_post_fader_send_follows_the_fader(backend: str) -> None:
    session = _one_track(gain_db=-6.0, pan=0.0,
                         sends=[Send(bus="aux", level_db=-12.0, pre_fader=False)])
    session.buses = [Bus(id="aux", gain_db=-120.0)]
    dry = Engine(session, backend=backend, loader=_dc_loader()).render(0, 2048)
    session.buses = [Bus(id="aux")]
    wet = Engine(session, backend=backend, loader=_dc_loader()).render(0, 2048)
    send_only = wet - dry
    centre = 10 ** (-6 / 20) * math.cos(math.pi / 4)
    np.testing.assert_allclose(send_only, centre * 10 ** (-12 / 20), rtol=1e-4)


def test_native_render_flushes_denormals() -> None:
    # A feedback delay's tail decays through the subnormal range: numpy (the twin) keeps
    # those values, the C engine flushes them to zero (FTZ/DAZ during every call).
    frames = 48000 * 6
    impulse = np.zeros((1, frames), dtype=np.float32)
    impulse[0, 5] = 1.0
    delay = EffectSpec("delay", {"time_ms": 10.0, "feedback": 0.3, "mix": 1.0})
    session = Session(sample_rate=48000, tracks=[
        Track(id="a", clips=[Clip(source="i", position=0, length=frames)], effects=[delay])])

    def subnormals(backend: str) -> int:
        out = Engine(session, backend=backend, loader=DictLoader({"i": impulse}))
        block = out.render(0, frames)
        return int(((np.abs(block) < np.finfo(np.float32).tiny) & (block != 0)).sum())

    assert subnormals("reference") > 0, "the tail must pass through the subnormal range"
    assert subnormals("native") == 0


def test_render_does_not_depend_on_block_size() -> None:
    session = busy_session(48000, tracks=6, seconds=0.3)
    loader = DictLoader(noise_sources(48000, 0.6))
    renders = [Engine(session, block_size=b, loader=loader).render(0, 20000)
               for b in (64, 100, 1024)]
    for other in renders[1:]:
        np.testing.assert_allclose(other, renders[0], atol=2e-6, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fader_move_glides_without_a_click(backend: str) -> None:
    clip = Clip(source="ones", position=0, length=40000)
    session = _one_track(clip=clip, pan=-1.0)
    engine = Engine(session, block_size=128, backend=backend, loader=_dc_loader())
    before = engine.render(0, 1024)[0]
    session.tracks[0].gain_db = -40.0
    engine.apply(session)
    after = engine.render(1024, 24000)[0]
    assert before[-1] == pytest.approx(1.0)
    steps = np.abs(np.diff(np.concatenate([before, after])))
    assert steps.max() < 0.01, "a 40 dB move must be spread out, not a step"
    assert after[-1] == pytest.approx(0.01, rel=1e-3), "and reach its target"
    assert after[9600] < 0.02, "within about 200 ms"


def test_moving_a_clip_is_heard_at_its_new_place() -> None:
    session = _one_track(clip=Clip(source="impulse", position=100, length=50))
    engine = Engine(session, loader=_dc_loader())
    assert np.flatnonzero(engine.render(0, 1024)[0]).tolist() == [105]
    session.tracks[0].clips[0].position = 700
    engine.apply(session)
    assert np.flatnonzero(engine.render(0, 1024)[0]).tolist() == [705]


def test_higher_render_rate_scales_positions() -> None:
    session = _one_track(clip=Clip(source="ones", position=1000, length=500))
    loader = DictLoader({"ones": np.ones((1, 48000 * 4), dtype=np.float32)})
    out = Engine(session, sample_rate=192000, loader=loader).render(0, 8000)
    hits = np.flatnonzero(out[0])
    assert hits[0] == 4000 and hits[-1] == 5999


def test_block_larger_than_block_size_is_refused() -> None:
    engine = Engine(_one_track(), block_size=64, loader=_dc_loader())
    with pytest.raises(DspError, match="block size"):
        engine.render_block(0, 65)


def test_package_falls_back_to_numpy_when_c_engine_is_missing() -> None:
    code = (
        "import sys; sys.modules['native._engine'] = None\n"
        "import numpy as np, dsp_core\n"
        "print(dsp_core.default_backend())\n"
        "x = dsp_core.mix(np.ones((2, 4), np.float32), np.ones(2, np.float32),"
        " np.zeros(2, np.float32))\n"
        "print(round(float(x[0, 0]), 4))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "."})
    assert result.stdout.split() == ["reference", "1.4142"]
