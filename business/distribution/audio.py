"""Audio checks of a delivery file: format, clipping, silence, ITU-R BS.1770 loudness.

Integrated loudness uses pyloudnorm's BS.1770-4 meter (K-weighting, 400 ms blocks,
absolute and relative gating); true peak is the sample peak after 4x polyphase
oversampling (BS.1770-4 Annex 2), computed block by block to bound memory.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from business.distribution.errors import DistributionError

ACCEPTED_FORMATS = {"WAV": ("PCM_16", "PCM_24"), "FLAC": ("PCM_16", "PCM_24")}
BIT_DEPTH = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "PCM_U8": 8, "PCM_S8": 8,
             "FLOAT": 32, "DOUBLE": 64}
#: A sample this close to full scale counts as a clipped sample.
CLIP_LEVEL = 1.0 - 2.0 ** -14
#: Consecutive full-scale samples that make a clipping event.
CLIP_RUN = 3
SILENCE_DBFS = -60.0
_BLOCK = 1 << 16
_CONTEXT = 64


class AudioError(DistributionError):
    """An audio file cannot be read."""


@dataclass
class AudioReport:
    """What the gate needs to know about one audio file."""

    path: str
    format: str
    subtype: str
    bit_depth: int
    sample_rate: int
    channels: int
    duration_s: float
    sample_peak_dbfs: float
    true_peak_dbtp: float
    integrated_lufs: float
    clipping_events: int
    leading_silence_s: float
    trailing_silence_s: float
    sha256: str  # of the bytes measured

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; -inf levels become None."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def _db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def true_peak(samples: np.ndarray, oversample: int = 4) -> float:
    """Linear true peak of ``samples`` (frames × channels) by polyphase oversampling."""
    frames = samples.shape[0]
    peak = 0.0
    for start in range(0, frames, _BLOCK):
        lo, hi = max(0, start - _CONTEXT), min(frames, start + _BLOCK + _CONTEXT)
        up = resample_poly(samples[lo:hi].astype(np.float64), oversample, 1, axis=0)
        keep = up[(start - lo) * oversample:(start - lo + min(_BLOCK, frames - start))
                  * oversample]
        if keep.size:
            peak = max(peak, float(np.max(np.abs(keep))))
    return max(peak, float(np.max(np.abs(samples))) if frames else 0.0)


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """BS.1770-4 integrated loudness in LUFS (-inf for silence or < 400 ms)."""
    import pyloudnorm

    if samples.shape[0] < int(0.4 * rate):
        return -math.inf
    meter = pyloudnorm.Meter(rate)
    with np.errstate(divide="ignore"):
        return float(meter.integrated_loudness(samples.astype(np.float64)))


def clipping_events(samples: np.ndarray) -> int:
    """Runs of at least :data:`CLIP_RUN` consecutive full-scale samples, all channels."""
    events = 0
    for channel in samples.T:
        hot = np.abs(channel) >= CLIP_LEVEL
        if not hot.any():
            continue
        edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        events += int(np.count_nonzero(ends - starts >= CLIP_RUN))
    return events


def silence_edges(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Seconds of leading and trailing silence (below :data:`SILENCE_DBFS`)."""
    level = 10.0 ** (SILENCE_DBFS / 20.0)
    loud = np.flatnonzero(np.max(np.abs(samples), axis=1) > level)
    if loud.size == 0:
        duration = samples.shape[0] / rate
        return duration, duration
    return loud[0] / rate, (samples.shape[0] - 1 - loud[-1]) / rate


def analyze_audio(path: str | Path) -> AudioReport:
    """Read ``path`` once and measure it; AudioError when it is missing or unreadable.

    The report's ``sha256`` is that of the very bytes measured.
    """
    try:
        data = Path(path).read_bytes()
        with sf.SoundFile(io.BytesIO(data)) as info:
            samples = info.read(dtype="float32", always_2d=True)
            rate = info.samplerate
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read audio file {str(path)!r}: {exc}") from exc
    lead, trail = silence_edges(samples, rate)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return AudioReport(
        path=str(path),
        format=info.format,
        subtype=info.subtype,
        bit_depth=BIT_DEPTH.get(info.subtype, 0),
        sample_rate=int(rate),
        channels=int(info.channels),
        duration_s=samples.shape[0] / rate,
        sample_peak_dbfs=_db(peak),
        true_peak_dbtp=_db(true_peak(samples)) if samples.size else -math.inf,
        integrated_lufs=integrated_loudness(samples, rate),
        clipping_events=clipping_events(samples),
        leading_silence_s=float(lead),
        trailing_silence_s=float(trail),
        sha256=hashlib.sha256(data).hexdigest(),
    )
