"""Transcripts: segments of words with times (seconds) and confidence.

One model for every use: what the engine produces, what a clip keeps in the
shared document, what a job holds and what is exported.  Times are seconds
from a start the holder names: the engine counts from the start of the audio
source, the document from the start of the clip (``dawserver.transcript_document``
converts between the two with :meth:`Transcript.within` and
:meth:`Transcript.shifted`).

The dictionary form is the JSON export format and, less ``duration``, the form
stored in the shared document::

    {"language": "en", "language_probability": 0.97, "duration": 4.8,
     "model": "whisper-base",
     "segments": [{"start": 0.0, "end": 2.4, "text": "Hello there.",
                   "words": [{"word": "Hello", "start": 0.0, "end": 0.5,
                              "probability": 0.93}, ...]}],
     "passages": [{"start": 5.0, "end": 12.0, "kind": "music"}]}

``passages`` marks stretches that were gated out (music, silence) instead of
being transcribed.  This module imports nothing heavy: the shared document
(``collab.schema``) stores and loads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

from .errors import TranscriptDataError
from .languages import joined_words

#: What a gated-out passage may be.
PASSAGE_KINDS = ("music", "silence")
#: Decimals kept for times (0.1 ms) and probabilities in the dictionary form.
TIME_DECIMALS = 4
PROBABILITY_DECIMALS = 4


@dataclass(frozen=True)
class Word:
    """One word with its time span in seconds and Whisper's probability."""

    word: str
    start: float
    end: float
    probability: float = 1.0

    @property
    def middle(self) -> float:
        """The middle of the word's span: a word belongs where its middle lies."""
        return (self.start + self.end) / 2

    def shifted(self, seconds: float) -> Word:
        """A copy with both times moved by ``seconds``."""
        return replace(self, start=self.start + seconds, end=self.end + seconds)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"word": self.word, "start": _time(self.start), "end": _time(self.end),
                "probability": round(self.probability, PROBABILITY_DECIMALS)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "word") -> Word:
        """Read the JSON form back; :class:`TranscriptDataError` names what is wrong."""
        _check_object(data, where)
        return cls(_text(data, "word", where), _number(data, "start", where),
                   _number(data, "end", where), _number(data, "probability", where, 1.0))


