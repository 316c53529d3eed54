"""The composer over HTTP: posts with per-channel variants, checked per network,
versions and cancelled dispatches, the calendar and queue slots."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from social_helpers import InTestNetwork, connect, social_app, who

from business.social.services import services

pytestmark = pytest.mark.timeout(120)
ADA = who("acc", "p_ada", "editor")
BERLIN = ZoneInfo("Europe/Berlin")


def at(days: float, hour: int = 9) -> str:
    """An ISO time ``days`` from now at ``hour`` o'clock UTC."""
    day = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0).isoformat()


async def _two_channels(client: Any) -> tuple[str, str]:
    x = await connect(client, client.x, "acc", "p_ada")
    bsky = await connect(client, client.bsky, "acc", "p_ada")
    return x["channel_id"], bsky["channel_id"]


def _app(tmp_path: Path, db_url: str) -> Any:
    x, bsky = InTestNetwork("x"), InTestNetwork("bluesky")
    manager = social_app(tmp_path, db_url, x, bsky)

    class Wrapped:
        async def __aenter__(self) -> Any:
            client, context = await manager.__aenter__()
            client.x, client.bsky = x, bsky
            return client, context

        async def __aexit__(self, *exc: object) -> None:
            await manager.__aexit__(*exc)

    return Wrapped()


def test_a_post_with_variants_is_checked_per_network_and_versioned(tmp_path: Path,
                                                                  db_url: str) -> None:
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            x, bsky = await _two_channels(client)
            too_long = "la " * 120   # 360 characters: over X's 280 and Bluesky's 300
            refused = await client.post("/api/social/posts", headers=ADA, json={
                "text": "New single out Friday", "targets": [
                    {"channel_id": x, "text": too_long}, {"channel_id": bsky}]})
            assert refused.status == 422
            problems = (await refused.json())["problems"]
            assert {(p["channel_id"], p["field"]) for p in problems} == {(x, "text")}
            assert await context.database().fetchval(
                "SELECT COUNT(*) FROM social_posts") == 0

            created = await client.post("/api/social/posts", headers=ADA, json={
                "text": "New single out Friday", "campaign": "night-drive",
                "link": "https://example.org/night-drive",
                "publish_at": "2031-05-02T18:30", "time_zone": "Europe/Berlin",
                "targets": [{"channel_id": x, "text": "Out Friday! #newmusic"},
                            {"channel_id": bsky}]})
            assert created.status == 201, await created.text()
            post = await created.json()
            assert post["publish_at"] == "2031-05-02T18:30:00+02:00"
            assert (post["state"], post["version"], post["author_id"]) == (
                "draft", 1, "p_ada")
            variants = {t["channel_id"]: t for t in post["targets"]}
            assert variants[x]["text"] == "Out Friday! #newmusic"
            assert variants[bsky]["text"] is None          # the post's own text
            assert variants[x]["dedupe_key"] == f"{post['post_id']}:{x}"
            path = f"/api/social/posts/{post['post_id']}"

            # a time with an offset and no zone moves the post, which keeps its zone
            edited = await (await client.patch(path, headers=ADA, json={
                "publish_at": "2031-05-02T20:00:00Z"})).json()
            assert (edited["version"], edited["publish_at"], edited["time_zone"]) == (
                2, "2031-05-02T22:00:00+02:00", "Europe/Berlin")
            assert edited["text"] == "New single out Friday"
            bad = await client.patch(path, headers=ADA, json={"text": too_long})
            assert bad.status == 422
            assert (await (await client.get(path, headers=ADA)).json())["version"] == 2
            for wrong, words in [({"publish_at": "2031-13-45T00:00"}, "ISO 8601"),
                                 ({"publish_at": "2031-05-02T18:30"}, "offset"),
                                 ({"publish_at": "2031-03-30T02:30",
                                   "time_zone": "Europe/Berlin"}, "does not exist"),
                                 ({"time_zone": "Mars/Olympus"}, "unknown time zone")]:
                answer = await client.patch(path, headers=ADA, json=wrong)
                assert answer.status == 400, wrong
                assert words in (await answer.json())["error"]
            eve = who("eve", "p_eve", "owner")
            assert (await client.get(path, headers=eve)).status == 404
            assert (await client.patch(path, headers=eve, json={"text": "x"})).status == 404
            assert (await client.delete(path, headers=eve)).status == 404
            stolen = await client.post("/api/social/posts", headers=eve, json={
                "text": "hi", "targets": [{"channel_id": x}]})
            assert stolen.status == 404
            viewer = await client.post("/api/social/posts", headers=who("acc", "p_v", "viewer"),
                                       json={"text": "hi", "targets": [{"channel_id": x}]})
            assert viewer.status == 403

    asyncio.run(go())


