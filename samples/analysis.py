"""What a sample is, measured offline with numpy and scipy (no models, nothing downloaded).

- **Loudness**: integrated loudness (ITU-R BS.1770-4, LUFS) with pyloudnorm; samples
  shorter than its 400 ms gate block are measured over one block as long as the sample.
- **Peak**: the largest absolute sample, in dBFS.
- **Onsets**: spectral flux of the log-magnitude STFT (hop 128 at 22.05 kHz), less its
  local mean, peaks at least 60 ms apart.
- **BPM**: autocorrelation of the onset envelope between 70 and 180 BPM with parabolic
  interpolation of the best lag, refined on its 2nd-4th multiples; snapped to the
  sample's length when that holds whole 4/4 bars within 1.5 %. Reported only when the
  sample lasts at least 2 s, has at least 4 onsets and the confidence (the normalised
  autocorrelation at that lag) is at least :data:`BPM_MIN_CONFIDENCE`; the confidence
  is kept either way.
- **Key**: a chroma vector (STFT bins 55 Hz-5 kHz folded to pitch classes) correlated with
  the 24 rotations of the Krumhansl-Schmuckler profiles; reported when the best
  correlation is at least :data:`KEY_MIN_CONFIDENCE` and the sample is tonal.
- **Loop or one-shot**: length, onset count and whether the sound is still going at the end.
- **Instrument class**: a heuristic over a handful of features (share of energy below
  150 Hz, spectral centroid, spectral flatness, decay, length). It tells kicks, snares,
  hats, basses and pads apart on clear cases and says ``other`` otherwise; it is no
  classifier trained on data and claims no more than that. ``vocal`` comes from names only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyloudnorm
from scipy import signal

from dsp_core.audio_io import resample

ANALYSIS_RATE = 22050
HOP = 128
N_FFT = 1024
CHROMA_FFT = 8192
BPM_RANGE = (70.0, 180.0)
BPM_MIN_SECONDS = 2.0
BPM_MIN_ONSETS = 4
BPM_MIN_CONFIDENCE = 0.3
KEY_MIN_CONFIDENCE = 0.5
CLASSES = ("kick", "snare", "hat", "bass", "pad", "vocal", "other")
SILENCE_DB = -90.0
#: The least spectral flux, relative to the mean frame level, that counts as an onset.
ONSET_FLOOR = 0.1
#: Frames of spectral flux averaged for its local mean.
LOCAL_MEAN_FRAMES = 16

# Krumhansl & Kessler's probe-tone ratings (1982), C major and C minor.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29,
                          2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34,
                          3.17])


@dataclass(frozen=True)
class Analysis:
    """The measured facts of one sample (None where a measure does not apply)."""

    duration: float
    sample_rate: int
    channels: int
    loudness_lufs: float | None
    peak_db: float
    onsets: int
    bpm: float | None
    bpm_confidence: float
    key: tuple[int, str] | None
    key_confidence: float
    kind: str
    instrument: str
    instrument_confidence: float

    def to_dict(self) -> dict:
        """The analysis as plain JSON values."""
        return asdict(self)


def analyse(audio: np.ndarray, rate: int) -> Analysis:
    """Measure planar float32 ``audio`` ``(channels, frames)`` at ``rate`` Hz."""
    channels, frames = audio.shape
    duration = frames / rate
    peak = float(np.max(np.abs(audio))) if frames else 0.0
    peak_db = 20 * np.log10(peak) if peak > 0 else SILENCE_DB
    mono = resample(np.ascontiguousarray(audio.mean(axis=0, keepdims=True)), rate,
                    ANALYSIS_RATE)[0].astype(np.float64)
    envelope = onset_envelope(mono)
    onsets = onset_count(envelope)
    bpm, bpm_conf = estimate_bpm(envelope, duration, onsets)
    spectrum = _spectrum(mono)
    flatness = _flatness(spectrum)
    key, key_conf = estimate_key(mono)
    if flatness > 0.3:  # noise: no pitch to speak of
        key = None
    features = _features(mono, spectrum, flatness)
    kind = loop_or_one_shot(duration, onsets, features["sustain"])
    instrument, confidence = classify(features, duration, kind)
    return Analysis(duration=duration, sample_rate=rate, channels=channels,
                    loudness_lufs=integrated_loudness(audio, rate), peak_db=float(peak_db),
                    onsets=onsets, bpm=bpm, bpm_confidence=bpm_conf, key=key,
                    key_confidence=key_conf, kind=kind, instrument=instrument,
                    instrument_confidence=confidence)


def integrated_loudness(audio: np.ndarray, rate: int) -> float | None:
    """Integrated loudness in LUFS (pyloudnorm, BS.1770-4); None for digital silence."""
    frames = audio.shape[1]
    if frames < rate * 0.01:
        return None
    meter = pyloudnorm.Meter(rate, block_size=min(0.4, frames / rate))
    with np.errstate(divide="ignore"):
        value = meter.integrated_loudness(np.ascontiguousarray(audio.T, dtype=np.float64))
    return float(value) if np.isfinite(value) else None


def onset_envelope(mono: np.ndarray) -> np.ndarray:
    """Half-wave rectified spectral flux of the log magnitude, less its local mean."""
    mono = np.pad(mono, (N_FFT, N_FFT))  # silence either side: a first attack counts
    _, _, spec = signal.stft(mono, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None,
                             padded=False)
    logmag = np.log1p(1000.0 * np.abs(spec))
    flux = np.maximum(np.diff(logmag, axis=1), 0.0).sum(axis=0)
    flux = np.concatenate([[0.0], flux])
    local = _local_mean(flux, LOCAL_MEAN_FRAMES)
    level = float(logmag.sum(axis=0).mean()) or 1.0
    return np.maximum(flux - local, 0.0) / level


def _local_mean(values: np.ndarray, width: int) -> np.ndarray:
    """The mean of ``width`` frames around each value (zeros beyond the ends), as long
    as ``values`` even when that is shorter than ``width``."""
    full = np.convolve(values, np.ones(width) / width, mode="full")
    start = (width - 1) // 2
    return full[start:start + len(values)]


def onset_count(envelope: np.ndarray) -> int:
    """How many onsets: envelope peaks above a third of its maximum (and above
    :data:`ONSET_FLOOR` of the mean frame level), at least 60 ms apart."""
    if envelope.size == 0 or envelope.max() <= ONSET_FLOOR:
        return 0
    distance = max(1, int(0.06 * ANALYSIS_RATE / HOP))
    height = max(envelope.max() / 3, ONSET_FLOOR)
    peaks, _ = signal.find_peaks(envelope, height=height, distance=distance)
    return int(len(peaks))


def estimate_bpm(envelope: np.ndarray, duration: float, onsets: int
                 ) -> tuple[float | None, float]:
    """``(bpm or None, confidence 0..1)`` from the onset envelope's autocorrelation."""
    frame_rate = ANALYSIS_RATE / HOP
    low_lag = int(frame_rate * 60 / BPM_RANGE[1])
    high_lag = int(np.ceil(frame_rate * 60 / BPM_RANGE[0])) + 1
    smooth = np.convolve(envelope, np.hanning(7), mode="same")  # peaks wider than a frame
    centred = smooth - smooth.mean()
    if len(centred) <= high_lag + 2 or not np.any(centred):
        return None, 0.0
    spectrum = np.fft.rfft(centred, 2 * len(centred))
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[: len(centred)]
    acf = acf / acf[0]
    lags = np.arange(low_lag, high_lag)
    best = int(lags[np.argmax(acf[lags])])
    confidence = float(np.clip(acf[best], 0.0, 1.0))
    period = _peak_lag(acf, best)
    for multiple in (2, 3, 4):  # later peaks of the same beat pin the period down finer
        around = int(round(multiple * period))
        if around + 3 >= len(acf):
            break
        window = np.arange(around - 2, around + 3)
        period = _peak_lag(acf, int(window[np.argmax(acf[window])])) / multiple
    bpm = 60 * frame_rate / period
    bpm = _snap_to_length(bpm, duration)
    if duration < BPM_MIN_SECONDS or onsets < BPM_MIN_ONSETS or confidence < BPM_MIN_CONFIDENCE:
        return None, confidence
    return round(float(bpm), 2), confidence


