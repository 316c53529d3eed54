"""Pre-save campaigns: public data, counts, and a release-day event that fires once.

The event goes through a real event bus (the in-process transport: one job of the
job queue per subscriber), as in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from distribution_helpers import FlakyDatabase, migrate, release_dict

from business.distribution.catalog import Catalog
from business.distribution.errors import DistributionError, NotFoundError
from business.distribution.models import utc_today
from business.distribution.presave import RELEASE_DAY, PreSaves, landing_page
from business.distribution.schemas import ReleaseDay
from business.distribution.services import services
from database import open_database
from dawserver.plugin_api import hookimpl
from dawserver.plugins import (
    PluginContext,
    declare_all,
    load_plugins,
    open_background,
    register_jobs,
    start_plugins,
    start_workers,
    stop_workers,
)
from events import Envelope, EventBus, InProcessTransport
from events.in_process import QUEUE as EVENTS
from jobs import JobQueue, JobWorker, QueueSettings

FAST_RETRY = QueueSettings(max_attempts=8, backoff_base=0.02, backoff_cap=0.05, lease_s=5.0)


def _event_bus(db: Any, settings: QueueSettings = FAST_RETRY) -> EventBus:
    """An event bus on ``db`` delivering through its own job queue, release day declared."""
    bus = EventBus(db, InProcessTransport(JobQueue(db, {EVENTS: settings})), poll_s=0.02)
    bus.declare(RELEASE_DAY, ReleaseDay)
    return bus


@contextlib.asynccontextmanager
async def _running(bus: EventBus) -> AsyncIterator[None]:
    """The bus's relay and a job worker delivering its events, as a server runs them."""
    transport = bus.transport
    await bus.start()
    try:
        async with JobWorker(transport.queue, {EVENTS: transport.handle}, poll_s=0.02):
            yield
    finally:
        await bus.stop()


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


class ShakyListener:
    """A plug-in whose business_event hook fails the first ``failures`` times."""

    PLUGIN_NAME = "shaky-listener"

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.calls = 0
        self.heard: list[dict] = []

    @hookimpl
    def business_event(self, context, name, payload) -> None:  # noqa: ANN001
        if name != RELEASE_DAY:
            return
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("listener is down")
        self.heard.append(payload)


def test_campaign_counts_each_fan_once_and_fires_release_day_once(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'p.sqlite3'}") as db:
            await migrate(db)
            bus = _event_bus(db)
            presaves = PreSaves(db, bus.publish)
            data = await presaves.create("acc", "rel-1", "Night Drive", "Ada", "2026-12-01")
            slug = data["slug"]
            assert data["presaves"] == 0 and slug.startswith("ada-night-drive-")
            await presaves.presave(slug, "fan@example.com", "spotify")
            await presaves.presave(slug, "FAN@example.com ", "spotify")
            data = await presaves.presave(slug, "other@example.com", "deezer")
            assert data["presaves"] == 2
            with pytest.raises(DistributionError, match="not an e-mail"):
                await presaves.presave(slug, "nobody", "spotify")
            with pytest.raises(NotFoundError):
                await presaves.public("missing")

            events: list[Envelope] = []

            async def hear(event: Envelope) -> None:
                events.append(event)

            bus.subscribe("test", hear)
            assert await presaves.fire_due(dt.date(2026, 11, 30)) == []
            results = await asyncio.gather(*(presaves.fire_due(dt.date(2026, 12, 1))
                                             for _ in range(5)))
            assert sum(len(r) for r in results) == 1
            async with _running(bus):
                async def heard() -> bool:
                    return bool(events)
                await _until(heard)
                await asyncio.sleep(0.1)  # a second delivery would arrive meanwhile
            assert [e.name for e in events] == ["presave.release_day"]
            assert events[0].payload["presaves"] == 2 and events[0].payload["account_id"] == "acc"
            assert events[0].account_id == "acc"
            assert await presaves.fire_due(dt.date(2026, 12, 2)) == []
            assert await bus.pending() == 0
            with pytest.raises(DistributionError, match="pre-saves are closed"):
                await presaves.presave(slug, "late@example.com", "spotify")
            assert (await presaves.public(slug))["released"] is True

    asyncio.run(go())


