"""Analytics dashboard queries: p50/p99 over months × sources × tracks, DuckDB against
the same query in plain SQL on the shared database, same run.

The data: ``MONTHS`` × 30 days of daily ``streams`` for ``TRACKS`` recordings on each of
``SOURCES`` platforms (one platform id per recording per source, linked to one catalogue
entity by ISRC), plus a second account of the same size that no query may read. On the
embedded default (SQLite); points written through ``PointStore.upsert``, so the write
rate is the store's (points per second, one core).

The queries:

- **dashboard**: per catalogue entity and 30-day bucket, the total across platforms, the
  number of platforms and the entity's share of the bucket (``olap.DASHBOARD_SQL`` on the
  shared database; ``olap.DASHBOARD_DUCKDB`` in DuckDB). DuckDB is timed two ways:
  ``duckdb_cold`` loads the account's rows out of the shared database first (what one
  request pays), ``duckdb_warm`` queries an already loaded copy (a dashboard's widgets
  share one load);
- **series**: one entity's daily series summed across platforms (the KPI and growth
  query of ``GET /api/analytics/series``), plain SQL.

Run: ``python -m pytest benchmarks/bench_analytics_query.py --benchmark-enable -s``
(``DAW_BENCH_SMOKE=1``: a small data set, one round).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.conftest import SMOKE, record
from business.analytics import olap
from business.analytics.plugin import MIGRATIONS
from business.analytics.sources.records import Point
from business.analytics.store import PointStore, epoch
from database import open_database
from events import MIGRATIONS as EVENTS
from jobs import MIGRATIONS as JOBS

MONTHS, SOURCES, TRACKS = (2, 3, 20) if SMOKE else (13, 12, 100)
ROUNDS = 1 if SMOKE else 11
FIRST = date(2023, 6, 1)
ACCOUNTS = ("acct", "rival")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _fill(db) -> tuple[float, int]:  # noqa: ANN001
    """Write both accounts' points and links; (seconds of upserts, points per account)."""
    store = PointStore(db)
    days = MONTHS * 30
    spent, count = 0.0, 0
    now = time.time()
    for account in ACCOUNTS:
        links = [(account, f"src{s}", "track", f"src{s}-t{t}", f"e{t}", "isrc", 1.0, 0, "",
                  "", now, now) for s in range(SOURCES) for t in range(TRACKS)]
        await db.executemany("INSERT INTO analytics_links VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                             "?, ?, ?)", links)
        for s in range(SOURCES):
            points = [Point(f"src{s}", "track", f"src{s}-t{t}", "streams",
                            datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
                            + timedelta(days=d), (t * 7 + d * 3 + s) % 1000)
                      for t in range(TRACKS) for d in range(days)]
            began = time.perf_counter()
            await store.upsert(account, points)
            spent += time.perf_counter() - began
            count += len(points) if account == "acct" else 0
    return spent, count


async def _measure(path: Path) -> dict[str, float | int]:
    async with open_database(f"sqlite://{path}") as db:
        await db.migrate([*JOBS, *EVENTS])
        await db.migrate(MIGRATIONS)
        write_s, points = await _fill(db)
        start, end = FIRST, FIRST + timedelta(days=MONTHS * 30 - 1)
        low, high = epoch(start), epoch(end) + 86400
        store = PointStore(db)
        times: dict[str, list[float]] = {k: [] for k in (
            "sql", "duckdb_cold", "duckdb_warm", "series")}
        warm = await olap.load(db, "acct", start=start, end=end)
        want = await db.fetch(olap.DASHBOARD_SQL, "acct", "streams", low, high)
        got = warm.aggregate("streams", start, end)
        assert len(got) == len(want) and abs(got[0][2] - want[0]["total"]) < 1e-6
        for i in range(ROUNDS):
            began = time.perf_counter()
            await db.fetch(olap.DASHBOARD_SQL, "acct", "streams", low, high)
            times["sql"].append(time.perf_counter() - began)
            began = time.perf_counter()
            cold = await olap.load(db, "acct", start=start, end=end)
            cold.aggregate("streams", start, end)
            cold.close()
            times["duckdb_cold"].append(time.perf_counter() - began)
            began = time.perf_counter()
            warm.aggregate("streams", start, end)
            times["duckdb_warm"].append(time.perf_counter() - began)
            began = time.perf_counter()
            await store.series("acct", metric="streams", entity_id=f"e{i % TRACKS}",
                               start=start, end=end)
            times["series"].append(time.perf_counter() - began)
        warm.close()
    figures: dict[str, float | int] = {
        "months": MONTHS, "sources": SOURCES, "tracks": TRACKS, "points": points,
        "rounds": ROUNDS, "upsert_points_per_s": points / (write_s / 2)}
    for name, values in times.items():
        figures[f"{name}_p50_ms"] = statistics.median(values) * 1000
        figures[f"{name}_p99_ms"] = percentile(values, 0.99) * 1000
    figures["sql_over_duckdb_cold"] = figures["sql_p50_ms"] / figures["duckdb_cold_p50_ms"]
    figures["sql_over_duckdb_warm"] = figures["sql_p50_ms"] / figures["duckdb_warm_p50_ms"]
    return figures


def test_dashboard_query_duckdb_against_plain_sql(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    async def go() -> dict[str, float | int]:
        async with asyncio.timeout(600):
            return await _measure(tmp_path / "bench.sqlite3")

    record(benchmark, **asyncio.run(go()))
