"""Transcript exports: JSON (round trip), SRT, WebVTT and plain text."""

from __future__ import annotations

import json

import pytest

from transcription.errors import TranscriptionError
from transcription.formats import export, to_json, to_srt, to_txt, to_vtt
from transcription.transcript import Passage, Segment, Transcript, Word

TRANSCRIPT = Transcript(
    language="de", language_probability=0.91, duration=3725.5,
    segments=(
        Segment(0.0, 2.5, "Guten Morgen.", (Word("Guten", 0.0, 0.9, 0.8),
                                            Word("Morgen.", 1.0, 2.5, 0.95))),
        Segment(3723.25, 3725.125, "Tschüss!", (Word("Tschüss!", 3723.25, 3725.125, 0.5),)),
    ),
    passages=(Passage(2.5, 3723.25, "music"),),
)


def test_json_has_the_documented_shape_and_round_trips() -> None:
    data = json.loads(to_json(TRANSCRIPT))
    assert data["language"] == "de"
    assert data["segments"][0] == {
        "start": 0.0, "end": 2.5, "text": "Guten Morgen.",
        "words": [{"word": "Guten", "start": 0.0, "end": 0.9, "probability": 0.8},
                  {"word": "Morgen.", "start": 1.0, "end": 2.5, "probability": 0.95}]}
    assert data["passages"] == [{"start": 2.5, "end": 3723.25, "kind": "music"}]
    assert Transcript.from_dict(data) == TRANSCRIPT
    assert "Tschüss" in to_json(TRANSCRIPT)  # UTF-8, not escaped


def test_srt_numbers_cues_with_comma_milliseconds() -> None:
    assert to_srt(TRANSCRIPT) == (
        "1\n00:00:00,000 --> 00:00:02,500\nGuten Morgen.\n\n"
        "2\n01:02:03,250 --> 01:02:05,125\nTschüss!\n")


def test_vtt_has_a_header_and_dot_milliseconds() -> None:
    assert to_vtt(TRANSCRIPT) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nGuten Morgen.\n\n"
        "01:02:03.250 --> 01:02:05.125\nTschüss!\n")


def test_text_is_one_line_per_segment() -> None:
    assert to_txt(TRANSCRIPT) == "Guten Morgen.\nTschüss!\n"
    assert TRANSCRIPT.text == "Guten Morgen.\nTschüss!"


def test_an_empty_transcript_exports_cleanly() -> None:
    empty = Transcript(language="en")
    assert to_srt(empty) == "" and to_vtt(empty) == "WEBVTT\n" and to_txt(empty) == ""
    assert json.loads(export(empty, "JSON"))["segments"] == []


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(TranscriptionError, match="json, srt, vtt, txt"):
        export(TRANSCRIPT, "docx")
