"""The one transcript model: shifting, cutting to a span, the dict form and its checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dawserver.public_api.transcripts import summary_view
from transcription.errors import TranscriptDataError
from transcription.transcript import Passage, Segment, Transcript, Word

WORDS = (Word("one", 0.5, 0.9, 0.9), Word("two", 1.0, 1.4, 0.8), Word("three", 1.9, 2.2, 0.7))
TRANSCRIPT = Transcript(
    "en",
    segments=(Segment(0.5, 1.4, "One, two", WORDS[:2]), Segment(1.9, 2.2, "three", WORDS[2:])),
    passages=(Passage(0.0, 0.5, "silence"), Passage(2.5, 4.0, "music")),
    language_probability=0.9, duration=4.0, model="whisper-base")


def test_shifting_moves_every_time_and_nothing_else() -> None:
    moved = TRANSCRIPT.shifted(10.0)
    assert [(w.start, w.end) for w in moved.words] == [(10.5, 10.9), (11.0, 11.4), (11.9, 12.2)]
    assert [(s.start, s.end) for s in moved.segments] == [(10.5, 11.4), (11.9, 12.2)]
    assert [(p.start, p.end) for p in moved.passages] == [(10.0, 10.5), (12.5, 14.0)]
    assert moved.text == TRANSCRIPT.text and moved.model == "whisper-base"
    assert moved.duration == 4.0 and moved.shifted(-10.0).to_dict() == TRANSCRIPT.to_dict()


def test_a_span_keeps_the_words_whose_middle_lies_inside_and_cuts_passages() -> None:
    part = TRANSCRIPT.within(1.15, 3.0)
    assert [w.word for w in part.words] == ["two", "three"]
    assert part.segments[0] == Segment(1.0, 1.4, "two", (WORDS[1],))  # spans and reads its words
    assert part.passages == (Passage(2.5, 3.0, "music"),)
    assert part.duration == pytest.approx(1.85) and part.language == "en"
    assert TRANSCRIPT.within(5.0, 6.0).segments == ()


def test_a_span_keeps_whole_segments_text_and_joins_words_as_the_language_writes() -> None:
    assert TRANSCRIPT.within(0.0, 4.0).segments[0].text == "One, two"  # not "One two"
    # Whisper's words of Chinese (and Japanese, Thai, ...) carry no spaces between them
    words = (Word("今天", 0.0, 0.4), Word("天气", 0.4, 0.8), Word("很好", 0.8, 1.2),
             Word("。", 1.2, 1.2))
    chinese = Transcript("zh", segments=(Segment(0.0, 1.2, "今天天气很好。", words),),
                         duration=2.0)
    assert chinese.within(0.0, 2.0).text == "今天天气很好。"
    assert chinese.within(0.4, 2.0).text == "天气很好。"
    english = Transcript("en", segments=(Segment(0.0, 1.2, "x", words),), duration=2.0)
    assert english.within(0.4, 2.0).text == "天气 很好 。"
    assert summary_view("c", chinese).text == "今天天气很好。"  # the public API's text
    assert summary_view("c", TRANSCRIPT).text == "one two three"


def test_the_dict_form_round_trips_and_older_forms_read_with_defaults() -> None:
    assert Transcript.from_dict(TRANSCRIPT.to_dict()) == TRANSCRIPT
    assert Transcript.from_dict({"clip": "c3", "segments": [
        {"start": 0, "end": 1, "words": [{"word": "hi", "start": 0, "end": 1}]}]}) == Transcript(
        "", (Segment(0.0, 1.0, "", (Word("hi", 0.0, 1.0, 1.0),)),))


@pytest.mark.parametrize(("data", "message"), [
    ([], r"transcript must be an object \(a dict\), got \[\]"),
    ({"language": 3}, r"transcript.language must be a string, got 3"),
    ({"segments": {}}, r"transcript.segments must be a list, got \{\}"),
    ({"segments": [{"end": 1.0}]}, r"transcript.segments\[0\].start is missing"),
    ({"segments": [{"start": 0, "end": 1, "words": [{"word": "a", "start": "0", "end": 1}]}]},
     r"transcript.segments\[0\].words\[0\].start must be a finite number, got '0'"),
    ({"segments": [{"start": 0, "end": float("nan")}]}, r"segments\[0\].end must be a finite"),
    ({"passages": [{"start": 0, "end": 1, "kind": "speech"}]},
     r"transcript.passages\[0\].kind must be one of music, silence, got 'speech'"),
    ({"duration": True}, r"transcript.duration must be a finite number, got True"),
])
def test_bad_data_is_refused_naming_the_field(data: object, message: str) -> None:
    with pytest.raises(TranscriptDataError, match=message):
        Transcript.from_dict(data)


def test_the_model_imports_nothing_heavy() -> None:
    code = ("import sys, transcription.transcript; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'pycrdt', 'ctranslate2', 'faster_whisper', 'dsp_core', 'collab'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)
    assert done.stdout.strip() == "[]"
