"""The dashboard's KPIs (business.analytics.kpis, GET /api/analytics/kpis and
/platforms) over HTTP on SQLite: a track's streams summed across Spotify and TIDAL over a
range equal the fakes' truth, monthly listeners the last reading, growth as the series
route answers it, one daily series per platform; another account's entity 404, a reversed
range 422; and the KPI table never mixing a running total with a flow."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from analytics_helpers import migrated
from social_helpers import header_principal, who
from test_analytics_routes import wait_for_run

from business.analytics.catalog import Catalog
from business.analytics.fakes import FAKES, FakeSources
from business.analytics.kpis import KPI_BY_NAME, KPIS, entity_kpis
from business.analytics.services import services
from business.analytics.sources import SOURCES
from business.analytics.sources.records import Identity, Point
from business.analytics.store import RUNNING_TOTALS, PointStore, SeriesPoint
from business.analytics.v1_routes import _days
from dawserver.plugins import PLUGIN_CONTEXT_KEY, install, load_plugins

TODAY = date(2024, 6, 30)


def test_a_kpi_sums_metrics_of_one_nature_that_sources_report() -> None:
    every_metric = {m for cls in SOURCES.values() for m in cls.spec.metrics}
    for kpi in KPIS:
        assert {m in RUNNING_TOTALS for m in kpi.metrics} == {kpi.running_total}, kpi.name
        assert set(kpi.metrics) <= every_metric, kpi.name
        assert kpi.sources(), kpi.name
        for source in kpi.sources():
            mine = [m for m in SOURCES[source].spec.metrics if m in kpi.metrics]
            assert len(mine) == 1, (kpi.name, source, mine)   # never two figures summed
    names = {kpi.name for kpi in KPIS}
    assert names == {"followers", "listeners", "streams", "views"}


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_kpis_of_a_track_across_platforms_over_http(tmp_path: Path) -> None:
    fakes = [FAKES["spotify"](today=TODAY), FAKES["tidal"](today=TODAY)]
    first, last = TODAY - timedelta(days=200), TODAY - timedelta(days=1)
    async with FakeSources(fakes) as server:
        config = {"data_dir": tmp_path / "data",
                  "database_url": f"sqlite://{tmp_path / 'k.sqlite3'}",
                  "plugins": {"analytics": {"schedule_check_s": 3600, "sources": {
                      f.source: {"base_url": server.base_url(f.source)} for f in fakes}}}}
        app = web.Application()
        install(app, config, manager=load_plugins(config), identify=header_principal)
        async with TestClient(TestServer(app)) as client:
            owner, viewer = who("acct", "ada"), who("acct", "vi", "viewer")
            platforms = await (await client.get("/api/analytics/platforms",
                                                headers=viewer)).json()
            by_name = {p["source"]: p for p in platforms}
            assert len(by_name) == len(SOURCES) >= 25
            assert by_name["spotify"]["credentials"] == ["client_id", "client_secret"]
            assert by_name["deezer"]["credentials"] == [] and not by_name["deezer"]["history"]
            assert {m["name"]: m["kpi"] for m in by_name["spotify"]["metrics"]} == {
                "streams": "streams", "listeners": "listeners", "saves": None,
                "audience_listeners": None}
            for fake in fakes:
                made = await client.post("/api/analytics/sources", headers=owner, json={
                    "source": fake.source, "entity_id": fake.artist_id, "entity_name": "Ada",
                    "client_id": "client-id", "client_secret": "client-secret"})
                assert made.status == 201, await made.text()
                source_id = (await made.json())["source_id"]
                started = await client.post(
                    f"/api/analytics/sources/{source_id}/backfill", headers=owner,
                    json={"from": first.isoformat(), "to": last.isoformat()})
                assert started.status == 202, await started.text()
                done = await wait_for_run(client, (await started.json())["run_id"], owner)
                assert done["job_state"] == "done", done

            tracks = await (await client.get("/api/analytics/catalog?kind=recording",
                                             headers=viewer)).json()
            track = next(t for t in tracks if t["isrc"] == fakes[0].tracks[0].isrc)
            ids = {link["source"]: link["platform_id"] for link in track["links"]}
            assert set(ids) == {"spotify", "tidal"}
            start, end = last - timedelta(days=27), last
            answer = await client.get("/api/analytics/kpis", headers=viewer, params={
                "entity": track["entity_id"], "from": start.isoformat(),
                "to": end.isoformat()})
            found: dict[str, Any] = await answer.json()
            assert answer.status == 200, found
            assert (found["first_day"], found["last_day"]) == (start.isoformat(),
                                                                end.isoformat())
            streams, listeners = found["kpis"]["streams"], found["kpis"]["listeners"]

            # streams: a flow, summed over the range and across both platforms (the truth)
            truths = {f.source: f.truth(start, end) for f in fakes}
            expected = sum(v for f in fakes for (kind, pid, metric, day, dims), v in
                           truths[f.source].items()
                           if pid == ids[f.source] and metric == "streams" and not dims)
            assert streams["value"] == pytest.approx(expected) and expected > 0
            assert not streams["running_total"] and streams["days"] == 28
            assert set(streams["sources"]) == {"spotify", "tidal"}
            for name in ("spotify", "tidal"):
                daily = {datetime.fromtimestamp(at, UTC).date(): v
                         for at, v in streams["sources"][name]}
                assert len(daily) == 28 and min(daily) == start and max(daily) == end
                assert daily == pytest.approx({
                    day: v for (kind, pid, metric, day, dims), v in truths[name].items()
                    if pid == ids[name] and metric == "streams" and not dims})
            # listeners: a running total, the reading on the last day; Spotify alone
            assert listeners["running_total"] and set(listeners["sources"]) == {"spotify"}
            assert listeners["value"] == truths["spotify"][
                ("track", ids["spotify"], "listeners", end, ())]
            # growth to the last day, as the series route computes it over enough history
            series = await (await client.get("/api/analytics/series", headers=viewer, params={
                "entity": track["entity_id"], "metric": "listeners",
                "from": (end - timedelta(days=179)).isoformat(),
                "to": end.isoformat()})).json()
            assert listeners["growth"] == series["growth"]
            assert listeners["growth"]["90d"]["change"] is not None
            week = sum(v for _, v in streams["sources"]["spotify"][-7:]) + sum(
                v for _, v in streams["sources"]["tidal"][-7:])
            assert streams["growth"]["7d"]["current"] == pytest.approx(week)
            # nothing of these platforms reports followers or views of a track
            assert found["kpis"]["followers"]["value"] is None
            assert found["kpis"]["views"]["sources"] == {}

            # the default range: the last 28 days to today (no figures after `last`)
            default = await (await client.get("/api/analytics/kpis", headers=viewer, params={
                "entity": track["entity_id"]})).json()
            assert default["last_day"] == date.today().isoformat()
            other = await client.get("/api/analytics/kpis", headers=who("other", "bo"),
                                     params={"entity": track["entity_id"]})
            assert other.status == 404
            reversed_ = await client.get("/api/analytics/kpis", headers=viewer, params={
                "entity": track["entity_id"], "from": end.isoformat(),
                "to": start.isoformat()})
            assert reversed_.status == 422 and "swap" in await reversed_.text()
            missing = await client.get("/api/analytics/kpis", headers=viewer)
            assert missing.status == 422
            await asyncio.sleep(0)


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_a_platform_reporting_a_day_late_still_counts_in_followers(
        tmp_path: Path) -> None:
    config = {"data_dir": tmp_path / "data",
              "database_url": f"sqlite://{tmp_path / 'k.sqlite3'}",
              "plugins": {"analytics": {"schedule_check_s": 3600}}}
    app = web.Application()
    install(app, config, manager=load_plugins(config), identify=header_principal)
    async with TestClient(TestServer(app)) as client:
        module = services(app[PLUGIN_CONTEXT_KEY])
        await module.catalog.resolve("acct", [Identity("tiktok", "artist", "tt1", "Ada"),
                                              Identity("instagram", "artist", "ig1", "Ada")])
        [artist] = await module.catalog.entities("acct", "artist")
        points = []
        for back in range(10):
            at = datetime.combine(TODAY - timedelta(days=back), time(), UTC)
            points.append(Point("tiktok", "artist", "tt1", "followers_count", at, 10_000))
            if back >= 1:  # Instagram's insights arrive a day later
                points.append(Point("instagram", "artist", "ig1", "follower_count", at,
                                    5_000 - 100 * back))
        await module.store.upsert("acct", points)
        answer = await client.get("/api/analytics/kpis", headers=who("acct", "vi", "viewer"),
                                  params={"entity": artist.entity_id,
                                          "from": (TODAY - timedelta(days=6)).isoformat(),
                                          "to": TODAY.isoformat()})
        followers = (await answer.json())["kpis"]["followers"]
        assert answer.status == 200, followers
        # Instagram's reading of yesterday is carried to today, in the value and growth
        assert followers["value"] == 10_000 + 4_900
        week = followers["growth"]["7d"]
        assert (week["current"], week["previous"]) == (10_000 + 4_900, 10_000 + 4_300)
        # the per-platform series stay what each platform reported
        assert len(followers["sources"]["instagram"]) == 6
        assert len(followers["sources"]["tiktok"]) == 7


def test_v1_metrics_carry_a_late_platforms_reading_into_each_day() -> None:
    """GET /api/v1/analytics/artists/{id}/metrics sums running totals as the KPI route
    does: a platform that has not reported today counts with its latest reading, read
    from before the range; flows are summed as reported."""
    def at(day: int) -> int:
        return int(datetime(2024, 5, day, tzinfo=UTC).timestamp())

    per_source = {"tiktok": [SeriesPoint(at(d), 10_000) for d in (3, 4, 5)],
                  "instagram": [SeriesPoint(at(2), 5_000), SeriesPoint(at(4), 5_100)]}
    days = _days(KPI_BY_NAME["followers"], per_source, date(2024, 5, 3))
    assert [(d.date, d.value) for d in days] == [
        ("2024-05-03", 15_000), ("2024-05-04", 15_100), ("2024-05-05", 15_100)]
    assert days[2].sources == {"instagram": 5_100, "tiktok": 10_000}
    flows = _days(KPI_BY_NAME["streams"], per_source, date(2024, 5, 3))
    assert [(d.date, d.value) for d in flows] == [
        ("2024-05-03", 10_000), ("2024-05-04", 15_100), ("2024-05-05", 10_000)]


def test_growth_is_measured_to_the_last_day_holding_a_reading(db_url: str) -> None:
    """Sources land a day late: a range ending today, before today's figures, grows to
    yesterday (the day of its value), not to an empty today."""
    async def go() -> None:
        async with migrated(db_url) as db:
            catalog, store = Catalog(db), PointStore(db)
            found = await catalog.resolve("acct", [Identity("tiktok", "artist", "tk1", "Ada"),
                                                   Identity("spotify", "artist", "sp1", "Bo")])
            points = []
            for back in range(1, 200):   # yesterday and before
                at = datetime.combine(TODAY - timedelta(days=back), time(), UTC)
                points += [Point("tiktok", "artist", "tk1", "followers_count", at,
                                 10_000 - 10 * back),
                           Point("spotify", "artist", "sp1", "streams", at, 100)]
            await store.upsert("acct", points)
            start = TODAY - timedelta(days=27)
            ada = await entity_kpis(store, "acct", found[("tiktok", "artist", "tk1")].entity_id,
                                    start, TODAY)
            followers = ada["followers"]
            assert followers["value"] == 9_990
            assert followers["growth"]["7d"] == {"current": 9_990, "previous": 9_920,
                                                 "change": pytest.approx(70 / 9_920)}
            bo = await entity_kpis(store, "acct", found[("spotify", "artist", "sp1")].entity_id,
                                   start, TODAY)
            streams = bo["streams"]
            assert streams["value"] == 100 * 27
            assert streams["growth"]["7d"] == {"current": 700, "previous": 700, "change": 0.0}
            assert streams["growth"]["90d"]["change"] == 0.0
    asyncio.run(asyncio.wait_for(go(), 100))
