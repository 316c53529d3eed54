"""Audience and benchmarking pages over HTTP (SQLite): Shazam, Boomplay and Spotify fakes
back-filled as jobs, their countries (and Spotify's cities, ages, genders) equal to the
fakes' seeded truth; age, gender and city breakdowns;
an artist's KPIs against chosen peers and peers of a similar size, percentile ranks; another
account's ids 404."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from analytics_helpers import migrated
from social_helpers import header_principal, who
from test_analytics_routes import wait_for_run

from business.analytics import benchmark as benchmark_module
from business.analytics.audience import AudienceBook
from business.analytics.benchmark import benchmark, by_genre, percentile_rank, quantile
from business.analytics.catalog import Catalog
from business.analytics.fakes import FAKES, FakeSources
from business.analytics.genres import Genres
from business.analytics.services import services
from business.analytics.sources.records import Identity, Point
from business.analytics.store import PointStore
from dawserver.plugins import PLUGIN_CONTEXT_KEY, install, load_plugins

pytestmark = [pytest.mark.timeout(150)]
FIRST, LAST = date(2024, 3, 1), date(2024, 3, 20)
RANGE = {"from": FIRST.isoformat(), "to": LAST.isoformat()}


def app_for(tmp_path: Path, sources: dict | None = None) -> web.Application:
    config = {"data_dir": tmp_path / "data",
              "database_url": f"sqlite://{tmp_path / 'a.sqlite3'}",
              "plugins": {"analytics": {"sources": sources or {}, "schedule_check_s": 3600}}}
    app = web.Application()
    install(app, config, manager=load_plugins(config), identify=header_principal)
    return app


def test_percentile_rank_and_quantiles() -> None:
    assert percentile_rank(5, [1, 2, 3, 4]) == 100.0
    assert percentile_rank(0, [1, 2]) == 0.0
    assert percentile_rank(2, [1, 2, 3]) == pytest.approx(100 * 1.5 / 3)
    assert percentile_rank(2, []) is None
    assert quantile([4, 1, 3, 2], 0.5) == 2.5 and quantile([], 0.5) is None


@pytest.mark.asyncio
async def test_countries_per_platform_equal_the_fakes(tmp_path: Path) -> None:
    fakes = [FAKES["shazam"](), FAKES["boomplay"](), FAKES["spotify"]()]
    async with FakeSources(fakes) as server:
        app = app_for(tmp_path, {f.source: {"base_url": server.base_url(f.source)}
                                 for f in fakes})
        async with asyncio.timeout(140), TestClient(TestServer(app)) as client:
            owner, viewer, other = who("acct", "ada"), who("acct", "vi", "viewer"), who("o", "b")
            for fake in fakes:
                answer = await client.post("/api/analytics/sources", headers=owner, json={
                    "source": fake.source, "entity_kind": "artist", "entity_id": fake.artist_id,
                    "entity_name": "Ada", "api_key": "api-key", "client_id": "client-id",
                    "client_secret": "client-secret"})
                source = await answer.json()
                assert answer.status == 201, source
                run = await (await client.post(
                    f"/api/analytics/sources/{source['source_id']}/backfill", headers=owner,
                    json=RANGE)).json()
                assert (await wait_for_run(client, run["run_id"], viewer))["job_state"] == "done"

            answer = await client.get("/api/analytics/audience", headers=viewer, params=RANGE)
            found = await answer.json()
            assert answer.status == 200, found
            parts = {"country": "countries", "city": "cities", "age": "ages",
                     "gender": "genders"}
            want: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
            for fake in fakes:
                for (_, _, metric, _, dims), value in fake.truth(FIRST, LAST).items():
                    for name, key in dims:
                        if name in parts:
                            want[(fake.source, metric, parts[name])][key] += value
            got = {(a["source"], a["metric"], part): {c["key"]: c["value"] for c in a[part]}
                   for a in found for part in parts.values() if a[part]}
            assert got == want
            assert {k[2] for k in got if k[0] == "spotify"} == set(parts.values())
            for a in found:
                if a["source"] == "spotify":
                    continue
                assert all(c["numeric"] and len(c["numeric"]) == 3 and c["name"]
                           for c in a["countries"])
                assert sum(c["share"] for c in a["countries"]) == pytest.approx(1.0)
                values = [c["value"] for c in a["countries"]]
                assert values == sorted(values, reverse=True)
                assert a["ages"] == a["genders"] == a["cities"] == []

            # one recording: its own countries only
            catalog = await (await client.get("/api/analytics/catalog?kind=recording",
                                              headers=viewer)).json()
            shazam = fakes[0]
            entity = next(e for e in catalog if e["isrc"] == shazam.tracks[0].isrc)
            answer = await client.get("/api/analytics/audience", headers=viewer,
                                      params={**RANGE, "entity": entity["entity_id"]})
            one = {(a["source"], a["metric"]): {c["key"]: c["value"] for c in a["countries"]}
                   for a in await answer.json()}
            track_want: dict[str, float] = defaultdict(float)
            for (_, pid, _, _, dims), value in shazam.truth(FIRST, LAST).items():
                if pid == shazam.track_id(0):
                    track_want[dict(dims)["country"]] += value
            assert one[("shazam", "shazams")] == track_want

            # another account sees nothing, and the entity is missing for it
            assert await (await client.get("/api/analytics/audience", headers=other,
                                           params=RANGE)).json() == []
            answer = await client.get("/api/analytics/audience", headers=other,
                                      params={**RANGE, "entity": entity["entity_id"]})
            assert answer.status == 404


def day(i: int) -> datetime:
    d = FIRST + timedelta(days=i)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@pytest.mark.asyncio
async def test_demographics_and_benchmarks(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with asyncio.timeout(100), TestClient(TestServer(app)) as client:
        module = services(app[PLUGIN_CONTEXT_KEY])
        followers = {"a1": 1000.0, "a2": 2000.0, "a3": 4000.0, "a4": 8000.0, "big": 900000.0}
        daily = {"a1": 50.0, "a2": 10.0, "a3": 30.0, "a4": 20.0, "big": 5000.0}
        names = {"a1": "Ada Lovelace", "a2": "Brass Monkeys", "a3": "Cold Harbour",
                 "a4": "Dune Sirens", "big": "Megastar"}
        await module.catalog.resolve("acct", [
            Identity(source, "artist", pid, names[pid]) for pid in followers
            for source in ("spotify", "instagram")])
        await module.catalog.resolve("other", [Identity("spotify", "artist", "x", "Stranger")])
        points = [Point("instagram", "artist", pid, "follower_count", day(i), f + i)
                  for pid, f in followers.items() for i in range(20)]
        points += [Point("spotify", "artist", pid, "streams", day(i), s)
                   for pid, s in daily.items() for i in range(20)]
        audience = {(("age", "18-24"), ("gender", "female")): 30.0,
                    (("age", "25-34"), ("gender", "male")): 50.0,
                    (("age", "25-34"), ("gender", "female")): 20.0}
        points += [Point("spotify", "artist", "a1", "listeners", day(3), v, dims)
                   for dims, v in audience.items()]
        points += [Point("spotify", "artist", "a1", "listeners", day(3), v,
                         (("city", city), ("country", cc)))
                   for city, cc, v in (("Berlin", "DE", 40.0), ("Lagos", "NG", 60.0))]
        await module.store.upsert("acct", points)
        ids = {link["platform_id"]: e.entity_id
               for e in await module.catalog.entities("acct", "artist") for link in e.links}
        assert len(set(ids.values())) == len(followers)  # one artist on both platforms
        stranger = (await module.catalog.entities("other", "artist"))[0].entity_id
        vi = who("acct", "vi", "viewer")

        answer = await client.get("/api/analytics/audience", headers=vi,
                                  params={**RANGE, "entity": ids["a1"]})
        [spotify] = await answer.json()
        assert (spotify["source"], spotify["metric"]) == ("spotify", "listeners")
        assert {r["key"]: r["value"] for r in spotify["ages"]} == {"25-34": 70.0, "18-24": 30.0}
        assert {r["key"]: r["share"] for r in spotify["genders"]} == {
            "female": pytest.approx(0.5), "male": pytest.approx(0.5)}
        assert [r["key"] for r in spotify["cities"]] == ["Lagos", "Berlin"]
        assert {(r["key"], r["numeric"], r["name"]) for r in spotify["countries"]} == {
            ("DE", "276", "Germany"), ("NG", "566", "Nigeria")}

        # similar size: within 10x of a2's followers, so "big" is left out
        answer = await client.get("/api/analytics/benchmark", headers=vi,
                                  params={**RANGE, "entity": ids["a2"]})
        bench = await answer.json()
        assert answer.status == 200, bench
        assert bench["peer_set"] == "similar_size"
        assert set(bench["peers"]) == {ids["a1"], ids["a3"], ids["a4"]}
        last = 19
        peers_followers = [followers[p] + last for p in ("a1", "a3", "a4")]
        kpi = bench["kpis"]["followers"]
        assert kpi["value"] == followers["a2"] + last
        assert kpi["percentile"] == percentile_rank(kpi["value"], peers_followers) == \
            pytest.approx(100 / 3)
        assert kpi["median"] == followers["a3"] + last
        streams = bench["kpis"]["streams"]
        assert streams["value"] == daily["a2"] * 20 and streams["percentile"] == 0.0
        assert [p["value"] for p in streams["peers"]] == sorted(
            (daily[p] * 20 for p in ("a1", "a3", "a4")), reverse=True)

        # peers chosen by the person: "big" counts
        answer = await client.get("/api/analytics/benchmark", headers=vi, params={
            **RANGE, "entity": ids["a4"], "peers": f"{ids['big']}, {ids['a1']}"})
        bench = await answer.json()
        assert bench["peer_set"] == "chosen" and len(bench["peers"]) == 2
        assert bench["kpis"]["followers"]["percentile"] == 50.0

        # bad input and another account's ids
        for params, status in (({"entity": ids["a1"], "peers": ids["a1"]}, 400),
                               ({"entity": ids["a1"], "peers": stranger}, 404),
                               ({"entity": stranger}, 404), ({}, 400)):
            answer = await client.get("/api/analytics/benchmark", headers=vi,
                                      params={**RANGE, **params})
            assert answer.status == status, (params, await answer.text())
        answer = await client.get("/api/analytics/benchmark", headers=who("other", "b"),
                                  params={**RANGE, "entity": ids["a1"]})
        assert answer.status == 404


def test_follower_snapshots_count_their_latest_reading_not_every_day(db_url: str) -> None:
    """Instagram's follower demographics are stored daily as they are that day: each
    country is its latest reading in the range (per platform id), while a flow's days
    (YouTube's views by country) are summed."""
    async def go() -> None:
        async with migrated(db_url) as db:
            catalog, store, book = Catalog(db), PointStore(db), AudienceBook(db)
            found = await catalog.resolve("acct", [
                Identity("instagram", "artist", "ig1", "Ada"),
                Identity("instagram", "artist", "ig2", "Bo"),
                Identity("youtube", "artist", "yt1", "Cy")])
            points = []
            for i in range(29):   # the 29th day is after the range
                de = 1000 + 100 * (i >= 27) + 4000 * (i == 28)
                points += [
                    Point("instagram", "artist", "ig1", "audience_followers", day(i), de,
                          (("country", "DE"),)),
                    Point("instagram", "artist", "ig1", "audience_followers", day(i), 500,
                          (("country", "FR"),)),
                    Point("instagram", "artist", "ig2", "audience_followers", day(i), 300,
                          (("country", "DE"),)),
                    Point("youtube", "artist", "yt1", "audience_views", day(i), 10,
                          (("country", "DE"),))]
            await store.upsert("acct", points)

            async def countries(last: int, entity: str | None = None) -> dict:
                return {(a["source"], a["metric"]): {c["key"]: c["value"]
                                                     for c in a["countries"]}
                        for a in await book.audience("acct", day(0).date(),
                                                     day(last).date(), entity)}

            everyone = await countries(27)
            assert everyone[("instagram", "audience_followers")] == {"DE": 1100 + 300,
                                                                     "FR": 500}
            assert everyone[("youtube", "audience_views")] == {"DE": 10 * 28}
            ada = await countries(27, found[("instagram", "artist", "ig1")].entity_id)
            assert ada == {("instagram", "audience_followers"): {"DE": 1100, "FR": 500}}
            assert (await countries(9))[("instagram", "audience_followers")] == {
                "DE": 1000 + 300, "FR": 500}
    asyncio.run(asyncio.wait_for(go(), 100))


def test_peers_are_found_among_all_the_accounts_artists(db_url: str) -> None:
    """A label of 201 small artists named "Aaa..." (first by name, more than a catalogue
    page) and four of the benchmarked artist's size and genre named "Zed...": those four
    are its similar-size and its genre peers."""
    async def go() -> None:
        async with migrated(db_url) as db:
            catalog, store = Catalog(db), PointStore(db)
            small = [Identity("tiktok", "artist", f"a{i:03d}", f"Aaa {i:03d}")
                     for i in range(201)]
            alike = [Identity("tiktok", "artist", f"z{i}", f"Zed {i}", genres=("jazz",))
                     for i in range(5)]
            found = await catalog.resolve("acct", [*small, *alike])
            await Genres(catalog).reported("acct", alike, found)
            await store.upsert("acct", [
                Point("tiktok", "artist", i.entity_id, "followers_count", day(19),
                      10 if i in small else 100_000) for i in [*small, *alike]])
            ids = {i.entity_id: found[("tiktok", "artist", i.entity_id)].entity_id
                   for i in alike}
            peers = sorted(ids[f"z{i}"] for i in range(4))
            sized = await benchmark(store, catalog, "acct", ids["z4"], FIRST, LAST)
            assert (sized["peer_set"], sized["peers"]) == ("similar_size", peers)
            assert sized["kpis"]["followers"]["percentile"] == 50.0
            genres = await by_genre(store, catalog, Genres(catalog), "acct", ids["z4"], FIRST,
                                    LAST)
            assert [(g["genre"], sorted(g["peers"])) for g in genres["genres"]] == [
                ("jazz", peers)]
            # a bounded request however big the label: sizes read of the first 150 only
            benchmark_module.MAX_SCANNED = 150
            try:
                bounded = await benchmark(store, catalog, "acct", ids["z4"], FIRST, LAST)
            finally:
                benchmark_module.MAX_SCANNED = scanned
            assert bounded["peers"] == []
    scanned = benchmark_module.MAX_SCANNED
    asyncio.run(asyncio.wait_for(go(), 100))
