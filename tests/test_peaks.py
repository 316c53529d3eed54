"""Waveform peaks: every level is the exact min/max of its frames."""

from __future__ import annotations

import numpy as np
import pytest

from dsp_core.errors import DspError
from dsp_core.peaks import compute_peaks, peaks_from_bytes


def _reference(audio: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    count = -(-audio.shape[1] // size)
    lows = np.array([[ch[i * size:(i + 1) * size].min() for i in range(count)] for ch in audio])
    highs = np.array([[ch[i * size:(i + 1) * size].max() for i in range(count)] for ch in audio])
    return lows, highs


@pytest.mark.parametrize("frames", [1, 63, 64, 1000, 70_001])
@pytest.mark.parametrize("channels", [1, 2])
def test_every_level_matches_numpy_min_and_max(frames: int, channels: int) -> None:
    rng = np.random.default_rng(frames)
    audio = rng.uniform(-1, 1, (channels, frames)).astype(np.float32)
    peaks = compute_peaks(audio, 44100)
    assert peaks.frames_per_peak == [64, 256, 1024, 4096, 16384, 65536]
    for level in peaks.levels:
        lows, highs = _reference(audio, level.frames_per_peak)
        np.testing.assert_array_equal(level.min, lows)
        np.testing.assert_array_equal(level.max, highs)


def test_peaks_survive_serialisation() -> None:
    audio = np.sin(np.linspace(0, 50, 5000, dtype=np.float32))[None, :]
    peaks = compute_peaks(audio, 48000)
    again = peaks_from_bytes(peaks.to_bytes())
    assert (again.sample_rate, again.frames, again.channels) == (48000, 5000, 1)
    for a, b in zip(peaks.levels, again.levels, strict=True):
        np.testing.assert_array_equal(a.max, b.max)


def test_unknown_level_and_empty_audio_are_refused() -> None:
    peaks = compute_peaks(np.zeros((1, 10), np.float32), 48000)
    with pytest.raises(DspError, match="available"):
        peaks.level(100)
    with pytest.raises(DspError, match="frames"):
        compute_peaks(np.zeros((1, 0), np.float32), 48000)
