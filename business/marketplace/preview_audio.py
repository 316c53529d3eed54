"""A beat's streaming preview: the producer's voice tag mixed in at set intervals, as MP3.

Blocking work on whole files (decode, mix, encode), run in a thread by
:mod:`.previews`. Files are decoded with soundfile (libsndfile: WAV, FLAC, OGG, MP3),
the tag resampled to the beat's rate with soxr, mixed at ``gain_db`` starting at
``first_s`` and every ``interval_s`` after, clipped to full scale, and encoded to MP3 by
LAME (``lameenc``: the encoder runs in process, nothing to install beside the wheel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import lameenc
import numpy as np
import soundfile
import soxr

#: The preview's MP3 bit rate (kbit/s): a streaming preview, not a deliverable.
BITRATE_KBPS = 128
#: Frames encoded per step (progress is reported between steps).
CHUNK_FRAMES = 1 << 16
#: The beat rates LAME encodes (others are resampled to 44.1 kHz first).
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

Progress = Callable[[float, str], None]


class AudioUnreadable(Exception):
    """A beat's or tag's file is not audio soundfile can decode (the message says which)."""


@dataclass(frozen=True)
class TagSettings:
    """Where and how loud the voice tag goes."""

    gain_db: float = -3.0
    interval_s: float = 30.0
    first_s: float = 0.0


def read_audio(path: str, what: str) -> tuple[np.ndarray, int]:
    """``(frames, channels)`` float32 and the rate, or :class:`AudioUnreadable`."""
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioUnreadable(f"the {what} is not audio we can read ({exc}): upload a WAV, "
                              "FLAC, OGG or MP3 file") from None
    if data.shape[0] == 0:
        raise AudioUnreadable(f"the {what} has no audio in it")
    return np.ascontiguousarray(data), int(rate)


def tag_times(duration_s: float, settings: TagSettings) -> list[float]:
    """The seconds the tag starts at within a beat of ``duration_s``."""
    times, at = [], max(0.0, settings.first_s)
    while at < duration_s:
        times.append(at)
        at += settings.interval_s
    return times


def mix_tag(beat: np.ndarray, rate: int, tag: np.ndarray, tag_rate: int,
            settings: TagSettings) -> np.ndarray:
    """``beat`` with ``tag`` added at :func:`tag_times` (the tag resampled and matched to
    the beat's channels; a tag running past the end is cut), clipped to ±1."""
    if tag_rate != rate:
        tag = soxr.resample(tag, tag_rate, rate).astype(np.float32)
    if tag.shape[1] != beat.shape[1]:
        mono = tag.mean(axis=1, keepdims=True)
        tag = np.repeat(mono, beat.shape[1], axis=1)
    gain = np.float32(10.0 ** (settings.gain_db / 20.0))
    out = beat.astype(np.float32, copy=True)
    for at in tag_times(beat.shape[0] / rate, settings):
        start = int(round(at * rate))
        end = min(out.shape[0], start + tag.shape[0])
        out[start:end] += gain * tag[: end - start]
    np.clip(out, -1.0, 1.0, out=out)
    return out


def encode_mp3(audio: np.ndarray, rate: int, progress: Progress | None = None) -> bytes:
    """``(frames, channels)`` float audio as a constant-bit-rate MP3 (mono or stereo;
    more channels are folded to stereo)."""
    if audio.shape[1] > 2:
        audio = np.stack([audio[:, 0::2].mean(axis=1), audio[:, 1::2].mean(axis=1)], axis=1)
    if rate not in MP3_RATES:
        audio = soxr.resample(audio, rate, 44100).astype(np.float32)
        rate = 44100
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(BITRATE_KBPS)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(int(pcm.shape[1]))
    encoder.set_quality(2)
    out = bytearray()
    frames = pcm.shape[0]
    for start in range(0, frames, CHUNK_FRAMES):
        out += encoder.encode(np.ascontiguousarray(pcm[start:start + CHUNK_FRAMES]).tobytes())
        if progress is not None:
            progress(0.3 + 0.7 * min(1.0, (start + CHUNK_FRAMES) / frames), "encoding")
    out += encoder.flush()
    return bytes(out)


def render_preview(beat_path: str, tag_path: str, settings: TagSettings,
                   progress: Progress | None = None) -> tuple[bytes, float]:
    """The tagged MP3 of a beat's file and its duration in seconds."""
    beat, rate = read_audio(beat_path, "beat's file")
    if progress is not None:
        progress(0.15, "decoded the beat")
    tag, tag_rate = read_audio(tag_path, "voice tag")
    mixed = mix_tag(beat, rate, tag, tag_rate, settings)
    if progress is not None:
        progress(0.3, "mixed the voice tag")
    return encode_mp3(mixed, rate, progress), beat.shape[0] / rate
