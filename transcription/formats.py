"""Transcript export: JSON, SubRip (SRT), WebVTT and plain text."""

from __future__ import annotations

import json

from .errors import TranscriptionError
from .transcript import Transcript

FORMATS = ("json", "srt", "vtt", "txt")


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_json(transcript: Transcript) -> str:
    """The JSON form (:meth:`Transcript.to_dict`), indented, UTF-8 text."""
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


def to_srt(transcript: Transcript) -> str:
    """SubRip subtitles: one numbered cue per segment."""
    cues = [
        f"{index}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text}\n"
        for index, s in enumerate(transcript.segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT subtitles: one cue per segment."""
    cues = [f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text}\n"
            for s in transcript.segments]
    return "\n".join(["WEBVTT\n", *cues])


def to_txt(transcript: Transcript) -> str:
    """Plain text, one segment per line."""
    return "".join(f"{s.text}\n" for s in transcript.segments)


_WRITERS = {"json": to_json, "srt": to_srt, "vtt": to_vtt, "txt": to_txt}


def export(transcript: Transcript, fmt: str) -> str:
    """Render ``transcript`` in ``fmt`` (one of :data:`FORMATS`)."""
    try:
        writer = _WRITERS[fmt.lower()]
    except KeyError:
        raise TranscriptionError(
            f"unknown transcript format {fmt!r}: use one of {', '.join(FORMATS)}"
        ) from None
    return writer(transcript)
