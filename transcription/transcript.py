"""Transcript data: segments of words with times (seconds) and confidence.

The dictionary form is the JSON export format and the form stored in the
shared document::

    {"language": "en", "language_probability": 0.97, "duration": 4.8,
     "segments": [{"start": 0.0, "end": 2.4, "text": "Hello there.",
                   "words": [{"word": "Hello", "start": 0.0, "end": 0.5,
                              "probability": 0.93}, ...]}],
     "passages": [{"start": 5.0, "end": 12.0, "kind": "music"}]}

``passages`` marks stretches that were gated out (music, silence) instead of
being transcribed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    """One word with its time span in seconds and Whisper's probability."""

    word: str
    start: float
    end: float
    probability: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"word": self.word, "start": round(self.start, 3), "end": round(self.end, 3),
                "probability": round(self.probability, 4)}


@dataclass(frozen=True)
class Segment:
    """A run of words Whisper decoded together (roughly a sentence)."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text,
                "words": [w.to_dict() for w in self.words]}


@dataclass(frozen=True)
class Passage:
    """A gated-out stretch of audio: ``kind`` is ``"music"`` or ``"silence"``."""

    start: float
    end: float
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"start": round(self.start, 3), "end": round(self.end, 3), "kind": self.kind}


@dataclass(frozen=True)
class Transcript:
    """The result of transcribing one audio source."""

    language: str
    segments: tuple[Segment, ...] = ()
    passages: tuple[Passage, ...] = ()
    language_probability: float = 1.0
    duration: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def words(self) -> list[Word]:
        """Every word of every segment, in order."""
        return [w for s in self.segments for w in s.words]

    @property
    def text(self) -> str:
        """The plain text, one segment per line."""
        return "\n".join(s.text for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see the module docstring)."""
        return {"language": self.language,
                "language_probability": round(self.language_probability, 4),
                "duration": round(self.duration, 3),
                "segments": [s.to_dict() for s in self.segments],
                "passages": [p.to_dict() for p in self.passages]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        """Read the JSON form back (unknown keys are ignored)."""
        segments = tuple(
            Segment(float(s["start"]), float(s["end"]), str(s["text"]),
                    tuple(Word(str(w["word"]), float(w["start"]), float(w["end"]),
                               float(w.get("probability", 1.0))) for w in s.get("words", ())))
            for s in data.get("segments", ())
        )
        passages = tuple(Passage(float(p["start"]), float(p["end"]), str(p["kind"]))
                         for p in data.get("passages", ()))
        return cls(language=str(data.get("language", "")), segments=segments,
                   passages=passages,
                   language_probability=float(data.get("language_probability", 1.0)),
                   duration=float(data.get("duration", 0.0)))
