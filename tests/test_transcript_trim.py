"""A clip's stored transcript follows a trim of the clip's start (its ``offset``)."""

from __future__ import annotations

import pytest
from pycrdt import Array, Map
from test_page_cut import applied, js_plan, project, source_audio

from collab.schema import ProjectDocument, SchemaError
from dawserver.transcript_document import in_source_time, source_transcript
from dsp_core.session import Clip, Session, Track
from transcription.transcript import Passage, Segment, Transcript, Word

RATE = 48000
TIMES = [0.5, 1.5, 2.5, 3.5]  # word starts, seconds from the clip's (and source's) start
NAMES = ["one", "two", "three", "four"]


def _document() -> ProjectDocument:
    clip = Clip(source="x.wav", position=RATE, offset=0, length=4 * RATE, id="c")
    return ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[
        Track(id="t", clips=[clip])]))


def _transcript() -> Transcript:
    words = tuple(Word(n, t, t + 0.4) for n, t in zip(NAMES, TIMES, strict=True))
    return Transcript("en", segments=(Segment(0.5, 3.9, " ".join(NAMES), words),),
                      passages=(Passage(0.0, 0.4, "silence"),))


def _trimmed(document: ProjectDocument) -> None:
    assert [w.word for w in document.transcript("c").words] == NAMES[1:]
    assert [w.start for w in document.transcript("c").words] == pytest.approx([0.5, 1.5, 2.5])
    assert document.transcript("c").passages == ()
    assert document.transcript("c").duration == 3.0
    assert [w.start for w in source_transcript(document, "c").words] == pytest.approx(TIMES[1:])
    clip = document.to_session().tracks[0].clips[0]
    assert [w.start for w in in_source_time(document.transcript("c"), clip, RATE).words] == \
        pytest.approx(TIMES[1:])


def test_a_trim_of_the_start_by_update_clip_keeps_the_words_in_place() -> None:
    document = _document()
    document.set_transcript("c", _transcript())
    document.update_clip("c", position=2 * RATE, offset=RATE, length=3 * RATE)
    _trimmed(document)


def test_a_trim_written_over_yjs_keeps_the_words_in_place() -> None:
    document = _document()
    document.set_transcript("c", _transcript())
    with document.transaction():
        clip = document._roots["clips"]["c"]  # noqa: SLF001 (a peer's raw write)
        clip["offset"] = RATE
        clip["length"] = 3 * RATE
    _trimmed(document)


def test_a_start_moved_earlier_moves_the_words_later() -> None:
    document = _document()
    document.update_clip("c", offset=RATE, length=3 * RATE)
    document.set_transcript("c", Transcript("en", segments=(Segment(
        0.5, 0.9, "one", (Word("one", 0.5, 0.9),)),)))
    document.update_clip("c", offset=RATE // 2, length=4 * RATE)
    assert [w.start for w in document.transcript("c").words] == pytest.approx([1.0])


def test_a_transcript_written_before_offsets_reads_as_at_the_offset_now() -> None:
    document = _document()
    document.update_clip("c", offset=RATE, length=3 * RATE)
    data = _transcript().to_dict()
    document._roots["transcripts"]["c"] = Map({  # noqa: SLF001 (an older document)
        "clip": "c", "language": "en", "language_probability": 1.0, "model": "",
        "segments": Array(data["segments"]), "passages": Array(data["passages"])})
    assert [w.start for w in document.transcript("c").words] == pytest.approx(TIMES)
    assert [w.start for w in source_transcript(document, "c").words] == pytest.approx(
        [t + 1.0 for t in TIMES])


def test_an_offset_that_is_no_number_is_malformed() -> None:
    document = _document()
    document.set_transcript("c", _transcript())
    document._roots["transcripts"]["c"]["offset"] = "soon"  # noqa: SLF001
    with pytest.raises(SchemaError, match="malformed"):
        document.transcript("c")


def test_the_page_cut_gives_each_piece_its_own_offset() -> None:
    """web/src/cut.js writes each piece's transcript in the piece's clip time: with the
    piece's offset, or a reader would shift its words by the cut again."""
    audio = source_audio()
    document = project(audio)
    page = applied(document, js_plan(document, 1, 1))
    pieces = [c for c in page["clips"].values() if c["id"] != "after"]
    assert len(pieces) == 2
    for clip in pieces:
        assert page["transcripts"][clip["id"]]["offset"] == clip["offset"]
