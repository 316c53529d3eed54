"""Plain mix: the engine against numpy BLAS and a memory copy of the same bytes.

Run: ``python -m pytest benchmarks/bench_mix.py --benchmark-enable -s``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import dsp_core
from benchmarks.conftest import SMOKE, best_time, measure, record
from dsp_core import Clip, Engine, Session, Track

SECONDS = 0.01 if SMOKE else 0.25
TRACKS = [16] if SMOKE else [256, 1024, 2048]
RATES = [48000] if SMOKE else [48000, 192000]
BLOCKS = [128] if SMOKE else [64, 128, 1024]
THREADS = [2] if SMOKE else [1, 2]


@functools.lru_cache(maxsize=1)
def _data(n_tracks: int, rate: int) -> np.ndarray:
    rng = np.random.default_rng(n_tracks)
    frames = int(rate * SECONDS)
    return (0.1 * rng.standard_normal((n_tracks, frames), dtype=np.float32))


def _session(data: np.ndarray, rate: int) -> tuple[Session, dict]:
    tracks = [Track(id=f"t{i}", pan=(i % 9 - 4) / 4, gain_db=-12.0,
                    clips=[Clip(source=f"s{i}", position=0, length=data.shape[1])])
              for i in range(data.shape[0])]
    return Session(sample_rate=rate, tracks=tracks), {f"s{i}": data[i:i + 1]
                                                      for i in range(data.shape[0])}


def _blas_threads() -> int:
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
               default=1)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("n_tracks", TRACKS)
def test_engine_plain_mix(benchmark, n_tracks: int, rate: int, block: int,
                          threads: int) -> None:
    data = _data(n_tracks, rate)
    session, sources = _session(data, rate)
    engine = Engine(session, block_size=block, loader=lambda path, _rate: sources[path],
                    threads=threads)
    frames = data.shape[1]

    def run() -> None:
        for _ in engine.blocks(0, frames):
            pass

    engine_s = measure(benchmark, run)
    weights = np.ones((2, n_tracks), dtype=np.float32)
    blas_s = best_time(lambda: weights @ data)
    blas_blocks_s = best_time(
        lambda: [weights @ data[:, s:s + block] for s in range(0, frames, block)])
    target = np.empty_like(data)
    copy_s = best_time(lambda: np.copyto(target, data))
    record(benchmark, realtime=SECONDS / engine_s, vs_blas_whole=blas_s / engine_s,
           vs_blas_same_blocks=blas_blocks_s / engine_s, vs_memcopy=copy_s / engine_s,
           blas_threads=_blas_threads())


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("n_tracks", TRACKS)
def test_mix_function_against_blas(benchmark, n_tracks: int, rate: int) -> None:
    data = _data(n_tracks, rate)
    gains = np.full(n_tracks, 0.25, dtype=np.float32)
    pans = np.linspace(-1, 1, n_tracks, dtype=np.float32)
    mix_s = measure(benchmark, lambda: dsp_core.mix(data, gains, pans), rounds=5)
    weights = np.ones((2, n_tracks), dtype=np.float32)
    blas_s = best_time(lambda: weights @ data, repeat=5)
    target = np.empty_like(data)
    copy_s = best_time(lambda: np.copyto(target, data), repeat=5)
    record(benchmark, realtime=SECONDS / mix_s, vs_blas=blas_s / mix_s,
           vs_memcopy=copy_s / mix_s, gbytes_per_s=data.nbytes / mix_s / 1e9,
           blas_threads=_blas_threads())
