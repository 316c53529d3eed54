"""Deleting one of two words Whisper gave the same times: the other word stays, the
deleted one goes, in the transcripts of the pieces the edit leaves."""

from __future__ import annotations

import numpy as np
import pytest

from collab.schema import ProjectDocument
from dawserver.transcript_document import apply_text_edit, store_transcript
from dsp_core.session import Clip, Session, Track
from transcription.editing import EditOptions
from transcription.transcript import Segment, Transcript, Word

RATE = 16000
TONE = (0.3 * np.sin(2 * np.pi * 173 * np.arange(4 * RATE) / RATE)).astype(np.float32)[None, :]


def _words_after(words: tuple[Word, ...], order: list[int]) -> list[str]:
    document = ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[Track(
        id="dialogue", clips=[Clip(source="x.wav", position=0, length=4 * RATE, id="c")])]))
    store_transcript(document, "c", Transcript("en", (Segment(1.0, 2.5, "a b c", words),)))
    pieces = apply_text_edit(document, "c", order, TONE)
    return [w.word for piece in pieces for w in document.transcript(piece).words]


@pytest.mark.parametrize("words", [
    (Word("a", 1.0, 1.0), Word("b", 1.0, 1.0), Word("c", 2.0, 2.5)),  # zero-length, same
    (Word("a", 1.0, 1.4), Word("b", 1.0, 1.4), Word("c", 2.0, 2.5)),  # same span
], ids=["zero-length", "same-span"])
@pytest.mark.parametrize("deleted", [0, 1, 2])
def test_a_word_with_the_times_of_another_is_deleted_alone(words: tuple[Word, ...],
                                                           deleted: int) -> None:
    order = [i for i in range(len(words)) if i != deleted]
    assert _words_after(words, order) == [words[i].word for i in order]


def test_reordered_words_with_the_same_times_keep_their_words() -> None:
    words = (Word("a", 1.0, 1.4), Word("b", 1.0, 1.4), Word("c", 2.0, 2.5))
    assert sorted(_words_after(words, [2, 1, 0])) == ["a", "b", "c"]


@pytest.mark.parametrize("order", [[4, 2, 0, 1, 3], [3, 2, 4, 0, 1], [4, 3, 2, 1, 0]])
def test_a_reordered_word_with_no_audio_stays_inside_a_piece_that_holds_its_time(
        order: list[int]) -> None:
    """``b`` has no audio of its own (the times of ``a`` and ``c``, no length: its cuts
    meet): after a reorder it must land in a piece whose audio holds its time, not in
    whichever piece is played before it, where its time would lie outside the clip."""
    words = (Word("x", 0.4, 0.8), Word("a", 1.0, 1.0), Word("b", 1.0, 1.0),
             Word("c", 1.0, 1.0), Word("d", 2.0, 2.5))
    document = ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[Track(
        id="dialogue", clips=[Clip(source="x.wav", position=0, length=4 * RATE, id="c")])]))
    store_transcript(document, "c", Transcript("en", (Segment(0.4, 2.5, "x a b c d", words),)))
    pieces = apply_text_edit(document, "c", order, TONE, EditOptions(ripple=True))
    lengths = {c["id"]: c["length"] / RATE for c in document.clips_of("dialogue")}
    snap = 0.01  # a cut moves to a zero crossing: a word may start a hair before its piece
    kept = []
    for piece in pieces:
        for word in document.transcript(piece).words:
            assert -snap <= word.start <= word.end <= lengths[piece] + snap, (piece, word)
            kept.append(word.word)
    assert sorted(kept) == ["a", "b", "c", "d", "x"]
