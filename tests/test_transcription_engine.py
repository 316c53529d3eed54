"""The faster-whisper engine on espeak-ng speech in 25 languages (one model, loaded once)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

from transcription.engine import REPRODUCIBLE_KERNELS, Transcriber, load_audio
from transcription.errors import JobCancelled, LanguageError, TranscriptionError
from transcription.evaluation import (
    SAMPLES,
    character_error_rate,
    foreign_letters,
    synthesize,
    word_error_rate,
)
from transcription.gating import GateOptions, compression_ratio, longest_repeat

#: Measured with greedy decoding, `python -m transcription.evaluation --temperatures 0
#: --threads 2` (the table in docs/transcription.md), with the reproducible CPU kernels
#: that tests/conftest.py selects (`transcription.engine.REPRODUCIBLE_KERNELS`):
#: language -> (probability of the right language when it is detected right, else
#: None; WER; CER).  WER is the character error rate for zh and ja (written without
#: spaces); ja is scored on kana.  Other kernels give other figures (de 0.32 with MKL,
#: 0.64 with oneDNN's AVX-512 code), which no margin of a few words covers.
MEASURED: dict[str, tuple[float | None, float, float]] = {
    "en": (0.92, 0.00, 0.00), "de": (0.73, 0.23, 0.11), "es": (0.89, 0.15, 0.05),
    "fr": (0.90, 0.52, 0.29), "it": (0.98, 0.14, 0.08), "pt": (0.76, 0.60, 0.19),
    "nl": (None, 1.00, 1.00), "pl": (None, 0.59, 0.18), "sv": (None, 0.78, 0.42),
    "ru": (None, 1.00, 1.00), "tr": (None, 0.80, 0.12), "el": (None, 0.70, 0.32),
    "cs": (0.55, 0.88, 0.32), "fi": (0.84, 0.69, 0.24), "da": (None, 0.73, 0.44),
    "no": (None, 0.70, 0.37), "hu": (0.38, 0.69, 0.31), "ro": (0.38, 0.94, 0.22),
    "uk": (None, 1.00, 1.00), "id": (None, 0.57, 0.23), "vi": (0.57, 0.56, 0.42),
    "ca": (None, 0.68, 0.30), "hi": (None, 1.00, 1.00), "zh": (None, 1.00, 1.00),
    "ja": (None, 0.42, 0.42),
}
#: Allowed rise of an error rate over its measured value (two words of a ~20-word
#: sample, for what the pinned kernels may still leave to the CPU model), and fall of
#: a probability.
MARGIN = 0.10
PROBABILITY_MARGIN = 0.15

#: Languages whose spoken language the base model detects right on this speech.
DETECTED = tuple(code for code, (probability, _, _) in MEASURED.items() if probability)
#: da is 0.59 / 0.40 on AMD EPYC and 0.73 / 0.44 on the CI's Intel Xeon with the same
#: kernels (two words apart); the worse is the figure held. So are tr (0.60 / 0.12 there,
#: 0.80 / 0.11 on an AMD EPYC of family 26) and id (0.38 / 0.14, and 0.57 / 0.23).
#: Languages whose words are mostly wrong (WER >= 0.85 here or on another x86-64 CPU):
#: held to their CER only.  no is 0.70 on AMD EPYC and 0.96 on the CI's CPU with the same
#: kernels, one early token apart; its CER is 0.37 on both.
WORDS_WRONG = ("cs", "ro", "no")
#: Languages greedy decoding cannot transcribe here: nothing comes back (the model loops
#: and the gate drops it), so they are only checked for not inventing text.  nl and ru
#: come back with the temperature fallback (docs/transcription.md).
UNREADABLE = ("hi", "zh", "nl", "ru", "uk")
#: The rest: held to their WER and CER.
WORD_SCORED = tuple(c for c in MEASURED if c not in WORDS_WRONG + UNREADABLE)


def bound(code: str, kind: str = "wer") -> float:
    """The measured WER (or CER) of ``code`` plus :data:`MARGIN`."""
    _, wer, cer = MEASURED[code]
    return (wer if kind == "wer" else cer) + MARGIN


@pytest.fixture(scope="module")
def greedy(whisper_model_dir: Path) -> Transcriber:
    """Greedy decoding (no temperature fallback): as good here and much faster."""
    return Transcriber(whisper_model_dir, cpu_threads=2, temperatures=(0.0,))


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("speech")
    return {code: synthesize(text, voice, root / f"{code}.wav")
            for code, (voice, text) in SAMPLES.items()}


@pytest.fixture(scope="module")
def forced(greedy: Transcriber, speech: dict[str, Path]) -> dict:
    return {code: greedy.transcribe(path, language=code) for code, path in speech.items()}


def test_the_figures_are_checked_with_the_kernels_they_were_measured_with() -> None:
    assert {name: os.environ.get(name) for name in REPRODUCIBLE_KERNELS} == REPRODUCIBLE_KERNELS


def test_at_least_twenty_languages_are_tested() -> None:
    assert len(SAMPLES) >= 20
    assert set(MEASURED) == set(SAMPLES)
    assert all(bound(code) < 1.0 for code in WORD_SCORED)  # an empty transcript fails


@pytest.mark.parametrize("code", DETECTED)
def test_detected_language_is_right(greedy: Transcriber, speech: dict[str, Path],
                                    code: str) -> None:
    language, probability = greedy.detect_language(speech[code])
    assert language == code
    assert probability >= MEASURED[code][0] - PROBABILITY_MARGIN


def test_transcribing_without_a_language_detects_it(transcriber: Transcriber,
                                                    speech: dict[str, Path]) -> None:
    result = transcriber.transcribe(speech["de"])
    assert result.language == "de"
    assert result.language_probability > 0.5
    assert word_error_rate(SAMPLES["de"][1], result.text, "de") <= bound("de")


@pytest.mark.parametrize("code", WORD_SCORED)
def test_word_error_rate_is_within_the_stated_bound(forced: dict, code: str) -> None:
    result = forced[code]
    assert result.language == code
    rate = word_error_rate(SAMPLES[code][1], result.text, code)
    assert rate <= bound(code), f"{code}: {result.text!r}"


@pytest.mark.parametrize("code", WORD_SCORED + WORDS_WRONG)
def test_character_error_rate_is_within_the_stated_bound(forced: dict, code: str) -> None:
    result = forced[code]
    assert result.language == code
    rate = character_error_rate(SAMPLES[code][1], result.text, code)
    assert rate <= bound(code, "cer"), f"{code}: {result.text!r}"


@pytest.mark.parametrize("code", list(SAMPLES))
def test_the_transcript_is_written_in_the_language_script(forced: dict, code: str) -> None:
    text = forced[code].text
    assert text or code in UNREADABLE, f"{code}: nothing transcribed"
    assert not {ch for ch in foreign_letters(text, code) if not ch.isdigit()}, \
        f"{code}: {text!r}"


@pytest.mark.parametrize("code", UNREADABLE)
def test_no_text_is_invented_where_the_model_cannot_read_the_speech(forced: dict,
                                                                    code: str) -> None:
    """Ungated, the model loops ('आपापाप…' for hi, '1,1,1,4,3,…' for zh): none of it stays."""
    result = forced[code]
    assert result.language == code
    for segment in result.segments:
        assert compression_ratio(segment.text) <= GateOptions().compression_ratio_threshold
        assert longest_repeat(segment.text) <= GateOptions().max_repeats
    assert not foreign_letters(result.text, code), result.text
    assert result.duration > 5 and not result.passages  # the speech was heard as speech


def test_words_have_ordered_times_inside_the_audio(forced: dict) -> None:
    result = forced["en"]
    words = result.words
    assert len(words) >= 15
    assert all(0 <= w.start <= w.end <= result.duration + 0.05 for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))
    assert all(0.0 <= w.probability <= 1.0 for w in words)
    assert [w.word for w in words][:3] == ["The", "weather", "is"]


def test_progress_rises_to_one(greedy: Transcriber, speech: dict[str, Path]) -> None:
    seen: list[float] = []
    greedy.transcribe(speech["en"], language="en", progress=seen.append)
    assert seen[-1] == 1.0
    assert seen == sorted(seen)


def test_a_set_cancel_event_stops_the_transcription(greedy: Transcriber,
                                                    speech: dict[str, Path]) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(JobCancelled):
        greedy.transcribe(speech["en"], language="en", cancel=cancel)


def test_cancelling_after_the_first_segment_stops_before_the_end(
        greedy: Transcriber, speech: dict[str, Path]) -> None:
    audio = np.concatenate([load_audio(speech["en"]), np.zeros(16000, np.float32)] * 3)
    cancel, seen = threading.Event(), []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        cancel.set()

    with pytest.raises(JobCancelled):
        greedy.transcribe(audio, language="en", progress=progress, cancel=cancel)
    assert seen and max(seen) < 1.0


def test_a_time_range_is_transcribed_with_times_of_the_whole_file(
        greedy: Transcriber, speech: dict[str, Path]) -> None:
    first, second = load_audio(speech["en"]), load_audio(speech["de"])
    gap = np.zeros(16000, np.float32)
    audio = np.concatenate([first, gap, second])
    start = (first.size + gap.size) / 16000
    result = greedy.transcribe(audio, language="de", start=start)
    assert result.words and min(w.start for w in result.words) >= start
    assert word_error_rate(SAMPLES["de"][1], result.text, "de") <= bound("de")


def test_compressed_files_are_decoded(greedy: Transcriber, speech: dict[str, Path],
                                      tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is installed by scripts/setup.sh"
    mp3 = tmp_path / "en.mp3"
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(speech["en"]), str(mp3)],
                   check=True)
    decoded = load_audio(mp3)
    assert abs(decoded.size / 16000 - soundfile.info(str(speech["en"])).duration) < 0.1
    result = greedy.transcribe(mp3, language="en")
    assert word_error_rate(SAMPLES["en"][1], result.text, "en") <= bound("en")


def test_an_english_only_model_refuses_another_language(whisper_model_dir: Path,
                                                        tmp_path: Path,
                                                        speech: dict[str, Path]) -> None:
    english = tmp_path / "english-only"
    english.mkdir()
    for item in whisper_model_dir.iterdir():
        (english / item.name).symlink_to(item)
    config = json.loads((whisper_model_dir / "config.json").read_text())
    config["lang_ids"] = config["lang_ids"][:1]
    (english / "config.json").unlink()
    (english / "config.json").write_text(json.dumps(config))
    model = Transcriber(english, cpu_threads=1)
    with pytest.raises(LanguageError, match="English-only"):
        model.transcribe(speech["de"], language="de")


def test_unreadable_audio_is_a_clear_error(greedy: Transcriber, tmp_path: Path) -> None:
    with pytest.raises(TranscriptionError, match="does not exist"):
        greedy.transcribe(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEnot really")
    with pytest.raises(TranscriptionError, match="cannot decode"):
        greedy.transcribe(bad)
