"""The in-memory search index: numpy columns for the filters, an inverted index for words.

Built from the ``samples`` table (lazily, in a worker thread: :mod:`samples.library`) and
updated as samples are indexed, so a search touches no database. A replaced or removed
sample leaves a tombstone row; once tombstones are over a quarter of the rows (and at
least :data:`COMPACT_MIN`), the index is compacted in one vectorised pass, so re-indexing
the same files never grows it. Filters are vectorised over numpy columns
(account, BPM, key, type, class); words go through an inverted index (word -> rows) whose
vocabulary answers exact, prefix and fuzzy matches (rapidfuzz). Every query word must
match (AND); the ranking is text score, then closeness to the asked tempo, then the
confidence of the measures, then the name.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from .errors import BadQuery
from .music import parse_key, relative
from .records import Sample
from .tags import words_of

KINDS = ("loop", "one-shot")
CLASSES = ("kick", "snare", "hat", "bass", "pad", "vocal", "other")
FUZZY_CUTOFF = 80.0
MAX_LIMIT = 200
#: Tombstones tolerated before compaction is considered (then: over a quarter of rows).
COMPACT_MIN = 1024


@dataclass(frozen=True)
class SampleQuery:
    """What to look for; every given filter must hold."""

    text: str = ""
    tags: tuple[str, ...] = ()
    bpm_min: float | None = None
    bpm_max: float | None = None
    #: Also match samples at half or double the asked tempo.
    tempo_multiples: bool = False
    key: str | None = None
    #: Also match the relative major/minor of ``key``.
    relative_key: bool = False
    kind: str | None = None
    instrument: str | None = None
    offset: int = 0
    limit: int = 50

    def check(self) -> None:
        """Raise :class:`BadQuery` with a fix for an impossible query."""
        if self.kind is not None and self.kind not in KINDS:
            raise BadQuery(f"type {self.kind!r} is unknown; use one of {', '.join(KINDS)}")
        if self.instrument is not None and self.instrument not in CLASSES:
            raise BadQuery(f"class {self.instrument!r} is unknown; use one of "
                           f"{', '.join(CLASSES)}")
        if (self.bpm_min is not None and self.bpm_max is not None
                and self.bpm_min > self.bpm_max):
            raise BadQuery(f"bpm_min {self.bpm_min} is above bpm_max {self.bpm_max}; swap them")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise BadQuery(f"limit must be 1..{MAX_LIMIT}, got {self.limit}")
        if self.offset < 0:
            raise BadQuery("the cursor is invalid; start again without one")
        if self.key:
            parse_key(self.key)


@dataclass
class SearchResult:
    """One page of ranked samples, how many matched in all, and the next page's offset."""

    samples: list[Sample] = field(default_factory=list)
    total: int = 0
    next_offset: int | None = None


class _Column:
    """A numpy column grown by doubling."""

    def __init__(self, dtype: str, fill: float) -> None:
        self.data = np.full(1024, fill, dtype=dtype)
        self.fill = fill

    def set(self, row: int, value: float) -> None:
        if row >= len(self.data):
            grown = np.full(max(row + 1, 2 * len(self.data)), self.fill, dtype=self.data.dtype)
            grown[: len(self.data)] = self.data
            self.data = grown
        self.data[row] = value