def _peak_lag(acf: np.ndarray, lag: int) -> float:
    """The lag of the autocorrelation peak at ``lag``, refined by a parabola."""
    if not 1 <= lag < len(acf) - 1:
        return float(lag)
    left, mid, right = acf[lag - 1], acf[lag], acf[lag + 1]
    denominator = left - 2 * mid + right
    offset = 0.5 * (left - right) / denominator if denominator < 0 else 0.0
    return lag + float(np.clip(offset, -0.5, 0.5))


def _snap_to_length(bpm: float, duration: float) -> float:
    """A loop holds whole bars: use its length when that agrees within 1.5 %."""
    beats = duration * bpm / 60
    whole = 4 * round(beats / 4)
    if whole >= 4 and abs(beats - whole) / whole < 0.015:
        return 60 * whole / duration
    return bpm


def chroma(mono: np.ndarray) -> np.ndarray:
    """Energy per pitch class (C..B) over the whole sample, summed over time."""
    if len(mono) < CHROMA_FFT:
        mono = np.pad(mono, (0, CHROMA_FFT - len(mono)))
    freqs, _, spec = signal.stft(mono, fs=ANALYSIS_RATE, nperseg=CHROMA_FFT,
                                 noverlap=CHROMA_FFT * 3 // 4)
    power = (np.abs(spec) ** 2).sum(axis=1)
    usable = (freqs >= 55.0) & (freqs <= 5000.0)
    midi = 69 + 12 * np.log2(freqs[usable] / 440.0)
    classes = np.mod(np.rint(midi).astype(int), 12)
    return np.bincount(classes, weights=np.sqrt(power[usable]), minlength=12)


def estimate_key(mono: np.ndarray) -> tuple[tuple[int, str] | None, float]:
    """``((tonic, mode) or None, correlation)`` by Krumhansl-Schmuckler key finding."""
    vector = chroma(mono)
    if not np.any(vector):
        return None, 0.0
    best, best_r = None, -1.0
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(vector, np.roll(profile, tonic))[0, 1])
            if r > best_r:
                best, best_r = (tonic, mode), r
    confidence = max(best_r, 0.0)
    return (best if confidence >= KEY_MIN_CONFIDENCE else None), confidence


