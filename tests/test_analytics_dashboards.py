"""Saved dashboards over HTTP (SQLite): saved per person, shared with the team by an editor,
changed only by their owner; a widget's figures equal to the stored points, split by source
or by entity; CSV (formula-safe) and Parquet exports of them; another account's (and
another person's unshared) dashboard answering 404; bad input 422 saying what to do."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from social_helpers import header_principal, who

from business.analytics.exports import csv_bytes, safe_cell
from business.analytics.services import services
from business.analytics.sources.records import Identity, Point
from dawserver.plugins import PLUGIN_CONTEXT_KEY, install, load_plugins

pytestmark = pytest.mark.timeout(120)
DAYS = [date(2024, 5, 1) + timedelta(days=i) for i in range(10)]
EVIL = "=HYPERLINK(\"http://evil.example\",\"click\")"


def test_csv_cells_that_would_run_as_formulas_stay_text() -> None:
    assert [safe_cell(v) for v in ("=1+2", "+1", "-x", "@SUM(A1)", "\tx", "\rx", "ok")] == [
        "'=1+2", "'+1", "'-x", "'@SUM(A1)", "'\tx", "'\rx", "ok"]
    assert safe_cell(-3.5) == -3.5 and safe_cell(None) is None
    rows = list(csv.reader(io.StringIO(csv_bytes(["a", "b"], [[EVIL, -2.0]]).decode())))
    assert rows == [["a", "b"], ["'" + EVIL, "-2.0"]]


def value(source: str, track: str, day: date) -> float:
    return float(100 * (DAYS.index(day) + 1) + (7 if source == "tidal" else 0) + len(track))


@pytest.mark.asyncio
async def test_dashboards_are_saved_shared_and_exported(tmp_path: Path) -> None:
    config = {"data_dir": tmp_path / "data", "database_url": f"sqlite://{tmp_path / 'd.db'}",
              "plugins": {"analytics": {"schedule_check_s": 3600}}}
    app = web.Application()
    install(app, config, manager=load_plugins(config), identify=header_principal)
    async with asyncio.timeout(100), TestClient(TestServer(app)) as client:
        module = services(app[PLUGIN_CONTEXT_KEY])
        await module.catalog.resolve("acct", [
            Identity("spotify", "track", "sp1", EVIL, isrc="QZES62400001"),
            Identity("tidal", "track", "ti1", EVIL, isrc="QZES62400001"),
            Identity("spotify", "track", "sp2", "Night Drive", isrc="QZES62400002")])
        points = [Point(src, "track", track, "streams",
                        datetime(d.year, d.month, d.day, tzinfo=UTC), value(src, track, d))
                  for src, track in (("spotify", "sp1"), ("tidal", "ti1"), ("spotify", "sp2"))
                  for d in DAYS]
        await module.store.upsert("acct", points)
        catalog = await module.catalog.entities("acct", "recording")
        by_isrc = {e.isrc: e.entity_id for e in catalog}
        one, two = by_isrc["QZES62400001"], by_isrc["QZES62400002"]

        vi, ed = who("acct", "vi", "viewer"), who("acct", "ed", "editor")
        vo, other = who("acct", "vo", "viewer"), who("other", "bo")
        body = {"name": "Streams", "filters": {"from": DAYS[0].isoformat(),
                                               "to": DAYS[-1].isoformat()},
                "widgets": [{"widget_id": "by-source", "title": "Per platform", "kind": "line",
                             "metric": "streams", "entities": [one]},
                            {"widget_id": "by-track", "kind": "bar", "metric": "streams",
                             "entities": [one, two], "split": "entity"},
                            {"widget_id": "empty", "kind": "table", "metric": "streams"}]}
        made = await client.post("/api/analytics/dashboards", headers=vi, json=body)
        mine = await made.json()
        assert made.status == 201, mine
        assert (mine["owner"], mine["shared"], mine["mine"]) == ("vi", False, True)
        assert mine["filters"]["from"] == "2024-05-01" and len(mine["widgets"]) == 3
        url = f"/api/analytics/dashboards/{mine['dashboard_id']}"

        # per person: another member does not see an unshared one; another account never
        assert (await client.get(url, headers=vo)).status == 404
        assert await (await client.get("/api/analytics/dashboards", headers=vo)).json() == []
        for path in ("", "/widgets/by-source/data", "/widgets/by-source/export?format=csv"):
            assert (await client.get(url + path, headers=other)).status == 404, path
        assert (await client.put(url, headers=who("other", "vi"), json=body)).status == 404
        assert (await client.delete(url, headers=who("other", "vi"))).status == 404

        # a viewer may not share; an editor shares theirs, which the team then sees
        refused = await client.post(f"{url}/share", headers=vi, json={"shared": True})
        assert refused.status == 403
        team = await (await client.post("/api/analytics/dashboards", headers=ed,
                                        json={**body, "name": "Team"})).json()
        team_url = f"/api/analytics/dashboards/{team['dashboard_id']}"
        shared = await client.post(f"{team_url}/share", headers=ed, json={"shared": True})
        assert shared.status == 200 and (await shared.json())["shared"] is True
        seen = await (await client.get("/api/analytics/dashboards", headers=vo)).json()
        assert [(d["name"], d["mine"]) for d in seen] == [("Team", False)]
        changed = await client.put(team_url, headers=vo, json={**body, "name": "Mine now"})
        assert changed.status == 403 and "only they change it" in await changed.text()
        assert (await client.delete(team_url, headers=vo)).status == 403
        listed = await (await client.get("/api/analytics/dashboards", headers=vi)).json()
        assert [d["name"] for d in listed] == ["Streams", "Team"]

        # a widget's figures are the stored points
        answer = await client.get(f"{url}/widgets/by-source/data", headers=vi)
        data = await answer.json()
        assert answer.status == 200, data
        assert data["columns"] == ["day", "entity_id", "entity_name", "source", "value"]
        assert data["rows"] == sorted(
            [[d.isoformat(), one, EVIL, src, value(src, track, d)]
             for src, track in (("spotify", "sp1"), ("tidal", "ti1")) for d in DAYS],
            key=lambda r: (r[0], r[1], r[3]))
        by_track = await (await client.get(f"{url}/widgets/by-track/data", headers=vi)).json()
        totals = {(r[0], r[1]): r[4] for r in by_track["rows"]}
        assert {r[3] for r in by_track["rows"]} == {"*"}
        for d in DAYS:
            assert totals[(d.isoformat(), one)] == value("spotify", "sp1", d) + value(
                "tidal", "ti1", d)
            assert totals[(d.isoformat(), two)] == value("spotify", "sp2", d)
        empty = await client.get(f"{url}/widgets/empty/data", headers=vi)
        assert empty.status == 422 and "add catalogue entities" in await empty.text()
        assert (await client.get(f"{url}/widgets/nope/data", headers=vi)).status == 404
        # the dashboard's source filter narrows every widget
        only = {**body, "filters": {**body["filters"], "sources": ["tidal"]}}
        assert (await client.put(url, headers=vi, json=only)).status == 200
        tidal = await (await client.get(f"{url}/widgets/by-source/data", headers=vi)).json()
        assert {r[3] for r in tidal["rows"]} == {"tidal"} and len(tidal["rows"]) == len(DAYS)
        assert (await client.put(url, headers=vi, json=body)).status == 200

        # exports: CSV formula-safe, Parquet typed; both the widget's rows
        exported = await client.get(f"{url}/widgets/by-source/export", headers=vi,
                                    params={"format": "csv"})
        assert exported.status == 200 and exported.content_type == "text/csv"
        assert "attachment" in exported.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO((await exported.read()).decode())))
        assert rows[0] == data["columns"] and len(rows) == len(data["rows"]) + 1
        assert {r[2] for r in rows[1:]} == {"'" + EVIL}
        assert [float(r[4]) for r in rows[1:]] == [r[4] for r in data["rows"]]
        parquet = await client.get(f"{url}/widgets/by-source/export", headers=vi,
                                   params={"format": "parquet"})
        assert parquet.status == 200
        assert parquet.content_type == "application/vnd.apache.parquet"
        raw = await parquet.read()
        assert raw[:4] == b"PAR1"
        path = tmp_path / "w.parquet"
        path.write_bytes(raw)
        with duckdb.connect() as con:
            found = con.execute(f"SELECT * FROM read_parquet('{path}') ORDER BY day, source"
                                ).fetchall()
            kinds = {r[0]: r[1] for r in con.execute(
                f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()}
        assert kinds["day"] == "DATE" and kinds["value"] == "DOUBLE"
        assert [[r[0].isoformat(), *r[1:]] for r in found] == data["rows"]
        bad_format = await client.get(f"{url}/widgets/by-source/export", headers=vi,
                                      params={"format": "xlsx"})
        assert bad_format.status == 422

        # bad input says what to do
        twice = {**body, "widgets": [body["widgets"][0], body["widgets"][0]]}
        answer = await client.post("/api/analytics/dashboards", headers=vi, json=twice)
        assert answer.status == 422 and "given twice" in await answer.text()
        pie = {**body, "widgets": [{**body["widgets"][0], "kind": "pie"}]}
        assert (await client.post("/api/analytics/dashboards", headers=vi,
                                  json=pie)).status == 422
        half = {**body, "filters": {"from": "2024-05-01"}}
        answer = await client.post("/api/analytics/dashboards", headers=vi, json=half)
        assert answer.status == 422 and "give both" in await answer.text()

        # only the owner deletes; then it is gone for everyone
        assert (await client.delete(url, headers=vi)).status == 200
        assert (await client.get(url, headers=vi)).status == 404
