"""Whisper's languages: the full list, aliases and clear errors."""

from __future__ import annotations

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from transcription.errors import LanguageError
from transcription.languages import LANGUAGES, SCRIPTS, foreign_share, normalize_language


def test_every_whisper_language_is_listed() -> None:
    assert set(LANGUAGES) == set(_LANGUAGE_CODES)
    assert len(LANGUAGES) >= 99


@pytest.mark.parametrize(("given", "code"), [
    ("de", "de"), ("DE", "de"), (" en ", "en"), ("German", "de"), ("nb", "no"),
    ("cmn", "zh"), ("Cantonese", "yue"), ("auto", None), ("", None), (None, None),
])
def test_codes_names_and_aliases_are_accepted(given: str | None, code: str | None) -> None:
    assert normalize_language(given) == code


def test_an_unknown_language_names_itself_and_the_listing_command() -> None:
    with pytest.raises(LanguageError, match=r"'klingon'.*--list-languages"):
        normalize_language("klingon")


def test_every_language_has_its_script() -> None:
    assert set(SCRIPTS) == set(LANGUAGES)
    assert SCRIPTS["de"] == ("LATIN",) and SCRIPTS["uk"] == ("CYRILLIC",)
    assert "HIRAGANA" in SCRIPTS["ja"] and SCRIPTS["zh"] == ("CJK",)


@pytest.mark.parametrize(("text", "language", "share"), [
    ("Das Wetter, 7th!", "de", 0.0),
    ("Сегодня park", "uk", 4 / 11),
    ("1.5 hair2", "zh", 1.0),
    ("今天 ok", "zh", 0.5),
    ("12, 34.", "zh", 0.0),  # no letters
    ("hello", None, 0.0),  # no language: nothing to compare with
])
def test_foreign_share_counts_letters_outside_the_script(text: str, language: str | None,
                                                         share: float) -> None:
    assert foreign_share(text, language) == pytest.approx(share)
