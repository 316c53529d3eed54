"""The digest of milestones held back by the alert cooldown (SQLite, a real SMTP server):
a threshold crossed within the cooldown is not mailed, is held, and goes out in one digest
once the cooldown is over, only once, within the person's kinds; someone who turned mail
off in between gets none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from analytics_helpers import worker
from smtp_server import SmtpServer
from test_analytics_milestones import CREDS, analytics, backfill, run, send_all, spike_day

from accounts.mail import Mailer, MailSettings
from business.analytics.alerts import Preferences
from business.analytics.digest import send_digests
from business.analytics.fakes import FAKES
from business.analytics.services import services
from dawserver.account_mail import QUEUE as MAIL_QUEUE
from dawserver.account_mail import MailSender


def test_held_milestones_are_mailed_once_as_a_digest(tmp_path: Path,
                                                     smtp_server: SmtpServer) -> None:
    fake_id = FAKES["spotify"]().track_id(0)
    spike = spike_day("spotify", fake_id, "streams")
    now = datetime.combine(spike + timedelta(days=2), datetime.min.time(), UTC)

    async def go() -> None:
        url = f"sqlite://{tmp_path / 'digest.sqlite3'}"
        async with analytics(url, tmp_path, "spotify", now=now) as (context, server, jobs):
            module = services(context)
            addresses = {"acct": ["ada@example.org"], "bo": ["bo@example.org"]}

            async def owner_emails(account_id: str) -> list[str]:
                return addresses.get(account_id, [])
            module.alerts.owner_emails = owner_emails

            async def membership(group_id: str, person_id: str) -> str | None:
                return "viewer" if (group_id, person_id) == ("acct", "bo") else None
            context.membership = membership
            module.alerts.clock = now.timestamp
            context.background.register(MAIL_QUEUE, MailSender(Mailer(MailSettings.from_url(
                smtp_server.url))))
            mail = worker(context)
            await module.alerts.save_preferences("acct", "bo", Preferences(
                True, ("threshold",), 3600.0))
            source = await module.connections.connect(
                "acct", "spotify", "artist", FAKES["spotify"].artist_id, CREDS, "ada", "Ada")
            await backfill(context, jobs, source.source_id, spike - timedelta(days=60),
                           spike + timedelta(days=1), "one")
            await send_all(mail)
            assert {m["To"] for m in smtp_server.messages} == {"ada@example.org",
                                                                "bo@example.org"}
            first = len(smtp_server.messages)

            # within the cooldown: a new threshold is crossed, mailed to nobody, held
            fake = server["spotify"]
            before = [fake.value(("track", fake_id, "streams", ()), d)
                      for d in fake.days(spike - timedelta(days=60), spike - timedelta(days=6))]
            await module.milestones.add_threshold("acct", "streams", max(before) + 1)
            await backfill(context, jobs, source.source_id, spike - timedelta(days=60),
                           spike + timedelta(days=1), "two")
            mine = [m for m in await module.milestones.list("acct", limit=1000)
                    if m["threshold"] == max(before) + 1]
            assert len(mine) == 1 and not mine[0]["alerted"]
            # as a recent batch (its day is the fake's, days before "now"), within cooldowns
            assert await module.alerts.notify("acct", [{**mine[0], "recent": True}]) == {}
            await send_all(mail)
            assert len(smtp_server.messages) == first
            held = await context.database().fetch(
                "SELECT recipient, milestone_id FROM analytics_alert_held WHERE account_id = "
                "'acct'")
            assert [r["milestone_id"] for r in held] == [mine[0]["milestone_id"]] * 2

            # still within everybody's cooldown: no digest yet
            assert await send_digests(module.alerts, module.milestones) == 0
            # bo's hour is over, ada's six are not: bo gets the digest (a threshold: his kind)
            module.alerts.clock = lambda: now.timestamp() + 3601
            assert await send_digests(module.alerts, module.milestones) == 1
            await send_all(mail)
            digest = smtp_server.messages[first:]
            assert [m["To"] for m in digest] == ["bo@example.org"]
            assert "while your alerts were paused" in digest[0]["Subject"]
            assert mine[0]["text"] in digest[0].get_body(("plain",)).get_content()
            assert (await module.milestones.get("acct", mine[0]["milestone_id"]))["alerted"]

            # ada turns mail off before her cooldown ends: what was held for her is dropped
            await module.alerts.save_preferences("acct", "acct", Preferences(email=False))
            module.alerts.clock = lambda: now.timestamp() + 6 * 3600 + 1
            assert await send_digests(module.alerts, module.milestones) == 0
            assert await context.database().fetch(
                "SELECT milestone_id FROM analytics_alert_held") == []
            assert await send_digests(module.alerts, module.milestones) == 0
            await send_all(mail)
            assert len(smtp_server.messages) == first + 1
    run(go())
