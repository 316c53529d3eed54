"""Whisper's languages: the full list, aliases and clear errors."""

from __future__ import annotations

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from transcription.errors import LanguageError
from transcription.languages import LANGUAGES, normalize_language


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