@pytest.mark.parametrize("written", ["20261201", "2026-W49-2", "2026-12-01"])
def test_a_release_date_written_otherwise_fires_on_the_day(tmp_path: Path,
                                                           written: str) -> None:
    """ISO 8601's other forms of 1 December 2026 (which Python reads, as the release gate
    does) are kept as 2026-12-01, so release day comes on the day, not a year late."""
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'p.sqlite3'}") as db:
            await migrate(db)
            presaves = PreSaves(db, _event_bus(db).publish)
            data = await presaves.create("acc", "rel-1", "Night Drive", "Ada", written)
            assert data["release_date"] == "2026-12-01"
            assert await presaves.fire_due(dt.date(2026, 11, 30)) == []
            assert await presaves.fire_due(dt.date(2026, 12, 1)) == [data["slug"]]

    asyncio.run(go())


def test_campaigns_stored_with_other_date_forms_fire_on_the_day(tmp_path: Path) -> None:
    """Campaigns made before dates were kept as YYYY-MM-DD (their date as written) are
    rewritten when release days are next looked for, so they fire on the day, not a
    year late; an unreadable one is left alone."""
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'p.sqlite3'}") as db:
            await migrate(db)
            presaves = PreSaves(db, _event_bus(db).publish)
            made = [await presaves.create("acc", f"rel-{n}", "Night Drive", "Ada",
                                          "2026-12-01") for n in range(3)]
            for data, written in zip(made, ("20261201", "2026-W49-2", "soon"), strict=True):
                await db.execute("UPDATE dist_presave_campaigns SET release_date = ? "
                                 "WHERE slug = ?", written, data["slug"])
            assert await presaves.fire_due(dt.date(2026, 11, 30)) == []
            fired = await presaves.fire_due(dt.date(2026, 12, 1))
            assert sorted(fired) == sorted(d["slug"] for d in made[:2])
            assert (await presaves.public(made[0]["slug"]))["release_date"] == "2026-12-01"
            assert (await presaves.public(made[2]["slug"]))["release_date"] == "soon"

    asyncio.run(go())


def test_campaign_follows_a_postponed_release(db_url: str, tmp_path: Path) -> None:
    """A release moved 20 days later moves its campaign: release day comes on the new
    date and fans pre-save until then; a campaign given its own date keeps it."""
    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            catalog, presaves = Catalog(db), PreSaves(db, _event_bus(db).publish)
            raw = dict(release_dict(tmp_path), release_id="rel-1", release_date="2026-12-01")
            await catalog.save_release("acc", raw)
            follows = await presaves.create("acc", "rel-1", "Night Drive", "Ada",
                                            "2026-12-01")
            own = await presaves.create("acc", "rel-1", "Night Drive", "Ada", "2026-12-05")
            other = await presaves.create("bob", "rel-1", "Night Drive", "Bo", "2026-12-01")
            await catalog.save_release("acc", dict(raw, release_date="2026-12-21"))

            assert (await presaves.public(follows["slug"]))["release_date"] == "2026-12-21"
            assert await presaves.fire_due(dt.date(2026, 12, 1)) == [other["slug"]]
            await presaves.presave(follows["slug"], "fan@example.com", "spotify")
            assert await presaves.fire_due(dt.date(2026, 12, 5)) == [own["slug"]]
            assert await presaves.fire_due(dt.date(2026, 12, 21)) == [follows["slug"]]
            await catalog.save_release("acc", dict(raw, release_date="2027-01-10"))
            fired = await presaves.public(follows["slug"])
            assert (fired["release_date"], fired["released"]) == ("2026-12-21", True)

    asyncio.run(go())


