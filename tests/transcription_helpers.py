"""Speech for the transcription tests: words with known spans, with pauses or connected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from transcription.evaluation import synthesize
from transcription.speech import synthesize_words

WORDS = ["please", "remove", "the", "purple", "elephant", "today"]
GAP_S = 0.25


def spoken_words(root: Path, words: list[str] = WORDS) -> tuple[Path, list[tuple[float, float]]]:
    """espeak-ng says each word with 0.25 s pauses; the WAV and each word's true span (s)."""
    rate = 22050
    pieces, spans, cursor = [np.zeros(int(GAP_S * rate), np.float32)], [], GAP_S
    for index, word in enumerate(words):
        audio, rate = soundfile.read(str(synthesize(word, "en-us", root / f"{index}.wav")),
                                     dtype="float32")
        voiced = np.nonzero(np.abs(audio) > 1e-3)[0]
        audio = audio[voiced[0]:voiced[-1] + 1]
        pieces += [audio, np.zeros(int(GAP_S * rate), np.float32)]
        spans.append((cursor, cursor + audio.size / rate))
        cursor += (audio.size + int(GAP_S * rate)) / rate
    path = root / "sentence.wav"
    soundfile.write(str(path), np.concatenate(pieces), rate)
    return path, spans


def connected_speech(root: Path, words: list[str] = WORDS,
                     voice: str = "en-us") -> tuple[Path, list[tuple[float, float]]]:
    """espeak-ng says ``words`` as one sentence, no pauses; the WAV and each word's span (s).

    The spans are espeak-ng's own (its word events, :mod:`transcription.speech`).
    """
    path = root / "connected.wav"
    return path, synthesize_words(words, voice, path)
