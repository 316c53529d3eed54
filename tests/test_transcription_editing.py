"""Text-based editing: deleting or reordering words edits the clips, heard in the render."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
from transcription_helpers import WORDS, spoken_words

from dsp_core.audio_io import load_source
from dsp_core.engine import render_session
from dsp_core.session import Clip, Session, Track
from transcription.editing import (
    EditOptions,
    clip_words,
    cut_points,
    delete_words,
    nearest_zero_crossing,
    plan_text_edit,
    quietest_point,
    replace_clip,
)
from transcription.engine import Transcriber, to_whisper_rate
from transcription.errors import EditError
from transcription.transcript import Transcript, Word

RATE = 48000


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    """Words spoken one by one with 0.25 s pauses: the file and each word's true span."""
    return spoken_words(tmp_path_factory.mktemp("words"))


@pytest.fixture(scope="module")
def transcript(transcriber: Transcriber, spoken) -> Transcript:
    return transcriber.transcribe(spoken[0], language="en")


def _session(path: Path, extra: Path | None = None) -> Session:
    frames = load_source(path, RATE).shape[1]
    clips = [Clip(source=str(path), position=RATE, length=frames, id="speech")]
    if extra is not None:
        clips.append(Clip(source=str(extra), position=RATE + frames + RATE // 2,
                          length=RATE, id="after"))
    return Session(sample_rate=RATE, tracks=[Track(id="dialogue", clips=clips)])


def _energy(audio: np.ndarray, start_s: float, end_s: float) -> float:
    return float(np.sum(np.square(audio[:, int(start_s * RATE):int(end_s * RATE)],
                                  dtype=np.float64)))


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tone") / "tone.wav"
    t = np.arange(RATE) / RATE
    soundfile.write(str(path), (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), RATE)
    return path


def test_the_spoken_words_are_transcribed_with_their_times(transcript: Transcript,
                                                           spoken) -> None:
    words = [w.word.strip(".,!?").lower() for w in transcript.words]
    assert words == WORDS
    for word, (start, end) in zip(transcript.words, spoken[1], strict=True):
        middle = (word.start + word.end) / 2
        assert start - 0.15 <= middle <= end + 0.15


def test_deleting_a_word_silences_exactly_that_word(transcript: Transcript, spoken) -> None:
    path, spans = spoken
    session = _session(path)
    before = render_session(session)
    clip = session.tracks[0].clips[0]
    audio = load_source(path, RATE)
    words = clip_words(transcript, clip, RATE)
    target = WORDS.index("purple")
    pieces = delete_words(clip, words, [target], audio, RATE, EditOptions(ripple=False))
    assert len(pieces) == 2
    edited = replace(session, tracks=[replace(session.tracks[0], clips=replace_clip(
        session.tracks[0].clips, clip.id, pieces, ripple=False))])
    edited.validate()
    after = render_session(edited)
    offset = clip.position / RATE
    start, end = spans[target]
    assert _energy(before, offset + start, offset + end) > 0.5
    assert _energy(after, offset + start, offset + end) < 1e-6 * _energy(
        before, offset + start, offset + end)
    for index, (w_start, w_end) in enumerate(spans):
        if index != target:
            kept = _energy(after, offset + w_start, offset + w_end)
            assert kept == pytest.approx(_energy(before, offset + w_start, offset + w_end),
                                         rel=1e-3), WORDS[index]


def test_ripple_delete_closes_the_gap_and_moves_later_clips(transcript: Transcript, spoken,
                                                             tone: Path) -> None:
    path, spans = spoken
    session = _session(path, tone)
    before = render_session(session)
    clip, later = session.tracks[0].clips
    words = clip_words(transcript, clip, RATE)
    target = WORDS.index("purple")
    pieces = delete_words(clip, words, [target], load_source(path, RATE), RATE)
    cut_a, cut_b = pieces[0].offset + pieces[0].length, pieces[1].offset
    removed = cut_b - cut_a
    start, end = spans[target]
    assert cut_a <= start * RATE and cut_b >= end * RATE
    assert cut_a >= spans[target - 1][1] * RATE and cut_b <= spans[target + 1][0] * RATE
    assert pieces[1].position == pieces[0].end
    assert pieces[0].fade_out == pieces[1].fade_in == int(0.005 * RATE)
    clips = replace_clip(session.tracks[0].clips, clip.id, pieces)
    assert clips[-1].position == later.position - removed
    edited = replace(session, tracks=[replace(session.tracks[0], clips=clips)])
    edited.validate()
    after = render_session(edited)
    assert after.shape[1] == before.shape[1] - removed
    splice = clip.position + cut_a
    fade = pieces[0].fade_out
    np.testing.assert_allclose(after[:, :splice - fade], before[:, :splice - fade], atol=1e-6)
    np.testing.assert_allclose(after[:, splice + fade:], before[:, splice + removed + fade:],
                               atol=1e-6)


