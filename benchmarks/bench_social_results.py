"""Social results: metrics snapshots stored per second over many posts.

The collector's write path (:func:`business.social.results.store_readings`: in batches
of ``write_every`` readings, one transaction each with the snapshots' insert and the
schedule's upsert, as :class:`~business.social.results.Collector` stores them) against
the least any store must do: one plain ``executemany`` of the same snapshot rows into
``social_metric_snapshots``, in the same run on the same database (SQLite by default,
``DAW_SOCIAL_DB=postgresql``: a throw-away PostgreSQL). Each round stores every post's
reading once (a new ``taken_at`` per round). ``one_transaction_ratio``: the same
statements with every reading in one transaction, which tells the cost of the
collector's commits (one per ``write_every`` readings, so a failure loses nothing read
before it) from the cost of its statements.

Full: ``DAW_SOCIAL_POSTS=20000 python -m pytest benchmarks/bench_social_results.py
--benchmark-enable -s`` (default 5,000 posts); smoke (``DAW_BENCH_SMOKE=1``): 300 posts.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import SMOKE, record
from business.social.networks.base import METRICS
from business.social.results import (
    _SNAPSHOT,  # noqa: PLC2701 - the statement the collector's snapshots use
    Reading,
    ResultsSettings,
    store_readings,
)

POSTS = 300 if SMOKE else int(os.environ.get("DAW_SOCIAL_POSTS", "5000"))
ROUNDS = 1 if SMOKE else 5
DATABASE = os.environ.get("DAW_SOCIAL_DB", "sqlite")


def _readings(taken_at: float) -> list[Reading]:
    return [Reading(f"acc{i % 50}", f"post{i}", f"ch{i % 200}", "x", taken_at,
                    {m: (i * 7 + j) if m != "reach" else None
                     for j, m in enumerate(METRICS)}, taken_at + 3600)
            for i in range(POSTS)]


async def _run(url: str) -> dict[str, float]:
    from social_helpers import migrated

    from database import open_database

    write_every = ResultsSettings().write_every
    ours_s: list[float] = []
    whole_s: list[float] = []
    plain_s: list[float] = []
    async with open_database(url) as db:
        await migrated(db)
        base = time.time()
        for round_ in range(ROUNDS):
            readings = _readings(base + 3 * round_)
            start = time.perf_counter()
            for at in range(0, len(readings), write_every):
                await store_readings(db, readings[at:at + write_every])
            ours_s.append(time.perf_counter() - start)
            readings = _readings(base + 3 * round_ + 2)
            start = time.perf_counter()
            await store_readings(db, readings)  # the same statements, one transaction
            whole_s.append(time.perf_counter() - start)
            rows = [r.snapshot_row() for r in _readings(base + 3 * round_ + 1)]
            start = time.perf_counter()
            await db.executemany(_SNAPSHOT, rows)
            plain_s.append(time.perf_counter() - start)
        stored = await db.fetchval("SELECT COUNT(*) FROM social_metric_snapshots")
        assert stored == 3 * POSTS * ROUNDS, stored
    ours, plain = statistics.median(ours_s), statistics.median(plain_s)
    return {"posts": POSTS, "snapshots_per_s": POSTS / ours,
            "plain_executemany_per_s": POSTS / plain,
            "ratio_to_plain_executemany": statistics.median(
                o / p for o, p in zip(ours_s, plain_s, strict=True)),
            "one_transaction_ratio": statistics.median(
                w / p for w, p in zip(whole_s, plain_s, strict=True))}


def test_snapshot_storage_against_plain_executemany(benchmark,  # noqa: ANN001
                                                    request: pytest.FixtureRequest,
                                                    tmp_path: Path) -> None:
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:  # the social test helpers import their neighbours by name
        sys.path.append(tests)
    if DATABASE == "postgresql":
        from database_helpers import postgres_schema_url

        url = postgres_schema_url(request.getfixturevalue("postgres_url"), "bench_results")
    else:
        url = f"sqlite://{tmp_path / 'bench.sqlite3'}"
    figures: dict[str, Any] = asyncio.run(_run(url))
    record(benchmark, **figures)
