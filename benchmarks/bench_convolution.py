"""Convolution reverb per track: the C engine vs its numpy twin vs pedalboard.

Run: ``python -m pytest benchmarks/bench_convolution.py --benchmark-enable -s``
(``DAW_BENCH_SMOKE=1`` for the quick check CI runs). Every contender convolves the
same stereo noise with the same stereo impulse response (decaying noise, ``IR_SECONDS``
long) on one core in this process, fully wet. pedalboard's ``Convolution`` is JUCE's
``dsp::Convolution`` (uniformly partitioned for short IRs, with a non-uniform head and
tail for long ones); it runs block by block (``reset=False``) and over the whole
buffer. Ratios are taken round by round (:func:`benchmarks.conftest.median_ratio`).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from benchmarks.per_track import noise_tracks, pedalboard_mix
from dsp_core import Clip, EffectSpec, Engine, Session, Track

RATE = 48000
BLOCK = 128
TRACKS = [1] if SMOKE else [1, 4]
IR_SECONDS = [0.1] if SMOKE else [0.5, 2.0]
SECONDS = 0.05 if SMOKE else 2.0
TWIN_SECONDS = 0.05 if SMOKE else 0.2


def _ir(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    frames = int(RATE * seconds)
    decay = np.exp(-np.arange(frames) / (frames / 6))
    return (0.05 * rng.standard_normal((2, frames)) * decay).astype(np.float32)


def _engine_run(n_tracks: int, ir: np.ndarray, seconds: float, backend: str):
    audio = noise_tracks(n_tracks, seconds, RATE)
    frames = audio.shape[2]
    tracks = [Track(id=f"t{i}", channels=2,
                    effects=[EffectSpec("convolution", {"ir": "ir", "mix": 1.0})],
                    clips=[Clip(source=f"s{i}", position=0, length=frames)])
              for i in range(n_tracks)]
    engine = Engine(Session(sample_rate=RATE, tracks=tracks), block_size=BLOCK, backend=backend,
                    loader=lambda path, _rate: ir if path == "ir" else audio[int(path[1:])])
    engine.render(0, BLOCK)
    return lambda: [None for _ in engine.blocks(0, frames)]


def _pedalboard_run(n_tracks: int, ir: np.ndarray, seconds: float, block: int | None):
    import pedalboard as pb

    boards = [pb.Pedalboard([pb.Convolution(ir.T.copy(), mix=1.0, sample_rate=RATE)])
              for _ in range(n_tracks)]
    return pedalboard_mix(boards, noise_tracks(n_tracks, seconds, RATE), RATE, block)


@pytest.mark.parametrize("ir_seconds", IR_SECONDS)
@pytest.mark.parametrize("n_tracks", TRACKS)
def test_convolution_per_track(benchmark, n_tracks: int, ir_seconds: float) -> None:
    ir = _ir(ir_seconds)
    contenders = {"native": _engine_run(n_tracks, ir, SECONDS, "native")}
    try:
        import pedalboard  # noqa: F401
        have_pedalboard = True
    except ImportError:
        have_pedalboard = False
    if have_pedalboard:
        contenders["pedalboard_blocks"] = _pedalboard_run(n_tracks, ir, SECONDS, BLOCK)
        contenders["pedalboard_whole"] = _pedalboard_run(n_tracks, ir, SECONDS, None)
    times = rounds_of(contenders, rounds=5)
    twin = rounds_of({"twin": _engine_run(n_tracks, ir, TWIN_SECONDS, "reference")},
                     rounds=1)["twin"][0] / TWIN_SECONDS
    native = min(times["native"]) / SECONDS
    figures = {"native_realtime": 1 / native, "native_vs_twin": twin / native}
    if have_pedalboard:
        figures.update(
            native_vs_pedalboard_blocks=median_ratio(times, "pedalboard_blocks", "native"),
            native_vs_pedalboard_whole=median_ratio(times, "pedalboard_whole", "native"))
    assert all(np.isfinite(v) and v > 0 for v in figures.values())
    record(benchmark, tracks=n_tracks, ir_seconds=ir_seconds, **figures)


@pytest.mark.parametrize("ir_seconds", IR_SECONDS)
def test_true_stereo_vs_stereo_convolution(benchmark, ir_seconds: float) -> None:
    """A true-stereo IR (4 paths) against a stereo one (two mono convolutions), one
    track, same engine, same input; above 1 the true-stereo one is slower by that much."""
    stereo = _ir(ir_seconds)
    rng = np.random.default_rng(2)
    true_stereo = np.concatenate([stereo, (0.5 * rng.permutation(stereo.T).T)], axis=0)
    true_stereo = true_stereo[[0, 2, 3, 1]].copy()  # LL, LR, RL, RR
    times = rounds_of({"stereo": _engine_run(1, stereo, SECONDS, "native"),
                       "true_stereo": _engine_run(1, true_stereo, SECONDS, "native")},
                      rounds=5, settle=True)
    figures = {"true_stereo_cost_vs_stereo": median_ratio(times, "true_stereo", "stereo"),
               "true_stereo_realtime": SECONDS / min(times["true_stereo"])}
    assert all(np.isfinite(v) and v > 0 for v in figures.values())
    record(benchmark, ir_seconds=ir_seconds, **figures)
