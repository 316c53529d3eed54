"""Stereo reverb per track: the C engine vs its numpy twin vs pedalboard's Reverb.

Run: ``python -m pytest benchmarks/bench_reverb.py --benchmark-enable -s``.
Every contender processes the same stereo noise, one reverb per track, on one core
in this process. pedalboard's ``Reverb`` is JUCE's Freeverb, the same comb/allpass
layout as ours, so the ratio compares implementations of one algorithm. It runs
block by block (``reset=False``, as a live mix would) and over the whole file.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, best_time, measure, record
from benchmarks.per_track import noise_tracks, pedalboard_mix
from dsp_core import Clip, EffectSpec, Engine, Session, Track

RATE = 48000
BLOCK = 256
TRACKS = [1] if SMOKE else [1, 16]
NATIVE_SECONDS = 0.05 if SMOKE else 4.0
TWIN_SECONDS = 0.02 if SMOKE else 0.5
PEDALBOARD_SECONDS = 0.05 if SMOKE else 4.0
REVERB = {"room_size": 0.6, "damping": 0.4, "width": 1.0, "mix": 0.3}


def _engine(n_tracks: int, seconds: float, backend: str) -> tuple[Engine, int]:
    audio = noise_tracks(n_tracks, seconds, RATE)
    frames = audio.shape[2]
    tracks = [Track(id=f"t{i}", channels=2, effects=[EffectSpec("reverb", dict(REVERB))],
                    clips=[Clip(source=f"s{i}", position=0, length=frames)])
              for i in range(n_tracks)]
    engine = Engine(Session(sample_rate=RATE, tracks=tracks), block_size=BLOCK, backend=backend,
                    loader=lambda path, _rate: audio[int(path[1:])])
    engine.render(0, BLOCK)  # settle smoothing, warm caches
    return engine, frames


def _pedalboard_seconds(n_tracks: int, seconds: float, block: int | None) -> float | None:
    try:
        import pedalboard as pb
    except ImportError:
        return None
    boards = [pb.Pedalboard([pb.Reverb(room_size=REVERB["room_size"],
                                       damping=REVERB["damping"], width=REVERB["width"],
                                       wet_level=REVERB["mix"], dry_level=1 - REVERB["mix"])])
              for _ in range(n_tracks)]
    run = pedalboard_mix(boards, noise_tracks(n_tracks, seconds, RATE), RATE, block)
    run()
    return best_time(run, repeat=2) / seconds


@pytest.mark.parametrize("n_tracks", TRACKS)
def test_reverb_per_track(benchmark, n_tracks: int) -> None:
    engine, frames = _engine(n_tracks, NATIVE_SECONDS, "native")
    native = measure(benchmark, lambda: [None for _ in engine.blocks(0, frames)])
    native /= NATIVE_SECONDS
    twin_engine, twin_frames = _engine(n_tracks, TWIN_SECONDS, "reference")
    twin = best_time(lambda: [None for _ in twin_engine.blocks(0, twin_frames)], repeat=2)
    twin /= TWIN_SECONDS
    figures = {"native_realtime": 1 / native, "twin_realtime": 1 / twin,
               "native_vs_twin": twin / native}
    blocks = _pedalboard_seconds(n_tracks, PEDALBOARD_SECONDS, BLOCK)
    files = _pedalboard_seconds(n_tracks, PEDALBOARD_SECONDS, None)
    if blocks is not None and files is not None:
        figures.update(pedalboard_block_realtime=1 / blocks, pedalboard_file_realtime=1 / files,
                       native_vs_pedalboard_blocks=blocks / native,
                       native_vs_pedalboard_files=files / native)
    assert all(np.isfinite(v) and v > 0 for v in figures.values())
    record(benchmark, **figures)
