"""Milestones: thresholds crossed and unusual growth found in the fakes' seeded series
(their viral spike), stored once under re-ingestion and back-fill, published as the
``analytics.milestone`` event, mailed through the platform's mail to a real SMTP server
within each person's preferences and cooldown; the routes, another account answering 404."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from analytics_helpers import migrated, plugin_context, worker
from smtp_server import SmtpServer
from social_helpers import header_principal, who

from accounts.mail import Mailer, MailSettings
from business.analytics import milestones as found_in
from business.analytics.alerts import Preferences
from business.analytics.fakes import FAKES, FakeSources
from business.analytics.fakes.series import EPOCH, Series, shape
from business.analytics.milestone_book import MILESTONE_EVENT
from business.analytics.runs import INGEST_JOB
from business.analytics.services import services
from business.analytics.sources.base import Credentials
from business.analytics.sources.records import Point
from business.analytics.sources.spec import RateLimit
from dawserver.account_mail import QUEUE as MAIL_QUEUE
from dawserver.account_mail import MailSender
from dawserver.plugins import PLUGIN_CONTEXT_KEY, install, load_plugins
from dawserver.public_api.webhooks.service import catalogue as webhook_catalogue

pytestmark = pytest.mark.timeout(180)
CREDS = Credentials("client-id", "client-secret", "api-key", "refresh-token")
START, END = date(2024, 1, 1), date(2024, 6, 29)


def run(coro, timeout: float = 120.0):  # noqa: ANN001, ANN201
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


def spike_day(source: str, entity: str, metric: str, seed: int = 7) -> date:
    """The day the fakes' hidden series shape puts the viral spike."""
    return EPOCH + timedelta(days=shape(seed, source, entity, metric).spike_day)


# -- detection on the seeded series ------------------------------------------------------------

def test_a_threshold_is_crossed_once_and_only_when_seen_crossing() -> None:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(6)]
    found = found_in.crossings(days, [900, 990, 1005, 980, 1020, 12_000], [1e3, 1e4, 5e3])
    assert [(f.key, f.day, f.value) for f in found] == [
        ("threshold:1000", days[2], 1005), ("threshold:5000", days[5], 12_000),
        ("threshold:10000", days[5], 12_000)]
    assert found[0].detail["label"] == "1k" and found[0].detail["previous"] == 990
    # a series that starts above a threshold did not cross it while watched
    assert found_in.crossings(days, [1500, 1600, 1700, 1800, 1900, 2000], [1e3]) == []
    assert found_in.crossings(days[:3], [900, 990, 1005], [1e3], reached_before=1200) == []


@pytest.mark.parametrize("entity", [f"track{i}" for i in range(8)])
def test_the_viral_spike_of_a_seeded_series_is_unusual_growth(entity: str) -> None:
    series = Series(7)
    days = [EPOCH + timedelta(days=i) for i in range(182)]
    values = [series.value("spotify", entity, "streams", d) for d in days]
    found = found_in.unusual_growth(days, values)
    truth = spike_day("spotify", entity, "streams")
    assert len(found) == 1, found
    assert abs((found[0].day - truth).days) <= 4
    assert found[0].detail["ratio"] >= 1.5 and found[0].detail["peak"] == max(values)
    # the same series before its spike: a trend, weekly shape and noise are not unusual
    before = [i for i, d in enumerate(days) if d < truth - timedelta(days=6)]
    assert found_in.unusual_growth([days[i] for i in before],
                                   [values[i] for i in before]) == []


def test_too_short_a_series_has_no_change_points() -> None:
    days = [EPOCH + timedelta(days=i) for i in range(found_in.MIN_POINTS - 1)]
    assert found_in.unusual_growth(days, [10.0] * 6 + [500.0] * 7) == []


# -- stored once, published ------------------------------------------------------------------

@contextlib.asynccontextmanager
async def analytics(url: str, tmp_path: Path, *names: str, now: datetime,
                    ) -> AsyncIterator[tuple[Any, FakeSources, Any]]:
    fakes = [FAKES[name]() for name in names]
    async with migrated(url) as db, FakeSources(fakes) as server:
        settings = {"sources": {n: {"base_url": server.base_url(n)} for n in names},
                    "chunk_days": 31}
        context = await plugin_context(db, tmp_path, settings)
        module = services(context)
        module.ingestor.clock = lambda: now
        module.milestones.clock = lambda: now
        module.ingestor.connector_options = {"rng": random.Random(1),
                                             "rate_limit": RateLimit(10_000, 1)}
        try:
            yield context, server, worker(context)
        finally:
            await module.close()