def test_editing_or_deleting_a_scheduled_post_cancels_its_dispatch(tmp_path: Path,
                                                                  db_url: str) -> None:
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, context):
            x, _ = await _two_channels(client)
            post = await (await client.post("/api/social/posts", headers=ADA, json={
                "text": "Tour dates", "publish_at": at(3), "targets": [
                    {"channel_id": x}]})).json()
            path = f"/api/social/posts/{post['post_id']}"
            submitted = await (await client.post(f"{path}/submit", headers=ADA,
                                                 json={})).json()
            assert (submitted["state"], submitted["version"]) == ("scheduled", 2)
            assert {t["state"] for t in submitted["targets"]} == {"scheduled"}
            edited = await (await client.patch(path, headers=ADA,
                                               json={"text": "Tour dates (new city)"})).json()
            assert (edited["state"], edited["version"]) == ("scheduled", 3)
            assert {t["version"] for t in edited["targets"]} == {3}
            gone = await client.delete(path, headers=ADA)
            assert (await gone.json())["state"] == "cancelled"
            assert (await client.get(path, headers=ADA)).status == 404
            row = await context.database().fetchrow(
                "SELECT state, version FROM social_posts WHERE post_id = ?", post["post_id"])
            assert row == {"state": "cancelled", "version": 4}  # what a dispatch will see
            audit = await services(context).store.audit_of("acc", f"post:{post['post_id']}")
            cancelled = [a["detail"] for a in audit if a["action"] == "dispatch.cancelled"]
            assert cancelled == [{"version": 2, "why": "edited"},
                                 {"version": 3, "why": "deleted"}]
            past = await (await client.post("/api/social/posts", headers=ADA, json={
                "text": "Old news", "publish_at": at(-1), "targets": [
                    {"channel_id": x}]})).json()
            late = await client.post(f"/api/social/posts/{past['post_id']}/submit",
                                     headers=ADA, json={})
            assert late.status == 400 and "past" in (await late.json())["error"]
            await context.database().execute(
                "UPDATE social_posts SET state = 'publishing' WHERE post_id = ?",
                past["post_id"])
            busy = await client.patch(f"/api/social/posts/{past['post_id']}", headers=ADA,
                                      json={"text": "too late"})
            assert busy.status == 409

    asyncio.run(go())


def test_the_calendar_lists_a_window_with_filters(tmp_path: Path, db_url: str) -> None:
    async def go() -> None:
        async with _app(tmp_path, db_url) as (client, _):
            x, bsky = await _two_channels(client)
            made = {}
            for name, when, channels, campaign in [
                    ("mon", at(10), [x], "tour"), ("tue", at(11), [bsky], "tour"),
                    ("far", at(60), [x, bsky], "single"), ("undated", None, [x], "tour")]:
                body = {"text": name, "campaign": campaign, "publish_at": when,
                        "targets": [{"channel_id": c} for c in channels]}
                made[name] = (await (await client.post("/api/social/posts", headers=ADA,
                                                       json=body)).json())["post_id"]

            async def window(**query: str) -> list[str]:
                answer = await client.get("/api/social/calendar", headers=ADA,
                                          params={"from": at(9, 0), "to": at(30, 0), **query})
                assert answer.status == 200, await answer.text()
                return [e["text"] for e in await answer.json()]

            assert await window() == ["mon", "tue"]
            assert await window(channel=bsky) == ["tue"]
            assert await window(campaign="single") == []
            assert await window(state="scheduled") == []
            assert await window(to=at(70, 0)) == ["mon", "tue", "far"]
            wide = await client.get("/api/social/calendar", headers=ADA,
                                    params={"from": at(0), "to": at(200)})
            assert wide.status == 400
            other = await client.get("/api/social/calendar", headers=who("eve", "p_eve"),
                                     params={"from": at(9, 0), "to": at(30, 0)})
            assert await other.json() == []

    asyncio.run(go())


