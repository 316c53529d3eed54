"""The analytics routes over HTTP (SQLite): connect a source, back-fill it as a job and
follow its progress, read a series with growth, the catalogue (merge, split, audit),
freshness and read-only SQL; roles and other accounts refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from social_helpers import header_principal, who

from business.analytics.fakes import FAKES, FakeSources
from business.analytics.services import services
from business.analytics.sources.records import Identity, Point
from dawserver.plugins import PLUGIN_CONTEXT_KEY, install, load_plugins

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def wait_for_run(client: TestClient, run_id: str, headers: dict[str, str]) -> dict:
    async with asyncio.timeout(60):
        while True:
            answer = await client.get(f"/api/analytics/runs/{run_id}", headers=headers)
            run = await answer.json()
            assert answer.status == 200, run
            if run["job_state"] in ("done", "dead"):
                return run
            await asyncio.sleep(0.1)


@asynccontextmanager
async def shazam_app(tmp_path: Path) -> AsyncIterator[tuple[Any, web.Application, TestClient]]:
    """The analytics plug-in on SQLite, its Shazam source pointed at a fake Shazam:
    (the fake, the app, a client of it)."""
    fake = FAKES["shazam"](today=date.today())
    async with FakeSources([fake]) as server:
        config = {"data_dir": tmp_path / "data",
                  "database_url": f"sqlite://{tmp_path / 'r.sqlite3'}",
                  "plugins": {"analytics": {"sources": {"shazam": {
                      "base_url": server.base_url("shazam")}}, "schedule_check_s": 3600}}}
        app = web.Application()
        install(app, config, manager=load_plugins(config), identify=header_principal)
        async with TestClient(TestServer(app)) as client:
            yield fake, app, client


@asynccontextmanager
async def plain_app(tmp_path: Path) -> AsyncIterator[tuple[Any, TestClient]]:
    """The analytics plug-in on SQLite with no source: (its services, a client of it)."""
    config = {"data_dir": tmp_path / "data",
              "database_url": f"sqlite://{tmp_path / 'r.sqlite3'}",
              "plugins": {"analytics": {"schedule_check_s": 3600}}}
    app = web.Application()
    install(app, config, manager=load_plugins(config), identify=header_principal)
    async with TestClient(TestServer(app)) as client:
        yield services(app[PLUGIN_CONTEXT_KEY]), client


async def one_artist(module: Any) -> str:
    """Ada, a Spotify artist with 5 streams on 2024-05-01 in account ``acct``: her id."""
    await module.catalog.resolve("acct", [Identity("spotify", "artist", "a1", "Ada")])
    entity = (await module.catalog.entities("acct", "artist"))[0].entity_id
    await module.store.upsert("acct", [Point("spotify", "artist", "a1", "streams",
                                             datetime(2024, 5, 1, tzinfo=UTC), 5)])
    return entity


async def test_a_source_is_connected_backfilled_and_queried_over_http(tmp_path: Path) -> None:
    async with shazam_app(tmp_path) as (fake, app, client):
        owner, viewer = who("acct", "ada"), who("acct", "vi", "viewer")
        body = {"source": "shazam", "entity_kind": "artist",
                "entity_id": fake.artist_id, "entity_name": "Ada",
                "client_secret": "s3cret-key", "api_key": "api-key"}
        refused = await client.post("/api/analytics/sources", json=body, headers=viewer)
        assert refused.status == 403
        answer = await client.post("/api/analytics/sources", json=body, headers=owner)
        source: dict[str, Any] = await answer.json()
        assert answer.status == 201, source
        assert "s3cret" not in await answer.text()
        listed = await (await client.get("/api/analytics/sources", headers=viewer)).json()
        assert [s["source_id"] for s in listed] == [source["source_id"]]
        assert await (await client.get("/api/analytics/sources",
                                       headers=who("other", "bo"))).json() == []
        bad = await client.post(f"/api/analytics/sources/{source['source_id']}/backfill",
                                json={"from": "2024-05-10", "to": "2024-05-01"},
                                headers=owner)
        assert bad.status == 422 and "swap" in await bad.text()
        for window, why in ((("9999-12-01", "9999-12-31"), "future"),
                            (("0001-01-01", "0001-01-02"), "too early")):
            bad = await client.post(f"/api/analytics/sources/{source['source_id']}/backfill",
                                    json=dict(zip(("from", "to"), window, strict=True)),
                                    headers=owner)
            assert bad.status == 422 and why in await bad.text(), window
        day = fake.today
        first = (day - timedelta(days=20)).isoformat()
        last = (day - timedelta(days=1)).isoformat()
        started = await client.post(
            f"/api/analytics/sources/{source['source_id']}/backfill",
            json={"from": first, "to": last}, headers=owner)
        run = await started.json()
        assert started.status == 202, run
        done = await wait_for_run(client, run["run_id"], viewer)
        assert done["job_state"] == "done" and done["progress"] == 1.0
        assert done["complete_through"] == last and done["points"] > 0
        other = await client.get(f"/api/analytics/runs/{run['run_id']}",
                                 headers=who("other", "bo"))
        assert other.status == 404

        catalog = await (await client.get("/api/analytics/catalog?kind=recording",
                                          headers=viewer)).json()
        assert len(catalog) == len(fake.tracks) and all(e["isrc"] for e in catalog)
        entity = catalog[0]["entity_id"]
        series = await client.get("/api/analytics/series", headers=viewer, params={
            "entity": entity, "metric": "shazams", "from": first, "to": last,
            "by_source": "true"})
        found = await series.json()
        assert series.status == 200, found
        assert len(found["total"]) == 20 and set(found["sources"]) == {"shazam"}
        assert set(found["growth"]) == {"7d", "28d", "90d"}
        assert found["growth"]["7d"]["current"] == sum(v for _, v in found["total"][-7:])
        hidden = await client.get("/api/analytics/series", headers=who("other", "bo"),
                                  params={"entity": entity, "metric": "shazams"})
        assert hidden.status == 404

        as_viewer = await client.post(f"/api/analytics/catalog/{entity}/merge",
                                      json={"others": [catalog[1]["entity_id"]]},
                                      headers=viewer)
        assert as_viewer.status == 403
        merged = await client.post(f"/api/analytics/catalog/{entity}/merge",
                                   json={"others": [catalog[1]["entity_id"]]},
                                   headers=who("acct", "ed", "editor"))
        assert merged.status == 200 and len((await merged.json())["links"]) == 2
        audit = await (await client.get("/api/analytics/audit", headers=viewer)).json()
        assert [(a["action"], a["actor"]) for a in audit] == [("merge", "ed")]

        fresh = await (await client.get("/api/analytics/freshness", headers=viewer)).json()
        assert [f["source"] for f in fresh] == ["shazam"]
        sql = await client.post("/api/analytics/sql", headers=viewer, json={
            "sql": "SELECT count(*) AS n FROM points"})
        assert sql.status == 200 and (await sql.json())["rows"] == [[done["points"]]]
        files = await client.post("/api/analytics/sql", headers=viewer, json={
            "sql": "SELECT * FROM read_csv('/etc/passwd')"})
        assert files.status == 400 and "disabled" in await files.text()
        gone = await client.delete(f"/api/analytics/sources/{source['source_id']}",
                                   headers=owner)
        assert gone.status == 200 and (await gone.json())["state"] == "disconnected"


async def test_runs_stay_readable_after_their_finished_jobs_are_purged(tmp_path: Path) -> None:
    async with shazam_app(tmp_path) as (fake, app, client):
        owner = who("acct", "ada")
        answer = await client.post("/api/analytics/sources", headers=owner, json={
            "source": "shazam", "entity_kind": "artist", "entity_id": fake.artist_id,
            "client_secret": "s3cret-key", "api_key": "api-key"})
        source: dict[str, Any] = await answer.json()
        assert answer.status == 201, source
        last = fake.today - timedelta(days=1)
        started = await client.post(
            f"/api/analytics/sources/{source['source_id']}/backfill", headers=owner,
            json={"from": (last - timedelta(days=6)).isoformat(), "to": last.isoformat()})
        run = await started.json()
        assert started.status == 202, run
        done = await wait_for_run(client, run["run_id"], owner)
        assert done["job_state"] == "done"
        context = app[PLUGIN_CONTEXT_KEY]
        # the job finished long ago: the purger deletes it, the run row stays
        await context.database().execute(
            "UPDATE jobs SET finished_at = 0 WHERE id = ?", done["job_id"])
        assert await context.background.queue.purge(30 * 24 * 3600) == 1
        one = await client.get(f"/api/analytics/runs/{run['run_id']}", headers=owner)
        kept = await one.json()
        assert one.status == 200, kept
        assert (kept["state"], kept["job_state"], kept["progress"]) == ("done", "done", 1.0)
        assert kept["points"] == done["points"]
        listed = await client.get(f"/api/analytics/sources/{source['source_id']}/runs",
                                  headers=owner)
        assert listed.status == 200
        assert [r["run_id"] for r in await listed.json()] == [run["run_id"]]


async def test_days_too_early_to_read_back_from_answer_422(tmp_path: Path) -> None:
    async with plain_app(tmp_path) as (module, client):
        entity = await one_artist(module)
        viewer = who("acct", "vi", "viewer")
        asks = [("/api/analytics/kpis", {"entity": entity}),
                ("/api/analytics/series", {"entity": entity, "metric": "streams"}),
                ("/api/analytics/playlists", {}),
                ("/api/analytics/playlists/changes", {}),
                (f"/api/v1/analytics/artists/{entity}/metrics", {})]
        for path, params in asks:
            for day in ("0001-01-01", "0001-01-10", "0001-06-29"):
                early = await client.get(path, headers=viewer, params={**params, "to": day})
                assert early.status == 422, (path, day, await early.text())
                assert "too early" in await early.text() and "0001-06-30" in await early.text()
            since = await client.get(path, headers=viewer,
                                     params={**params, "from": "0001-01-05",
                                             "to": "2024-05-01"})
            assert since.status == 422, (path, await since.text())
            for day in ("0001-06-30", "9999-12-31"):
                edge = await client.get(path, headers=viewer, params={**params, "to": day})
                assert edge.status == 200, (path, day, await edge.text())


async def test_sql_answers_bytes_as_hex_text(tmp_path: Path) -> None:
    async with plain_app(tmp_path) as (module, client):
        sql = r"SELECT '\x80'::BLOB AS b, ['\x00\xff'::BLOB] AS l, {'k': 'a'::BLOB} AS s"
        answer = await client.post("/api/analytics/sql", headers=who("acct", "vi", "viewer"),
                                   json={"sql": sql})
        assert answer.status == 200, await answer.text()
        assert (await answer.json())["rows"] == [["80", ["00ff"], {"k": "61"}]]


async def test_reversed_or_over_long_ranges_answer_422_on_every_read_route(
        tmp_path: Path) -> None:
    async with plain_app(tmp_path) as (module, client):
        entity = await one_artist(module)
        viewer = who("acct", "vi", "viewer")
        asks = [("/api/analytics/kpis", {"entity": entity}),
                ("/api/analytics/series", {"entity": entity, "metric": "streams"}),
                ("/api/analytics/audience", {}),
                ("/api/analytics/playlists", {}),
                ("/api/analytics/benchmark", {"entity": entity})]
        for path, params in asks:
            for (start, end), words in ((("2024-05-10", "2024-05-01"), "swap them"),
                                        (("0001-06-30", "9999-12-31"), "three years"),
                                        (("2021-04-28", "2024-05-01"), "three years")):
                bad = await client.get(path, headers=viewer,
                                       params={**params, "from": start, "to": end})
                assert bad.status == 422, (path, start, end, await bad.text())
                assert words in await bad.text(), (path, start, end)
            for start in ("2024-05-01", "2021-04-29"):
                good = await client.get(path, headers=viewer,
                                        params={**params, "from": start, "to": "2024-05-01"})
                assert good.status == 200, (path, start, await good.text())
