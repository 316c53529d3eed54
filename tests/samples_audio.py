"""Generated audio with known answers for the sample library's tests and benchmark."""

from __future__ import annotations

import numpy as np
from scipy import signal

RATE = 44100


def click_track(bpm: float = 120.0, seconds: float = 8.0, rate: int = RATE) -> np.ndarray:
    """Short 1.5 kHz clicks every beat: a loop at ``bpm``."""
    out = np.zeros(int(seconds * rate), np.float32)
    t = np.arange(int(0.02 * rate)) / rate
    click = (np.sin(2 * np.pi * 1500 * t) * np.exp(-t * 300)).astype(np.float32)
    period = 60 / bpm
    for beat in range(int(seconds / period)):
        start = int(round(beat * period * rate))
        out[start:start + len(click)] += click[:len(out) - start]
    return out[None] * 0.8


def am_chord(seconds: float = 4.0, bpm: float = 120.0, rate: int = RATE) -> np.ndarray:
    """An A minor chord (A2 A3 C4 E4 A4 with two overtones) struck on every beat."""
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    for freq, amp in ((110.0, 1.0), (220.0, 0.8), (261.63, 0.7), (329.63, 0.7), (440.0, 0.5)):
        for harmonic in (1, 2, 3):
            out += amp / harmonic ** 1.5 * np.sin(2 * np.pi * freq * harmonic * t)
    out *= np.exp(-np.mod(t, 60 / bpm) * 3)
    return (out / np.abs(out).max() * 0.7).astype(np.float32)[None]


def kick(rate: int = RATE) -> np.ndarray:
    """A decaying sine sweeping from 150 to 50 Hz: a kick drum."""
    t = np.arange(int(0.5 * rate)) / rate
    phase = 2 * np.pi * np.cumsum(50 + 100 * np.exp(-t * 30)) / rate
    return (np.sin(phase) * np.exp(-t * 8) * 0.9).astype(np.float32)[None]


def hat(rate: int = RATE) -> np.ndarray:
    """High-passed noise decaying in 150 ms: a closed hi-hat."""
    t = np.arange(int(0.15 * rate)) / rate
    b, a = signal.butter(4, 7000 / (rate / 2), "high")
    noise = signal.lfilter(b, a, np.random.default_rng(1).standard_normal(len(t)))
    return (noise * np.exp(-t * 40) * 0.3).astype(np.float32)[None]


def snare(rate: int = RATE) -> np.ndarray:
    """Band-passed noise over a 190 Hz body, decaying in 300 ms: a snare."""
    t = np.arange(int(0.3 * rate)) / rate
    b, a = signal.butter(2, [1000 / (rate / 2), 6000 / (rate / 2)], "band")
    noise = signal.lfilter(b, a, np.random.default_rng(2).standard_normal(len(t)))
    body = 0.5 * np.sin(2 * np.pi * 190 * t)
    return ((noise * 3 + body) * np.exp(-t * 18) * 0.3).astype(np.float32)[None]


def pad(seconds: float = 4.0, rate: int = RATE) -> np.ndarray:
    """A C major chord fading in over 0.8 s and held: a pad."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0, 523.25))
    return (tone * np.minimum(t / 0.8, 1.0) / 4 * 0.5).astype(np.float32)[None]
