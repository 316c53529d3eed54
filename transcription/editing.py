"""Text-based editing: a new word order for a clip becomes clip edits.

The planner is pure: it takes a clip, the words that fall inside it (times in
seconds from the start of the clip's source), the source audio (mono, at the
session rate, so frames match :class:`dsp_core.session.Clip` offsets) and the
indices of the words to keep in their new order.  It returns the clips that
replace the edited one.

Cut points lie between words: at the quietest point near the gap between two
words (Whisper's word times are approximate), then moved to the nearest zero
crossing.  Each splice gets a short fade-out/fade-in pair so that no click is
heard, and with ``ripple`` the pieces are placed back to back so the gap
closes; later clips on the track move left by the removed length.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dsp_core.session import Clip

from .errors import EditError
from .transcript import Transcript, Word


@dataclass(frozen=True)
class EditOptions:
    """How cuts are placed (times in milliseconds)."""

    crossfade_ms: float = 5.0
    search_ms: float = 300.0
    zero_cross_ms: float = 2.0
    level_ms: float = 5.0
    ripple: bool = True


@dataclass(frozen=True)
class Span:
    """A run ``[start, end)`` of source frames that plays as one piece."""

    start: int
    end: int


def clip_words(transcript: Transcript, clip: Clip, sample_rate: int) -> list[Word]:
    """The words of ``transcript`` (source times) whose middle lies in ``clip``'s source span."""
    start = clip.offset / sample_rate
    return transcript.within(start, (clip.offset + clip.length) / sample_rate).words


def _levels(audio: np.ndarray, first: int, last: int, hop: int) -> tuple[np.ndarray, int]:
    """Short-time RMS of ``audio[first:last]`` in windows of ``hop`` frames."""
    piece = audio[first:last]
    count = max(1, piece.size // hop)
    frames = piece[: count * hop].reshape(count, -1) if piece.size >= hop else piece[None, :]
    return np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)), count


