"""Music and silence are gated out of transcripts and marked as passages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faster_whisper.transcribe import Segment

from dsp_core.demo import write_demo_project
from dsp_core.engine import render_session
from dsp_core.project import load_project
from transcription.engine import Transcriber, load_audio, to_whisper_rate
from transcription.evaluation import SAMPLES, synthesize, word_error_rate
from transcription.gating import (
    GateOptions,
    compression_ratio,
    keep_segment,
    longest_repeat,
    non_speech_passages,
    rms_dbfs,
    speech_overlap,
    speech_regions,
)
from transcription.languages import foreign_share

RATE = 16000


def chords_and_drums(seconds: float, rate: int = RATE, seed: int = 1) -> np.ndarray:
    """Synthesised instrumental music: triad pads changing each bar, kick, snare, hats."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    music = np.zeros(n)
    bar = 2.0
    for index, root in enumerate([220.0, 174.6, 261.6, 196.0] * int(seconds / bar + 1)):
        start, end = int(index * bar * rate), min(n, int((index + 1) * bar * rate))
        if start >= n:
            break
        for ratio in (1.0, 1.26, 1.5):
            phase = 2 * np.pi * root * ratio * t[start:end]
            music[start:end] += 0.08 * (np.sin(phase) + 0.3 * np.sin(2 * phase))
    beat = int(0.5 * rate)
    for step, onset in enumerate(range(0, n, beat)):
        hit = np.arange(min(int(0.2 * rate), n - onset)) / rate
        if step % 2 == 0:
            music[onset:onset + hit.size] += 0.6 * np.sin(2 * np.pi * 55 * hit) * np.exp(-hit * 25)
        else:
            noise = rng.standard_normal(hit.size)
            music[onset:onset + hit.size] += 0.25 * noise * np.exp(-hit * 30)
        hat = min(int(0.03 * rate), n - onset - beat // 2) if onset + beat // 2 < n else 0
        if hat > 0:
            music[onset + beat // 2:onset + beat // 2 + hat] += 0.05 * rng.standard_normal(hat)
    return (music / np.max(np.abs(music)) * 0.7).astype(np.float32)


@pytest.fixture(scope="module")
def demo_mix(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The demo project's instrumental arrangement, rendered by the engine."""
    project = write_demo_project(tmp_path_factory.mktemp("demo"), tracks=8, seconds=8.0,
                                 sample_rate=48000)
    mix = render_session(load_project(project))
    return to_whisper_rate(mix.mean(axis=0), 48000)


@pytest.fixture(scope="module")
def english(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    voice, text = SAMPLES["en"]
    return load_audio(synthesize(text, voice, tmp_path_factory.mktemp("en") / "en.wav"))


def test_the_demo_projects_instrumental_mix_yields_no_words(transcriber: Transcriber,
                                                            demo_mix: np.ndarray) -> None:
    result = transcriber.transcribe(demo_mix)
    assert result.words == []
    assert result.segments == ()
    music = sum(p.end - p.start for p in result.passages if p.kind == "music")
    assert music >= 0.9 * result.duration


def test_synthesised_chords_and_drums_yield_no_words(transcriber: Transcriber) -> None:
    result = transcriber.transcribe(chords_and_drums(10.0))
    assert result.words == []
    assert [p.kind for p in result.passages] == ["music"]


def test_forcing_a_language_on_music_still_yields_no_words(transcriber: Transcriber) -> None:
    assert transcriber.transcribe(chords_and_drums(6.0, seed=2), language="en").words == []


def test_silence_is_marked_as_silence(transcriber: Transcriber) -> None:
    result = transcriber.transcribe(np.zeros(4 * RATE, np.float32))
    assert result.words == []
    assert [(p.kind, p.start, p.end) for p in result.passages] == [("silence", 0.0, 4.0)]


def test_music_between_speech_is_a_passage_and_speech_keeps_its_words(
        transcriber: Transcriber, english: np.ndarray) -> None:
    music = chords_and_drums(6.0, seed=3)
    audio = np.concatenate([english, music, english])
    music_start, music_end = english.size / RATE, (english.size + music.size) / RATE
    result = transcriber.transcribe(audio, language="en")
    assert not [w for w in result.words if music_start + 0.5 < w.start < music_end - 0.5]
    passages = [p for p in result.passages if p.kind == "music"]
    assert len(passages) == 1
    assert passages[0].start < music_start + 0.5 and passages[0].end > music_end - 0.5
    text = SAMPLES["en"][1]
    assert word_error_rate(f"{text} {text}", result.text.replace("\n", " "), "en") <= 0.1


def test_a_sentence_said_three_times_keeps_every_word(transcriber: Transcriber,
                                                      english: np.ndarray) -> None:
    pause = np.zeros(RATE // 2, np.float32)
    result = transcriber.transcribe(np.concatenate([english, pause] * 3), language="en")
    text = SAMPLES["en"][1]
    assert word_error_rate(" ".join([text] * 3), result.text.replace("\n", " "), "en") <= 0.1


def _segment(text: str) -> Segment:
    return Segment(id=1, seek=0, start=0.0, end=2.0, text=text, tokens=[], avg_logprob=-0.3,
                   compression_ratio=1.2, no_speech_prob=0.1, words=None, temperature=0.0)


@pytest.mark.parametrize(("text", "language", "kept"), [
    (" 1.5 hair2,2 hair3,1 kiss equal 4,1 yuan-2", "zh", False),
    (" 今天天气很好。", "zh", True),
    (" 對", "hi", False),
    (" आपने तो सब पेते", "hi", True),
    (" Das Wetter ist schön.", "de", True),
    (" Das Wetter ist schön.", "ru", False),
    (" Das Wetter ist schön.", None, True),  # detected, not forced: no script check
])
def test_text_mostly_in_another_script_than_the_forced_language_is_dropped(
        text: str, language: str | None, kept: bool) -> None:
    assert keep_segment(_segment(text), [(0.0, 2.0)], GateOptions(), language) is kept


@pytest.mark.parametrize("code", ["hi", "zh"])
def test_the_temperature_fallback_keeps_no_text_in_another_script(transcriber: Transcriber,
                                                                  tmp_path: Path,
                                                                  code: str) -> None:
    """Sampling at higher temperatures invents Latin words for zh, Han for hi: none stays.

    Fragments of digits and single Chinese characters can stay for zh (docs/transcription.md).
    """
    voice, text = SAMPLES[code]
    audio = load_audio(synthesize(text, voice, tmp_path / f"{code}.wav"))
    result = transcriber.transcribe(audio, language=code)
    for segment in result.segments:
        assert foreign_share(segment.text, code) <= GateOptions().max_foreign_letters, segment
        assert compression_ratio(segment.text) <= GateOptions().compression_ratio_threshold


def test_looping_text_compresses_far_better_than_a_sentence() -> None:
    assert compression_ratio("jeg " * 40) > GateOptions().compression_ratio_threshold
    assert compression_ratio(SAMPLES["en"][1]) < GateOptions().compression_ratio_threshold
    assert compression_ratio("") == 0.0


def test_a_word_or_phrase_looping_is_counted() -> None:
    assert longest_repeat("Dat is m'n m'n m'n m'n m'n m'n fiets") == 6
    assert longest_repeat("we go we go we go we go home") == 4
    assert longest_repeat("the weather is very nice today") == 1
    assert longest_repeat("") == 0


def test_speech_regions_cover_speech_and_not_the_silence_around_it(english: np.ndarray) -> None:
    gap = np.zeros(2 * RATE, np.float32)
    regions = speech_regions(np.concatenate([gap, english, gap]), GateOptions())
    assert regions
    assert regions[0][0] >= 1.5
    assert regions[-1][1] <= 2.0 + english.size / RATE + 0.5


def test_gaps_are_classified_by_level() -> None:
    quiet = np.zeros(RATE, np.float32)
    loud = chords_and_drums(1.0)
    audio = np.concatenate([quiet, np.zeros(RATE, np.float32), loud])
    passages = non_speech_passages(audio, [(1.0, 2.0)], GateOptions())
    assert [(p.kind, p.start, p.end) for p in passages] == [("silence", 0.0, 1.0),
                                                            ("music", 2.0, 3.0)]


def test_short_gaps_are_not_passages() -> None:
    audio = np.zeros(3 * RATE, np.float32)
    assert non_speech_passages(audio, [(0.2, 1.5), (1.8, 3.0)], GateOptions()) == []


def test_speech_overlap_and_level_helpers() -> None:
    assert speech_overlap(0.0, 2.0, [(1.0, 3.0)]) == pytest.approx(0.5)
    assert speech_overlap(1.0, 1.0, [(0.0, 2.0)]) == 0.0
    assert rms_dbfs(np.zeros(10, np.float32)) == -np.inf
    assert rms_dbfs(np.ones(10, np.float32)) == pytest.approx(0.0)