class SearchIndex:
    """Every account's samples, searchable in memory (see the module docstring)."""

    def __init__(self) -> None:
        self._rows: list[Sample | None] = []
        self._row_of: dict[str, int] = {}
        self._accounts: dict[str, int] = {}
        self._account = _Column("int32", -1)
        self._bpm = _Column("float32", np.nan)
        self._key = _Column("int16", -1)
        self._kind = _Column("int8", -1)
        self._class = _Column("int8", -1)
        self._confidence = _Column("float32", 0.0)
        self._postings: dict[str, list[int]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._vocabulary: list[str] | None = None

    def __len__(self) -> int:
        return len(self._row_of)

    def add_many(self, samples: Iterable[Sample]) -> None:
        """Add or replace many samples."""
        for sample in samples:
            self.add(sample)

    def add(self, sample: Sample) -> None:
        """Add a sample, replacing an earlier version of the same id."""
        self.remove(sample.id)
        row = len(self._rows)
        self._rows.append(sample)
        self._row_of[sample.id] = row
        account = self._accounts.setdefault(sample.account_id, len(self._accounts))
        self._account.set(row, account)
        self._bpm.set(row, np.nan if sample.bpm is None else sample.bpm)
        self._key.set(row, -1 if sample.key is None else _key_code(sample.key))
        self._kind.set(row, KINDS.index(sample.kind) if sample.kind in KINDS else -1)
        self._class.set(row, CLASSES.index(sample.instrument)
                        if sample.instrument in CLASSES else -1)
        self._confidence.set(row, sample.bpm_confidence + sample.key_confidence)
        for word in {*sample.words, *words_of(sample.name)}:
            if word not in self._postings:
                self._postings[word] = []
                self._vocabulary = None
            self._postings[word].append(row)
            self._arrays.pop(word, None)

    @property
    def tombstones(self) -> int:
        """Rows of removed or replaced samples not compacted away yet."""
        return len(self._rows) - len(self._row_of)

    def remove(self, sample_id: str) -> None:
        """Drop a sample (its row stays as a tombstone that no filter matches, until
        tombstones are over a quarter of the rows: then :meth:`compact`)."""
        row = self._row_of.pop(sample_id, None)
        if row is not None:
            self._rows[row] = None
            self._account.data[row] = -1
            dead = self.tombstones
            if dead >= COMPACT_MIN and dead * 4 > len(self._rows):
                self.compact()

    def compact(self) -> None:
        """Drop the tombstone rows: columns and postings renumbered in one pass."""
        count = len(self._rows)
        live = np.fromiter((sample is not None for sample in self._rows), dtype=bool,
                           count=count)
        renumbered = np.cumsum(live) - 1
        self._rows = [sample for sample in self._rows if sample is not None]
        self._row_of = {sample.id: row for row, sample in enumerate(self._rows)}
        for column in (self._account, self._bpm, self._key, self._kind, self._class,
                       self._confidence):
            column.data = column.data[:count][live].copy()
        postings: dict[str, list[int]] = {}
        for word, rows in self._postings.items():
            found = np.asarray(rows, dtype=np.int64)
            kept = renumbered[found[live[found]]]
            if len(kept):
                postings[word] = kept.tolist()
        self._postings = postings
        self._arrays.clear()
        self._vocabulary = None

    def search(self, account_id: str, query: SampleQuery) -> SearchResult:
        """The account's samples matching ``query``, ranked, one page of them."""
        query.check()
        code = self._accounts.get(account_id)
        count = len(self._rows)
        if code is None or count == 0:
            return SearchResult()
        mask = self._account.data[:count] == code
        bpm = self._bpm.data[:count]
        closeness = np.zeros(count, dtype=np.float32)
        if query.bpm_min is not None or query.bpm_max is not None:
            low = -np.inf if query.bpm_min is None else query.bpm_min
            high = np.inf if query.bpm_max is None else query.bpm_max
            factors = (1.0, 2.0, 0.5) if query.tempo_multiples else (1.0,)
            within = np.zeros(count, dtype=bool)
            with np.errstate(invalid="ignore"):
                for factor in factors:
                    scaled = bpm * factor
                    hit = (scaled >= low) & (scaled <= high)
                    if factor != 1.0:  # the exact tempo ranks above a multiple
                        closeness -= hit & ~within
                    within |= hit
            mask &= within
            if np.isfinite(low) and np.isfinite(high):
                closeness -= np.nan_to_num(np.abs(bpm - (low + high) / 2), nan=0.0) / 1000
        if query.key:
            key = parse_key(query.key)
            codes = [_key_code(key)] + ([_key_code(relative(*key))] if query.relative_key
                                        else [])
            mask &= np.isin(self._key.data[:count], codes)
        if query.kind:
            mask &= self._kind.data[:count] == KINDS.index(query.kind)
        if query.instrument:
            mask &= self._class.data[:count] == CLASSES.index(query.instrument)
        for tag in query.tags:
            mask &= self._word_mask(tag.lower(), count)
        score = np.zeros(count, dtype=np.float32)
        for word in words_of(query.text):
            word_score = self._text_score(word, count)
            mask &= word_score > 0
            score += word_score
        rows = np.flatnonzero(mask)
        order = np.lexsort((-self._confidence.data[rows], -closeness[rows], -score[rows]))
        ranked = rows[order]
        page = ranked[query.offset: query.offset + query.limit]
        following = query.offset + query.limit
        return SearchResult(samples=[self._rows[int(row)] for row in page], total=len(ranked),
                            next_offset=following if following < len(ranked) else None)

    def _postings_array(self, word: str) -> np.ndarray:
        array = self._arrays.get(word)
        if array is None:
            array = self._arrays[word] = np.asarray(self._postings.get(word, ()), dtype=np.int64)
        return array

    def _word_mask(self, word: str, count: int) -> np.ndarray:
        mask = np.zeros(count, dtype=bool)
        mask[self._postings_array(word)] = True
        return mask

    def _text_score(self, word: str, count: int) -> np.ndarray:
        """Per row: 100 for the word itself, 90 for a word it begins, else a fuzzy score."""
        vocabulary = self._sorted_vocabulary()
        matches: dict[str, float] = {}
        start = bisect.bisect_left(vocabulary, word)
        for candidate in vocabulary[start: start + 200]:
            if not candidate.startswith(word):
                break
            matches[candidate] = 100.0 if candidate == word else 90.0
        if len(word) >= 3:
            for candidate, value, _ in process.extract(word, vocabulary, scorer=fuzz.ratio,
                                                       score_cutoff=FUZZY_CUTOFF, limit=20):
                matches.setdefault(candidate, 0.8 * value)
        score = np.zeros(count, dtype=np.float32)
        for candidate, value in matches.items():
            rows = self._postings_array(candidate)
            score[rows] = np.maximum(score[rows], value)
        return score

    def _sorted_vocabulary(self) -> list[str]:
        if self._vocabulary is None:
            self._vocabulary = sorted(self._postings)
        return self._vocabulary


def _key_code(key: tuple[int, str]) -> int:
    return key[0] + (12 if key[1] == "minor" else 0)
