"""Per-track 3-band EQ + compressor: C engine vs its numpy twin vs pedalboard.

Run: ``python -m pytest benchmarks/bench_effects.py --benchmark-enable -s``.
All contenders run on one core in this process, each track on its own source
(distinct data, so no contender mixes from a few cached sources).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, best_time, measure, record
from dsp_core import Clip, EffectSpec, Engine, Session, Track, three_band_eq

RATE = 48000
BLOCK = 128
TRACKS = [8] if SMOKE else [256, 1024]
NATIVE_SECONDS = 0.02 if SMOKE else 2.0
TWIN_SECONDS = 0.005 if SMOKE else 0.04
PEDALBOARD_SECONDS = 0.02 if SMOKE else 0.5
COMPRESSOR = {"threshold_db": -24.0, "ratio": 4.0, "knee_db": 0.0, "attack_ms": 10.0,
              "release_ms": 100.0}


def _chain() -> list[EffectSpec]:
    return [*three_band_eq(4.0, -3.0, 2.0), EffectSpec("compressor", dict(COMPRESSOR))]


def _session(n_tracks: int, seconds: float) -> tuple[Session, dict]:
    rng = np.random.default_rng(0)
    frames = int(RATE * seconds)
    sources = {f"s{i}": (0.3 * rng.standard_normal((1, frames), dtype=np.float32))
               for i in range(n_tracks)}
    tracks = [Track(id=f"t{i}", effects=_chain(), pan=(i % 5 - 2) / 2,
                    clips=[Clip(source=f"s{i}", position=0, length=frames)])
              for i in range(n_tracks)]
    return Session(sample_rate=RATE, tracks=tracks), sources


def _engine_seconds(n_tracks: int, seconds: float, backend: str) -> float:
    session, sources = _session(n_tracks, seconds)
    engine = Engine(session, block_size=BLOCK, backend=backend,
                    loader=lambda path, _rate: sources[path])
    frames = int(RATE * seconds)
    engine.render(0, BLOCK)  # settle smoothing, warm caches
    return best_time(lambda: [None for _ in engine.blocks(0, frames)], repeat=2) / seconds


def _pedalboard_seconds(n_tracks: int, seconds: float, block: int | None) -> float | None:
    try:
        import pedalboard as pb
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    frames = int(RATE * seconds)
    audio = 0.3 * rng.standard_normal((n_tracks, frames), dtype=np.float32)
    boards = [pb.Pedalboard([
        pb.LowShelfFilter(cutoff_frequency_hz=120, gain_db=4.0, q=0.707),
        pb.PeakFilter(cutoff_frequency_hz=1000, gain_db=-3.0, q=1.0),
        pb.HighShelfFilter(cutoff_frequency_hz=8000, gain_db=2.0, q=0.707),
        pb.Compressor(threshold_db=-24.0, ratio=4.0, attack_ms=10.0, release_ms=100.0),
    ]) for _ in range(n_tracks)]

    def run() -> None:
        mix = np.zeros(frames, dtype=np.float32)
        if block is None:
            for i, board in enumerate(boards):
                mix += board.process(audio[i], RATE, reset=False)[0]
            return
        for start in range(0, frames, block):
            for i, board in enumerate(boards):
                mix[start:start + block] += board.process(
                    audio[i, start:start + block], RATE, buffer_size=block, reset=False)[0]

    return best_time(run, repeat=2) / seconds


@pytest.mark.parametrize("n_tracks", TRACKS)
def test_eq_and_compressor_per_track(benchmark, n_tracks: int) -> None:
    session, sources = _session(n_tracks, NATIVE_SECONDS)
    engine = Engine(session, block_size=BLOCK, backend="native",
                    loader=lambda path, _rate: sources[path])
    frames = int(RATE * NATIVE_SECONDS)
    engine.render(0, BLOCK)
    native = measure(benchmark, lambda: [None for _ in engine.blocks(0, frames)]) / NATIVE_SECONDS
    twin = _engine_seconds(n_tracks, TWIN_SECONDS, "reference")
    figures = {"native_realtime": 1 / native, "twin_realtime": 1 / twin,
               "native_vs_twin": twin / native}
    blocks = _pedalboard_seconds(n_tracks, PEDALBOARD_SECONDS, BLOCK)
    files = _pedalboard_seconds(n_tracks, PEDALBOARD_SECONDS, None)
    if blocks is not None and files is not None:
        figures.update(pedalboard_block_realtime=1 / blocks, pedalboard_file_realtime=1 / files,
                       native_vs_pedalboard_blocks=blocks / native,
                       native_vs_pedalboard_files=files / native)
    record(benchmark, **figures)
