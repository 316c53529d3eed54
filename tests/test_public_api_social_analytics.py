"""Social's and analytics' routes under /api/v1 on a running server: the account's posts
with their per-network targets, the catalogue's artists and their daily KPI series.
Cursor pages, sparse fields, filters, bad input, the scopes (403 without them) and
another account's objects (404)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from public_api_helpers import key_of, signed_in, x_channel
from smtp_server import SmtpServer

from business.analytics.services import services as analytics
from business.analytics.sources.records import Identity, Point
from business.social.models import Post, PostTarget
from business.social.services import services as social
from dawserver.keys import PLUGIN_CONTEXT_KEY

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]

SCOPES = ["social.read", "analytics.read"]


def _post(account_id: str, post_id: str, channel_id: str, publish_at: float | None,
          state: str, made: float, campaign: str = "") -> Post:
    published = publish_at if state == "published" else None
    target = PostTarget(channel_id, state=state, attempts=1 if published else 0,
                        remote_id="remote-1" if published else "",
                        url="https://x.example/ada/1" if published else "",
                        published_at=published)
    return Post(account_id, post_id, account_id, f"text of {post_id}", [], None, None,
                campaign, publish_at, "Europe/Paris", state, 1, None, made, made, [target])


async def test_posts_are_public_v1_resources(tmp_path: Path, smtp_server: SmtpServer
                                             ) -> None:
    async with signed_in(tmp_path, smtp_server) as (
            app, (ada_person, ada), (bob_person, bob)):
        ada_all = await key_of(ada_person, ada, SCOPES)
        bob_all = await key_of(bob_person, bob, SCOPES)
        module = social(app[PLUGIN_CONTEXT_KEY])
        now = time.time()
        async with module.store.db.transaction() as tx:
            channel = await x_channel(module, tx, ada.person_id)
            for post in (_post(ada.person_id, "p-later", channel, now + 3600,
                               "scheduled", now, "tour"),
                         _post(ada.person_id, "p-done", channel, now - 3600,
                               "published", now - 7200, "tour"),
                         _post(ada.person_id, "p-draft", channel, None, "draft", now)):
                await module.store.insert_post(tx, post)

        # by publish time, the unscheduled last, in cursor pages
        status, first, _ = await ada_all.call("GET", "/api/v1/social-posts?limit=2")
        assert status == 200, first
        assert [p["id"] for p in first["data"]] == ["p-done", "p-later"]
        (target,) = first["data"][0]["targets"]
        assert target["network"] == "x" and target["state"] == "published"
        assert target["url"] == "https://x.example/ada/1" and target["published_at"]
        assert first["data"][1]["targets"][0]["published_at"] is None
        status, rest, _ = await ada_all.call(
            "GET", f"/api/v1/social-posts?limit=2&cursor={first['next_cursor']}"
                   "&fields=state,publish_at")
        assert status == 200 and rest == {"data": [
            {"id": "p-draft", "state": "draft", "publish_at": None}], "next_cursor": None}
        for query, ids in (("state=scheduled", ["p-later"]),
                           ("campaign=tour", ["p-done", "p-later"]),
                           (f"channel_id={channel}", ["p-done", "p-later", "p-draft"]),
                           ("channel_id=elsewhere", [])):
            status, found, _ = await ada_all.call("GET", f"/api/v1/social-posts?{query}")
            assert status == 200 and [p["id"] for p in found["data"]] == ids, query
        status, one, headers = await ada_all.call("GET", "/api/v1/social-posts/p-later")
        assert status == 200 and one["state"] == "scheduled" and headers["ETag"]
        assert one["publish_at"].endswith("Z") and one["time_zone"] == "Europe/Paris"
        status, problem, _ = await ada_all.call("GET", "/api/v1/social-posts?state=lost")
        assert status == 422, problem

        # the scope is social.read; another account's posts are not there
        assert (await ada.call("GET", "/api/v1/social-posts"))[0] == 403
        status, empty, _ = await bob_all.call("GET", "/api/v1/social-posts")
        assert status == 200 and empty["data"] == []
        status, problem, _ = await bob_all.call("GET", "/api/v1/social-posts/p-later")
        assert status == 404 and problem["status"] == 404, problem


def _day(d: int) -> datetime:
    return datetime(2024, 5, d, tzinfo=UTC)


async def test_artists_and_their_kpis_are_public_v1_resources(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server) as (
            app, (ada_person, ada), (bob_person, bob)):
        ada_all = await key_of(ada_person, ada, SCOPES)
        bob_all = await key_of(bob_person, bob, SCOPES)
        module = analytics(app[PLUGIN_CONTEXT_KEY])
        found = await module.catalog.resolve(ada.person_id, [
            Identity("spotify", "artist", "sp-zed", "Zed Quartet"),
            Identity("spotify", "artist", "sp-ada", "Ada Lovelace Band"),
            Identity("spotify", "track", "sp-song", "A Song", isrc="QZES62400009")])
        artist = found[("spotify", "artist", "sp-ada")].entity_id
        track = found[("spotify", "track", "sp-song")].entity_id
        await module.store.upsert(ada.person_id, [
            *(Point("spotify", "artist", "sp-ada", "streams", _day(d), 10 * d)
              for d in (1, 2, 3, 4)),
            *(Point("spotify", "artist", "sp-ada", "listeners", _day(d), 500 + d)
              for d in (2, 3))])

        # the catalogue's artists by name, not its tracks; filtered; in pages
        status, first, _ = await ada_all.call("GET", "/api/v1/analytics/artists?limit=1")
        assert status == 200, first
        assert [a["name"] for a in first["data"]] == ["Ada Lovelace Band"]
        assert first["data"][0]["platforms"][0]["platform_id"] == "sp-ada"
        status, rest, _ = await ada_all.call(
            "GET", f"/api/v1/analytics/artists?limit=1&cursor={first['next_cursor']}")
        assert status == 200 and [a["name"] for a in rest["data"]] == ["Zed Quartet"]
        assert rest["next_cursor"] is None
        status, named, _ = await ada_all.call(
            "GET", "/api/v1/analytics/artists?name_contains=QUART&fields=name")
        assert status == 200 and named["data"] == [
            {"id": found[("spotify", "artist", "sp-zed")].entity_id, "name": "Zed Quartet"}]
        status, one, _ = await ada_all.call("GET", f"/api/v1/analytics/artists/{artist}")
        assert status == 200 and one["platforms"][0]["source"] == "spotify"

        # KPI days over a range: listeners (running totals), then streams (flows)
        metrics = f"/api/v1/analytics/artists/{artist}/metrics"
        status, days, _ = await ada_all.call("GET", f"{metrics}?from=2024-05-02"
                                                    "&to=2024-05-03")
        assert status == 200, days
        assert [d["id"] for d in days["data"]] == [
            "listeners:2024-05-02", "listeners:2024-05-03",
            "streams:2024-05-02", "streams:2024-05-03"]
        assert days["data"][3]["value"] == 30 and days["data"][3]["sources"] == {
            "spotify": 30} and days["data"][3]["running_total"] is False
        assert days["data"][0]["running_total"] is True
        status, streams, _ = await ada_all.call(
            "GET", f"{metrics}?metric=streams&from=2024-05-01&to=2024-05-31&limit=3"
                   "&fields=value")
        assert status == 200 and [d["value"] for d in streams["data"]] == [10, 20, 30]
        status, tail, _ = await ada_all.call(
            "GET", f"{metrics}?metric=streams&from=2024-05-01&to=2024-05-31&limit=3"
                   f"&cursor={streams['next_cursor']}")
        assert status == 200 and [d["date"] for d in tail["data"]] == ["2024-05-04"]
        status, none, _ = await ada_all.call("GET", metrics)  # the last 28 days
        assert status == 200 and none["data"] == []

        # bad input says what to do
        for query, says in (("from=2024-05-03&to=2024-05-01", "after"),
                            ("from=2023-01-01&to=2024-05-01", "366 days"),
                            ("metric=likes", "pattern")):
            status, problem, _ = await ada_all.call("GET", f"{metrics}?{query}")
            assert status in (400, 422) and says in problem["detail"], (query, problem)

        # a track is no artist; scopes; another account's artists are not there
        status, _, _ = await ada_all.call("GET", f"/api/v1/analytics/artists/{track}")
        assert status == 404
        assert (await ada.call("GET", "/api/v1/analytics/artists"))[0] == 403
        social_only = await key_of(ada_person, ada, ["social.read"])
        assert (await social_only.call("GET", metrics))[0] == 403
        status, empty, _ = await bob_all.call("GET", "/api/v1/analytics/artists")
        assert status == 200 and empty["data"] == []
        for path in (f"/api/v1/analytics/artists/{artist}", metrics):
            status, problem, _ = await bob_all.call("GET", path)
            assert status == 404 and problem["status"] == 404, (path, problem)
