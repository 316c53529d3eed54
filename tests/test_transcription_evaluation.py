"""Word and character error rates used for the per-language table."""

from __future__ import annotations

import pytest

from transcription.evaluation import Score, error_rate, markdown_table, tokens, word_error_rate


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


def test_the_table_marks_character_rates() -> None:
    table = markdown_table([Score("en", "en", 0.9, 0.0), Score("zh", "th", 0.4, 1.0)])
    assert "| en | en (0.90) | 0.00 |" in table and "| zh | th (0.40) | 1.00 (CER) |" in table
