"""Best-time suggestions from a channel's seeded post history: engagement by weekday ×
hour in the channel's zone, smoothed, with a minimum sample and the network's defaults
below it, each with its reason; posts still settling and other accounts' posts left out."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from social_helpers import InTestNetwork, connect, social_app, who

from business.social.besttimes import DEFAULTS, HOURS, next_at, smooth

pytestmark = pytest.mark.timeout(120)
ADA = who("acc", "p_ada", "editor")
BERLIN = ZoneInfo("Europe/Berlin")


def local(weeks_ago: int, weekday: int, hour: int, minute: int = 10) -> float:
    """Epoch of ``weekday`` ``hour``:``minute`` in Berlin, ``weeks_ago`` weeks back."""
    today = dt.datetime.now(BERLIN).date()
    monday = today - dt.timedelta(days=today.weekday(), weeks=weeks_ago)
    day = monday + dt.timedelta(days=weekday)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=BERLIN).timestamp()


async def seed(db: Any, account: str, channel: str, published_at: float, likes: int,
               *, network: str = "x", impressions: int | None = 1000) -> None:
    """One published post of ``channel`` and two readings (the later one counts)."""
    post = f"post_{account}_{channel}_{int(published_at)}_{likes}"
    await db.execute(
        "INSERT INTO social_posts (account_id, post_id, author_id, text, publish_at, state, "
        "created_at, updated_at) VALUES (?, ?, 'p_ada', 'seeded', ?, 'published', ?, ?)",
        account, post, published_at, published_at, published_at)
    await db.execute(
        "INSERT INTO social_post_targets (account_id, post_id, channel_id, state, dedupe_key, "
        "published_at) VALUES (?, ?, ?, 'published', ?, ?)",
        account, post, channel, f"{post}:{channel}", published_at)
    for taken, scale in ((published_at + 3600, 0), (published_at + 86_400 * 2, 1)):
        await db.execute(
            "INSERT INTO social_metric_snapshots (account_id, post_id, channel_id, taken_at, "
            "network, impressions, likes, comments, shares, clicks) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            account, post, channel, taken, network, impressions, likes * scale,
            2 * scale, 1 * scale)


def _run(tmp_path: Path, db_url: str, body: Any) -> None:
    network = InTestNetwork("x")

    async def go() -> None:
        async with social_app(tmp_path, db_url, network) as (client, context):
            channel = (await connect(client, network, "acc", "p_ada"))["channel_id"]
            put = await client.put(f"/api/social/channels/{channel}/slots", headers=who(
                "acc", "p_ada"), json={"time_zone": "Europe/Berlin", "slots": []})
            assert put.status == 200, await put.text()
            await body(client, context.database(), channel)

    asyncio.run(go())


async def best(client: Any, channel: str, headers: Any = ADA, **query: Any) -> Any:
    answer = await client.get(f"/api/social/channels/{channel}/best-times", headers=headers,
                              params=query)
    return answer.status, await answer.json()


def test_the_hours_that_drew_engagement_are_suggested_with_reasons(tmp_path: Path,
                                                                   db_url: str) -> None:
    async def body(client: Any, db: Any, channel: str) -> None:
        for week in range(1, 9):                       # Tuesdays 18:10: strong
            await seed(db, "acc", channel, local(week, 1, 18), 300)
        for week in range(1, 7):                       # Thursdays 09:10: good
            await seed(db, "acc", channel, local(week, 3, 9), 150)
        for week in range(1, 9):                       # Mondays 12:10: weak
            await seed(db, "acc", channel, local(week, 0, 12), 20)
        await seed(db, "acc", channel, local(2, 6, 3), 5000)    # one lucky Sunday night
        await seed(db, "acc", channel, time.time() - 3600, 9000)  # still settling
        await seed(db, "other", channel, local(1, 5, 20), 9000)   # another account's
        status, answer = await best(client, channel)
        assert status == 200, answer
        assert (answer["source"], answer["sample"], answer["time_zone"]) == (
            "history", 23, "Europe/Berlin")
        got = [(s["weekday"], s["time"]) for s in answer["suggestions"]]
        assert got == [("tue", "18:00"), ("thu", "09:00"), ("mon", "12:00")]
        top = answer["suggestions"][0]
        assert top["posts"] == 8 and "8 posts within an hour of Tue 18:00" in top["reason"]
        when = dt.datetime.fromisoformat(top["next_at"])
        assert (when.weekday(), when.hour, when.minute) == (1, 18, 0)
        assert when.utcoffset() == dt.datetime.fromtimestamp(
            top["next_at_epoch"], BERLIN).utcoffset()
        assert time.time() < top["next_at_epoch"] <= time.time() + 7 * 86_400
        assert "23 published posts" in answer["reason"]
        # one suggestion asked for; another account cannot ask about this channel
        status, one = await best(client, channel, count=1)
        assert [s["time"] for s in one["suggestions"]] == ["18:00"]
        status, _ = await best(client, channel, headers=who("other", "p_bob"))
        assert status == 404

    _run(tmp_path, db_url, body)


def test_too_little_history_falls_back_to_the_networks_defaults(tmp_path: Path,
                                                                db_url: str) -> None:
    async def body(client: Any, db: Any, channel: str) -> None:
        for week in range(1, 6):
            await seed(db, "acc", channel, local(week, 1, 18), 300)
        status, answer = await best(client, channel)
        assert status == 200, answer
        assert (answer["source"], answer["sample"], answer["min_sample"]) == (
            "defaults", 5, 12)
        assert "5 of this channel's posts have results" in answer["reason"]
        assert [(s["weekday"], int(s["time"][:2])) for s in answer["suggestions"]] == list(
            DEFAULTS["x"][:3])
        assert all(s["score"] is None for s in answer["suggestions"])

    _run(tmp_path, db_url, body)


def test_smoothing_shares_neighbouring_hours_and_pulls_toward_the_mean() -> None:
    totals, counts = [0.0] * HOURS, [0.0] * HOURS
    totals[10], counts[10] = 300.0, 1.0      # one post, 300
    totals[HOURS - 1], counts[HOURS - 1] = 100.0, 1.0   # Sunday 23:00 wraps to Monday 00:00
    scores, weights = smooth(totals, counts, prior=2.0, centre=50.0)
    assert weights[10] == 1.0 and weights[11] == 0.5 and weights[12] == 0.0
    assert weights[0] == 0.5                 # the week wraps
    assert scores[10] == pytest.approx((300 + 2 * 50) / 3)
    assert scores[11] == pytest.approx((150 + 2 * 50) / 2.5)
    assert scores[50] == pytest.approx(50)   # no posts near: the channel's centre
    assert scores[10] < 300                  # one post is not the whole story


@pytest.mark.parametrize(("zone_name", "night"), [("Europe/Berlin", dt.date(2031, 3, 30)),
                                                  ("America/New_York", dt.date(2031, 3, 9))])
def test_a_best_hour_the_clocks_skip_comes_a_week_later(zone_name: str,
                                                        night: dt.date) -> None:
    """Sunday 02:00 does not exist on a spring-forward night: its next time is a week on,
    at 02:00, never the 03:00 a naive conversion gives under the 02:00 label."""
    tz = ZoneInfo(zone_name)
    now = dt.datetime.combine(night - dt.timedelta(days=1), dt.time(12), tzinfo=tz).timestamp()
    cell = night.weekday() * 24 + 2
    when = dt.datetime.fromtimestamp(next_at(cell, tz, now), tz)
    assert (when.date(), when.hour, when.minute) == (night + dt.timedelta(days=7), 2, 0)
    when = dt.datetime.fromtimestamp(next_at(cell + 2, tz, now), tz)  # 04:00 is that night
    assert (when.date(), when.hour) == (night, 4)
