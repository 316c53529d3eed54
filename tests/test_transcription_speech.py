"""Connected espeak-ng speech with espeak's own word spans, and the cut figures built on it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from transcription.engine import Transcriber
from transcription.errors import TranscriptionError
from transcription.speech import cut_accuracy, synthesize_words


def test_word_spans_tile_the_sentence_the_command_line_says(tmp_path: Path) -> None:
    words = ["please", "remove", "the", "purple", "elephant", "today"]
    spans = synthesize_words(words, "en-us", tmp_path / "s.wav")
    audio, rate = soundfile.read(str(tmp_path / "s.wav"), dtype="float32")
    assert len(spans) == len(words) and spans[0][0] == 0.0
    assert spans[-1][1] == pytest.approx(audio.size / rate)
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
    espeak = shutil.which("espeak-ng")
    assert espeak
    subprocess.run([espeak, "-v", "en-us", "-w", str(tmp_path / "cli.wav"), " ".join(words)],
                   check=True)
    cli, _ = soundfile.read(str(tmp_path / "cli.wav"), dtype="float32")
    assert cli.size >= audio.size  # the command line adds trailing silence
    np.testing.assert_array_equal(cli[:audio.size], audio)
    again = synthesize_words(words, "en-us", tmp_path / "again.wav")
    assert again == spans


def test_a_word_espeak_gives_no_start_is_named(tmp_path: Path) -> None:
    with pytest.raises(TranscriptionError, match=r"no start for \['the'\]"):
        synthesize_words(["in", "the", "evening"], "en-us", tmp_path / "s.wav")


def test_cut_accuracy_compares_every_word(transcriber: Transcriber) -> None:
    figures = cut_accuracy(transcriber, ("please call me when you arrive at the station",))
    assert figures.words == 9
    assert len(figures.boundary_error_ms) == 8 and len(figures.removed) == 9
    assert len(figures.neighbour_lost) == 16
    assert all(0.0 <= share <= 1.0 for share in figures.removed + figures.neighbour_lost)
    assert np.mean(figures.removed) > 0.8  # the cuts are near the words, not anywhere
    assert figures.summary().startswith("9 words; |cut - word boundary|: median ")
