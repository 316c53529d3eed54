"""Transcripts stored in the shared document; text edits as document writes, undoable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pycrdt import Doc, Map, UndoManager
from transcription_helpers import WORDS, spoken_words

from collab.schema import ProjectDocument
from dawserver.transcript_document import (
    apply_text_edit,
    delete_word_range,
    in_clip_time,
    in_source_time,
    source_transcript,
    store_transcript,
)
from dsp_core.audio_io import load_source
from dsp_core.engine import render_session
from dsp_core.session import Clip, Session, Track
from transcription.engine import Transcriber
from transcription.errors import EditError
from transcription.transcript import Passage, Segment, Transcript, Word

RATE = 48000
LEAD = 2400  # the clip starts 50 ms into its source: clip times differ from source times


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    return spoken_words(tmp_path_factory.mktemp("doc-words"))


@pytest.fixture(scope="module")
def result(transcriber: Transcriber, spoken) -> Transcript:
    return transcriber.transcribe(spoken[0], language="en")


def _document(path: Path) -> ProjectDocument:
    frames = load_source(path, RATE).shape[1]
    clips = [Clip(source=str(path), position=RATE, offset=LEAD, length=frames - LEAD,
                  id="speech"),
             Clip(source=str(path), position=RATE + frames + RATE, length=RATE, id="after")]
    session = Session(sample_rate=RATE, tracks=[Track(id="dialogue", clips=clips)])
    return ProjectDocument.from_session(session)


def _energy(audio: np.ndarray, start: int, end: int) -> float:
    return float(np.sum(np.square(audio[:, start:end], dtype=np.float64)))


def test_a_stored_transcript_uses_clip_times(result: Transcript, spoken) -> None:
    document = _document(spoken[0])
    stored = store_transcript(document, "speech", result)
    words = stored.words
    assert [w.word.strip(".,").lower() for w in words] == WORDS
    assert words[0].start == pytest.approx(result.words[0].start - LEAD / RATE, abs=1e-3)
    again = ProjectDocument(Doc())
    again.doc.apply_update(document.doc.get_update())
    assert again.transcript("speech").model == result.model == "whisper-base"
    assert again.transcript("speech").language_probability == pytest.approx(
        result.language_probability, abs=1e-4)
    assert [w.start for w in source_transcript(again, "speech").words] == pytest.approx(
        [w.start for w in result.words], abs=1e-3)


def test_passages_are_stored_in_clip_times_cut_to_the_clip() -> None:
    clip = Clip(source="x.wav", position=0, offset=RATE, length=4 * RATE, id="c")  # 1 s..5 s
    result = Transcript("en", passages=(Passage(0.0, 2.0, "music"), Passage(3.0, 3.5, "silence"),
                                        Passage(4.5, 9.0, "music"), Passage(6.0, 7.0, "music")))
    document = ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[
        Track(id="t", clips=[clip])]))
    document.set_transcript("c", in_clip_time(result, clip, RATE))
    stored = document.transcript("c")
    assert [(p.start, p.end, p.kind) for p in stored.passages] == [
        (0.0, 1.0, "music"), (2.0, 2.5, "silence"), (3.5, 4.0, "music")]
    assert stored.duration == 4.0
    back = in_source_time(stored, clip, RATE)
    assert [(p.start, p.end) for p in back.passages] == [(1.0, 2.0), (3.0, 3.5), (4.5, 5.0)]


def test_deleting_a_word_in_the_document_removes_it_from_the_render(result: Transcript,
                                                                    spoken) -> None:
    path, spans = spoken
    document = _document(path)
    store_transcript(document, "speech", result)
    before = render_session(document.to_session())
    target = WORDS.index("purple")
    pieces = delete_word_range(document, "speech", target, target, load_source(path, RATE))
    assert len(pieces) == 2 and pieces[0] == "speech"
    session = document.to_session()
    session.validate()
    after = render_session(session)
    start = RATE + int(spans[target][0] * RATE) - LEAD
    end = RATE + int(spans[target][1] * RATE) - LEAD
    removed = before.shape[1] - after.shape[1]
    assert removed >= end - start
    # the word is gone: where it was, the render now holds the pause and the next word,
    # which equals the original shifted left by the removed length
    np.testing.assert_allclose(after[:, :start - 240], before[:, :start - 240], atol=1e-6)
    tail = RATE + int(spans[target + 1][0] * RATE) - LEAD
    np.testing.assert_allclose(after[:, tail - removed:], before[:, tail:], atol=1e-6)
    between = _energy(after, start - 240, tail - removed)
    assert between < 1e-6 * _energy(before, start, end), "the deleted word still plays"
    texts = [document.transcript(p) for p in pieces]
    assert [w.word.strip(".,").lower() for t in texts for w in t.words] \
        == [w for w in WORDS if w != "purple"]
    assert document.clip("after")["position"] == RATE + load_source(path, RATE).shape[1] \
        + RATE - removed


def test_undo_restores_clips_transcript_and_sound(result: Transcript, spoken) -> None:
    path, _ = spoken
    document = _document(path)
    store_transcript(document, "speech", result)
    before_json = document.to_json()
    before = render_session(document.to_session())
    undo = UndoManager(scopes=[document.doc.get("clips", type=Map),
                               document.doc.get("transcripts", type=Map)],
                       capture_timeout_millis=0)
    undo.include_origin("server")  # the origin of every edit made through Room.edit
    with document.transaction(origin="server"):
        apply_text_edit(document, "speech", [0, 1, 2, 4, 3, 5], load_source(path, RATE))
    assert len(undo.undo_stack) == 1  # one edit, one undo step
    assert document.to_json() != before_json
    assert undo.can_undo()
    undo.undo()
    assert not undo.can_undo()
    assert document.to_json()["clips"] == before_json["clips"]
    assert document.to_json()["transcripts"] == before_json["transcripts"]
    np.testing.assert_array_equal(render_session(document.to_session()), before)


def test_editing_a_clip_without_transcript_is_refused(spoken) -> None:
    document = _document(spoken[0])
    with pytest.raises(EditError, match="no transcript"):
        apply_text_edit(document, "speech", [0], np.zeros((1, 10), np.float32))
    with pytest.raises(EditError, match="no clip"):
        source_transcript(document, "missing")


def test_a_word_range_outside_the_transcript_is_refused(result: Transcript, spoken) -> None:
    document = _document(spoken[0])
    store_transcript(document, "speech", result)
    with pytest.raises(EditError, match="outside"):
        delete_word_range(document, "speech", 3, 99, np.zeros((1, 10), np.float32))


def test_deleting_every_word_removes_the_clip_and_its_transcript() -> None:
    # the words fill the clip and its edges fall on zero crossings, so no piece is left:
    # the clip used to stay, transcript and all, while the clip after it rippled over it
    rate = 8000
    audio = (0.5 * np.sin(2 * np.pi * 100 * np.arange(4 * rate) / rate)).astype(np.float32)
    speech = Clip(source="x.wav", position=0, offset=rate, length=2 * rate, id="speech")
    after = Clip(source="x.wav", position=3 * rate, length=rate, id="after")
    document = ProjectDocument.from_session(
        Session(sample_rate=rate, tracks=[Track(id="t", clips=[speech, after])]))
    words = (Word("hello", 0.99, 2.0), Word("world", 2.0, 3.01))  # a little past the edges
    store_transcript(document, "speech", Transcript("en", segments=(
        Segment(1.0, 3.0, "hello world", words),)))
    assert apply_text_edit(document, "speech", [], audio[np.newaxis]) == []
    [track] = document.to_session().tracks
    assert [(c.id, c.position) for c in track.clips] == [("after", rate)]
    assert document.transcript("speech") is None
