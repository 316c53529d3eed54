"""The C engine's worker pool (native/pool.c): threads change the speed, never the sound.

``daw_mix`` splits the frames into pieces that any thread may claim, so every thread
count gives the same bits. A render with ``threads=N`` splits the tracks into N shares
summed in share order, so it gives the same bits whichever threads ran the shares: on
the pool's workers, or one after another on the caller when the pool is taken.
"""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from dsp_core import Clip, DspError, Engine, Session, Track, get_backend, mix
from dsp_core.engine import MAX_THREADS
from tests.helpers_audio import DictLoader, busy_session, noise_sources

pytestmark = pytest.mark.timeout(120)

native = get_backend("native")
reference = get_backend("reference")
MIX_RTOL = 2e-6  # as in test_reference: relative to sum(|g x|), BLAS sums in its own order


def _mix_input(n_tracks: int, n_frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    tracks = rng.standard_normal((n_tracks, n_frames)).astype(np.float32)
    gains = rng.uniform(0, 2, n_tracks).astype(np.float32)
    pans = rng.uniform(-1, 1, n_tracks).astype(np.float32)
    return tracks, gains, pans


@pytest.mark.parametrize("n_tracks,n_frames", [
    (3, 5),          # too small to split
    (64, 8191),      # split into pieces that do not end on whole cache lines
    (300, 4800),     # the shape, scaled down
    (1030, 517),     # more tracks than one batch of pan gains
])
def test_mix_gives_the_same_bits_for_every_thread_count(n_tracks: int, n_frames: int) -> None:
    tracks, gains, pans = _mix_input(n_tracks, n_frames)
    one = native.mix(tracks, gains, pans, 1)
    for threads in (2, 3, 5, MAX_THREADS):
        np.testing.assert_array_equal(native.mix(tracks, gains, pans, threads), one)
    want = reference.mix(tracks, gains, pans)
    scale = np.abs(tracks).T @ gains + 1e-6
    assert np.all(np.abs(one - want) <= MIX_RTOL * scale * n_tracks ** 0.5 + 1e-7)


def test_mix_uses_every_core_by_default_and_refuses_bad_thread_counts() -> None:
    tracks, gains, pans = _mix_input(40, 7000)
    np.testing.assert_array_equal(mix(tracks, gains, pans), mix(tracks, gains, pans, threads=1))
    for bad in (0, MAX_THREADS + 1):
        with pytest.raises(DspError, match="threads must be between"):
            mix(tracks, gains, pans, threads=bad)


def test_mixes_from_many_python_threads_at_once_are_each_right() -> None:
    """The GIL is released during the call; callers that find the pool taken run alone."""
    inputs = [_mix_input(48, 6000 + 16 * k, seed=k) for k in range(6)]
    want = [native.mix(*args, 1) for args in inputs]
    got: dict[int, list[np.ndarray]] = {}

    def worker(k: int) -> None:
        got[k] = [native.mix(*inputs[k], 2) for _ in range(20)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, results in got.items():
        for result in results:
            np.testing.assert_array_equal(result, want[k])
    assert len(got) == len(inputs)


def _plain_session(n_tracks: int, frames: int) -> tuple[Session, DictLoader]:
    rng = np.random.default_rng(7)
    sources = {f"s{i}": (0.1 * rng.standard_normal((1, frames))).astype(np.float32)
               for i in range(n_tracks)}
    tracks = [Track(id=f"t{i}", pan=(i % 9 - 4) / 4, gain_db=-12.0,
                    clips=[Clip(source=f"s{i}", position=0, length=frames)])
              for i in range(n_tracks)]
    return Session(sample_rate=48000, tracks=tracks), DictLoader(sources)


@pytest.mark.parametrize("block", [64, 1024])
def test_a_render_gives_the_same_bits_whichever_threads_run_its_shares(block: int) -> None:
    """Two engines with threads=2 render at once: one gets the pool, the other runs its
    shares in turn on its own thread; both equal a render that ran alone."""
    session, loader = _plain_session(200, 12000)
    alone = Engine(session, block_size=block, loader=loader, threads=2).render(0, 12000)
    results: list[np.ndarray] = []

    def render() -> None:
        engine = Engine(session, block_size=block, loader=loader, threads=2)
        results.append(engine.render(0, 12000))

    threads = [threading.Thread(target=render) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for result in results:
        np.testing.assert_array_equal(result, alone)


@pytest.mark.parametrize("threads", [2, 3, 16])
@pytest.mark.parametrize("block", [64, 128, 1000])
def test_threaded_render_matches_one_thread_and_the_twin(threads: int, block: int) -> None:
    session = busy_session(48000, tracks=70, seconds=0.25)
    loader = DictLoader(noise_sources(48000, 0.5))
    many = Engine(session, block_size=block, loader=loader, threads=threads).render(0, 6000)
    one = Engine(session, block_size=block, loader=loader, threads=1).render(0, 6000)
    twin = Engine(session, block_size=block, loader=loader, backend="reference").render(0, 6000)
    np.testing.assert_allclose(many, one, atol=2e-5, rtol=0)
    np.testing.assert_allclose(many, twin, atol=2e-5, rtol=0)


def _mix_in_child(queue) -> None:
    tracks, gains, pans = _mix_input(64, 8191)
    queue.put(bool(np.array_equal(native.mix(tracks, gains, pans, 2),
                                  native.mix(tracks, gains, pans, 1))))


def test_a_forked_child_starts_its_own_workers() -> None:
    tracks, gains, pans = _mix_input(64, 8191)
    native.mix(tracks, gains, pans, 2)  # the parent's pool has a worker now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_mix_in_child, args=(queue,))
    child.start()
    assert queue.get(timeout=60) is True
    child.join(timeout=60)
    assert child.exitcode == 0
