"""Milestones within the hour: hourly figures (a flow's count so far that day, a running
total's reading) cross thresholds in the hour they are reached, under the same key as the
day's crossing, so re-ingesting the hours or storing the day later adds nothing; the alert
cooldown and the digest hold and mail them as they do daily ones (a real SMTP server);
a daily source may be polled more often (``poll_every_s``)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from analytics_helpers import worker
from smtp_server import SmtpServer
from test_analytics_milestones import analytics, published, run, send_all

from accounts.mail import Mailer, MailSettings
from business.analytics import milestones as found_in
from business.analytics.digest import send_digests
from business.analytics.services import found_milestones, schedule_due, services
from business.analytics.sources.base import Credentials
from business.analytics.sources.records import Point
from dawserver.account_mail import QUEUE as MAIL_QUEUE
from dawserver.account_mail import MailSender

pytestmark = pytest.mark.timeout(180)
DAY = date(2024, 6, 10)
CHANNEL = "UCs4aHmggTfFrpkPcWSaBN9g"


def hour(h: int, day: date = DAY) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=h)


def views(hours: range, per_hour: float = 60.0) -> list[Point]:
    return [Point("youtube", "artist", CHANNEL, "views", hour(h), per_hour) for h in hours]


def earlier_days(n: int = 5) -> list[Point]:
    """Whole days below 1k views before :data:`DAY`."""
    return [Point("youtube", "artist", CHANNEL, "views",
                  hour(0, DAY - timedelta(days=n - i)), 600 + 50 * i) for i in range(n)]


# -- the readings ---------------------------------------------------------------------------

def test_a_flow_crosses_in_the_hour_its_count_so_far_that_day_reaches_the_threshold() -> None:
    daily = {DAY - timedelta(days=1): 900.0}
    hourly = [(hour(h), 60.0) for h in range(20)]
    found = found_in.hourly_crossings(daily, hourly, [1e3], running_total=False)
    # 17 hours of 60 = 1,020 at 16:00
    assert [(f.key, f.day, f.value, f.detail["hour"]) for f in found] == [
        ("threshold:1000", DAY, 1020.0, hour(16).isoformat())]
    assert found[0].detail["previous"] == 960.0
    assert found[0].detail["previous_hour"] == hour(15).isoformat()
    # the same key as the day's crossing, found by the daily readings later
    daily_only = found_in.crossings([DAY - timedelta(days=1), DAY], [900.0, 1200.0], [1e3])
    assert daily_only[0].key == found[0].key and daily_only[0].day == found[0].day


def test_an_earlier_day_at_the_threshold_means_no_crossing_within_the_hour() -> None:
    daily = {DAY - timedelta(days=2): 800.0, DAY - timedelta(days=1): 1100.0}
    found = found_in.hourly_crossings(daily, [(hour(h), 60.0) for h in range(24)], [1e3],
                                      running_total=False)
    # crossed the day before, by its daily figure: that day, no hour
    assert [(f.day, f.value) for f in found] == [(DAY - timedelta(days=1), 1100.0)]
    assert "hour" not in found[0].detail
    # a series whose first reading is already above it was not seen crossing
    assert found_in.hourly_crossings({}, [(hour(0), 5000.0), (hour(1), 10.0)], [1e3],
                                     running_total=False) == []


def test_a_running_total_crosses_on_its_hourly_reading() -> None:
    hourly = [(hour(h), 9_990.0 + 5 * h) for h in range(6)]
    found = found_in.hourly_crossings({DAY - timedelta(days=1): 9_900.0}, hourly, [1e4],
                                      running_total=True)
    assert [(f.day, f.value, f.detail["hour"]) for f in found] == [
        (DAY, 10_000.0, hour(2).isoformat())]


def test_only_whole_days_of_hours_count_as_days_for_growth() -> None:
    hourly = [(hour(h), 10.0) for h in range(24)] + [
        (hour(h, DAY + timedelta(days=1)), 10.0) for h in range(5)]
    assert found_in.whole_days({DAY - timedelta(days=1): 200.0}, hourly) == {
        DAY - timedelta(days=1): 200.0, DAY: 240.0}


# -- stored once, published -----------------------------------------------------------------

def test_hourly_milestones_are_found_within_the_hour_and_stored_once(db_url: str,
                                                                     tmp_path: Path) -> None:
    now = hour(17) + timedelta(minutes=20)

    async def go() -> None:
        async with analytics(db_url, tmp_path, now=now) as (context, _server, _jobs):
            module = services(context)

            async def stored(points: list[Point], grain: str) -> list[dict[str, Any]]:
                await module.store.upsert("acct", points, grain=grain)
                return await found_milestones(context, module, "acct", points, grain)

            assert await stored(earlier_days(), "daily") == []
            assert await stored(views(range(0, 11)), "hourly") == []   # 660 so far
            new = await stored(views(range(11, 18)), "hourly")
            assert [(m["kind"], m["threshold"], m["day"], m["detail"]["hour"], m["recent"])
                    for m in new] == [("threshold", 1000.0, DAY.isoformat(),
                                       hour(16).isoformat(), True)]
            assert "reached 1k views in a day" in new[0]["text"]
            events = await published(context)
            assert [e["milestone_id"] for e in events] == [new[0]["milestone_id"]]
            # the hours again (a re-ingest), then the whole day as a daily point: nothing
            assert await stored(views(range(0, 18)), "hourly") == []
            day_total = [Point("youtube", "artist", CHANNEL, "views", hour(0), 1440)]
            assert await stored(day_total, "daily") == []
            found = await module.milestones.list("acct")
            assert [m["milestone_id"] for m in found] == [new[0]["milestone_id"]]
            assert found[0]["detail"]["hour"] == hour(16).isoformat()
            assert len(await published(context)) == 1
            # a running total read every hour
            subs = [Point("youtube", "artist", CHANNEL, "subscribers", hour(h), 9_990 + 4 * h)
                    for h in range(6)]
            crossed = await stored(subs, "hourly")
            assert [(m["metric"], m["detail"]["hour"]) for m in crossed] == [
                ("subscribers", hour(3).isoformat())]
            assert await stored(subs, "hourly") == []
            assert await module.milestones.list("other") == []
    run(go())


# -- alerts: cooldown and digest --------------------------------------------------------------

def test_hourly_milestones_keep_the_cooldown_and_go_out_in_the_digest(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    now = hour(17) + timedelta(minutes=20)

    async def go() -> None:
        url = f"sqlite://{tmp_path / 'hourly.sqlite3'}"
        async with analytics(url, tmp_path, now=now) as (context, _server, _jobs):
            module = services(context)

            async def owner_emails(account_id: str) -> list[str]:
                return ["ada@example.org"] if account_id == "acct" else []
            module.alerts.owner_emails = owner_emails
            module.alerts.clock = now.timestamp
            context.background.register(MAIL_QUEUE, MailSender(Mailer(MailSettings.from_url(
                smtp_server.url))))
            mail = worker(context)
            await module.milestones.add_threshold("acct", "views", 1100)

            async def stored(points: list[Point]) -> list[dict[str, Any]]:
                await module.store.upsert("acct", points, grain="hourly")
                return await found_milestones(context, module, "acct", points, "hourly")

            await module.store.upsert("acct", earlier_days(), grain="daily")
            first = await stored(views(range(0, 17)))      # 1,020: the 1k
            await send_all(mail)
            assert len(smtp_server.messages) == 1
            assert first[0]["text"] in smtp_server.messages[0].get_body(
                ("plain",)).get_content()
            # the next hour crosses the account's 1,100: within the 6-hour cooldown, held
            module.alerts.clock = lambda: now.timestamp() + 3600
            second = await stored(views(range(17, 19)))    # 1,140
            assert [m["threshold"] for m in second] == [1100.0]
            await send_all(mail)
            assert len(smtp_server.messages) == 1
            assert await send_digests(module.alerts, module.milestones) == 0
            # the cooldown over: one digest with it, once
            module.alerts.clock = lambda: now.timestamp() + 6 * 3600 + 1
            assert await send_digests(module.alerts, module.milestones) == 1
            await send_all(mail)
            assert len(smtp_server.messages) == 2
            assert second[0]["text"] in smtp_server.messages[1].get_body(
                ("plain",)).get_content()
            assert await send_digests(module.alerts, module.milestones) == 0
            alerted = {m["milestone_id"]: m["alerted"]
                       for m in await module.milestones.list("acct")}
            assert alerted == {first[0]["milestone_id"]: True, second[0]["milestone_id"]: True}
    run(go())


# -- a daily source polled more often -------------------------------------------------------

def test_a_daily_source_can_be_polled_every_hour(tmp_path: Path) -> None:
    now = hour(17)

    async def go() -> None:
        url = f"sqlite://{tmp_path / 'poll.sqlite3'}"
        async with analytics(url, tmp_path, now=now) as (context, _server, _jobs):
            module = services(context)
            assert module.ingestor.every("spotify") == 86_400
            module.ingestor.settings.sources["spotify"] = {"poll_every_s": 3600}
            assert module.ingestor.every("spotify") == 3600
            await module.connections.connect("acct", "spotify", "artist", "artist-1",
                                             Credentials("id", "secret"), "ada", "Ada")
            # connected now (due at once); slots of an hour from the next whole hour
            t = (time.time() // 3600 + 1) * 3600 + 5
            assert await schedule_due(context, now=t) == 1
            assert await schedule_due(context, now=t + 60) == 0
            assert await schedule_due(context, now=t + 3600) == 1
            for bad in (10, 2 * 86_400, "hourly", True):
                module.ingestor.settings.sources["spotify"] = {"poll_every_s": bad}
                with pytest.raises(ValueError, match="poll_every_s"):
                    module.ingestor.every("spotify")
    run(go())
