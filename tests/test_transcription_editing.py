"""Text-based editing: deleting or reordering words edits the clips, heard in the render."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
from transcription_helpers import WORDS, connected_speech, spoken_words

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


# -- connected speech: no pauses between the words ---------------------------------------

#: Share of a deleted word's energy that must be gone, and of a neighbour's that must stay.
REMOVED, KEPT = 0.85, 0.85
#: A splice is a click when a sample-to-sample step within 1 ms of it exceeds this share
#: of the largest step anywhere in the unedited speech.
CLICK_STEP = 0.05
#: Words whose deletion misses those bounds (measured; see docs/transcription.md).
#: espeak-ng joins "purple" and "elephant" with no dip in level, so the quietest point
#: near Whisper's boundary is the closure of the second p inside "purple", 140 ms early.
#: ("today", which Whisper ends 0.24 s before its sound does, is found since the planner
#: searches 300 ms.)
MISPLACED = {
    "purple": "the cut after it is the closure of its second p: 0.61 removed, '-ple' stays",
    "elephant": "the cut before it is inside 'purple': deleting it takes 0.39 of 'purple'",
}


@pytest.fixture(scope="module")
def connected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    """The same words as one espeak-ng sentence: the file and espeak's own word spans."""
    return connected_speech(tmp_path_factory.mktemp("connected"))


@pytest.fixture(scope="module")
def connected_transcript(transcriber: Transcriber, connected) -> Transcript:
    return transcriber.transcribe(connected[0], language="en")


def _level(audio: np.ndarray, frame: int, width: int) -> float:
    piece = audio[max(0, frame - width // 2):frame + width // 2].astype(np.float64)
    return float(np.sqrt(np.mean(np.square(piece))))


def _steps_near(audio: np.ndarray, frames: list[int], reach: int) -> float:
    """The largest sample-to-sample step within ``reach`` frames of any of ``frames``."""
    return max(float(np.max(np.abs(np.diff(audio[f - reach:f + reach])))) for f in frames)


def _edited(session: Session, pieces: list[Clip], ripple: bool = True) -> np.ndarray:
    track = session.tracks[0]
    clips = replace_clip(track.clips, track.clips[0].id, pieces, ripple=ripple)
    edited = replace(session, tracks=[replace(track, clips=clips)])
    edited.validate()
    return render_session(edited)


def test_connected_speech_is_transcribed_word_for_word(connected_transcript: Transcript,
                                                       connected) -> None:
    assert [w.word.strip(".,!?").lower() for w in connected_transcript.words] == WORDS
    _, spans = connected
    assert all(b[0] == a[1] for a, b in zip(spans, spans[1:], strict=False))  # tiled


def test_cuts_in_connected_speech_are_quiet_zero_crossings(connected_transcript: Transcript,
                                                           connected) -> None:
    path, _ = connected
    clip = _session(path).tracks[0].clips[0]
    audio = load_source(path, RATE)[0]
    cuts = cut_points(audio, RATE, clip_words(connected_transcript, clip, RATE), clip)
    width = int(0.005 * RATE)
    levels = np.array([_level(audio, f, width) for f in range(width, audio.size, width)])
    typical = float(np.median(levels[levels > 1e-3]))  # a 5 ms window of speech
    for cut in cuts[1:-1]:
        assert (audio[cut - 1] <= 0) != (audio[cut] <= 0) or audio[cut] == 0, cut
        assert _level(audio, cut, width) <= 0.3 * typical, cut / RATE


@pytest.mark.parametrize("word", [
    pytest.param(w, marks=pytest.mark.xfail(strict=True, reason=MISPLACED[w]))
    if w in MISPLACED else w for w in WORDS])
def test_deleting_a_word_of_connected_speech_removes_its_energy(
        connected_transcript: Transcript, connected, word: str) -> None:
    path, spans = connected
    session = _session(path)
    clip = session.tracks[0].clips[0]
    target = WORDS.index(word)
    pieces = delete_words(clip, clip_words(connected_transcript, clip, RATE), [target],
                          load_source(path, RATE), RATE, EditOptions(ripple=False))
    before, after = render_session(session), _edited(session, pieces, ripple=False)
    offset = clip.position / RATE
    start, end = spans[target]
    gone = 1 - _energy(after, offset + start, offset + end) / _energy(before, offset + start,
                                                                        offset + end)
    assert gone >= REMOVED, f"{word}: {gone:.2f} of its energy removed"
    for index in (target - 1, target + 1):
        if 0 <= index < len(WORDS):
            start, end = spans[index]
            kept = _energy(after, offset + start, offset + end) / _energy(
                before, offset + start, offset + end)
            assert kept >= KEPT, f"{WORDS[index]}: {kept:.2f} of its energy kept"


def test_splices_in_connected_speech_are_faded_and_do_not_click(
        connected_transcript: Transcript, connected) -> None:
    path, _ = connected
    session = _session(path)
    clip = session.tracks[0].clips[0]
    audio = load_source(path, RATE)
    words = clip_words(connected_transcript, clip, RATE)
    before = render_session(session)
    natural = float(np.max(np.abs(np.diff(before[0]))))
    reach, fade = int(0.001 * RATE), int(0.005 * RATE)
    for target in range(len(WORDS)):
        pieces = delete_words(clip, words, [target], audio, RATE)
        splices = [p.position for p in pieces[1:]]
        assert splices and all(p.fade_in == min(fade, p.length // 2) for p in pieces[1:])
        assert all(p.fade_out == min(fade, p.length // 2) for p in pieces[:-1])
        after = _edited(session, pieces)
        assert _steps_near(after[0], splices, reach) <= CLICK_STEP * natural, WORDS[target]
        # away from the fades the render is the original with the word's span left out
        cut_a, cut_b = pieces[0].offset + pieces[0].length, pieces[1].offset
        splice = clip.position + cut_a
        np.testing.assert_allclose(after[:, :splice - fade], before[:, :splice - fade],
                                   atol=1e-6)
        np.testing.assert_allclose(after[:, splice + fade:],
                                   before[:, splice + (cut_b - cut_a) + fade:], atol=1e-6)


def test_a_splice_without_fades_or_zero_crossings_would_click(
        connected_transcript: Transcript, connected) -> None:
    """The click check above can fail: cut at Whisper's own times, no fade, it does."""
    path, _ = connected
    session = _session(path)
    clip = session.tracks[0].clips[0]
    raw = EditOptions(crossfade_ms=0, search_ms=0, zero_cross_ms=0)
    pieces = delete_words(clip, clip_words(connected_transcript, clip, RATE),
                          [WORDS.index("remove")], load_source(path, RATE), RATE, raw)
    natural = float(np.max(np.abs(np.diff(render_session(session)[0]))))
    after = _edited(session, pieces)
    assert _steps_near(after[0], [pieces[1].position], int(0.001 * RATE)) > CLICK_STEP * natural


def test_the_edited_connected_speech_no_longer_says_the_word(
        transcriber: Transcriber, connected_transcript: Transcript, connected) -> None:
    path, _ = connected
    session = _session(path)
    clip = session.tracks[0].clips[0]
    pieces = delete_words(clip, clip_words(connected_transcript, clip, RATE),
                          [WORDS.index("remove")], load_source(path, RATE), RATE)
    mix = to_whisper_rate(_edited(session, pieces).mean(axis=0), RATE)
    heard = [w.word.strip(".,!?").lower()
             for w in transcriber.transcribe(mix, language="en").words]
    assert heard == [w for w in WORDS if w != "remove"]