@dataclass(frozen=True)
class Segment:
    """A run of words Whisper decoded together (roughly a sentence)."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()

    def shifted(self, seconds: float) -> Segment:
        """A copy with every time moved by ``seconds``."""
        return replace(self, start=self.start + seconds, end=self.end + seconds,
                       words=tuple(w.shifted(seconds) for w in self.words))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"start": _time(self.start), "end": _time(self.end), "text": self.text,
                "words": [w.to_dict() for w in self.words]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "segment") -> Segment:
        """Read the JSON form back; :class:`TranscriptDataError` names what is wrong."""
        _check_object(data, where)
        words = _items(data, "words", where, Word.from_dict)
        return cls(_number(data, "start", where), _number(data, "end", where),
                   _text(data, "text", where, ""), words)


@dataclass(frozen=True)
class Passage:
    """A gated-out stretch of audio: ``kind`` is ``"music"`` or ``"silence"``."""

    start: float
    end: float
    kind: str

    def shifted(self, seconds: float) -> Passage:
        """A copy with both times moved by ``seconds``."""
        return replace(self, start=self.start + seconds, end=self.end + seconds)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"start": _time(self.start), "end": _time(self.end), "kind": self.kind}

    @classmethod
    def from_dict(cls, data: Any, where: str = "passage") -> Passage:
        """Read the JSON form back; :class:`TranscriptDataError` names what is wrong."""
        _check_object(data, where)
        kind = _text(data, "kind", where)
        if kind not in PASSAGE_KINDS:
            raise TranscriptDataError(f"{where}.kind must be one of {', '.join(PASSAGE_KINDS)}, "
                                      f"got {kind!r}")
        return cls(_number(data, "start", where), _number(data, "end", where), kind)


@dataclass(frozen=True)
class Transcript:
    """The words of one stretch of audio, and what was gated out of it.

    ``duration`` is how many seconds of audio it covers (0 when unknown) and
    ``model`` names the Whisper model that heard it ("" when unknown).
    """

    language: str
    segments: tuple[Segment, ...] = ()
    passages: tuple[Passage, ...] = ()
    language_probability: float = 1.0
    duration: float = 0.0
    model: str = ""

    @property
    def words(self) -> list[Word]:
        """Every word of every segment, in order."""
        return [w for s in self.segments for w in s.words]

    @property
    def text(self) -> str:
        """The plain text, one segment per line."""
        return "\n".join(s.text for s in self.segments)

    def shifted(self, seconds: float) -> Transcript:
        """A copy with every time moved by ``seconds`` (to count from another start)."""
        return replace(self, segments=tuple(s.shifted(seconds) for s in self.segments),
                       passages=tuple(p.shifted(seconds) for p in self.passages))

    def within(self, start: float, end: float,
               indices: Collection[int] | None = None) -> Transcript:
        """The part of this transcript that lies in ``[start, end)`` seconds, same clock.

        A word is kept when its middle lies inside, or, given ``indices`` (into
        :attr:`words`), when its index is one of them; each segment keeps its kept
        words and spans them, and a segment left with no words is dropped.  A segment
        keeping every word keeps its text; one keeping some reads as them joined as
        its language writes words (:func:`~transcription.languages.joined_words`).
        Passages are cut to the span.  ``duration`` becomes ``end - start``.
        """
        chosen = None if indices is None else frozenset(indices)
        segments, first = [], 0
        for segment in self.segments:
            words = tuple(w for n, w in enumerate(segment.words, first)
                          if (start <= w.middle < end if chosen is None else n in chosen))
            first += len(segment.words)
            if words:
                text = segment.text if words == segment.words else joined_words(
                    [w.word for w in words], self.language)
                segments.append(Segment(words[0].start, words[-1].end, text, words))
        passages = tuple(Passage(max(p.start, start), min(p.end, end), p.kind)
                         for p in self.passages if p.start < end and p.end > start)
        return replace(self, segments=tuple(segments), passages=passages,
                       duration=max(0.0, end - start))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see the module docstring)."""
        return {"language": self.language,
                "language_probability": round(self.language_probability,
                                              PROBABILITY_DECIMALS),
                "duration": _time(self.duration),
                "model": self.model,
                "segments": [s.to_dict() for s in self.segments],
                "passages": [p.to_dict() for p in self.passages]}

    @classmethod
    def from_dict(cls, data: Any) -> Transcript:
        """Read the JSON form back (unknown keys are ignored, absent ones take defaults).

        Raises :class:`TranscriptDataError` naming the first field that is
        missing or of the wrong type, e.g. ``transcript.segments[1].words[0].start``.
        """
        where = "transcript"
        _check_object(data, where)
        return cls(language=_text(data, "language", where, ""),
                   segments=_items(data, "segments", where, Segment.from_dict),
                   passages=_items(data, "passages", where, Passage.from_dict),
                   language_probability=_number(data, "language_probability", where, 1.0),
                   duration=_number(data, "duration", where, 0.0),
                   model=_text(data, "model", where, ""))


_REQUIRED: Any = object()


def _time(seconds: float) -> float:
    return round(seconds, TIME_DECIMALS)


def _check_object(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise TranscriptDataError(f"{where} must be an object (a dict), got {data!r}")


def _value(data: dict[str, Any], key: str, where: str, default: Any) -> Any:
    if key in data:
        return data[key]
    if default is _REQUIRED:
        raise TranscriptDataError(f"{where}.{key} is missing; it is required")
    return default


def _number(data: dict[str, Any], key: str, where: str, default: Any = _REQUIRED) -> float:
    value = _value(data, key, where, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TranscriptDataError(f"{where}.{key} must be a finite number, got {value!r}")
    return float(value)


def _text(data: dict[str, Any], key: str, where: str, default: Any = _REQUIRED) -> str:
    value = _value(data, key, where, default)
    if not isinstance(value, str):
        raise TranscriptDataError(f"{where}.{key} must be a string, got {value!r}")
    return value


def _items(data: dict[str, Any], key: str, where: str,
           read: Callable[[Any, str], Any]) -> tuple[Any, ...]:
    value = _value(data, key, where, ())
    if not isinstance(value, list | tuple):
        raise TranscriptDataError(f"{where}.{key} must be a list, got {value!r}")
    return tuple(read(item, f"{where}.{key}[{index}]") for index, item in enumerate(value))
