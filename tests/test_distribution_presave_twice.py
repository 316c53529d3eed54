"""A fan's pre-save is recorded once, however often it is sent at once or again."""

from __future__ import annotations

import asyncio
import json

from distribution_helpers import migrate

from business.distribution.presave import SAVED, PreSaves
from business.distribution.schemas import PresaveSaved
from database import open_database
from events import EventBus, InProcessTransport
from jobs import JobQueue


def test_a_pre_save_sent_twice_at_once_counts_and_announces_once(db_url: str) -> None:
    """A double click (two requests at once) and a retried request add one pre-save
    and publish one ``presave.saved``; both answers count it once."""
    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            bus = EventBus(db, InProcessTransport(JobQueue(db)))  # never started: its
            bus.declare(SAVED, PresaveSaved)  # outbox keeps what was published
            await bus.setup()
            presaves = PreSaves(db, bus.publish)
            slug = (await presaves.create("acc", "rel-1", "Night Drive", "Ada",
                                          "2026-12-01"))["slug"]
            referral = {"ref": "post-1", "utm_source": "ig", "utm_campaign": "launch"}
            answers = await asyncio.gather(*(
                presaves.presave(slug, fan, "spotify", referral)
                for fan in ("fan@example.com", "Fan@Example.com ")))
            retried = await presaves.presave(slug, "fan@example.com", "spotify", referral)
            assert [a["presaves"] for a in (*answers, retried)] == [1, 1, 1]
            [campaign] = await presaves.campaigns("acc")
            assert campaign["presaves_by_service"]["spotify"] == 1
            rows = await db.fetch("SELECT name, payload FROM events_outbox")
            assert [(r["name"], json.loads(r["payload"])["ref"]) for r in rows] == [
                (SAVED, "post-1")]

    asyncio.run(go())
