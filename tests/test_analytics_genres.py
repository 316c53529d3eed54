"""Benchmarking within a genre: artists' genres from the platforms' identities (kept as
the catalogue resolves them, normalised) or set by a person (audited, standing alone until
cleared); an artist's KPIs ranked among the account's artists of each of its genres,
checked against the percentile and quartile functions (SQLite and PostgreSQL); the routes
over HTTP (roles, bad input, another account's artist 404)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from analytics_helpers import migrated
from social_helpers import who
from test_analytics_audience import app_for

from business.analytics.benchmark import BadPeers, by_genre, percentile_rank, quantile
from business.analytics.catalog import Catalog, EntityNotFound
from business.analytics.genres import BadGenres, Genres, clean
from business.analytics.services import services
from business.analytics.sources.records import Identity, Point
from business.analytics.store import PointStore
from dawserver.plugins import PLUGIN_CONTEXT_KEY

pytestmark = pytest.mark.timeout(120)
FIRST, LAST = date(2024, 3, 1), date(2024, 3, 20)
#: Platform id -> (name, the genres its platform reports, followers, streams a day).
ARTISTS = {
    "ada": ("Ada", ("Indie Pop", "Electronic"), 5000.0, 40.0),
    "bo": ("Bo", ("indie  pop",), 3000.0, 10.0),
    "cy": ("Cy", ("INDIE POP", "dream pop"), 9000.0, 80.0),
    "di": ("Di", ("electronic",), 1000.0, 5.0),
    "ed": ("Ed", ("metal",), 7000.0, 70.0),
    "fa": ("Fa", (), 2000.0, 20.0),
}


def at(i: int) -> datetime:
    d = FIRST + timedelta(days=i)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


async def seeded(catalog: Catalog, store: PointStore, account: str = "acct") -> dict[str, str]:
    """The artists on two platforms (genres from one), their followers and streams; platform
    id -> catalogue entity id."""
    genres = Genres(catalog)
    identities = [Identity("tiktok", "artist", pid, name, genres=tags)
                  for pid, (name, tags, _, _) in ARTISTS.items()]
    identities += [Identity("spotify", "artist", pid, name)
                   for pid, (name, _, _, _) in ARTISTS.items()]
    matches = await catalog.resolve(account, identities)
    await genres.reported(account, identities, matches)
    points = [Point("tiktok", "artist", pid, "followers_count", at(i), f + i)
              for pid, (_, _, f, _) in ARTISTS.items() for i in range(20)]
    points += [Point("spotify", "artist", pid, "streams", at(i), s)
               for pid, (_, _, _, s) in ARTISTS.items() for i in range(20)]
    await store.upsert(account, points)
    return {pid: matches[("tiktok", "artist", pid)].entity_id for pid in ARTISTS}


def test_genres_are_normalised_and_checked() -> None:
    assert clean([" Hip  Hop ", "hip hop", "Jazz"]) == ["hip hop", "jazz"]
    for bad in ([""], ["   "], ["x" * 61], [f"g{i}" for i in range(11)]):
        with pytest.raises(BadGenres):
            clean(bad)


def test_an_artist_is_ranked_within_each_of_its_genres(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            catalog, store = Catalog(db), PointStore(db)
            genres = Genres(catalog)
            ids = await seeded(catalog, store)
            await seeded(catalog, store, "other")
            every = await genres.of("acct")
            assert every[ids["bo"]] == ["indie pop"]
            assert every[ids["ada"]] == ["electronic", "indie pop"]
            assert ids["fa"] not in every

            found = await by_genre(store, catalog, genres, "acct", ids["ada"], FIRST, LAST)
            ranks = {g["genre"]: g for g in found["genres"]}
            assert set(ranks) == {"electronic", "indie pop"}
            assert set(ranks["indie pop"]["peers"]) == {ids["bo"], ids["cy"]}
            assert ranks["electronic"]["peers"] == [ids["di"]]
            last = 19
            followers = ranks["indie pop"]["kpis"]["followers"]
            theirs = [ARTISTS[p][2] + last for p in ("bo", "cy")]
            assert followers["value"] == ARTISTS["ada"][2] + last
            assert followers["percentile"] == percentile_rank(followers["value"], theirs) == 50
            assert followers["median"] == quantile(theirs, 0.5)
            streams = ranks["electronic"]["kpis"]["streams"]
            assert streams["value"] == 40.0 * 20 and streams["percentile"] == 100.0
            assert [p["name"] for p in streams["peers"]] == ["Di"]

            # a person's genres stand alone; cleared, the platforms' count again
            assert await genres.set("acct", ids["ed"], ["Indie Pop"], "ada") == ["indie pop"]
            found = await by_genre(store, catalog, genres, "acct", ids["ada"], FIRST, LAST)
            indie = next(g for g in found["genres"] if g["genre"] == "indie pop")
            assert ids["ed"] in indie["peers"]
            assert indie["kpis"]["followers"]["percentile"] == percentile_rank(
                ARTISTS["ada"][2] + last, [*theirs, ARTISTS["ed"][2] + last])
            # re-ingesting the platforms' genres does not undo it
            again = [Identity("tiktok", "artist", "ed", "Ed", genres=("metal",))]
            await genres.reported("acct", again, await catalog.resolve("acct", again))
            assert (await genres.of("acct"))[ids["ed"]] == ["indie pop"]
            assert await genres.set("acct", ids["ed"], [], "ada") == ["metal"]
            audit = [a for a in await catalog.audit("acct") if a["action"] == "genres"]
            assert len(audit) == 2 and all(a["actor"] == "ada" for a in audit)

            # an artist without a genre, a recording, another account's artist
            with pytest.raises(BadPeers, match="has no genre"):
                await by_genre(store, catalog, genres, "acct", ids["fa"], FIRST, LAST)
            track = await catalog.resolve("acct", [Identity("tiktok", "track", "t1", "Song")])
            with pytest.raises(BadGenres, match="genres are set on artists"):
                await genres.set("acct", track[("tiktok", "track", "t1")].entity_id, ["x"],
                                 "ada")
            stranger = (await seeded(catalog, store, "third"))["ada"]
            with pytest.raises(EntityNotFound):
                await by_genre(store, catalog, genres, "acct", stranger, FIRST, LAST)
            with pytest.raises(EntityNotFound):
                await genres.set("acct", stranger, ["x"], "ada")
            assert (await genres.of("third"))[stranger] == ["electronic", "indie pop"]
    asyncio.run(asyncio.wait_for(go(), 100))


@pytest.mark.asyncio
async def test_genre_routes(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with asyncio.timeout(100), TestClient(TestServer(app)) as client:
        module = services(app[PLUGIN_CONTEXT_KEY])
        ids = await seeded(module.catalog, module.store)
        owner, viewer, other = who("acct", "ada"), who("acct", "vi", "viewer"), who("o", "b")
        listed = await (await client.get("/api/analytics/genres", headers=viewer)).json()
        assert {a["entity_id"]: a["genres"] for a in listed}[ids["cy"]] == [
            "dream pop", "indie pop"]
        path = f"/api/analytics/catalog/{ids['fa']}/genres"
        assert (await client.put(path, headers=viewer, json={"genres": ["jazz"]})).status == 403
        for bad in ({"genres": [""]}, {"genres": ["x"] * 11}, {}):
            answer = await client.put(path, headers=owner, json=bad)
            assert answer.status == 422, (bad, await answer.text())
        answer = await client.put(path, headers=owner, json={"genres": ["Indie Pop"]})
        assert (await answer.json())["genres"] == ["indie pop"]
        assert (await client.put(path, headers=other, json={"genres": ["x"]})).status == 404

        params = {"from": FIRST.isoformat(), "to": LAST.isoformat(), "entity": ids["fa"]}
        answer = await client.get("/api/analytics/benchmark/genres", headers=viewer,
                                  params=params)
        found = await answer.json()
        assert answer.status == 200, found
        [indie] = found["genres"]
        assert set(indie["peers"]) == {ids["ada"], ids["bo"], ids["cy"]}
        assert indie["kpis"]["followers"]["percentile"] == 0.0
        answer = await client.get("/api/analytics/benchmark/genres", headers=viewer,
                                  params={**params, "entity": ids["di"]})
        assert answer.status == 200
        for who_, extra, status in ((viewer, {"entity": ""}, 400),
                                    (other, {}, 404)):
            answer = await client.get("/api/analytics/benchmark/genres", headers=who_,
                                      params={**params, **extra})
            assert answer.status == status, await answer.text()
