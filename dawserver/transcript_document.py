"""Transcripts in the shared document, and text edits applied as document writes.

The document keeps one transcript per clip with times in seconds from the
clip's start (``collab.schema.Transcript``); the engine and the planner work
in seconds from the start of the clip's source.  These helpers convert
between the two, store transcription results and turn a new word order into
clip edits in one transaction, so every client hears the edit and one undo
step (``pycrdt.UndoManager`` or a client's ``Y.UndoManager``) reverts it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from collab.schema import (
    ProjectDocument,
    TranscriptPassage,
    TranscriptSegment,
    TranscriptWord,
    new_id,
)
from collab.schema import Transcript as DocumentTranscript
from dsp_core.session import Clip, Session, Track
from transcription.editing import EditOptions, plan_text_edit, replace_clip
from transcription.errors import EditError
from transcription.transcript import Passage, Segment, Transcript, Word

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipRef:
    """A clip and its track in a session."""

    session: Session
    track: Track
    clip: Clip


def find_clip(document: ProjectDocument, clip_id: str) -> ClipRef:
    """The clip ``clip_id`` with its track, or :class:`EditError` naming it."""
    session = document.to_session()
    for track in session.tracks:
        for clip in track.clips:
            if clip.id == clip_id:
                return ClipRef(session, track, clip)
    raise EditError(f"no clip with id {clip_id!r} in this project")


def clip_transcript(result: Transcript, clip: Clip, sample_rate: int,
                    model: str = "") -> DocumentTranscript:
    """The document form of ``result`` (source times) for ``clip``: clip times, its words only.

    Gated-out passages are cut to the clip's span.
    """
    shift = clip.offset / sample_rate
    first, last = shift, (clip.offset + clip.length) / sample_rate
    segments = []
    for segment in result.segments:
        words = [TranscriptWord(w.word, round(w.start - shift, 4), round(w.end - shift, 4),
                                round(w.probability, 4))
                 for w in segment.words if first <= (w.start + w.end) / 2 < last]
        if words:
            segments.append(TranscriptSegment(
                words[0].start, words[-1].end, " ".join(w.word for w in words), words))
    passages = [TranscriptPassage(round(max(p.start, first) - shift, 4),
                                  round(min(p.end, last) - shift, 4), p.kind)
                for p in result.passages if p.start < last and p.end > first]
    return DocumentTranscript(clip.id, result.language, segments, model, passages)


def source_transcript(stored: DocumentTranscript, clip: Clip, sample_rate: int) -> Transcript:
    """A document transcript of ``clip`` back in source times."""
    return as_transcript(stored, shift=clip.offset / sample_rate)


def as_transcript(stored: DocumentTranscript, shift: float = 0.0) -> Transcript:
    """A document transcript as a :class:`Transcript` (clip times, plus ``shift`` seconds)."""
    segments = tuple(
        Segment(s.start + shift, s.end + shift, s.text,
                tuple(Word(w.word, w.start + shift, w.end + shift, w.probability)
                      for w in s.words))
        for s in stored.segments)
    passages = tuple(Passage(p.start + shift, p.end + shift, p.kind) for p in stored.passages)
    return Transcript(language=stored.language, segments=segments, passages=passages)


def store_transcript(document: ProjectDocument, clip_id: str, result: Transcript,
                     model: str = "") -> DocumentTranscript:
    """Write ``result`` (times from the source's start) as the transcript of ``clip_id``."""
    ref = find_clip(document, clip_id)
    stored = clip_transcript(result, ref.clip, ref.session.sample_rate, model)
    document.set_transcript(stored)
    return stored


def clip_words(document: ProjectDocument, clip_id: str) -> list[Word]:
    """The words of a clip's stored transcript in source times (what edits index)."""
    ref = find_clip(document, clip_id)
    stored = document.transcript(clip_id)
    if stored is None:
        raise EditError(f"clip {clip_id!r} has no transcript yet: transcribe it first")
    return source_transcript(stored, ref.clip, ref.session.sample_rate).words


def apply_text_edit(document: ProjectDocument, clip_id: str, order: Sequence[int],
                    audio: np.ndarray, options: EditOptions | None = None) -> list[str]:
    """Keep the clip's words in ``order`` (indices into its transcript's words).

    ``audio`` is the clip's source at the session rate (``dsp_core.audio_io.
    load_source``).  The clip is split into pieces that play the kept words,
    later clips on the track ripple, and each piece gets the transcript of its
    own words — all in one transaction.  Returns the ids of the pieces.
    """
    options = options or EditOptions()
    ref = find_clip(document, clip_id)
    stored = document.transcript(clip_id)
    if stored is None:
        raise EditError(f"clip {clip_id!r} has no transcript yet: transcribe it first")
    rate = ref.session.sample_rate
    source = source_transcript(stored, ref.clip, rate)
    pieces = plan_text_edit(ref.clip, source.words, order, audio, rate, options,
                            new_id=lambda: new_id("clip"))
    clips = replace_clip(ref.track.clips, clip_id, pieces, ripple=options.ripple)
    piece_ids = {p.id for p in pieces}
    before = {c.id: c for c in ref.track.clips}
    with document.transaction():
        for clip in clips:
            if clip.id in piece_ids and clip.id not in before:
                document.add_clip(ref.track.id, clip)
            elif clip != before.get(clip.id):
                document.update_clip(clip.id, position=clip.position, offset=clip.offset,
                                     length=clip.length, fade_in=clip.fade_in,
                                     fade_out=clip.fade_out)
        for piece in pieces:
            document.set_transcript(clip_transcript(source, piece, rate, stored.model))
    log.info("text edit of clip %s: %d words kept in %d pieces", clip_id, len(order),
             len(pieces))
    return [p.id for p in pieces]


def delete_word_range(document: ProjectDocument, clip_id: str, first: int, last: int,
                      audio: np.ndarray, options: EditOptions | None = None) -> list[str]:
    """Delete words ``first..last`` (inclusive) of a clip's transcript."""
    count = len(clip_words(document, clip_id))
    if not 0 <= first <= last < count:
        raise EditError(f"word range {first}..{last} is outside 0..{count - 1}")
    order = [i for i in range(count) if not first <= i <= last]
    return apply_text_edit(document, clip_id, order, audio, options)