def test_release_day_event_is_retried_until_a_hook_hears_it(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            listener = ShakyListener(failures=1)

            async def hear(event: Envelope) -> None:  # as the server calls business_event
                listener.business_event(None, event.name, {**event.payload,
                                                           "event_id": event.id})

            # the first server retries a failed delivery after 0.25-0.5 s
            bus = _event_bus(db, QueueSettings(max_attempts=8, backoff_base=0.5,
                                               backoff_cap=0.5, lease_s=5.0))
            bus.subscribe(f"plugin:{ShakyListener.PLUGIN_NAME}", hear)
            presaves = PreSaves(db, bus.publish)
            data = await presaves.create("acc", "rel-1", "Night Drive", "Ada", "2026-12-01")
            day = dt.date(2026, 12, 1)
            assert await presaves.fire_due(day) == [data["slug"]]
            [published] = await db.fetch("SELECT id, name FROM events_outbox")
            assert published["name"] == RELEASE_DAY
            deliveries = bus.transport.queue
            async with _running(bus):
                async def failed_once() -> bool:
                    jobs = await deliveries.find(queue=EVENTS, states=["retrying"])
                    return bool(jobs)
                await _until(failed_once)
            assert listener.calls == 1 and listener.heard == []
            [pending] = await deliveries.find(queue=EVENTS)
            assert pending.attempts == 1 and "listener is down" in pending.last_error
            # a restarted server (a new bus and PreSaves on the same database) still owes it
            restarted = _event_bus(db)
            restarted.subscribe(f"plugin:{ShakyListener.PLUGIN_NAME}", hear)
            again = PreSaves(db, restarted.publish)
            async with _running(restarted):
                deadline = time.monotonic() + 10
                while not listener.heard and time.monotonic() < deadline:
                    assert await again.fire_due(day) == []  # fired only once
                    await asyncio.sleep(0.02)
                for _ in range(3):
                    await again.fire_due(day)
                await asyncio.sleep(0.1)  # a second delivery would arrive meanwhile
            assert [p["slug"] for p in listener.heard] == [data["slug"]]
            assert listener.heard[0]["event_id"] == published["id"]
            assert await restarted.pending() == 0
            [delivered] = await deliveries.find(queue=EVENTS)
            assert (delivered.state, delivered.attempts) == ("done", 2)
            assert listener.calls == 2 and len(listener.heard) == 1

    asyncio.run(go())


def test_release_day_job_survives_database_errors_and_a_failing_hook(tmp_path: Path) -> None:
    async def go() -> None:
        settings = {"distribution": {"presave_check_s": 0.02}}
        listener = ShakyListener(failures=2)
        manager = load_plugins({"plugins": settings}, entry_points=False, extra=[listener])
        async with open_database(f"sqlite://{tmp_path / 'p.sqlite3'}") as real:
            # the release-day check's first two queries fail
            db = FlakyDatabase(real, {"SELECT account_id, campaign_id, slug": 2})
            context = PluginContext(manager=manager, settings=settings, db=db)
            declare_all(context)  # as install() does: the declared events and jobs,
            register_jobs(context)
            await open_background(context, None)  # then the job queue and the event bus
            await start_plugins(context)
            await context.background.start()
            data = await services(context).presaves.create(
                "acc", "rel-1", "Night Drive", "Ada", utc_today().isoformat())
            tasks = start_workers(context)
            try:
                deadline = time.monotonic() + 20
                while not listener.heard and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.1)  # more checks run meanwhile
                assert not any(task.done() for task in tasks)
            finally:
                await stop_workers(tasks)
                await context.background.stop()
            assert db.injected == {"SELECT account_id, campaign_id, slug": 2}
            assert [p["slug"] for p in listener.heard] == [data["slug"]]
            assert listener.calls == 3

    asyncio.run(go())


def test_release_day_events_owed_before_the_upgrade_reach_the_hooks(tmp_path: Path) -> None:
    from business.distribution.plugin import MIGRATIONS
    from events import MIGRATIONS as EVENTS_TABLES
    from jobs import MIGRATIONS as JOBS_TABLES

    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'p.sqlite3'}") as db:
            await db.migrate([*JOBS_TABLES, *EVENTS_TABLES])
            await db.migrate([m for m in MIGRATIONS if m.version <= 8])  # with dist_outbox
            bus = _event_bus(db)
            presaves = PreSaves(db, bus.publish)
            data = await presaves.create("acc", "rel-1", "Night Drive", "Ada", "2026-12-01")
            payload = json.dumps({**data, "account_id": "acc"})
            old = ("INSERT INTO dist_outbox (account_id, event_id, name, payload, created_at, "
                   "attempts, next_attempt_at, lease_until, delivered_at, last_error) "
                   "VALUES ('acc', ?, ?, ?, 5.0, 3, 0, 0, ?, 'listener is down')")
            await db.execute(old, "owed", RELEASE_DAY, payload, None)
            await db.execute(old, "heard", RELEASE_DAY, payload, 6.0)
            await db.migrate(MIGRATIONS)
            assert "dist_outbox" not in await db.tables()
            events: list[Envelope] = []

            async def hear(event: Envelope) -> None:
                events.append(event)

            bus.subscribe("test", hear)
            async with _running(bus):
                async def heard() -> bool:
                    return bool(events)
                await _until(heard)
                await asyncio.sleep(0.1)  # the delivered one would arrive meanwhile
            assert [(e.id, e.name, e.account_id, e.created_at) for e in events] == [
                ("owed", RELEASE_DAY, "acc", 5.0)]
            assert events[0].payload == json.loads(payload)

    asyncio.run(go())


def test_landing_page_escapes_user_text() -> None:
    page = landing_page({"title": "<script>x</script>", "artist": "A&B", "release_date":
                         "2026-12-01", "presaves": 3, "slug": "s", "services": ["spotify"]})
    assert "<script>x" not in page and "&lt;script&gt;" in page and "A&amp;B" in page
