"""Sample library: search over 100,000 samples from the in-memory index against a plain SQL
query over the same table, same run; and the indexing rate per core on generated audio.

The data: ``ENTRIES`` synthetic samples of one account (plus a tenth as many of a second
account that no query may return) in the ``samples`` table on the embedded default
(SQLite), with names of two to four words from a vocabulary of about 2,000, BPMs for
loops, keys, types and classes; :meth:`SampleLibrary.load` builds the index from the
table (its time is reported). Each query runs through :meth:`SearchIndex.search`
(``ours``) and as one SQL statement (``sql``: the filters in ``WHERE``, words by
``LIKE``, the total by a window count, ranked by ``ORDER BY``, first page by ``LIMIT``;
the index adds fuzzy matching SQL does not do). Figures: p50/p99 per query and the median
ratio of SQL time to ours.

Indexing: ``FILES`` generated files (kicks, hats, snares, 4 s click loops and chord
loops) indexed by :meth:`SampleLibrary.index_folder`, which analyses one file at a time
on one core: files per second and seconds of audio per second, per core.

Run: ``python -m pytest benchmarks/bench_samples.py --benchmark-enable -s``
(``DAW_BENCH_SMOKE=1``: 2,000 entries, a few files, one round).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import soundfile as sf

from benchmarks.conftest import SMOKE, record
from database import open_database
from samples.library import SampleLibrary
from samples.records import COLUMNS
from samples.search import SampleQuery

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import samples_audio  # noqa: E402 - the tests' generated audio

ENTRIES = 2_000 if SMOKE else 100_000
ROUNDS = 1 if SMOKE else 21
FILES = 5 if SMOKE else 40
CLASSES = ("kick", "snare", "hat", "bass", "pad", "vocal", "other")
QUERIES: dict[str, tuple[SampleQuery, str, list]] = {
    "text": (SampleQuery(text="kick"), "words LIKE ?", ["%kick%"]),
    "two_words": (SampleQuery(text="dark pad"), "words LIKE ? AND words LIKE ?",
                  ["%dark%", "%pad%"]),
    "bpm_half_double": (
        SampleQuery(bpm_min=118, bpm_max=122, tempo_multiples=True),
        "((bpm BETWEEN 118 AND 122) OR (bpm * 2 BETWEEN 118 AND 122) "
        "OR (bpm / 2 BETWEEN 118 AND 122))", []),
    "key_relative_loop": (
        SampleQuery(key="A minor", relative_key=True, kind="loop"),
        "((key_tonic = 9 AND key_mode = 'minor') OR (key_tonic = 0 AND key_mode = 'major')) "
        "AND kind = 'loop'", []),
    "class_text_bpm": (
        SampleQuery(text="808", instrument="bass", bpm_min=130, bpm_max=150),
        "words LIKE ? AND instrument = 'bass' AND bpm BETWEEN 130 AND 150", ["%808%"]),
}


def _vocabulary(rng: random.Random) -> list[str]:
    syllables = ["ka", "lo", "mi", "ra", "zu", "te", "vo", "shi", "na", "gro", "bel", "dra"]
    made = {rng.choice(syllables) + rng.choice(syllables) + rng.choice(syllables)
            for _ in range(3000)}
    return sorted(made | {"kick", "snare", "hat", "bass", "pad", "vocal", "dark", "bright",
                          "808", "loop", "shot", "warm", "tape", "vinyl"})


def _rows(account: str, count: int, rng: random.Random, words: list[str]) -> list[tuple]:
    rows = []
    for n in range(count):
        loop = rng.random() < 0.5
        name_words = rng.sample(words, rng.randint(2, 4))
        key = (rng.randrange(12), rng.choice(("major", "minor"))) if rng.random() < 0.6 \
            else (None, None)
        rows.append((account, f"{account}-{n}", "/lib", f"/lib/{account}/{n}.wav",
                     "_".join(name_words) + ".wav", "h", 1000, 1, " ".join(name_words),
                     rng.uniform(0.1, 16.0), -14.0, -1.0,
                     round(rng.uniform(60, 180), 2) if loop else None, rng.random(),
                     key[0], key[1], rng.random(), "loop" if loop else "one-shot",
                     rng.choice(CLASSES), rng.random(), "{}", 0.0))
    return rows


def _sql(where: str) -> str:
    return (f"SELECT {', '.join(COLUMNS)}, COUNT(*) OVER () AS total FROM samples "
            f"WHERE account_id = ? AND {where} "
            "ORDER BY bpm_confidence + key_confidence DESC, name LIMIT 50")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _search(path: Path) -> dict[str, float | int]:
    database = open_database(f"sqlite://{path}", path.parent)
    await database.start()
    try:
        library = SampleLibrary(database)
        await library.load(wait=True)
        rng = random.Random(7)
        words = _vocabulary(rng)
        marks = ", ".join("?" for _ in COLUMNS)
        insert = f"INSERT INTO samples ({', '.join(COLUMNS)}) VALUES ({marks})"
        for account, count in (("acct", ENTRIES), ("rival", ENTRIES // 10)):
            rows = _rows(account, count, rng, words)
            for start in range(0, len(rows), 5000):
                await database.executemany(insert, rows[start:start + 5000])
        started = time.perf_counter()
        assert await library.load(wait=True) == ENTRIES + ENTRIES // 10
        figures: dict[str, float | int] = {"entries": ENTRIES,
                                           "load_s": time.perf_counter() - started}
        for name, (query, where, args) in QUERIES.items():
            ours, sql = [], []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                found = library.index.search("acct", query)
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                rows = await database.fetch(_sql(where), "acct", *args)
                sql.append(time.perf_counter() - start)
            assert all(s.account_id == "acct" for s in found.samples)
            if "LIKE" not in where:  # same filters, same matches (words differ: see above)
                assert found.total == (rows[0]["total"] if rows else 0), name
            figures[f"{name}_p50_ms"] = 1000 * _percentile(ours, 0.5)
            figures[f"{name}_p99_ms"] = 1000 * _percentile(ours, 0.99)
            figures[f"{name}_sql_p50_ms"] = 1000 * _percentile(sql, 0.5)
            figures[f"{name}_ratio"] = statistics.median(s / o for s, o in zip(sql, ours,
                                                                               strict=True))
        return figures
    finally:
        await database.stop()


async def _indexing(folder: Path, data: Path) -> dict[str, float]:
    makers = [samples_audio.kick, samples_audio.hat, samples_audio.snare,
              lambda: samples_audio.click_track(120.0, 4.0), lambda: samples_audio.am_chord(4.0)]
    seconds = 0.0
    for n in range(FILES):
        audio = makers[n % len(makers)]()
        seconds += audio.shape[1] / samples_audio.RATE
        sf.write(folder / f"gen_{n:03d}.wav", audio.T, samples_audio.RATE)
    database = open_database(f"sqlite://{data}", data.parent)
    await database.start()
    try:
        library = SampleLibrary(database)
        await library.load(wait=True)
        report = await library.index_folder("acct", folder)
        assert report.added == FILES
        again = await library.index_folder("acct", folder)
    finally:
        await database.stop()
    return {"files": FILES, "files_per_s_per_core": FILES / report.seconds,
            "audio_s_per_s_per_core": seconds / report.seconds,
            "reindex_unchanged_files_per_s": FILES / again.seconds}


def test_search_index_against_plain_sql(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    async def go() -> dict[str, float | int]:
        async with asyncio.timeout(900):
            return await _search(tmp_path / "samples.sqlite3")

    record(benchmark, **asyncio.run(go()))


def test_indexing_rate_per_core(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    folder = tmp_path / "generated"
    folder.mkdir()

    async def go() -> dict[str, float]:
        async with asyncio.timeout(900):
            return await _indexing(folder, tmp_path / "index.sqlite3")

    record(benchmark, **asyncio.run(go()))
