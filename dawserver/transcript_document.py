"""Transcripts in the shared document, and text edits applied as document writes.

A transcript (:class:`transcription.transcript.Transcript`) counts its times
from a start: the engine and the edit planner count from the start of the
clip's source, the document from the start of the clip.  :func:`in_clip_time`
and :func:`in_source_time` are the one place that converts between the two.
These helpers store transcription results and turn a new word order into clip
edits in one transaction, so every client hears the edit and one undo step
(``pycrdt.UndoManager`` or a client's ``Y.UndoManager``) reverts it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from collab.schema import ProjectDocument, new_id
from dsp_core.session import Clip, Session, Track
from dsp_core.sources import asset_id_of
from transcription.editing import EditOptions, plan_text_edit_words, replace_clip
from transcription.errors import EditError
from transcription.transcript import Transcript

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


def in_clip_time(source: Transcript, clip: Clip, sample_rate: int,
                 indices: Sequence[int] | None = None) -> Transcript:
    """``source`` (times from the source's start) as ``clip``'s transcript.

    Only the words whose middle lies in the clip stay (or, given ``indices``, the
    words of ``source`` at them), and passages are cut to it; times count from the
    clip's start.
    """
    start = clip.offset / sample_rate
    end = (clip.offset + clip.length) / sample_rate
    return source.within(start, end, indices).shifted(-start)


def in_source_time(stored: Transcript, clip: Clip, sample_rate: int) -> Transcript:
    """``clip``'s transcript (times from the clip's start) with times from its source's start."""
    return stored.shifted(clip.offset / sample_rate)


def store_transcript(document: ProjectDocument, clip_id: str, result: Transcript, *,
                     asset_id: str | None = None) -> Transcript:
    """Write ``result`` (times from the source's start) as the transcript of ``clip_id``.

    ``asset_id``: the asset whose audio ``result`` heard; :class:`EditError` when the
    clip plays another one now (its audio was replaced while the job ran), so no clip
    keeps words it does not play.  Returns what was stored (clip times).
    """
    ref = find_clip(document, clip_id)
    if asset_id is not None and asset_id_of(ref.clip.source) != asset_id:
        raise EditError(f"clip {clip_id!r} no longer plays asset {asset_id} (its audio was "
                        "replaced while it was transcribed): transcribe it again")
    stored = in_clip_time(result, ref.clip, ref.session.sample_rate)
    document.set_transcript(clip_id, stored)
    return stored


def source_transcript(document: ProjectDocument, clip_id: str) -> Transcript:
    """A clip's stored transcript in source times (what the edit planner works on)."""
    ref = find_clip(document, clip_id)
    stored = document.transcript(clip_id)
    if stored is None:
        raise EditError(f"clip {clip_id!r} has no transcript yet: transcribe it first")
    return in_source_time(stored, ref.clip, ref.session.sample_rate)


def apply_text_edit(document: ProjectDocument, clip_id: str, order: Sequence[int],
                    audio: np.ndarray, options: EditOptions | None = None) -> list[str]:
    """Keep the clip's words in ``order`` (indices into its transcript's words).

    ``audio`` is the clip's source at the session rate (``dsp_core.audio_io.
    load_source``).  The clip is split into pieces that play the kept words,
    later clips on the track ripple, and each piece gets the transcript of its
    own words — all in one transaction.  Returns the ids of the pieces.
    """
    options = options or EditOptions()
    source = source_transcript(document, clip_id)
    ref = find_clip(document, clip_id)
    _refuse_retimed(ref.clip)
    rate = ref.session.sample_rate
    planned = plan_text_edit_words(ref.clip, source.words, order, audio, rate, options,
                                   new_id=lambda: new_id("clip"))
    pieces = [piece for piece, _ in planned]
    clips = replace_clip(ref.track.clips, clip_id, pieces, ripple=options.ripple)
    piece_ids = {p.id for p in pieces}
    before = {c.id: c for c in ref.track.clips}
    with document.transaction():
        if clip_id not in {c.id for c in clips}:  # no word left: the clip goes, and its
            document.remove_clip(clip_id)          # transcript with it, as later clips close up
        for clip in clips:
            if clip.id in piece_ids and clip.id not in before:
                document.add_clip(ref.track.id, clip)
            elif clip != before.get(clip.id):
                document.update_clip(clip.id, position=clip.position, offset=clip.offset,
                                     length=clip.length, fade_in=clip.fade_in,
                                     fade_out=clip.fade_out)
        for piece, played in planned:  # by index: words with the same times may part
            document.set_transcript(piece.id, in_clip_time(source, piece, rate, played))
    log.info("text edit of clip %s: %d words kept in %d pieces", clip_id, len(order),
             len(pieces))
    return [p.id for p in pieces]


def _refuse_retimed(clip: Clip) -> None:
    """:class:`EditError` for a clip whose source plays at another speed: the planner cuts
    the source by its frames, which a stretch, warp markers or following the tempo put
    elsewhere on the timeline (a warped clip even ignores its offset), so the cut would
    play the wrong audio."""
    if clip.follow_tempo or clip.warp or clip.stretch != 1.0:
        raise EditError(
            f"clip {clip.id!r} plays its source stretched (stretch, warp markers or "
            "following the tempo): its words are not where its source has them, so a text "
            "edit would cut the wrong audio; take the stretch off the clip first, or bounce "
            "it to new audio and transcribe that")


def delete_word_range(document: ProjectDocument, clip_id: str, first: int, last: int,
                      audio: np.ndarray, options: EditOptions | None = None) -> list[str]:
    """Delete words ``first..last`` (inclusive) of a clip's transcript."""
    count = len(source_transcript(document, clip_id).words)
    if not 0 <= first <= last < count:
        raise EditError(f"word range {first}..{last} is outside 0..{count - 1}")
    order = [i for i in range(count) if not first <= i <= last]
    return apply_text_edit(document, clip_id, order, audio, options)
