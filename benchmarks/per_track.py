"""The per-track effect benchmarks' shared parts: the input every contender processes,
and pedalboard running one board per track, block by block or over the whole file.

(``bench_reverb``, ``bench_eq`` and ``bench_convolution`` compare our engine with
pedalboard on the same stereo noise; the loop that feeds the boards is one.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def noise_tracks(n_tracks: int, seconds: float, rate: int) -> np.ndarray:
    """(tracks, 2, frames) float32 noise at -10 dBFS RMS, the same on every call."""
    rng = np.random.default_rng(0)
    return 0.3 * rng.standard_normal((n_tracks, 2, int(rate * seconds)), dtype=np.float32)


def pedalboard_mix(boards: Sequence[Any], audio: np.ndarray, rate: int,
                   block: int | None) -> Callable[[], None]:
    """A run of ``boards[i]`` on ``audio[i]``, summed: in ``block``-frame blocks with state
    kept between them (``reset=False``, as a live mix would), or over the whole file."""
    frames = audio.shape[2]

    def run() -> None:
        mix = np.zeros((2, frames), dtype=np.float32)
        if block is None:
            for i, board in enumerate(boards):
                mix += board.process(audio[i], rate, reset=False)
            return
        for start in range(0, frames, block):
            for i, board in enumerate(boards):
                mix[:, start:start + block] += board.process(
                    audio[i, :, start:start + block], rate, buffer_size=block, reset=False)

    return run