async def backfill(context: Any, jobs: Any, source_id: str, start: date, end: date,
                   key: str) -> None:
    await services(context).runs.start(context, "acct", source_id, "backfill", start, end, key)
    assert await jobs.run_once(INGEST_JOB) == 1


async def published(context: Any) -> list[dict[str, Any]]:
    rows = await context.database().fetch(
        "SELECT account_id, payload FROM events_outbox WHERE name = ?", MILESTONE_EVENT)
    return [{**json.loads(r["payload"]), "outbox_account": r["account_id"]} for r in rows]


def test_milestones_are_stored_once_under_reingestion_and_backfill(db_url: str,
                                                                   tmp_path: Path) -> None:
    async def go() -> None:
        now = datetime(2024, 6, 30, 12, tzinfo=UTC)
        async with analytics(db_url, tmp_path, "spotify", now=now) as (context, server, jobs):
            module = services(context)
            source = await module.connections.connect(
                "acct", "spotify", "artist", FAKES["spotify"].artist_id, CREDS, "ada", "Ada")
            # the newest three months first, then the older ones (a back-fill)
            await backfill(context, jobs, source.source_id, date(2024, 4, 1), END, "late")
            late = await module.milestones.list("acct", limit=1000)
            await backfill(context, jobs, source.source_id, START, date(2024, 3, 31), "early")
            found = await module.milestones.list("acct", limit=1000)
            fake = server["spotify"]
            growth = {m["platform_id"]: m for m in found if m["kind"] == "unusual_growth"
                      and m["metric"] == "streams"}
            for track in fake.tracks:
                tid = fake.track_id(track.index)
                truth = spike_day("spotify", tid, "streams")
                assert tid in growth, (tid, truth)
                assert abs((date.fromisoformat(growth[tid]["day"]) - truth).days) <= 4
                assert growth[tid]["entity_name"] == track.name
            assert not any(m["kind"] == "unusual_growth" and m["metric"] == "listeners"
                           for m in found)   # a running total: thresholds only
            # every threshold milestone is the first crossing in the stored series
            for m in (m for m in found if m["kind"] == "threshold"):
                values = {d: fake.value(("track", m["platform_id"], m["metric"], ()), d)
                          for d in fake.days(START, END)}
                first = min(d for d, v in values.items() if v >= m["threshold"])
                assert date.fromisoformat(m["day"]) == first
                assert values[first - timedelta(days=1)] < m["threshold"]
            # the earlier months moved crossings back, never added a second one
            keys = [(m["platform_id"], m["metric"], m["kind"], m["threshold"]) for m in found
                    if m["kind"] == "threshold"]
            assert len(keys) == len(set(keys))
            assert len(found) >= len(late)
            # the same windows again: nothing new, nothing published again
            events = await published(context)
            assert sorted(e["milestone_id"] for e in events) == sorted(
                m["milestone_id"] for m in found)
            assert all(e["outbox_account"] == "acct" and e["account_id"] == "acct"
                       for e in events)
            await backfill(context, jobs, source.source_id, START, END, "again")
            assert await module.milestones.list("acct", limit=1000) == found
            assert len(await published(context)) == len(events)
            # the spikes were months before "now": published, but not recent
            assert not any(e["recent"] for e in events)
            assert await module.milestones.list("other") == []
    run(go())


# -- alerts by mail ---------------------------------------------------------------------------

async def send_all(mail: Any) -> None:
    """Run the mail queue until it is empty (one job a claim)."""
    while await mail.run_once(MAIL_QUEUE):
        pass


