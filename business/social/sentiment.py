"""Offline language detection and sentiment, honest about what it knows.

Language: :mod:`langdetect` (Google's language-detection profiles, 55 languages, run
offline with a fixed seed so one text always gets the same answer); a text with fewer
than :data:`MIN_LETTERS` letters once links, ``@names`` and ``#`` are removed is
``"und"`` (undetermined). A network's own language tag is preferred when it has one.

Sentiment: English by VADER (:mod:`vaderSentiment`, a lexicon and rules tuned on social
media English): compound >= 0.05 is positive, <= -0.05 negative, else neutral. Spanish,
Portuguese, French and German by the labMT word lists (:mod:`.lexicons`: a coarser
signal without negation), at +-:data:`~.lexicons.THRESHOLD`. Every other language
answers ``"unknown"`` with no score: an English lexicon on them would be noise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from langdetect import DetectorFactory, LangDetectException, detect_langs
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from business.social import lexicons

#: Languages whose sentiment is scored.
SUPPORTED = ("en", *lexicons.LANGUAGES)
LABELS = ("positive", "negative", "neutral", "unknown")
MIN_LETTERS = 8
_NOISE = re.compile(r"https?://\S+|[@#]\w+")

DetectorFactory.seed = 0  # langdetect samples at random; a seed makes it repeatable


@dataclass(frozen=True)
class Sentiment:
    """A text's language (ISO 639-1, or "und"), label and score in -1..1 (None: unknown)."""

    language: str
    label: str
    score: float | None


@lru_cache(maxsize=1)
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def detect_language(text: str) -> str:
    """The text's language code, or "und" when it is too short or unclear."""
    bare = _NOISE.sub(" ", text)
    if sum(c.isalpha() for c in bare) < MIN_LETTERS:
        return "und"
    try:
        best = detect_langs(bare)[0]
    except LangDetectException:
        return "und"
    return best.lang.split("-")[0] if best.prob >= 0.6 else "und"


def analyse(text: str, language: str = "") -> Sentiment:
    """Sentiment of ``text``; ``language`` (a network's tag) skips detection."""
    lang = (language or "").split("-")[0].lower()
    if not lang or lang in ("und", "qme", "zxx", "art"):
        lang = detect_language(text)
    if lang not in SUPPORTED:
        return Sentiment(lang, "unknown", None)
    if lang == "en":
        score, edge = float(_vader().polarity_scores(text)["compound"]), 0.05
    else:
        score, edge = lexicons.score(text, lang), lexicons.THRESHOLD
    label = "positive" if score >= edge else "negative" if score <= -edge else "neutral"
    return Sentiment(lang, label, round(score, 4))
