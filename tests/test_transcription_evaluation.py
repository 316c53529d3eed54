"""Word and character error rates used for the per-language table."""

from __future__ import annotations

import pytest

from transcription.evaluation import (
    Score,
    character_error_rate,
    error_rate,
    fold_kana,
    foreign_letters,
    markdown_table,
    tokens,
    word_error_rate,
)


def test_tokens_ignore_case_and_punctuation() -> None:
    assert tokens("Hello, World! It's me.", "en") == ["hello", "world", "it", "s", "me"]
    assert tokens("今天，天气。", "zh") == ["今", "天", "天", "气"]


@pytest.mark.parametrize(("reference", "hypothesis", "rate"), [
    ("a b c d", "a b c d", 0.0),
    ("a b c d", "a x c d", 0.25),
    ("a b c d", "a c d", 0.25),
    ("a b c d", "a b y c d", 0.25),
    ("a b", "", 1.0),
    ("a b", "x y z w", 2.0),
])
def test_error_rate_counts_edits_over_reference_length(reference: str, hypothesis: str,
                                                       rate: float) -> None:
    assert word_error_rate(reference, hypothesis, "en") == pytest.approx(rate)


def test_an_empty_reference() -> None:
    assert error_rate([], []) == 0.0 and error_rate([], ["x"]) == 1.0


def test_character_error_rate_counts_letters_without_spaces() -> None:
    assert character_error_rate("Das Wetter", "das weter", "de") == pytest.approx(1 / 9)
    assert character_error_rate("a b", "", "en") == 1.0
    assert character_error_rate("今天，天气。", "今天天气", "zh") == 0.0


def test_japanese_is_scored_on_kana_with_katakana_folded() -> None:
    assert fold_kana("コウエン ニ イキマス") == "こうえん に いきます"
    assert word_error_rate("こうえんに いきます", "コウエンニイキマス", "ja") == 0.0
    assert word_error_rate("こうえん", "公園", "ja") == 1.0  # kanji are not read back


@pytest.mark.parametrize(("text", "language", "foreign"), [
    ("Das Wetter ist schön.", "de", ""),
    ("Hôm nay thời tiết rất đẹp", "vi", ""),
    ("Сегодня очень хорошая погода", "ru", ""),
    ("Сегодня park", "uk", "park"),
    ("आज मौसम बहुत अच्छा है।", "hi", ""),
    ("1,1,1,4,3", "zh", "11143"),
    ("ヨウハ きょう 今日", "ja", ""),
    ("ヨウハ", "de", "ヨウハ"),
])
def test_foreign_letters_are_those_outside_the_language_script(text: str, language: str,
                                                                foreign: str) -> None:
    assert foreign_letters(text, language) == foreign


def test_the_table_marks_character_scored_languages() -> None:
    table = markdown_table([Score("en", "en", 0.9, 0.0, 0.0), Score("zh", "th", 0.4, 1.0, 1.0)])
    assert "| en | en (0.90) | 0.00 | 0.00 |" in table
    assert "| zh | th (0.40) | – | 1.00 |" in table