def test_recent_milestones_are_mailed_within_preferences_and_cooldown(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    fake_id = FAKES["spotify"]().track_id(0)
    spike = spike_day("spotify", fake_id, "streams")
    now = datetime.combine(spike + timedelta(days=2), datetime.min.time(), UTC)

    async def go() -> None:
        url = f"sqlite://{tmp_path / 'mail.sqlite3'}"
        async with analytics(url, tmp_path, "spotify", now=now) as (context, server, jobs):
            module = services(context)
            addresses = {"acct": ["ada@example.org"], "bo": ["bo@example.org"],
                         "cy": ["cy@example.org"]}

            async def owner_emails(account_id: str) -> list[str]:
                return addresses.get(account_id, [])
            module.alerts.owner_emails = owner_emails
            members = {("acct", "bo"): "viewer", ("acct", "cy"): "viewer"}

            async def membership(group_id: str, person_id: str) -> str | None:
                return members.get((group_id, person_id))
            context.membership = membership
            module.alerts.clock = now.timestamp
            context.background.register(MAIL_QUEUE, MailSender(Mailer(MailSettings.from_url(
                smtp_server.url))))
            mail = worker(context)
            # bo (a member) opts in for unusual growth only; cy opts in, then mail off
            await module.alerts.save_preferences("acct", "bo", Preferences(
                True, ("unusual_growth",), 3600.0))
            await module.alerts.save_preferences("acct", "cy", Preferences(email=False))
            source = await module.connections.connect(
                "acct", "spotify", "artist", FAKES["spotify"].artist_id, CREDS, "ada", "Ada")
            await backfill(context, jobs, source.source_id, spike - timedelta(days=60),
                           spike + timedelta(days=1), "one")
            await send_all(mail)
            received = {m["To"]: m for m in smtp_server.messages}
            assert set(received) == {"ada@example.org", "bo@example.org"}
            found = await module.milestones.list("acct", limit=1000)
            alerted = [m for m in found if m["alerted"]]
            assert alerted and len(alerted) < len(found)   # old crossings are not news
            assert all(date.fromisoformat(m["detail"].get("last_day", m["day"]))
                       >= now.date() - timedelta(days=3) for m in alerted)
            growth = [m for m in alerted if m["kind"] == "unusual_growth"]
            assert any(m["platform_id"] == fake_id and m["metric"] == "streams"
                       for m in growth)
            body = received["bo@example.org"].get_body(("plain",)).get_content()
            assert all(m["text"] in body for m in growth)
            assert not any(m["text"] in body for m in found if m["kind"] == "threshold")
            ada = received["ada@example.org"].get_body(("plain",)).get_content()
            assert all(m["text"] in ada for m in alerted)
            assert not any(m["text"] in ada for m in found if not m["alerted"])
            recent = [{**m, "recent": True} for m in alerted]
            # within the cooldown: new milestones are found, but nobody is mailed again
            fake = server["spotify"]
            before = [fake.value(("track", fake_id, "streams", ()), d)
                      for d in fake.days(spike - timedelta(days=60), spike - timedelta(days=6))]
            await module.milestones.add_threshold("acct", "streams", max(before) + 1)
            await backfill(context, jobs, source.source_id, spike - timedelta(days=60),
                           spike + timedelta(days=1), "two")
            mine = [m for m in await module.milestones.list("acct", limit=1000)
                    if m["threshold"] == max(before) + 1]
            assert len(mine) == 1 and not mine[0]["alerted"]
            assert abs((date.fromisoformat(mine[0]["day"]) - spike).days) <= 5
            await send_all(mail)
            assert len(smtp_server.messages) == 2
            # the same batch again queues nothing (the mail's id is the batch's)
            module.alerts.clock = lambda: now.timestamp() + 6 * 3600 + 1
            assert set(await module.alerts.notify("acct", recent)) == {
                "ada@example.org", "bo@example.org"}
            await send_all(mail)
            assert len(smtp_server.messages) == 2
            # once the cooldown is over, a new batch is mailed (bo's kinds: growth only)
            module.alerts.clock = lambda: now.timestamp() + 12 * 3600 + 2
            mailed = await module.alerts.notify("acct", [{**mine[0], "recent": True}])
            assert set(mailed) == {"ada@example.org"}
            await send_all(mail)
            assert [m["To"] for m in smtp_server.messages[2:]] == ["ada@example.org"]
            assert mine[0]["text"] in smtp_server.messages[2]["Subject"]
            # bo leaves the organisation: their saved preferences no longer mail them
            growth_batch = [{**growth[0], "recent": True}]
            del members[("acct", "bo")]
            module.alerts.clock = lambda: now.timestamp() + 18 * 3600 + 3
            assert set(await module.alerts.notify("acct", growth_batch)) == {
                "ada@example.org"}
            # back in it, they get the account's mail again (ada is within her cooldown)
            members[("acct", "bo")] = "viewer"
            module.alerts.clock = lambda: now.timestamp() + 19 * 3600 + 4
            assert set(await module.alerts.notify("acct", growth_batch)) == {
                "bo@example.org"}
    run(go())


# -- routes -----------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_milestone_routes_are_scoped_to_the_account(tmp_path: Path) -> None:
    config = {"data_dir": tmp_path / "data", "database_url": f"sqlite://{tmp_path / 'r.db'}",
              "plugins": {"analytics": {"schedule_check_s": 3600}}}
    app = web.Application()
    install(app, config, manager=load_plugins(config), identify=header_principal)
    async with asyncio.timeout(60), TestClient(TestServer(app)) as client:
        owner, viewer, other = who("acct", "ada"), who("acct", "vi", "viewer"), who("o", "bo")
        # developer webhooks may subscribe to it (their catalogue is the declared events)
        assert MILESTONE_EVENT in webhook_catalogue(app[PLUGIN_CONTEXT_KEY])
        refused = await client.post("/api/analytics/thresholds", headers=viewer,
                                    json={"metric": "followers_count", "value": 2500})
        assert refused.status == 403
        bad = await client.post("/api/analytics/thresholds", headers=owner,
                                json={"metric": "followers_count", "value": -1})
        assert bad.status == 422
        made = await client.post("/api/analytics/thresholds", headers=owner,
                                 json={"metric": "followers_count", "value": 2500})
        threshold = await made.json()
        assert made.status == 201 and threshold["created_by"] == "ada"
        listed = await (await client.get("/api/analytics/thresholds", headers=viewer)).json()
        assert [t["threshold_id"] for t in listed] == [threshold["threshold_id"]]
        assert await (await client.get("/api/analytics/thresholds", headers=other)).json() == []
        gone = await client.delete(f"/api/analytics/thresholds/{threshold['threshold_id']}",
                                   headers=who("o", "bo"))
        assert gone.status == 404
        gone = await client.delete(f"/api/analytics/thresholds/{threshold['threshold_id']}",
                                   headers=owner)
        assert gone.status == 200
        unknown = await client.get("/api/analytics/milestones/nope", headers=viewer)
        assert unknown.status == 404
        prefs = await (await client.get("/api/analytics/alerts/preferences",
                                        headers=viewer)).json()
        assert prefs == {"email": True, "kinds": ["threshold", "unusual_growth"],
                         "cooldown_s": 21600.0}
        saved = await client.put("/api/analytics/alerts/preferences", headers=viewer,
                                 json={"email": False, "kinds": ["threshold"],
                                       "cooldown_s": 60})
        assert saved.status == 200
        again = await (await client.get("/api/analytics/alerts/preferences",
                                        headers=viewer)).json()
        assert again == {"email": False, "kinds": ["threshold"], "cooldown_s": 60.0}
        other_prefs = await (await client.get("/api/analytics/alerts/preferences",
                                              headers=owner)).json()
        assert other_prefs["email"] is True
        wrong = await client.put("/api/analytics/alerts/preferences", headers=viewer,
                                 json={"kinds": ["sunspots"]})
        assert wrong.status == 422 and "unknown milestone kinds" in await wrong.text()
        assert await (await client.get("/api/analytics/milestones", headers=viewer)).json() == []


def test_audience_breakdowns_without_a_total_find_no_milestones(db_url: str,
                                                                 tmp_path: Path) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            module = services(await plugin_context(db, tmp_path))
            try:
                rows = (("country", "DE"), ("country", "US"), ("city", "Berlin"),
                        ("city", "New York"), ("age", "18-24"), ("age", "25-34"),
                        ("gender", "female"), ("gender", "male"))
                # each of four breakdowns adds up to the day's listeners, which reach 10k;
                # a breakdown need not cover everyone, so no milestone is read from it
                points = [Point("spotify", "artist", "sp1", "audience_listeners",
                                datetime.combine(START + timedelta(days=i), time(), UTC),
                                listeners / 2, (pair,))
                          for i, listeners in enumerate((9_000, 9_600, 10_400))
                          for pair in rows]
                await module.store.upsert("acct", points)
                assert await module.milestones.detect("acct", points) == []
                assert await module.milestones.list("acct") == []
            finally:
                await module.close()
    run(go())