def test_the_edited_render_no_longer_says_the_word(transcriber: Transcriber,
                                                   transcript: Transcript, spoken) -> None:
    path, _ = spoken
    session = _session(path)
    clip = session.tracks[0].clips[0]
    words = clip_words(transcript, clip, RATE)
    pieces = delete_words(clip, words, [WORDS.index("purple")], load_source(path, RATE), RATE)
    edited = replace(session, tracks=[replace(session.tracks[0], clips=pieces)])
    mix = to_whisper_rate(render_session(edited).mean(axis=0), RATE)
    heard = [w.word.strip(".,!?").lower() for w in transcriber.transcribe(mix,
                                                                         language="en").words]
    assert heard == [w for w in WORDS if w != "purple"]


def test_reordering_words_moves_their_audio(transcript: Transcript, spoken) -> None:
    path, spans = spoken
    session = _session(path)
    clip = session.tracks[0].clips[0]
    audio = load_source(path, RATE)
    words = clip_words(transcript, clip, RATE)
    order = [0, 1, 2, 4, 3, 5]  # "... the elephant purple today"
    pieces = plan_text_edit(clip, words, order, audio, RATE)
    assert sum(p.length for p in pieces) == clip.length
    assert [p.position for p in pieces[1:]] == [p.end for p in pieces[:-1]]
    elephant = next(p for p in pieces if p.offset <= spans[4][0] * RATE < p.offset + p.length)
    purple = next(p for p in pieces if p.offset <= spans[3][0] * RATE < p.offset + p.length)
    assert elephant.position < purple.position
    rendered = render_session(replace(session, tracks=[replace(session.tracks[0],
                                                               clips=pieces)]))
    take = int((spans[4][1] - spans[4][0]) * RATE)
    source = audio[0, int(spans[4][0] * RATE):int(spans[4][0] * RATE) + take]
    start = elephant.position + int(spans[4][0] * RATE) - elephant.offset
    heard = rendered[0, start:start + take]
    correlation = np.dot(source, heard) / (np.linalg.norm(source) * np.linalg.norm(heard))
    assert correlation > 0.99


def test_cuts_sit_in_the_pauses_and_on_zero_crossings(transcript: Transcript, spoken) -> None:
    path, spans = spoken
    clip = _session(path).tracks[0].clips[0]
    audio = load_source(path, RATE)[0]
    cuts = cut_points(audio, RATE, clip_words(transcript, clip, RATE), clip)
    assert len(cuts) == len(WORDS) + 1
    for index, cut in enumerate(cuts[1:-1], start=1):
        assert spans[index - 1][1] * RATE <= cut <= spans[index][0] * RATE
        assert abs(audio[cut]) < 1e-3


def test_zero_crossing_and_quiet_point_helpers() -> None:
    t = np.arange(4800) / RATE
    sine = np.sin(2 * np.pi * 100 * t).astype(np.float32)  # crosses zero every 240 frames
    assert nearest_zero_crossing(sine, 250, 50) in (240, 241)
    assert nearest_zero_crossing(np.ones(100, np.float32), 50, 10) == 50
    loud = np.ones(4800, np.float32)
    loud[3000:3300] = 0.0
    assert 3000 <= quietest_point(loud, 2000, 0, 4800, 48) < 3300


def test_outer_fades_of_the_clip_are_kept() -> None:
    clip = Clip(source="x.wav", position=0, offset=0, length=RATE, fade_in=100, fade_out=200,
                id="c")
    words = [Word("a", 0.1, 0.2, 1.0), Word("b", 0.4, 0.5, 1.0), Word("c", 0.7, 0.8, 1.0)]
    audio = np.zeros(RATE, np.float32)
    pieces = delete_words(clip, words, [1], audio, RATE)
    assert pieces[0].fade_in == 100 and pieces[-1].fade_out == 200
    assert pieces[0].id == "c" and pieces[1].id != "c"


def test_words_outside_the_clip_are_not_its_words() -> None:
    transcript = Transcript(language="en", segments=())
    from transcription.transcript import Segment

    words = (Word("a", 0.1, 0.2, 1.0), Word("b", 1.1, 1.2, 1.0), Word("c", 2.1, 2.2, 1.0))
    transcript = Transcript(language="en", segments=(Segment(0.0, 2.3, "a b c", words),))
    clip = Clip(source="x.wav", position=0, offset=RATE, length=RATE, id="c")
    assert [w.word for w in clip_words(transcript, clip, RATE)] == ["b"]


def test_bad_edits_are_refused() -> None:
    clip = Clip(source="x.wav", position=0, length=RATE, id="c")
    words = [Word("a", 0.1, 0.2, 1.0), Word("b", 0.4, 0.5, 1.0)]
    audio = np.zeros(RATE, np.float32)
    with pytest.raises(EditError, match="at most once"):
        plan_text_edit(clip, words, [0, 0], audio, RATE)
    with pytest.raises(EditError, match="at most once"):
        plan_text_edit(clip, words, [5], audio, RATE)
    with pytest.raises(EditError, match="ripple"):
        plan_text_edit(clip, words, [1, 0], audio, RATE, EditOptions(ripple=False))
    with pytest.raises(EditError, match="out of range"):
        delete_words(clip, words, [2], audio, RATE)
    with pytest.raises(EditError, match="no clip"):
        replace_clip([clip], "nope", [clip])