def _spectrum(mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and the mean power spectrum (Welch)."""
    size = min(2048, max(256, len(mono)))
    return signal.welch(mono, fs=ANALYSIS_RATE, nperseg=size) if len(mono) >= 256 else (
        np.array([0.0]), np.array([0.0]))


def _flatness(spectrum: tuple[np.ndarray, np.ndarray]) -> float:
    """Spectral flatness 0..1 (0 when the sample is too short for a spectrum)."""
    if len(spectrum[1]) < 2:
        return 0.0
    power = spectrum[1][1:] + 1e-20
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


def _features(mono: np.ndarray, spectrum: tuple[np.ndarray, np.ndarray], flatness: float
              ) -> dict[str, float]:
    """Low-energy share, centroid, flatness, decay and sustain of a mono sample."""
    freqs, power = spectrum
    total = float(power.sum()) or 1e-20
    low = float(power[freqs < 150.0].sum()) / total
    centroid = float((freqs * power).sum() / total)
    frame = 512
    count = max(1, len(mono) // frame)
    rms = np.sqrt(np.mean(mono[: count * frame].reshape(count, -1) ** 2, axis=1) + 1e-20)
    top = float(rms.max())
    peak_at = int(np.argmax(rms))
    last = rms[-max(1, count // 10):]
    sustain = float(last.mean() / top) if top > 0 else 0.0
    attack = peak_at * frame / ANALYSIS_RATE
    return {"low": low, "centroid": centroid, "flatness": flatness, "sustain": sustain,
            "attack": attack}


def loop_or_one_shot(duration: float, onsets: int, sustain: float) -> str:
    """``"loop"``: long with several onsets, or long and still sounding at its end."""
    if duration >= 1.5 and (onsets >= 3 or sustain > 0.3):
        return "loop"
    return "one-shot"


def classify(features: dict[str, float], duration: float, kind: str) -> tuple[str, float]:
    """``(class, confidence)`` from simple features; see the module docstring for limits."""
    low, centroid, flat = features["low"], features["centroid"], features["flatness"]
    sustain, attack = features["sustain"], features["attack"]
    short = kind == "one-shot" and duration <= 2.0
    decays = sustain < 0.2
    scores = {
        "kick": _ramp(low, 0.4, 0.8) * _ramp(-centroid, -800, -200) * short * decays,
        "snare": _ramp(flat, 0.05, 0.25) * _band(centroid, 800, 5000) * short * decays,
        "hat": _ramp(centroid, 4000, 7000) * _ramp(-low, -0.1, -0.02) * short * decays,
        "bass": _ramp(low, 0.3, 0.7) * _ramp(-flat, -0.1, -0.02) * (not decays or not short),
        "pad": _ramp(duration, 1.5, 4.0) * _ramp(attack, 0.02, 0.25) * _ramp(sustain, 0.2, 0.6)
        * _ramp(-flat, -0.2, -0.05) * (low < 0.5),
    }
    best = max(scores, key=scores.get)
    if scores[best] < 0.3:
        return "other", round(1.0 - scores[best], 3)
    return best, round(float(scores[best]), 3)


def _ramp(value: float, low: float, high: float) -> float:
    """0 below ``low``, 1 above ``high``, linear between."""
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def _band(value: float, low: float, high: float) -> float:
    """1 inside ``[low, high]``, falling to 0 an octave outside."""
    if value < low:
        return _ramp(value, low / 2, low)
    if value > high:
        return _ramp(-value, -2 * high, -high)
    return 1.0
