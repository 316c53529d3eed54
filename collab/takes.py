"""Placing a recorded take on a track: the take wins where it overlaps older clips.

Clips on one track may not overlap (the engine refuses such a session), so a
take recorded over existing material trims, splits or removes the clips under
it, as a tape punch-in would.  Everything happens in one document transaction
(one update on the wire).

The part of a clip after the take keeps all its keys (gain, time keys, even a value a
peer broke) and reads its audio, or its stretched render, from where the whole clip
did at that frame (:func:`offset_at`).

A take during which the playhead jumped (a seek) or the loop changed is placed in
segments (:class:`TakeSegment`), each where its own audio was recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collab.schema import ProjectDocument
from collab.time_fields import clip_time_fields
from dsp_core.session import Clip


def _fit_fades(length: int, fade_in: int, fade_out: int) -> tuple[int, int]:
    fade_in = min(fade_in, length)
    return fade_in, min(fade_out, length - fade_in)


def offset_at(document: ProjectDocument, clip: dict[str, Any], frame: int) -> int:
    """The ``offset`` a part of ``clip`` (its document data) starting at timeline
    ``frame`` needs to play what the whole clip plays there: a stretched clip reads its
    render from ``offset × stretch``, one following the tempo map plays one source beat
    per beat of it from its ``position``; warp markers place the source themselves."""
    offset, moved = int(clip.get("offset", 0)), frame - int(clip["position"])
    timing = clip_time_fields(clip)  # bad time keys play as the defaults
    if timing.get("warp"):
        return offset + moved
    if timing.get("follow_tempo") and timing.get("source_bpm"):
        tempo, rate = document.tempo_map(), document.sample_rate
        beats = (tempo.frame_to_beat(frame, rate)
                 - tempo.frame_to_beat(int(clip["position"]), rate))
        return offset + round(beats * 60.0 * rate / timing["source_bpm"])
    return offset + round(moved / timing.get("stretch", 1.0))


Loop = tuple[int, int]
Pass = tuple[int, int, int]


@dataclass(frozen=True)
class TakeSegment:
    """A part of a take recorded while the playhead ran on without a jump: it begins at
    frame ``offset`` of the take's audio, which belongs at ``position`` on the timeline,
    and was recorded while the transport looped over ``loop`` (None: no loop)."""

    offset: int
    position: int
    loop: Loop | None = None


def loop_passes(position: int, length: int, loop: Loop | None, *, ended: bool = True
                ) -> list[Pass]:
    """``(position, offset, length)`` of each pass of a take of ``length`` frames whose
    first frame played at ``position`` while the transport looped over ``loop`` (start,
    end; None: no loop).

    The playhead jumps from the loop's end back to its start, so the audio recorded after
    each jump belongs at the start again: the first pass runs to the loop's end, each
    later one from the loop's start for at most the loop's length. A take starting at or
    after the loop's end never loops, and is one pass. A last pass shorter than a tenth
    of the loop (recording stopped just after a jump) is left out rather than cutting
    that much of the pass before it, unless ``ended`` is False (the take went on in
    another segment: the pass was cut by a seek, not by stopping).
    """
    if loop is None or loop[1] <= loop[0] or position >= loop[1]:
        return [(position, 0, length)]
    passes: list[tuple[int, int, int]] = []
    offset, at = 0, position
    while offset < length:
        count = min(length - offset, loop[1] - at)
        passes.append((at, offset, count))
        offset, at = offset + count, loop[0]
    if ended and len(passes) > 1 and passes[-1][2] * 10 < loop[1] - loop[0]:
        passes.pop()
    return passes


def segment_passes(segments: Sequence[TakeSegment], length: int) -> list[Pass]:
    """:func:`loop_passes` of each of ``segments`` (by ``offset``, the first at 0) of a
    take of ``length`` frames, in recording order, with offsets into the whole take.

    A segment runs to the next one's offset (or the take's end); an empty one is left
    out. Passes that follow on from each other on the timeline and in the audio (a loop
    change that moved no audio) are joined into one.
    """
    passes: list[Pass] = []
    ends = [segment.offset for segment in segments[1:]] + [length]
    for index, (segment, end) in enumerate(zip(segments, ends, strict=True)):
        end = min(end, length)
        if end <= segment.offset:
            continue
        ended = index == len(segments) - 1
        for at, offset, count in loop_passes(segment.position, end - segment.offset,
                                             segment.loop, ended=ended):
            passes.append((at, segment.offset + offset, count))
    return _joined(passes)


def _joined(passes: list[Pass]) -> list[Pass]:
    """``passes`` with each one that continues the one before it merged into it."""
    joined: list[Pass] = []
    for at, offset, count in passes:
        if joined:
            last_at, last_offset, last_count = joined[-1]
            if last_at + last_count == at and last_offset + last_count == offset:
                joined[-1] = (last_at, last_offset, last_count + count)
                continue
        joined.append((at, offset, count))
    return joined


def place_passes(document: ProjectDocument, track_id: str, source: str,
                 passes: list[Pass]) -> list[str]:
    """:func:`place_take` for each of ``passes`` (:func:`loop_passes`,
    :func:`segment_passes`) in order, the
    later winning where they overlap; the new clips' ids."""
    with document.transaction():
        return [place_take(document, track_id, source, at, count, offset=offset)
                for at, offset, count in passes]


def place_take(document: ProjectDocument, track_id: str, source: str, position: int,
               length: int, *, offset: int = 0) -> str:
    """Add a clip of ``source`` (from its frame ``offset``) at ``position`` on
    ``track_id``; returns the new clip's id.

    Older clips under ``[position, position + length)`` are cut away: a clip inside
    it is removed, one across its start is trimmed, one across its end starts later,
    and one across both is split in two.
    """
    start, end, source_offset = int(position), int(position) + int(length), int(offset)
    with document.transaction():
        for clip in document.clips_of(track_id):
            c_start = int(clip["position"])
            c_end = c_start + int(clip["length"])
            if c_end <= start or c_start >= end:
                continue
            offset = int(clip.get("offset", 0))
            fade_in, fade_out = int(clip.get("fade_in", 0)), int(clip.get("fade_out", 0))
            if c_start >= start and c_end <= end:
                document.remove_clip(clip["id"])
                continue
            if c_end > end:  # the part after the take survives
                tail_in, tail_out = _fit_fades(c_end - end, 0, fade_out)
                tail = {"position": end, "length": c_end - end, "fade_in": tail_in,
                        "fade_out": tail_out, "offset": offset_at(document, clip, end)}
                if c_start < start:
                    document.copy_clip(clip["id"], **tail)
                else:
                    document.update_clip(clip["id"], **tail)
                    continue
            head = start - c_start  # the part before the take survives
            head_in, head_out = _fit_fades(head, fade_in, 0)  # its old end is cut away
            document.update_clip(clip["id"], length=head, fade_in=head_in, fade_out=head_out)
        return document.add_clip(track_id, Clip(source, start, end - start, source_offset))
