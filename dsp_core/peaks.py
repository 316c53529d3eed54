"""Waveform peaks: per-channel min/max over fixed runs of samples, at several zoom levels.

>>> peaks = compute_peaks(audio)              # audio: (channels, frames) float32
>>> level = peaks.level(1024)                 # min/max of every 1024 frames
>>> level.min.shape                           # (channels, ceil(frames / 1024))

The finest level is computed from the samples; each coarser level is folded
from the one below (``LEVEL_FACTOR`` peaks at a time), so every level is
exactly the min/max of its frames, including the short last run.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass

import numpy as np

from .errors import DspError

#: Frames per peak of the finest level; each next level has LEVEL_FACTOR times more.
FINEST = 64
LEVEL_FACTOR = 4
LEVEL_COUNT = 6  # 64, 256, 1024, 4096, 16384, 65536 frames per peak


@dataclass(frozen=True)
class PeakLevel:
    """One zoom level: ``min`` and ``max`` arrays of shape ``(channels, peaks)``."""

    frames_per_peak: int
    min: np.ndarray
    max: np.ndarray

    @property
    def count(self) -> int:
        """Peaks per channel."""
        return int(self.min.shape[1])


@dataclass(frozen=True)
class Peaks:
    """Every zoom level of one audio file."""

    sample_rate: int
    frames: int
    channels: int
    levels: tuple[PeakLevel, ...]

    @property
    def frames_per_peak(self) -> list[int]:
        """The zoom levels available, finest first."""
        return [lv.frames_per_peak for lv in self.levels]

    def level(self, frames_per_peak: int) -> PeakLevel:
        """The level with exactly ``frames_per_peak`` frames per peak."""
        for lv in self.levels:
            if lv.frames_per_peak == frames_per_peak:
                return lv
        raise DspError(f"no peak level of {frames_per_peak} frames per peak; "
                       f"available: {self.frames_per_peak}")

    def to_bytes(self) -> bytes:
        """A compact ``.npz`` serialisation (see :func:`peaks_from_bytes`)."""
        arrays: dict[str, np.ndarray] = {
            "header": np.array([self.sample_rate, self.frames, self.channels], dtype=np.int64)}
        for lv in self.levels:
            arrays[f"min_{lv.frames_per_peak}"] = lv.min
            arrays[f"max_{lv.frames_per_peak}"] = lv.max
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()


#: Held while numpy reads an ``.npy`` header: it parses the header with
#: ``ast.literal_eval``, and CPython 3.11 before 3.11.8 keeps the AST builder's recursion
#: depth in state shared by threads, so two threads parsing at once can fail with
#: ``SystemError: AST constructor recursion depth mismatch`` (cpython gh-106905; seen in
#: CI as a 500 on a clip's peaks, read in the server's executor threads).
_HEADER_PARSING = threading.Lock()


def peaks_from_bytes(data: bytes) -> Peaks:
    """Read peaks written by :meth:`Peaks.to_bytes` (one thread at a time parses the
    arrays' headers: :data:`_HEADER_PARSING`)."""
    with _HEADER_PARSING, np.load(io.BytesIO(data)) as npz:
        rate, frames, channels = (int(v) for v in npz["header"])
        sizes = sorted(int(k[4:]) for k in npz.files if k.startswith("min_"))
        levels = tuple(PeakLevel(n, npz[f"min_{n}"], npz[f"max_{n}"]) for n in sizes)
    return Peaks(rate, frames, channels, levels)


def _fold(values: np.ndarray, size: int, reduce: np.ufunc, pad: float) -> np.ndarray:
    channels, count = values.shape
    groups = math.ceil(count / size)
    padded = np.full((channels, groups * size), pad, dtype=np.float32)
    padded[:, :count] = values
    return reduce.reduce(padded.reshape(channels, groups, size), axis=2)


def compute_peaks(audio: np.ndarray, sample_rate: int, *, finest: int = FINEST,
                  factor: int = LEVEL_FACTOR, count: int = LEVEL_COUNT) -> Peaks:
    """Peaks of ``audio`` (``(channels, frames)`` float32) at ``count`` zoom levels.

    Parameters
    ----------
    audio
        Planar samples; at least one frame.
    sample_rate
        Recorded with the peaks so a display can turn peaks into seconds.
    finest, factor, count
        Frames per peak of the finest level, the ratio between levels and
        how many levels to make.
    """
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise DspError(f"peaks need (channels, frames) audio with frames, got {audio.shape}")
    if finest < 1 or factor < 2 or count < 1:
        raise DspError(f"bad peak levels: finest={finest}, factor={factor}, count={count}")
    data = np.asarray(audio, dtype=np.float32)
    lows = _fold(data, finest, np.minimum, np.inf)
    highs = _fold(data, finest, np.maximum, -np.inf)
    levels = [PeakLevel(finest, lows, highs)]
    for _ in range(count - 1):
        size = levels[-1].frames_per_peak * factor
        lows = _fold(lows, factor, np.minimum, np.inf)
        highs = _fold(highs, factor, np.maximum, -np.inf)
        levels.append(PeakLevel(size, lows, highs))
    return Peaks(int(sample_rate), int(data.shape[1]), int(data.shape[0]), tuple(levels))
