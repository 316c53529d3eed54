"""Analytics storage on SQLite and PostgreSQL: points upserted by their whole key, monthly
partitions on PostgreSQL, freshness recorded and exported, series and growth per catalogue
entity, and DuckDB over one account's rows (the dashboard aggregation, and a user's SQL
that cannot reach another account or the file system)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import prometheus_client
import pytest
from analytics_helpers import migrated

from business.analytics import olap
from business.analytics.catalog import Catalog
from business.analytics.partitions import partition_name
from business.analytics.sources.records import Identity, Point
from business.analytics.store import PointStore, SeriesPoint, epoch, growth

pytestmark = pytest.mark.timeout(120)


def run(coro, timeout: float = 60.0):  # noqa: ANN001, ANN201
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


def day(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def streams(source: str, track: str, first: date, days: int, base: int = 100,
            dims: tuple = ()) -> list[Point]:
    return [Point(source, "track", track, "streams", day(first + timedelta(days=i)),
                  base + i, dims) for i in range(days)]


def test_writing_the_same_points_again_overwrites_and_never_adds(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            store = PointStore(db)
            first = streams("spotify", "t1", date(2024, 5, 1), 10)
            first += streams("spotify", "t1", date(2024, 5, 1), 10, 7, (("country", "DE"),))
            assert (await store.upsert("acct", first)).points == 20
            revised = [Point(p.source, p.entity_kind, p.entity_id, p.metric, p.at,
                             p.value * 2, p.dimensions) for p in first[:5]]
            await store.upsert("acct", revised)
            await store.upsert("acct", first[5:])   # a second worker, same window
            rows = await store.rows("acct")
            assert len(rows) == 20
            assert [r["value"] for r in rows if r["dimensions"] == ""][:6] == [
                200, 202, 204, 206, 208, 105]
            assert await store.count("other") == 0
            with pytest.raises(ValueError, match="negative count"):
                await store.upsert("acct", [Point("spotify", "track", "t1", "streams",
                                                  day(date(2024, 5, 2)), -3)])
            assert len(await store.rows("acct")) == 20

    run(go())


def test_points_land_in_monthly_partitions_on_postgresql(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            store = PointStore(db)
            assert await store.partitions.existing() == []   # the migration makes none
            made = await store.partitions.ensure_ahead(datetime(2024, 11, 15, tzinfo=UTC), 2)
            old = streams("spotify", "t1", date(2022, 12, 30), 4)   # a back-fill of 2022
            await store.upsert("acct", old)
            if db.dialect == "sqlite":
                assert made == [] and await store.partitions.existing() == []
                assert await store.count("acct") == 4
                return
            assert made == [partition_name(2024, m) for m in (11, 12)] + [
                partition_name(2025, 1)]
            assert set(await store.partitions.existing()) == {
                *made, partition_name(2022, 12), partition_name(2023, 1)}
            placed = await db.fetch("SELECT tableoid::regclass::text AS part, COUNT(*) AS n "
                                    "FROM analytics_points GROUP BY 1 ORDER BY 1")
            assert [(r["part"].split(".")[-1], r["n"]) for r in placed] == [
                (partition_name(2022, 12), 2), (partition_name(2023, 1), 2)]
            # a second process (its own cache) making the same partitions changes nothing
            assert await PointStore(db).partitions.ensure_for([epoch(date(2023, 1, 5))]) == []

    run(go())


def test_freshness_is_recorded_per_source_and_exported(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            store = PointStore(db)
            stored = await store.upsert("acct", streams("shazam", "t1", date(2024, 5, 1), 3),
                                        fetched_at=1_700_000_000.0)
            [fresh] = await store.freshness("acct")
            assert fresh["source"] == "shazam" and fresh["points"] == 3
            assert fresh["fetched_at"] == 1_700_000_000.0
            assert fresh["queryable_at"] <= stored.queryable_at
            assert fresh["lag_s"] == pytest.approx(fresh["queryable_at"] - 1_700_000_000.0)
            assert await store.freshness("other") == []
        text = prometheus_client.generate_latest().decode()
        assert 'maxbooster_analytics_freshness_lag_seconds_count{source="shazam"}' in text
        assert 'maxbooster_analytics_last_queryable_timestamp_seconds{source="shazam"}' in text

    run(go())


def test_a_series_of_a_catalogue_entity_sums_its_platforms(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            store, catalog = PointStore(db), Catalog(db)
            links = await catalog.resolve("acct", [
                Identity("spotify", "track", "sp1", "Night Drive", isrc="QZES62400001"),
                Identity("apple_music", "track", "am1", "Night Drive", isrc="QZES62400001")])
            entity = links[("spotify", "track", "sp1")].entity_id
            assert links[("apple_music", "track", "am1")].entity_id == entity
            await store.upsert("acct", streams("spotify", "sp1", date(2024, 5, 1), 5, 100))
            await store.upsert("acct", streams("apple_music", "am1", date(2024, 5, 3), 5, 10))
            await store.upsert("other", streams("spotify", "sp1", date(2024, 5, 1), 5, 999))
            found = await store.series("acct", metric="streams", entity_id=entity,
                                       by_source=True)
            total = {datetime.fromtimestamp(p.at, UTC).date().day: p.value
                     for p in found["total"]}
            assert total == {1: 100, 2: 101, 3: 102 + 10, 4: 103 + 11, 5: 104 + 12,
                             6: 13, 7: 14}
            assert sorted(found) == ["apple_music", "spotify", "total"]
            ranged = await store.series("acct", metric="streams", entity_id=entity,
                                        start=date(2024, 5, 4), end=date(2024, 5, 5))
            assert [p.value for p in ranged["total"]] == [114, 116]
            one = await store.series("acct", metric="streams",
                                     platform=("apple_music", "track", "am1"))
            assert [p.value for p in one["total"]] == [10, 11, 12, 13, 14]
            none = await store.series("other", metric="streams", entity_id=entity)
            assert none["total"] == []   # the entity is acct's; other has no link to it

    run(go())


def test_growth_compares_periods_for_flows_and_readings_for_running_totals() -> None:
    until = date(2024, 6, 30)
    flow = [SeriesPoint(epoch(until - timedelta(days=i)), 10 if i < 7 else 5)
            for i in range(120)]
    out = growth("streams", flow, until)
    assert out["7d"] == {"current": 70, "previous": 35, "change": 1.0}
    assert out["28d"]["current"] == 7 * 10 + 21 * 5 and out["90d"]["previous"] is not None
    followers = [SeriesPoint(epoch(until - timedelta(days=i)), 1000 - i) for i in range(30)]
    out = growth("followers", followers, until)
    assert out["7d"] == {"current": 1000, "previous": 993, "change": pytest.approx(7 / 993)}
    assert out["90d"] == {"current": 1000, "previous": None, "change": None}


def test_growth_of_an_hourly_series_takes_whole_utc_days() -> None:
    until = date(2024, 5, 14)
    hours = [day(date(2024, 5, 1)) + timedelta(hours=h) for h in range(14 * 24)]
    flow = [SeriesPoint(epoch(at), 10) for at in hours]   # 240 streams a day
    out = growth("streams", flow, until)
    assert out["7d"] == {"current": 7 * 240, "previous": 7 * 240, "change": 0.0}
    # a running total: each day's last reading (one more follower every hour)
    followers = [SeriesPoint(epoch(at), 1000 + n) for n, at in enumerate(hours)]
    out = growth("followers", followers, until)
    assert out["7d"] == {"current": 1000 + 14 * 24 - 1, "previous": 1000 + 7 * 24 - 1,
                         "change": pytest.approx(168 / 1167)}


async def _two_accounts(db, months: int = 3, tracks: int = 4) -> None:  # noqa: ANN001
    store, catalog = PointStore(db), Catalog(db)
    for account, base in (("acct", 100), ("rival", 50_000)):
        ids = []
        for t in range(tracks):
            for source in ("spotify", "apple_music", "youtube"):
                ids.append(Identity(source, "track", f"{source}-{t}", f"Song {t}",
                                    isrc=f"QZES6240{t:04d}"))
        await catalog.resolve(account, ids)
        points = [p for t in range(tracks) for source in ("spotify", "apple_music", "youtube")
                  for p in streams(source, f"{source}-{t}", date(2024, 1, 1), months * 30,
                                   base * (t + 1))]
        await store.upsert(account, points)


def test_duckdb_dashboard_gives_what_plain_sql_gives_over_one_account(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            await _two_accounts(db)
            start, end = date(2024, 1, 1), date(2024, 3, 31)
            plain = await db.fetch(olap.DASHBOARD_SQL, "acct", "streams", epoch(start),
                                   epoch(end) + 86400)
            with await olap.load(db, "acct") as engine:
                fast = engine.aggregate("streams", start, end)
                assert engine.con.execute("SELECT COUNT(*) FROM points").fetchone()[0] == \
                    4 * 3 * 90
            assert len(fast) == len(plain) > 0
            for got, want in zip(fast, plain, strict=True):
                assert got[0] == want["entity_id"] and int(got[1]) == int(want["month"])
                assert got[2] == pytest.approx(want["total"]) and got[3] == want["sources"]
                assert got[4] == pytest.approx(want["share"])
            assert max(row[2] for row in fast) < 50_000 * 30   # none of rival's figures

    run(go())


@pytest.mark.parametrize(("sql", "words"), [
    ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "disabled"),
    ("COPY points TO '/tmp/leak.csv'", "only SELECT"),
    ("ATTACH '/tmp/other.duckdb' AS other", "only SELECT"),
    ("SET enable_external_access = true", "only SELECT"),
    ("SELECT current_setting('enable_external_access'); DROP TABLE points", "exactly one"),
    ("INSTALL httpfs", "only SELECT"),
    ("SELECT * FROM analytics_points", "does not exist"),
    ("SELECT * FROM glob('/*')", "disabled"),
])
def test_a_users_sql_cannot_reach_the_file_system_or_change_settings(
        tmp_path: Path, sql: str, words: str) -> None:
    async def go() -> None:  # the sandbox is DuckDB's: one dialect underneath suffices
        async with migrated(f"sqlite://{tmp_path / 'a.sqlite3'}") as db:
            await _two_accounts(db, months=1, tracks=1)
            with await olap.load(db, "acct") as engine:
                with pytest.raises(olap.QueryRefused) as refused:
                    engine.sql(sql)
                assert words.lower() in str(refused.value).lower()
                assert not Path("/tmp/leak.csv").exists()

    run(go())


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's zone is New York (behind UTC) for one test, then what it was."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_users_sql_sees_utc_days_whatever_the_servers_zone(new_york: None) -> None:
    at = epoch(date(2024, 5, 1))   # midnight UTC: still 2024-04-30 in New York
    assert time.localtime(at).tm_mday == 30   # the zone took
    point = {"source": "spotify", "entity_kind": "track", "entity_id": "t1",
             "metric": "streams", "grain": "daily", "dimensions": "", "at": at, "value": 1.0}
    with olap.Olap([point], []) as engine:
        utc = engine.sql('SELECT day, CAST(to_timestamp("at") AS DATE) FROM points')
        assert utc.rows == [["2024-05-01", "2024-05-01"]]


def test_a_users_sql_sees_only_its_own_accounts_rows(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            await _two_accounts(db, months=1, tracks=2)
            with await olap.load(db, "acct") as engine:
                result = engine.sql("SELECT count(*), max(value), count(DISTINCT entity_id) "
                                    "FROM points")
                assert result.rows == [[2 * 3 * 30, 2 * 100 + 29, 6]]
                tables = engine.sql("SELECT table_name FROM information_schema.tables "
                                    "ORDER BY 1").rows
                assert tables == [["links"], ["points"]]
                big = engine.sql("SELECT * FROM points", max_rows=10)
                assert big.truncated and len(big.rows) == 10 and "day" in big.columns
                with pytest.raises(olap.QueryRefused, match="failed"):
                    engine.sql("SELECT * FROM points WHERE value > 'x'::INTEGER")

    run(go())


def test_a_series_totals_a_breakdown_only_where_the_source_gives_no_total(
        tmp_path: Path) -> None:
    async def go() -> None:
        async with migrated(f"sqlite://{tmp_path / 'b.sqlite3'}") as db:
            store = PointStore(db)
            first = date(2024, 5, 1)
            await store.upsert("acct", [  # Shazam: per country only
                *streams("shazam", "t1", first, 2, 10, (("country", "DE"),)),
                *streams("shazam", "t1", first, 2, 5, (("country", "FR"),))])
            await store.upsert("acct", [  # a total and its breakdown: the total counts
                *streams("spotify", "t1", first, 2, 100),
                *streams("spotify", "t1", first, 2, 60, (("country", "DE"),))])
            shazam = await store.series("acct", metric="streams",
                                        platform=("shazam", "track", "t1"))
            spotify = await store.series("acct", metric="streams",
                                         platform=("spotify", "track", "t1"))
            assert [p.value for p in shazam["total"]] == [15, 17]
            assert [p.value for p in spotify["total"]] == [100, 101]

    run(go())


def spotify_audience(first: date, listeners: tuple[int, ...]) -> list[Point]:
    """Spotify's audience as it comes: each of four breakdowns adds up to the listeners."""
    rows = (("country", "DE"), ("country", "US"), ("city", "Berlin"), ("city", "New York"),
            ("age", "18-24"), ("age", "25-34"), ("gender", "female"), ("gender", "male"))
    return [Point("spotify", "artist", "sp1", "audience_listeners",
                  day(first + timedelta(days=i)), n / 2, (pair,))
            for i, n in enumerate(listeners) for pair in rows]


def test_a_series_of_several_breakdowns_without_a_total_sums_only_one(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            store, catalog = PointStore(db), Catalog(db)
            links = await catalog.resolve("acct", [Identity("spotify", "artist", "sp1", "Ada")])
            entity = links[("spotify", "artist", "sp1")].entity_id
            await store.upsert("acct", spotify_audience(date(2024, 5, 1),
                                                        (2_000, 2_600, 3_000)))
            one = await store.series("acct", metric="audience_listeners",
                                     platform=("spotify", "artist", "sp1"))
            assert [p.value for p in one["total"]] == [2_000, 2_600, 3_000]
            linked = await store.series("acct", metric="audience_listeners",
                                        entity_id=entity, by_source=True)
            assert [p.value for p in linked["total"]] == [2_000, 2_600, 3_000]
            assert [p.value for p in linked["spotify"]] == [2_000, 2_600, 3_000]

    run(go())
