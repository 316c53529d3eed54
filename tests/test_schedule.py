"""Sidechains and plug-in delay compensation (dsp_core.schedule, both backends)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp_core import (
    AutomationLane,
    AutomationPoint,
    Bus,
    Clip,
    EffectSpec,
    Engine,
    ProjectError,
    Send,
    Session,
    Track,
)
from dsp_core.backend import get_backend
from dsp_core.effects import EffectState, lookahead_frames
from tests.helpers_audio import DictLoader

pytestmark = pytest.mark.timeout(300)

BACKENDS = ["native", "reference"]
NULL_DBFS = -90.0
RENDER_ATOL = 2e-5  # C and twin: the compressor's log2/exp2 differ in operation order


def noise(sample_rate: int, seconds: float, seed: int = 3, level: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal((1, int(sample_rate * seconds)))).astype(np.float32)


def quiet_lookahead(ms: float = 5.0) -> EffectSpec:
    """A lookahead limiter whose ceiling the test signals never reach: pure latency."""
    return EffectSpec("lookahead_limiter", {"ceiling_db": 0.0, "lookahead_ms": ms})


def dbfs(x: np.ndarray) -> float:
    peak = float(np.abs(x).max())
    return -np.inf if peak == 0.0 else 20.0 * np.log10(peak)


def null_pair(sample_rate: int, seconds: float = 0.3) -> tuple[DictLoader, int]:
    x = noise(sample_rate, seconds)
    return DictLoader({"x": x, "minus_x": -x}), x.shape[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("sample_rate", "block"), [(48000, 128), (96000, 100)])
def test_a_copy_through_a_latency_adding_limiter_nulls_with_the_track(
        backend: str, sample_rate: int, block: int) -> None:
    loader, frames = null_pair(sample_rate)
    session = Session(sample_rate=sample_rate, tracks=[
        Track("dry", clips=[Clip("x", 0, frames)]),
        Track("copy", clips=[Clip("minus_x", 0, frames)], effects=[quiet_lookahead()]),
    ])
    engine = Engine(session, block_size=block, backend=backend, loader=loader)
    assert engine.latency == lookahead_frames(5.0, sample_rate) > 0
    out = engine.render(0, frames)
    alone = Engine(Session(sample_rate=sample_rate, tracks=[session.tracks[0]]),
                   block_size=block, backend=backend, loader=loader).render(0, frames)
    assert dbfs(alone) > -20.0, "the dry track must make sound"
    assert dbfs(out) < NULL_DBFS


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_copy_through_the_convolution_reverb_nulls_with_the_track(backend: str) -> None:
    """The convolution reverb reports its 256-frame partition as latency; dry only
    (mix 0) it is a pure delay, which the engine compensates."""
    sample_rate = 48000
    loader, frames = null_pair(sample_rate)
    ir = np.zeros((1, 100), dtype=np.float32)
    ir[0, 0] = 1.0
    loader.sources["ir"] = ir
    session = Session(sample_rate=sample_rate, tracks=[
        Track("dry", clips=[Clip("x", 0, frames)]),
        Track("copy", clips=[Clip("minus_x", 0, frames)],
              effects=[EffectSpec("convolution", {"ir": "ir", "mix": 0.0})]),
    ])
    engine = Engine(session, block_size=128, backend=backend, loader=loader)
    assert engine.latency == 256
    assert dbfs(engine.render(0, frames)) < NULL_DBFS


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["copy", "bus"])
def test_a_copy_sent_to_a_bus_nulls_with_the_track(backend: str, where: str) -> None:
    """The copy reaches the master only through a pre-fader send to a bus; the
    latency-adding limiter sits on the copy or on the bus."""
    sample_rate, block = 48000, 256
    loader, frames = null_pair(sample_rate)
    copy_fx = [quiet_lookahead(3.0)] if where == "copy" else []
    bus_fx = [quiet_lookahead(3.0)] if where == "bus" else []
    session = Session(sample_rate=sample_rate, buses=[Bus("aux", effects=bus_fx)], tracks=[
        Track("dry", clips=[Clip("x", 0, frames)]),
        Track("copy", clips=[Clip("minus_x", 0, frames)], effects=copy_fx, mute=True,
              sends=[Send("aux", 0.0, pre_fader=True)]),
    ])
    # a mono pre-fader send is sent centred (sqrt 1/2 a side): so is the dry track's pan
    engine = Engine(session, block_size=block, backend=backend, loader=loader)
    assert engine.latency == lookahead_frames(3.0, sample_rate)
    out = engine.render(0, frames)
    assert dbfs(out) < NULL_DBFS


@pytest.mark.parametrize("backend", BACKENDS)
def test_fader_automation_stays_aligned_on_a_latency_adding_track(backend: str) -> None:
    """The same gain automation on the dry track and on its copy through the lookahead
    limiter: steps and ramps hit the same audio, so the pair still cancels."""
    sample_rate, block = 48000, 100
    loader, frames = null_pair(sample_rate)
    lane = AutomationLane("read", [
        AutomationPoint(3000, 0.0, "hold", "a"), AutomationPoint(6001, -12.0, "linear", "b"),
        AutomationPoint(9000, -3.0, "linear", "c")])
    session = Session(sample_rate=sample_rate, tracks=[
        Track("dry", clips=[Clip("x", 0, frames)], automation={"gain_db": lane}),
        Track("copy", clips=[Clip("minus_x", 0, frames)], effects=[quiet_lookahead()],
              automation={"gain_db": lane}),
    ])
    engine = Engine(session, block_size=block, backend=backend, loader=loader)
    assert dbfs(engine.render(0, frames)) < NULL_DBFS
    session.tracks[1].automation = {}  # the copy unautomated: the pair no longer cancels
    engine = Engine(session, block_size=block, backend=backend, loader=loader)
    assert dbfs(engine.render(0, frames)) > -30.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_edit_during_playback_keeps_what_is_in_the_delay_lines(backend: str) -> None:
    """A clip edit on another track re-plans the graph mid-play; the null holds
    across it (the lines keep their contents), and after a reset it starts afresh."""
    sample_rate, block = 48000, 128
    loader, frames = null_pair(sample_rate)
    session = Session(sample_rate=sample_rate, buses=[Bus("aux", effects=[quiet_lookahead()])],
                      tracks=[Track("dry", clips=[Clip("x", 0, frames)]),
                              Track("copy", clips=[Clip("minus_x", 0, frames)], mute=True,
                                    sends=[Send("aux", 0.0, pre_fader=True)]),
                              Track("other", clips=[Clip("x", 0, 100)], mute=True)])
    engine = Engine(session, block_size=block, backend=backend, loader=loader)
    half = (frames // 2) // block * block
    first = engine.render(0, half)
    session.tracks[2].clips[0].position = 5000  # rebuilds that track: a new plan
    engine.apply(session)
    second = engine.render(half, frames - half)
    assert dbfs(np.concatenate([first, second], axis=1)) < NULL_DBFS
    engine.reset()
    again = engine.render(0, half)
    assert dbfs(again) < NULL_DBFS


def test_latencies_of_tracks_buses_and_master_add_up_along_the_longest_path() -> None:
    sample_rate = 48000
    loader, frames = null_pair(sample_rate, 0.05)
    session = Session(
        sample_rate=sample_rate,
        buses=[Bus("a", effects=[quiet_lookahead(2.0)]), Bus("b")],
        master=Bus("master", effects=[quiet_lookahead(1.0)]),
        tracks=[Track("t", clips=[Clip("x", 0, frames)], effects=[quiet_lookahead(4.0)],
                      sends=[Send("a")])],
    )
    engine = Engine(session, block_size=128, backend="native", loader=loader)
    assert engine.latency == sum(lookahead_frames(ms, sample_rate) for ms in (4.0, 2.0, 1.0))
    session.tracks[0].effects[0].params["lookahead_ms"] = 8.0
    engine.apply(session)  # a new lookahead is a new plan
    assert engine.latency == sum(lookahead_frames(ms, sample_rate) for ms in (8.0, 2.0, 1.0))
    session.tracks[0].effects[0].enabled = False  # a bypassed processor adds no latency
    engine.apply(session)
    assert engine.latency == sum(lookahead_frames(ms, sample_rate) for ms in (2.0, 1.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_compensated_render_equals_the_render_without_latency(backend: str) -> None:
    """Latency on one track and on a bus, a compressor on the bus keyed by a track:
    shifted back, the render equals the same session without the latency."""
    sample_rate, block = 48000, 100
    x = noise(sample_rate, 0.25)
    kick = noise(sample_rate, 0.25, seed=9, level=0.5)
    kick[:, ::2000] *= 0.0
    loader = DictLoader({"x": x, "kick": kick})

    def session(latency: bool) -> Session:
        extra = [quiet_lookahead(2.0)] if latency else []
        duck = EffectSpec("compressor", {"threshold_db": -30.0, "ratio": 8.0,
                                         "attack_ms": 1.0}, sidechain="kick")
        return Session(sample_rate=sample_rate, buses=[Bus("pads", effects=[*extra, duck])],
                       tracks=[
                           Track("kick", clips=[Clip("kick", 0, x.shape[1])]),
                           Track("pad", clips=[Clip("x", 0, x.shape[1])], effects=extra,
                                 sends=[Send("pads", 0.0)], gain_db=-6.0),
                       ])

    frames = x.shape[1]
    plain = Engine(session(False), block_size=block, backend=backend, loader=loader)
    late = Engine(session(True), block_size=block, backend=backend, loader=loader)
    assert late.latency == 2 * lookahead_frames(2.0, sample_rate)
    np.testing.assert_allclose(late.render(0, frames), plain.render(0, frames), atol=1e-6,
                               rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_latency_after_a_keyed_compressor_is_compensated(backend: str) -> None:
    """Pad: a compressor keyed by the kick, then a lookahead limiter. The kick reads
    ahead and delays its own outputs, so its key meets the pad's compressor and its
    sound still lines up: the render equals the same session without the limiter."""
    sample_rate, block = 24000, 128

    def session(latency: bool) -> Session:
        base, _ = ducking_session(sample_rate)
        pad, kick = base.tracks
        pad.effects += [quiet_lookahead(3.0)] if latency else []
        kick.mute = False
        kick.sends = [Send("aux", -6.0)]
        base.buses = [Bus("aux")]
        return base

    _, loader = ducking_session(sample_rate)
    plain = Engine(session(False), block_size=block, backend=backend, loader=loader)
    late = Engine(session(True), block_size=block, backend=backend, loader=loader)
    assert late.latency == lookahead_frames(3.0, sample_rate)
    expected = plain.render(0, sample_rate)
    assert rms(expected) > 0.05
    np.testing.assert_allclose(late.render(0, sample_rate), expected, atol=1e-6, rtol=0)


def ducking_session(sample_rate: int, kind: str = "compressor",
                    key: str = "kick") -> tuple[Session, DictLoader]:
    """A steady pad and a kick that plays only in the second quarter-second.

    ``key="drums"``: the pad is keyed by a silent bus the kick feeds (pre-fader).
    """
    frames = sample_rate
    t = np.arange(frames) / sample_rate
    pad = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)[None, :]
    kick = np.zeros((1, frames), dtype=np.float32)
    hit = slice(frames // 4, frames // 2)
    kick[0, hit] = 0.8 * np.sin(2 * np.pi * 60.0 * t[hit])
    params = ({"threshold_db": -30.0, "ratio": 10.0, "attack_ms": 1.0, "release_ms": 20.0}
              if kind == "compressor" else
              {"threshold_db": -20.0, "range_db": 60.0, "attack_ms": 0.5, "hold_ms": 5.0,
               "release_ms": 10.0})
    sends = [Send("drums", 0.0, pre_fader=True)] if key == "drums" else []
    session = Session(sample_rate=sample_rate, tracks=[
        # the pad comes first: the engine must render the kick (its key) before it
        Track("pad", clips=[Clip("pad", 0, frames)],
              effects=[EffectSpec(kind, params, sidechain=key)]),
        Track("kick", clips=[Clip("kick", 0, frames)], mute=True, sends=sends),  # a ghost key
    ], buses=[Bus("drums", gain_db=-np.inf)] if key == "drums" else [])
    return session, DictLoader({"pad": pad, "kick": kick})


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key", ["kick", "drums"])
def test_a_kick_ducks_the_pad_only_while_it_plays(backend: str, key: str) -> None:
    sample_rate = 24000
    session, loader = ducking_session(sample_rate, key=key)
    out = Engine(session, block_size=128, backend=backend, loader=loader).render(0, sample_rate)
    q = sample_rate // 4
    before, during, after = out[:, q // 2:q], out[:, q + q // 4:2 * q], out[:, 3 * q:]
    assert rms(during) < 0.2 * rms(before), "the pad must drop while the kick plays"
    assert rms(after) == pytest.approx(rms(before), rel=0.05), "and come back after"
    assert rms(before) > 0.05


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_keyed_gate_opens_the_pad_only_while_the_kick_plays(backend: str) -> None:
    sample_rate = 24000
    session, loader = ducking_session(sample_rate, "gate")
    out = Engine(session, block_size=128, backend=backend, loader=loader).render(0, sample_rate)
    q = sample_rate // 4
    before, during = out[:, q // 2:q], out[:, q + q // 4:2 * q]
    assert rms(before) < 2e-3 * rms(during)  # closed: range_db 60 below
    assert rms(during) > 0.05


@pytest.mark.parametrize("block", [64, 100])
def test_scheduled_render_matches_twin(block: int) -> None:
    sample_rate = 24000
    session, loader = ducking_session(sample_rate)
    session.tracks[0].effects.append(quiet_lookahead(0.5))  # the kick must read ahead
    session.tracks.append(Track("dry", clips=[Clip("pad", 0, sample_rate)],
                                effects=[quiet_lookahead(1.0)], sends=[Send("aux")]))
    session.buses.append(Bus("aux", effects=[
        EffectSpec("gate", {"threshold_db": -25.0}, sidechain="kick"), quiet_lookahead(2.0)]))
    session.master.effects.append(EffectSpec("compressor", {"threshold_db": -20.0},
                                             sidechain="aux"))
    fast = Engine(session, block_size=block, backend="native", loader=loader)
    slow = Engine(session, block_size=block, backend="reference", loader=loader)
    out_c, out_r = fast.render(0, sample_rate // 2), slow.render(0, sample_rate // 2)
    assert rms(out_r) > 0.01
    np.testing.assert_allclose(out_c, out_r, atol=RENDER_ATOL, rtol=0)


def test_a_track_keyed_by_a_bus_matches_twin() -> None:
    sample_rate = 24000
    session, loader = ducking_session(sample_rate, key="drums")
    session.tracks.append(Track("late", clips=[Clip("pad", 0, sample_rate)],
                                effects=[quiet_lookahead(1.0)], sends=[Send("verb")]))
    session.buses.append(Bus("verb", effects=[EffectSpec("gate", sidechain="drums")]))
    fast = Engine(session, block_size=100, backend="native", loader=loader)
    slow = Engine(session, block_size=100, backend="reference", loader=loader)
    out_c, out_r = fast.render(0, sample_rate // 2), slow.render(0, sample_rate // 2)
    assert rms(out_r) > 0.01
    np.testing.assert_allclose(out_c, out_r, atol=RENDER_ATOL, rtol=0)


def test_backends_hand_over_delay_lines_between_blocks() -> None:
    sample_rate = 48000
    loader, frames = null_pair(sample_rate)
    session = Session(sample_rate=sample_rate, buses=[Bus("aux", effects=[quiet_lookahead()])],
                      tracks=[Track("a", clips=[Clip("x", 0, frames)], sends=[Send("aux")])])
    whole = Engine(session, block_size=256, backend="native", loader=loader).render(0, 8192)
    mixed = Engine(session, block_size=256, backend="native", loader=loader)
    first = mixed.render(0, 4096)
    mixed.use_backend("reference")
    second = mixed.render(4096, 4096)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-6,
                               rtol=0)


def keyed(source: str) -> EffectSpec:
    return EffectSpec("compressor", {}, sidechain=source)


@pytest.mark.parametrize(("tracks", "buses", "message"), [
    ([Track("a", effects=[keyed("b")]), Track("b", effects=[keyed("a")])], [],
     "sidechain cycle between tracks 'a', 'b'"),
    ([Track("a", effects=[keyed("a")])], [], "keyed by its own track"),
    ([Track("a", effects=[keyed("nowhere")])], [], "'nowhere' is neither a track nor a bus"),
    ([Track("a", effects=[keyed("x")], sends=[Send("x")])], [Bus("x")],
     "sidechain cycle between track 'a', bus 'x'"),
    ([Track("a", effects=[keyed("x")]), Track("b", sends=[Send("x")])],
     [Bus("x", effects=[quiet_lookahead()])], "off that bus"),
    ([Track("a")], [Bus("x", effects=[keyed("y")]), Bus("y", effects=[keyed("x")])],
     "sidechain cycle between buses 'x', 'y'"),
    ([Track("a", effects=[keyed("x"), quiet_lookahead()]), Track("b", sends=[Send("x")])],
     [Bus("x")], "move latency-adding effects before the keyed effect"),
])
def test_bad_sidechains_are_refused_with_what_to_do(tracks, buses, message) -> None:
    session = Session(tracks=tracks, buses=buses)
    with pytest.raises(ProjectError, match=message):
        Engine(session, block_size=64, backend="native", loader=DictLoader({}))


def test_only_compressor_and_gate_take_a_sidechain() -> None:
    with pytest.raises(ProjectError, match="only compressor and gate take a sidechain"):
        EffectSpec("limiter", {}, sidechain="kick").validate()


@pytest.mark.parametrize("backend", BACKENDS)
def test_lookahead_limiter_holds_the_ceiling_and_ramps_before_the_peak(backend: str) -> None:
    sample_rate, block = 48000, 128
    fx = EffectState(EffectSpec("lookahead_limiter", {"ceiling_db": -6.0, "lookahead_ms": 2.0,
                                                      "release_ms": 30.0}), 1, sample_rate)
    lookahead = lookahead_frames(2.0, sample_rate)
    x = np.full(4096, 0.25, dtype=np.float32)
    x[2000] = 1.0  # one peak 12 dB over the 0.25 level, 6 dB over the ceiling
    out = x.copy()
    for start in range(0, x.shape[0], block):
        seg = np.ascontiguousarray(out[start:start + block])
        get_backend(backend).effect_process(fx, seg, None, seg.shape[0], sample_rate,
                                            start % 32)
        out[start:start + block] = seg
    ceiling = np.float32(10 ** (-6 / 20))
    assert np.abs(out).max() <= ceiling
    peak_at = 2000 + lookahead
    assert out[peak_at] == pytest.approx(ceiling, rel=1e-3), "the peak arrives, limited"
    np.testing.assert_array_equal(out[lookahead:1500], x[:1500 - lookahead])  # untouched
    ramp = out[peak_at - lookahead:peak_at] / 0.25
    assert np.all(np.diff(ramp) < 0), "the gain falls gradually before the peak"
    assert ramp[0] > 0.99