def test_the_next_free_queue_slot_skips_taken_ones_across_a_clock_change(
        tmp_path: Path) -> None:
    async def go() -> None:
        async with _app(tmp_path, f"sqlite://{tmp_path / 's.db'}") as (client, _):
            x, _ = await _two_channels(client)
            slots = f"/api/social/channels/{x}/slots"
            owner = who("acc", "p_ada")
            saved = await client.put(slots, headers=owner, json={
                "time_zone": "Europe/Berlin",
                "slots": [{"weekday": "thu", "time": "18:00"},
                          {"weekday": "Monday", "time": "09:30"}]})
            assert await saved.json() == {"time_zone": "Europe/Berlin", "slots": [
                {"weekday": "mon", "time": "09:30"}, {"weekday": "thu", "time": "18:00"}]}
            # 2031-03-27 is a Thursday; Berlin moves its clocks on Sunday 2031-03-30
            after = "2031-03-27T19:00:00+01:00"
            first = await (await client.get(f"/api/social/channels/{x}/next-slot",
                                            headers=ADA, params={"after": after})).json()
            assert first["at"] == "2031-03-31T09:30:00+02:00"   # summer time now
            await client.post("/api/social/posts", headers=ADA, json={
                "text": "takes the slot", "publish_at": first["at"],
                "targets": [{"channel_id": x}]})
            second = await (await client.get(f"/api/social/channels/{x}/next-slot",
                                             headers=ADA, params={"after": after})).json()
            assert second["at"] == "2031-04-03T18:00:00+02:00"
            bad = await client.put(slots, headers=owner, json={
                "slots": [{"weekday": "someday", "time": "09:30"}]})
            assert bad.status == 400
            editor = await client.put(slots, headers=ADA, json={"slots": []})
            assert editor.status == 403      # slots are the channel owners' to set

    asyncio.run(go())


@pytest.mark.parametrize("bad_zone", ["Mars/Olympus", "../../etc/passwd"])
def test_a_bad_zone_after_an_offset_is_refused_and_nothing_is_stored(tmp_path: Path,
                                                                     bad_zone: str) -> None:
    async def go() -> None:
        async with _app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (client, context):
            x, _ = await _two_channels(client)
            bad_time = f"2031-05-02T18:30:00+02:00[{bad_zone}]"
            made = await client.post("/api/social/posts", headers=ADA, json={
                "text": "hello", "publish_at": bad_time, "targets": [{"channel_id": x}]})
            assert made.status == 400
            assert "unknown time zone" in (await made.json())["error"]
            db = context.database()
            assert await db.fetchval("SELECT COUNT(*) FROM social_posts") == 0
            good = await (await client.post("/api/social/posts", headers=ADA, json={
                "text": "hello", "publish_at": "2031-05-02T18:30:00+02:00[Europe/Berlin]",
                "targets": [{"channel_id": x}]})).json()
            assert good["time_zone"] == "Europe/Berlin"
            path = f"/api/social/posts/{good['post_id']}"
            edited = await client.patch(path, headers=ADA, json={"publish_at": bad_time})
            assert edited.status == 400
            assert (await db.fetchval("SELECT time_zone FROM social_posts")) == "Europe/Berlin"
            for listing in ("/api/social/posts", path):
                assert (await client.get(listing, headers=ADA)).status == 200

    asyncio.run(go())
