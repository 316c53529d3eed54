"""Playlist tracking over HTTP (SQLite): Spotify and Apple Music fakes back-filled as jobs;
the placements with their position history, the adds and removes, and a recording's reach
per day (editorial vs user) equal to the fakes' seeded truth; another account 404."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from social_helpers import header_principal, who
from test_analytics_routes import wait_for_run

from business.analytics.fakes import FAKES, FakeSources
from dawserver.plugins import install, load_plugins

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(150)]
FIRST, LAST = date(2024, 3, 1), date(2024, 6, 29)
SHOWN = (date(2024, 4, 1), LAST)


def reported(fake: Any, days: list[date]) -> list[date]:
    """The days the fake reports any placement (the days playlists were fetched)."""
    return [d for d in days if fake.placements.on(d, fake.track_ids())]


def expected_changes(fake: Any, source: str) -> set[tuple]:
    start, end = SHOWN
    days = reported(fake, fake.days(start - timedelta(days=1), end))
    out = set()
    for playlist in fake.placements.playlists:
        for track in fake.track_ids():
            stay = fake.placements.stay(playlist.id, track)
            if stay is None:
                continue
            for previous, day in zip(days, days[1:], strict=False):
                was, now = stay.position_on(previous), stay.position_on(day)
                if (was is None) != (now is None):
                    out.add((day.isoformat(), "add" if now else "remove", source, playlist.id,
                             track, "editorial" if playlist.editorial else "user"))
    return out


async def test_playlists_are_tracked_across_sources(tmp_path: Path) -> None:
    fakes = [FAKES["spotify"](), FAKES["apple_music"]()]
    async with FakeSources(fakes) as server:
        config = {"data_dir": tmp_path / "data",
                  "database_url": f"sqlite://{tmp_path / 'p.sqlite3'}",
                  "plugins": {"analytics": {"sources": {
                      f.source: {"base_url": server.base_url(f.source)} for f in fakes},
                      "schedule_check_s": 3600}}}
        app = web.Application()
        install(app, config, manager=load_plugins(config), identify=header_principal)
        async with asyncio.timeout(140), TestClient(TestServer(app)) as client:
            owner, viewer, other = who("acct", "ada"), who("acct", "vi", "viewer"), who("o", "bo")
            for fake in fakes:
                answer = await client.post("/api/analytics/sources", headers=owner, json={
                    "source": fake.source, "entity_kind": "artist", "entity_id": fake.artist_id,
                    "entity_name": "Ada", "client_id": "client-id",
                    "client_secret": "client-secret", "api_key": "api-key"})
                source = await answer.json()
                assert answer.status == 201, source
                started = await client.post(
                    f"/api/analytics/sources/{source['source_id']}/backfill", headers=owner,
                    json={"from": FIRST.isoformat(), "to": LAST.isoformat()})
                run = await started.json()
                assert (await wait_for_run(client, run["run_id"], viewer))["job_state"] == "done"
            spotify, apple = fakes
            shown = {"from": SHOWN[0].isoformat(), "to": SHOWN[1].isoformat()}

            # placements: every (track, playlist) of the range, its positions day by day
            answer = await client.get("/api/analytics/playlists", headers=viewer, params=shown)
            placed = await answer.json()
            assert answer.status == 200, placed
            truth: dict[tuple, list] = defaultdict(list)
            for fake in fakes:
                for day in fake.days(*SHOWN):
                    for playlist, track, position in fake.placements.on(day, fake.track_ids()):
                        truth[(fake.source, playlist.id, track)].append(
                            [day.isoformat(), position])
            assert {(p["source"], p["playlist_id"], p["track_id"]): p["positions"]
                    for p in placed} == truth
            names = {p.id: p for f in fakes for p in f.placements.playlists}
            for p in placed:
                playlist = names[p["playlist_id"]]
                assert p["playlist_name"] == playlist.name
                assert p["curator"] == ("editorial" if playlist.editorial else "user")
                assert p["best_position"] == min(pos for _, pos in p["positions"])
                assert p["track_name"] and p["entity_id"]
            assert {p["curator"] for p in placed} == {"editorial", "user"}

            # adds and removes, against the seeded stays
            answer = await client.get("/api/analytics/playlists/changes", headers=viewer,
                                      params=shown)
            changes = await answer.json()
            assert answer.status == 200, changes
            assert {(c["day"], c["change"], c["source"], c["playlist_id"], c["track_id"],
                     c["curator"]) for c in changes} == (
                expected_changes(spotify, "spotify") | expected_changes(apple, "apple_music"))
            assert {c["change"] for c in changes} == {"add", "remove"}

            # reach of one recording on both platforms (linked by ISRC), per curator
            catalog = await (await client.get("/api/analytics/catalog?kind=recording",
                                              headers=viewer)).json()
            track = spotify.tracks[0]
            entity = next(e for e in catalog if e["isrc"] == track.isrc)
            ids = {"spotify": spotify.track_id(track.index),
                   "apple_music": apple.song_id(track.index)}
            answer = await client.get("/api/analytics/playlists/reach", headers=viewer,
                                      params={**shown, "entity": entity["entity_id"]})
            reach = await answer.json()
            assert answer.status == 200, reach
            want: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
            for fake in fakes:
                for day in fake.days(*SHOWN):
                    for playlist, _track, _ in fake.placements.on(day, [ids[fake.source]]):
                        count = fake.placements.followers(playlist.id, day)
                        curator = "editorial" if playlist.editorial else "user"
                        want[day.isoformat()]["total"] += count
                        want[day.isoformat()][curator] += count
                        want[day.isoformat()]["playlists"] += 1
            assert {d["day"]: {k: d[k] for k in ("total", "editorial", "user", "playlists")
                               if d[k]} for d in reach["days"]} == {
                day: dict(v) for day, v in want.items()}

            # one entity's placements only; another account sees nothing, 404 for the entity
            mine = await (await client.get("/api/analytics/playlists", headers=viewer, params={
                **shown, "entity": entity["entity_id"]})).json()
            assert mine and {(p["source"], p["track_id"]) for p in mine} <= set(ids.items())
            assert await (await client.get("/api/analytics/playlists", headers=other,
                                           params=shown)).json() == []
            hidden = await client.get("/api/analytics/playlists/reach", headers=other,
                                      params={"entity": entity["entity_id"]})
            assert hidden.status == 404
            unnamed = await client.get("/api/analytics/playlists/reach", headers=viewer)
            assert unnamed.status == 400 and "entity" in await unnamed.text()
            reversed_ = await client.get("/api/analytics/playlists", headers=viewer,
                                         params={"from": "2024-05-02", "to": "2024-05-01"})
            assert reversed_.status == 422 and "swap" in await reversed_.text()
