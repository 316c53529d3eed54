"""The C kernels and their numpy twins agree (dsp_core.reference vs native)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp_core import EffectSpec, Engine, get_backend
from dsp_core.effects import TICK, EffectState
from tests.helpers_audio import DictLoader, busy_session, noise_sources

pytestmark = pytest.mark.timeout(300)

native = get_backend("native")
reference = get_backend("reference")

# Where C and twin do the same float32 operations in the same order they agree bit for
# bit (no FMA contraction: the build is -std=c11, so -ffp-contract=off).  Elsewhere
# the order differs (BLAS sums tracks in its own order; the compressor's polynomial
# log2/exp2 are evaluated in another order; the render mixes runs of plain tracks with
# fused multiply-adds where built for AVX-512), and results agree to float32 rounding.
BIT_EXACT_EFFECTS = {"gain", "biquad", "delay", "limiter", "reverb", "chorus", "flanger", "gate",
                     "saturation", "phaser", "lookahead_limiter"}
MIX_RTOL = 2e-6       # relative to sum(|g x|)
EFFECT_ATOL = 2e-5    # absolute, on signals of unit scale
RENDER_ATOL = 2e-5


@pytest.mark.parametrize("n_tracks", [1, 3, 4, 17, 256])
@pytest.mark.parametrize("n_frames", [1, 100, 4099])
def test_mix_matches_twin(n_tracks: int, n_frames: int) -> None:
    rng = np.random.default_rng(n_tracks * 10007 + n_frames)
    tracks = rng.standard_normal((n_tracks, n_frames)).astype(np.float32)
    gains = rng.uniform(0, 2, n_tracks).astype(np.float32)
    pans = rng.uniform(-1, 1, n_tracks).astype(np.float32)
    got = native.mix(tracks, gains, pans)
    want = reference.mix(tracks, gains, pans)
    scale = np.abs(tracks).T @ gains + 1e-6
    assert got.dtype == np.float32 and got.shape == (2, n_frames)
    assert np.all(np.abs(got - want) <= MIX_RTOL * scale * n_tracks ** 0.5 + 1e-7)


def test_log2_and_exp2_match_twin_and_are_accurate() -> None:
    x = np.geomspace(1e-10, 1e4, 2001).astype(np.float32)
    np.testing.assert_array_equal(native.log2(x), reference.log2(x))
    assert np.max(np.abs(reference.log2(x) - np.log2(x.astype(np.float64)))) < 2e-5
    y = np.linspace(-30, 30, 2001).astype(np.float32)
    np.testing.assert_allclose(native.exp2(y), reference.exp2(y), rtol=1e-6)
    assert np.max(np.abs(reference.exp2(y) / np.exp2(y.astype(np.float64)) - 1)) < 2e-5


EFFECTS = [
    EffectSpec("gain", {"gain_db": -6.0}),
    EffectSpec("biquad", {"shape": "lowpass", "freq": 800.0, "q": 0.9}),
    EffectSpec("biquad", {"shape": "highpass", "freq": 300.0, "q": 0.7}),
    EffectSpec("biquad", {"shape": "peaking", "freq": 2000.0, "q": 2.0, "gain_db": 6.0}),
    EffectSpec("biquad", {"shape": "lowshelf", "freq": 120.0, "gain_db": -4.0}),
    EffectSpec("biquad", {"shape": "highshelf", "freq": 6000.0, "gain_db": 3.0}),
    EffectSpec("compressor", {"threshold_db": -20.0, "ratio": 6.0, "knee_db": 6.0,
                              "attack_ms": 2.0, "release_ms": 50.0, "makeup_db": 3.0}),
    EffectSpec("delay", {"time_ms": 3.3, "feedback": 0.5, "mix": 0.4}),
    EffectSpec("limiter", {"ceiling_db": -6.0, "release_ms": 20.0}),
    EffectSpec("reverb", {"room_size": 0.7, "damping": 0.3, "pre_delay_ms": 3.0, "width": 0.8,
                          "mix": 0.4}),
    EffectSpec("chorus", {"rate_hz": 2.0, "depth_ms": 4.0, "feedback": 0.3}),
    EffectSpec("flanger", {"rate_hz": 3.0, "feedback": -0.6}),
    EffectSpec("gate", {"threshold_db": -12.0, "range_db": 40.0, "attack_ms": 0.5,
                        "hold_ms": 1.0, "release_ms": 5.0}),
    EffectSpec("saturation", {"drive_db": 18.0, "mix": 0.8, "output_db": -2.0}),
    EffectSpec("phaser", {"rate_hz": 2.0, "feedback": 0.6}),
    EffectSpec("lookahead_limiter", {"ceiling_db": -6.0, "release_ms": 20.0,
                                     "lookahead_ms": 1.5}),
]
CHANGES = {"gain": {"gain_db": 4.0}, "biquad": {"freq": 4000.0}, "compressor":
           {"threshold_db": -30.0}, "delay": {"time_ms": 5.0}, "limiter": {"ceiling_db": -3.0},
           "reverb": {"room_size": 0.95, "damping": 0.6, "pre_delay_ms": 7.0, "width": 0.2},
           "chorus": {"rate_hz": 5.0, "depth_ms": 6.0, "mix": 0.7},
           "flanger": {"delay_ms": 4.0, "feedback": 0.8}, "gate": {"threshold_db": -3.0},
           "saturation": {"drive_db": 30.0, "mix": 0.3},
           "phaser": {"center_hz": 2000.0, "depth": 1.0, "mix": 0.8},
           "lookahead_limiter": {"ceiling_db": -9.0, "lookahead_ms": 0.7}}


@pytest.mark.parametrize("spec", EFFECTS, ids=lambda s: f"{s.kind}-{s.params.get('shape', '')}")
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sample_rate", [48000, 192000])
@pytest.mark.parametrize("block", [64, 100])
def test_effect_matches_twin_through_parameter_glide(spec: EffectSpec, channels: int,
                                                     sample_rate: int, block: int) -> None:
    rng = np.random.default_rng(7)
    signal = (0.5 * rng.standard_normal((channels, 40 * block))).astype(np.float32)
    signal[:, 15 * block:20 * block] *= 0.01  # quiet: gates close, reverb tails ring out
    fx_c = EffectState(spec, channels, sample_rate)
    fx_r = EffectState(spec, channels, sample_rate)
    out_c, out_r = signal.copy(), signal.copy()
    for i, start in enumerate(range(0, signal.shape[1], block)):
        if i == 10:  # a live parameter change mid-stream: both must glide alike
            fx_c.set_params(CHANGES[spec.kind])
            fx_r.set_params(CHANGES[spec.kind])
        phase = start % TICK
        for fx, out, backend in ((fx_c, out_c, native), (fx_r, out_r, reference)):
            ch0 = out[0, start:start + block]
            ch1 = out[1, start:start + block] if channels == 2 else None
            if backend is native:
                ch0 = np.ascontiguousarray(ch0)
                ch1 = None if ch1 is None else np.ascontiguousarray(ch1)
                backend.effect_process(fx, ch0, ch1, block, sample_rate, phase)
                out[0, start:start + block] = ch0
                if ch1 is not None:
                    out[1, start:start + block] = ch1
            else:
                backend.effect_process(fx, ch0, ch1, block, sample_rate, phase)
    if spec.kind in BIT_EXACT_EFFECTS:
        np.testing.assert_array_equal(out_c, out_r)
        np.testing.assert_array_equal(fx_c.slots, fx_r.slots)
    else:
        np.testing.assert_allclose(out_c, out_r, atol=EFFECT_ATOL, rtol=0)
        np.testing.assert_allclose(fx_c.slots, fx_r.slots, atol=EFFECT_ATOL, rtol=1e-5)


@pytest.mark.parametrize("sample_rate", [44100, 96000])
@pytest.mark.parametrize("block", [64, 128, 1024])
def test_whole_graph_render_matches_twin(sample_rate: int, block: int) -> None:
    session = busy_session(sample_rate, tracks=6, seconds=0.25)
    loader = DictLoader(noise_sources(sample_rate, 0.5))
    fast = Engine(session, block_size=block, backend="native", loader=loader)
    slow = Engine(session, block_size=block, backend="reference", loader=loader)
    frames = fast.length + 2000
    first_c, first_r = fast.render(0, frames // 2), slow.render(0, frames // 2)
    session.tracks[0].gain_db = 3.0
    session.tracks[1].effects[0].params["gain_db"] = -9.0
    fast.apply(session)
    slow.apply(session)
    rest_c = fast.render(frames // 2, frames - frames // 2)
    rest_r = slow.render(frames // 2, frames - frames // 2)
    assert np.abs(first_r).max() > 0.05, "the test session must make sound"
    np.testing.assert_allclose(first_c, first_r, atol=RENDER_ATOL, rtol=0)
    np.testing.assert_allclose(rest_c, rest_r, atol=RENDER_ATOL, rtol=0)


def test_backends_hand_over_state_between_blocks() -> None:
    sample_rate = 48000
    session = busy_session(sample_rate, tracks=4, seconds=0.2)
    loader = DictLoader(noise_sources(sample_rate, 0.5))
    whole = Engine(session, block_size=256, backend="native", loader=loader).render(0, 4096)
    mixed = Engine(session, block_size=256, backend="native", loader=loader)
    first = mixed.render(0, 2048)
    mixed.use_backend("reference")
    second = mixed.render(2048, 2048)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole,
                               atol=RENDER_ATOL, rtol=0)


@pytest.mark.parametrize("block", [64, 1024])
def test_plain_tracks_fast_paths_match_twin(block: int) -> None:
    """Tracks without inserts take the C fast paths (direct and grouped); same sound."""
    from dsp_core import Clip, Session, Track

    rate = 48000
    sources = noise_sources(rate, 0.5)
    tracks = [
        Track(id=f"p{i}", channels=1 + (i % 5 == 4), pan=(i % 7 - 3) / 3, gain_db=-i * 0.5,
              mute=i == 6, clips=[
                  Clip(source="mono" if i % 3 else "stereo", position=(i * 53) % 700,
                       length=9000, fade_in=0 if i % 2 else 200, fade_out=0 if i % 4 else 300),
                  Clip(source="mono", position=12000, length=5000, offset=i * 7)])
        for i in range(22)
    ]
    session = Session(sample_rate=rate, tracks=tracks)
    loader = DictLoader(sources)
    got = Engine(session, block_size=block, backend="native", loader=loader).render(0, 18000)
    want = Engine(session, block_size=block, backend="reference", loader=loader).render(0, 18000)
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, atol=RENDER_ATOL, rtol=0)


@pytest.mark.parametrize("block", [64, 512])
def test_side_by_side_chains_match_twin(block: int) -> None:
    """Eight or more mono tracks with one chain layout run as SIMD lanes in C: same sound."""
    from dsp_core import Clip, Session, Track, three_band_eq

    rate = 48000
    tracks = []
    for i in range(19):
        chain = [*three_band_eq(3.0 - i, -2.0 + i * 0.3, 1.0 + i * 0.2),
                 EffectSpec("compressor", {"threshold_db": -30.0 + i, "ratio": 2.0 + i,
                                           "knee_db": float(i % 3) * 4, "makeup_db": 1.0}),
                 EffectSpec("gain", {"gain_db": -1.0 - i * 0.1})]
        tracks.append(Track(id=f"l{i}", pan=(i % 5 - 2) / 2, gain_db=-6.0, effects=chain,
                            clips=[Clip(source="mono", position=i * 11, length=20000,
                                        fade_in=100, fade_out=100)]))
    session = Session(sample_rate=rate, tracks=tracks)
    loader = DictLoader(noise_sources(rate, 0.5))
    fast = Engine(session, block_size=block, backend="native", loader=loader)
    slow = Engine(session, block_size=block, backend="reference", loader=loader)
    first = fast.render(0, 8000), slow.render(0, 8000)
    session.tracks[3].effects[1].params["gain_db"] = 9.0  # one lane glides: group falls back
    fast.apply(session)
    slow.apply(session)
    second = fast.render(8000, 12000), slow.render(8000, 12000)
    for got, want in (first, second):
        assert np.abs(want).max() > 0.1
        np.testing.assert_allclose(got, want, atol=RENDER_ATOL, rtol=0)


@pytest.mark.parametrize("block", [64, 100, 1024])
def test_plain_tracks_among_others_match_twin(block: int) -> None:
    """The C render looks at tracks ahead of mixing them (plain or not, and what they will
    read); plain runs broken by fades, stereo tracks, inserts and sends sound the same."""
    from dsp_core import Clip, Send, Session, Track
    from dsp_core.session import Bus

    rate, frames = 48000, 9000
    rng = np.random.default_rng(3)
    sources = {f"s{i}": (0.1 * rng.standard_normal((1 + i % 7 // 6, frames))).astype(np.float32)
               for i in range(150)}
    tracks = []
    for i in range(150):
        kind = rng.integers(0, 6)
        clips = [Clip(source=f"s{i}", position=0, length=frames,
                      fade_in=int(rng.integers(1, 3000)) if kind == 1 else 0)]
        if kind == 2:  # two clips: the block where one ends and the other starts is not plain
            clips = [Clip(source=f"s{i}", position=0, length=4000, id="a"),
                     Clip(source=f"s{i}", position=4000, offset=4000, length=5000, id="b")]
        tracks.append(Track(
            id=f"t{i}", channels=sources[f"s{i}"].shape[0], pan=float(rng.uniform(-1, 1)),
            gain_db=float(rng.uniform(-20, 0)), clips=clips,
            effects=[EffectSpec("gain", {"gain_db": -3.0})] if kind == 3 else [],
            sends=[Send(bus="aux", level_db=-6.0)] if kind == 4 else []))
    session = Session(sample_rate=rate, tracks=tracks, buses=[Bus(id="aux")])
    loader = DictLoader(sources)
    got = Engine(session, block_size=block, backend="native", loader=loader).render(0, frames)
    want = Engine(session, block_size=block, backend="reference", loader=loader).render(0, frames)
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, atol=RENDER_ATOL, rtol=0)


@pytest.mark.parametrize("block", [64, 128, 1000])
def test_remembered_plain_spans_follow_edits_and_seeks(block: int) -> None:
    """The C render remembers where each track's plain blocks are; clip moves, fades,
    mutes, fader glides, overlapping clips and a seek back sound as in the twin."""
    from dsp_core import Clip, Session, Track

    rate, frames = 48000, 12000
    rng = np.random.default_rng(7)
    sources = {f"s{i}": (0.1 * rng.standard_normal((1, frames))).astype(np.float32)
               for i in range(70)}

    def session_at(step: int) -> Session:
        tracks = []
        for i in range(70):
            clips = [Clip(source=f"s{i}", position=0, length=6000, id="a"),
                     Clip(source=f"s{i}", position=6000 + (i % 3) * step * 100,
                          offset=6000, length=5000, id="b",
                          fade_in=300 if (i % 7 == 0 and step) else 0)]
            if i % 11 == 0:  # a live document may layer clips; they are summed
                clips.append(Clip(source=f"s{i}", position=5000, length=2000, id="c"))
            tracks.append(Track(id=f"t{i}", pan=(i % 9 - 4) / 4,
                                gain_db=-12.0 + (3.0 if step and i % 5 == 0 else 0.0),
                                mute=bool(step) and i % 13 == 0,
                                clips=sorted(clips, key=lambda c: c.position)))
        return Session(sample_rate=rate, tracks=tracks)

    loader = DictLoader(sources)
    fast = Engine(session_at(0), block_size=block, backend="native", loader=loader)
    slow = Engine(session_at(0), block_size=block, backend="reference", loader=loader)
    pieces = [(fast.render(0, 5000), slow.render(0, 5000))]
    for engine in (fast, slow):
        engine.apply(session_at(1))
    pieces.append((fast.render(5000, 4000), slow.render(5000, 4000)))
    pieces.append((fast.render(1000, 3000), slow.render(1000, 3000)))  # seek back
    pieces.append((fast.render(9000, 3000), slow.render(9000, 3000)))
    for got, want in pieces:
        assert np.abs(want).max() > 0.05
        np.testing.assert_allclose(got, want, atol=RENDER_ATOL, rtol=0)


@pytest.mark.parametrize("threads", [2, 3])
def test_tracks_split_over_threads_sound_the_same(threads: int) -> None:
    """Each thread mixes its own tracks into its own buses; the sums are added at the end."""
    session = busy_session(48000, tracks=70, seconds=0.25)
    loader = DictLoader(noise_sources(48000, 0.5))
    one = Engine(session, block_size=256, loader=loader, threads=1)
    many = Engine(session, block_size=256, loader=loader, threads=threads)
    twin = Engine(session, block_size=256, loader=loader, backend="reference")
    want = twin.render(0, 16000)
    for engine in (one, many):
        np.testing.assert_allclose(engine.render(0, 16000), want, atol=RENDER_ATOL, rtol=0)
