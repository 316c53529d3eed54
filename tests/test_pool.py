"""The C engine's worker pool (native/pool.c): threads change the speed, never the sound.

A render with ``threads=N`` splits the tracks into N shares summed in share order, so it
gives the same bits whichever threads ran the shares: on the pool's workers, or one
after another on the caller when the pool is taken.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dsp_core import Clip, Engine, Session, Track
from tests.helpers_audio import DictLoader, busy_session, noise_sources

pytestmark = pytest.mark.timeout(120)

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
