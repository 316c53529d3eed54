"""Plain mix: the engine against numpy BLAS, a read of the input and a memory copy.

Every ratio is the median over rounds in which the contenders run one after another on
the same data (:func:`benchmarks.conftest.rounds_of`), so the load of a shared machine
hits all of them alike. Each contender starts once the threads the one before it left
spinning are idle (OpenBLAS's workers spin for about 0.1 s after a threaded call), so
neither BLAS nor the engine is timed while the other's threads hold a core.

Run: ``python -m pytest benchmarks/bench_mix.py --benchmark-enable -s``.
"""

from __future__ import annotations

import functools
import statistics
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import dsp_core
from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core import Clip, Engine, Session, Track

SECONDS = 0.01 if SMOKE else 0.25
TRACKS = [16] if SMOKE else [256, 1024, 2048]
RATES = [48000] if SMOKE else [48000, 192000]
BLOCKS = [128] if SMOKE else [64, 128, 1024]
THREADS = [2] if SMOKE else [1, 2]
#: (tracks, frames) for dsp_core.mix; 300 x 48,000 is the case of issue 10.
MIX_SHAPES = [(16, 2400)] if SMOKE else [(300, 48000), (256, 12000), (1024, 12000),
                                         (1024, 48000), (2048, 12000), (2048, 48000)]


@functools.lru_cache(maxsize=1)
def _data(n_tracks: int, frames: int) -> np.ndarray:
    rng = np.random.default_rng(n_tracks)
    return 0.1 * rng.standard_normal((n_tracks, frames), dtype=np.float32)


def _session(data: np.ndarray, rate: int) -> tuple[Session, dict]:
    tracks = [Track(id=f"t{i}", pan=(i % 9 - 4) / 4, gain_db=-12.0,
                    clips=[Clip(source=f"s{i}", position=0, length=data.shape[1])])
              for i in range(data.shape[0])]
    return Session(sample_rate=rate, tracks=tracks), {f"s{i}": data[i:i + 1]
                                                      for i in range(data.shape[0])}


def _blas_threads() -> int:
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
               default=1)


def _read_once(data: np.ndarray, threads: int) -> None:
    """Read every sample once: numpy's max, one per thread over its rows (the GIL is
    released inside it). max reads faster than sum here (no pairwise summation)."""
    if threads == 1:
        data.max()
        return
    parts = np.array_split(data, threads)
    workers = [threading.Thread(target=part.max) for part in parts[1:]]
    for w in workers:
        w.start()
    parts[0].max()
    for w in workers:
        w.join()


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("n_tracks", TRACKS)
def test_engine_plain_mix(benchmark, n_tracks: int, rate: int, block: int,
                          threads: int) -> None:
    data = _data(n_tracks, int(rate * SECONDS))
    session, sources = _session(data, rate)
    engine = Engine(session, block_size=block, loader=lambda path, _rate: sources[path],
                    threads=threads)
    frames = data.shape[1]
    weights = np.ones((2, n_tracks), dtype=np.float32)
    target = np.empty_like(data)

    def engine_blocks() -> None:
        for _ in engine.blocks(0, frames):
            pass

    times = rounds_of({
        "engine": engine_blocks,
        "blas_same_blocks": lambda: [weights @ data[:, s:s + block]
                                     for s in range(0, frames, block)],
        "blas_whole": lambda: weights @ data,
        "memcopy": lambda: np.copyto(target, data),
    }, settle=True)
    record(benchmark, realtime=SECONDS / statistics.median(times["engine"]),
           vs_blas_whole=median_ratio(times, "blas_whole", "engine"),
           vs_blas_same_blocks=median_ratio(times, "blas_same_blocks", "engine"),
           # best round of each against best round of the other: what each does when the
           # shared machine leaves it alone (the median ratio moves by 2x under load)
           vs_blas_same_blocks_best=min(times["blas_same_blocks"]) / min(times["engine"]),
           vs_memcopy=median_ratio(times, "memcopy", "engine"),
           blas_threads=_blas_threads())


@pytest.mark.parametrize("n_tracks,frames", MIX_SHAPES)
def test_mix_function_against_blas(benchmark, n_tracks: int, frames: int) -> None:
    data = _data(n_tracks, frames)
    gains = np.full(n_tracks, 0.25, dtype=np.float32)
    pans = np.linspace(-1, 1, n_tracks, dtype=np.float32)
    weights = np.ones((2, n_tracks), dtype=np.float32)
    cores = dsp_core.usable_cores()

    def blas_one_thread() -> None:
        with threadpool_limits(1, user_api="blas"):
            weights @ data

    times = rounds_of({
        "mix": lambda: dsp_core.mix(data, gains, pans),            # every core
        "blas": lambda: weights @ data,                            # every core
        "read_once": lambda: _read_once(data, cores),
        "read_once_one_thread": lambda: _read_once(data, 1),
        "mix_one_thread": lambda: dsp_core.mix(data, gains, pans, threads=1),
        "blas_one_thread": blas_one_thread,
    }, rounds=11, settle=True)
    # "the time to read the input once": the faster of one and all cores, round by round
    times["read"] = [min(a, b) for a, b in zip(times["read_once"],
                                               times["read_once_one_thread"], strict=True)]
    mix_s = statistics.median(times["mix"])
    record(benchmark, cores=cores, blas_threads=_blas_threads(),
           vs_blas=median_ratio(times, "blas", "mix"),
           vs_read_once=median_ratio(times, "read", "mix"),
           gbytes_per_s=data.nbytes / mix_s / 1e9,
           one_thread_vs_blas_one_thread=median_ratio(times, "blas_one_thread",
                                                      "mix_one_thread"),
           thread_speedup=median_ratio(times, "mix_one_thread", "mix"),
           realtime_48k=frames / 48000 / mix_s)
