"""Gating music and silence out of transcription.

Silero VAD (shipped inside faster-whisper) finds the speech; everything else
becomes a :class:`~transcription.transcript.Passage` marked ``"silence"`` or
``"music"`` (non-speech sound) and is never sent to the decoder.  Segments the
decoder still produces are dropped when Whisper itself says they are probably
not speech, when they loop (high compression ratio), when they fall mostly
outside the detected speech or, with a forced language, when they are mostly
written in another script.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .languages import foreign_share
from .transcript import Passage

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class GateOptions:
    """Thresholds of the speech gate (times in milliseconds unless named ``_s``)."""

    vad_threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 600
    speech_pad_ms: int = 200
    silence_dbfs: float = -50.0
    min_passage_s: float = 0.5
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    max_repeats: int = 4
    min_speech_overlap: float = 0.5
    max_foreign_letters: float = 0.5

    def vad_options(self):  # noqa: ANN201 - faster_whisper is imported lazily
        """The same thresholds as faster-whisper's ``VadOptions``."""
        from faster_whisper.vad import VadOptions

        return VadOptions(threshold=self.vad_threshold,
                          min_speech_duration_ms=self.min_speech_ms,
                          min_silence_duration_ms=self.min_silence_ms,
                          speech_pad_ms=self.speech_pad_ms)


def speech_regions(audio: np.ndarray, options: GateOptions) -> list[tuple[float, float]]:
    """Speech spans ``(start, end)`` in seconds of 16 kHz mono ``audio``."""
    from faster_whisper.vad import get_speech_timestamps

    if audio.size == 0:
        return []
    stamps = get_speech_timestamps(audio, options.vad_options(), sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def rms_dbfs(audio: np.ndarray) -> float:
    """Root-mean-square level in dBFS (``-inf`` for digital silence)."""
    if audio.size == 0:
        return -np.inf
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else -np.inf


def non_speech_passages(audio: np.ndarray, regions: list[tuple[float, float]],
                        options: GateOptions) -> list[Passage]:
    """The gaps between speech regions, each marked ``"silence"`` or ``"music"``."""
    duration = audio.size / SAMPLE_RATE
    passages: list[Passage] = []
    cursor = 0.0
    for start, end in [*regions, (duration, duration)]:
        if start - cursor >= options.min_passage_s:
            piece = audio[int(cursor * SAMPLE_RATE):int(start * SAMPLE_RATE)]
            kind = "silence" if rms_dbfs(piece) < options.silence_dbfs else "music"
            passages.append(Passage(cursor, start, kind))
        cursor = max(cursor, end)
    return passages


def speech_overlap(start: float, end: float, regions: list[tuple[float, float]]) -> float:
    """Fraction of ``[start, end)`` that lies inside speech regions."""
    if end <= start:
        return 0.0
    inside = sum(max(0.0, min(end, r_end) - max(start, r_start)) for r_start, r_end in regions)
    return inside / (end - start)


def compression_ratio(text: str) -> float:
    """How well ``text`` compresses (zlib): looping, repeated text scores high."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def longest_repeat(text: str, longest_phrase: int = 3) -> int:
    """The most times a word or phrase (up to ``longest_phrase`` words) repeats in a row."""
    words = text.lower().split()
    best = 1 if words else 0
    for size in range(1, longest_phrase + 1):
        for start in range(size):
            run, previous = 1, None
            for index in range(start, len(words) - size + 1, size):
                phrase = words[index:index + size]
                run = run + 1 if phrase == previous else 1
                previous = phrase
                best = max(best, run)
    return best


def keep_segment(segment, regions: list[tuple[float, float]],  # noqa: ANN001
                 options: GateOptions, language: str | None = None) -> bool:
    """Whether a decoded faster-whisper segment is speech worth keeping.

    Loops are found in the segment's own text (its compression ratio, a word or
    phrase said more than ``max_repeats`` times in a row): faster-whisper's
    ``segment.compression_ratio`` covers a whole decoded window, so a speaker
    who says the same sentence several times would lose all of them.  With a
    forced ``language``, a segment mostly written in another script (more
    than ``max_foreign_letters`` of its letters) is invented text: Whisper's
    temperature fallback turns Chinese speech it cannot read into "1.5 hair2,
    2 hair3, …".
    """
    if (segment.no_speech_prob > options.no_speech_threshold
            and segment.avg_logprob < options.log_prob_threshold):
        return False
    if (compression_ratio(segment.text) > options.compression_ratio_threshold
            or longest_repeat(segment.text) > options.max_repeats):
        return False
    if not segment.text.strip():
        return False
    if foreign_share(segment.text, language) > options.max_foreign_letters:
        return False
    return speech_overlap(segment.start, segment.end, regions) >= options.min_speech_overlap