def quietest_point(audio: np.ndarray, nominal: int, low: int, high: int, hop: int) -> int:
    """The middle of the longest quietest run of windows in ``[low, high)``.

    A pause between words is longer than the closure of a stop consonant
    inside a word, so the longest quiet run wins; ties go to the run nearest
    ``nominal``.
    """
    low, high = max(0, low), min(audio.size, high)
    if high - low < hop:
        return int(np.clip(nominal, 0, audio.size))
    levels, count = _levels(audio, low, high, hop)
    quiet = np.concatenate([[False], levels <= levels.min() * 1.5 + 1e-5, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = edges.reshape(-1, 2)  # [first, last + 1) window indices of each quiet run
    middles = low + (runs[:, 0] + runs[:, 1]) * hop // 2
    lengths = runs[:, 1] - runs[:, 0]
    best = np.lexsort((np.abs(middles - nominal), -lengths))[0]
    return int(middles[best])


def nearest_zero_crossing(audio: np.ndarray, frame: int, reach: int) -> int:
    """The frame within ``reach`` of ``frame`` where the waveform crosses zero."""
    low, high = max(1, frame - reach), min(audio.size, frame + reach + 1)
    if high <= low:
        return int(np.clip(frame, 0, audio.size))
    window = audio[low - 1:high]
    crossings = np.nonzero((window[:-1] <= 0) != (window[1:] <= 0))[0] + low
    exact = np.nonzero(window[1:] == 0)[0] + low
    candidates = np.concatenate([crossings, exact])
    if candidates.size == 0:
        return int(frame)
    return int(candidates[np.argmin(np.abs(candidates - frame))])


def cut_points(audio: np.ndarray, sample_rate: int, words: Sequence[Word], clip: Clip,
               options: EditOptions = EditOptions()) -> list[int]:  # noqa: B008
    """``len(words) + 1`` source frames: before word 0, between each pair, after the last."""
    if not words:
        return []
    ms = sample_rate / 1000.0
    search, hop = int(options.search_ms * ms), max(1, int(options.level_ms * ms))
    reach = int(options.zero_cross_ms * ms)
    first, last = clip.offset, clip.offset + clip.length
    starts = [int(round(w.start * sample_rate)) for w in words]
    ends = [int(round(w.end * sample_rate)) for w in words]
    middles = [(s + e) // 2 for s, e in zip(starts, ends, strict=True)]
    cuts = []
    for i in range(len(words) + 1):
        if i == 0:
            nominal, low, high = starts[0], starts[0] - search, min(middles[0], starts[0] + hop)
        elif i == len(words):
            nominal, low, high = ends[-1], max(middles[-1], ends[-1] - hop), ends[-1] + search
        else:
            nominal = (ends[i - 1] + starts[i]) // 2
            low = max(middles[i - 1], nominal - search)
            high = min(middles[i], nominal + search)
        low, high = max(low, first), min(high, last)
        cut = nearest_zero_crossing(audio, quietest_point(audio, nominal, low, high, hop), reach)
        cuts.append(int(np.clip(cut, cuts[-1] if cuts else first, last)))
    return cuts


def _spans(order: Sequence[int], cuts: list[int], clip: Clip) -> list[tuple[Span, list[int]]]:
    """The pieces to play, each with the indices of the words it plays.

    A word goes with the span of its own cuts, not with where its middle lies: two
    words with the same times (Whisper gives such) share a middle, yet one may be
    kept and the other deleted.  A kept word whose span is empty joins the first piece
    (in playing order) whose source span holds its cut, else the nearest: after a
    reorder the piece played before it may come from elsewhere in the source, and its
    transcript could not hold the word's time.
    """
    first, last = clip.offset, clip.offset + clip.length
    spans: list[tuple[Span, int | None]] = [(Span(first, cuts[0]), None)] \
        if cuts[0] > first else []
    spans += [(Span(cuts[i], cuts[i + 1]), i) for i in order]
    if cuts[-1] < last:
        spans.append((Span(cuts[-1], last), None))
    merged: list[tuple[Span, list[int]]] = []
    empty: list[int] = []  # kept words whose spans are empty
    for span, word in spans:
        kept = [] if word is None else [word]
        if span.end <= span.start:
            empty.extend(kept)
        elif merged and merged[-1][0].end == span.start:
            merged[-1] = (Span(merged[-1][0].start, span.end), merged[-1][1] + kept)
        else:
            merged.append((span, kept))
    for word in empty if merged else ():
        at = cuts[word]
        _, played = min(merged, key=lambda m: max(m[0].start - at, at - m[0].end, 0))
        bisect.insort(played, word)
    return merged


def plan_text_edit(clip: Clip, words: Sequence[Word], order: Sequence[int],
                   audio: np.ndarray, sample_rate: int,
                   options: EditOptions = EditOptions(),  # noqa: B008
                   new_id: Callable[[], str] | None = None) -> list[Clip]:
    """The clips that replace ``clip`` when its words are kept in ``order``.

    ``order`` lists indices into ``words`` (each at most once); a missing index
    deletes that word, a changed sequence reorders.  Audio before the first and
    after the last word stays where it is.  Without ``options.ripple`` only
    deletions are allowed and the pieces keep their timeline positions.
    """
    return [piece for piece, _ in plan_text_edit_words(clip, words, order, audio, sample_rate,
                                                       options, new_id)]


def plan_text_edit_words(clip: Clip, words: Sequence[Word], order: Sequence[int],
                         audio: np.ndarray, sample_rate: int,
                         options: EditOptions = EditOptions(),  # noqa: B008
                         new_id: Callable[[], str] | None = None
                         ) -> list[tuple[Clip, list[int]]]:
    """:func:`plan_text_edit`, each piece with the indices of the words it plays (in order)."""
    count = len(words)
    if any(not 0 <= i < count for i in order) or len(set(order)) != len(order):
        raise EditError(f"word order {list(order)!r} must use each index 0..{count - 1} "
                        "at most once")
    if not options.ripple and list(order) != sorted(order):
        raise EditError("reordering words needs ripple editing (ripple=True)")
    if count == 0:
        return [(clip, [])]
    mono = audio if audio.ndim == 1 else audio.mean(axis=0 if audio.shape[0] <= 2 else 1)
    cuts = cut_points(mono, sample_rate, words, clip, options)
    spans = _spans(order, cuts, clip)
    fade = max(0, int(options.crossfade_ms * sample_rate / 1000.0))
    make_id = new_id or (lambda: uuid.uuid4().hex[:12])
    pieces, cursor = [], clip.position
    for index, (span, played) in enumerate(spans):
        length = span.end - span.start
        at_start, at_end = span.start == clip.offset, span.end == clip.offset + clip.length
        fade_in = clip.fade_in if at_start else fade
        fade_out = clip.fade_out if at_end else fade
        fade_in, fade_out = min(fade_in, length // 2), min(fade_out, length // 2)
        position = cursor if options.ripple else clip.position + span.start - clip.offset
        pieces.append((replace(clip, id=clip.id if index == 0 else make_id(),
                               position=position, offset=span.start, length=length,
                               fade_in=fade_in, fade_out=fade_out), played))
        cursor = position + length
    return pieces


def delete_words(clip: Clip, words: Sequence[Word], indices: Sequence[int],
                 audio: np.ndarray, sample_rate: int,
                 options: EditOptions = EditOptions(),  # noqa: B008
                 new_id: Callable[[], str] | None = None) -> list[Clip]:
    """Clips that replace ``clip`` with the words at ``indices`` removed."""
    gone = set(indices)
    if any(not 0 <= i < len(words) for i in gone):
        raise EditError(f"word indices {sorted(gone)!r} out of range 0..{len(words) - 1}")
    order = [i for i in range(len(words)) if i not in gone]
    return plan_text_edit(clip, words, order, audio, sample_rate, options, new_id)


def replace_clip(clips: Sequence[Clip], clip_id: str, pieces: Sequence[Clip], *,
                 ripple: bool = True) -> list[Clip]:
    """A track's clip list with ``clip_id`` replaced by ``pieces``.

    With ``ripple`` the clips that started after the edited clip move by the
    change in its length, so the timeline stays gap-free where it was.
    """
    old = next((c for c in clips if c.id == clip_id), None)
    if old is None:
        raise EditError(f"no clip with id {clip_id!r} on this track")
    new_end = max(p.end for p in pieces) if pieces else old.position
    shift = new_end - old.end if ripple else 0
    result = []
    for clip in clips:
        if clip.id == clip_id:
            result.extend(pieces)
        elif clip.position >= old.end and shift:
            result.append(replace(clip, position=clip.position + shift))
        else:
            result.append(clip)
    return sorted(result, key=lambda c: c.position)
