"""Pre-save campaigns: public data, counts, and a release-day event that fires once."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distribution_helpers import FlakyDatabase, migrate, postgres_schema_url

from business.distribution.errors import DistributionError, NotFoundError
from business.distribution.outbox import Outbox, OutboxSettings
from business.distribution.presave import RELEASE_DAY, PreSaves, landing_page
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

FAST_RETRY = OutboxSettings(lease_s=5.0, backoff_base=0.02, backoff_cap=0.05)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'p.sqlite3'}"
    else:
        yield postgres_schema_url(request.getfixturevalue("postgres_url"),
                                  f"p{abs(hash(request.node.name)) % 10**8}")


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
            presaves = PreSaves(db)
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

            events: list[tuple[str, dict]] = []

            async def announce(name: str, payload: dict) -> None:
                events.append((name, payload))

            assert await presaves.fire_due(announce, dt.date(2026, 11, 30)) == []
            results = await asyncio.gather(*(presaves.fire_due(announce, dt.date(2026, 12, 1))
                                             for _ in range(5)))
            assert sum(len(r) for r in results) == 1
            assert [e[0] for e in events] == ["presave.release_day"]
            assert events[0][1]["presaves"] == 2 and events[0][1]["account_id"] == "acc"
            assert await presaves.fire_due(announce, dt.date(2026, 12, 2)) == []
            with pytest.raises(DistributionError, match="pre-saves are closed"):
                await presaves.presave(slug, "late@example.com", "spotify")
            assert (await presaves.public(slug))["released"] is True

    asyncio.run(go())


def test_release_day_event_is_retried_until_a_hook_hears_it(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            presaves = PreSaves(db, Outbox(db, FAST_RETRY))
            data = await presaves.create("acc", "rel-1", "Night Drive", "Ada", "2026-12-01")
            listener = ShakyListener(failures=1)

            async def announce(name: str, payload: dict) -> None:
                listener.business_event(None, name, payload)

            day = dt.date(2026, 12, 1)
            assert await presaves.fire_due(announce, day) == [data["slug"]]
            assert listener.calls == 1 and listener.heard == []
            [pending] = await presaves.outbox.pending("acc")
            assert pending["attempts"] == 1 and "listener is down" in pending["last_error"]
            # a restarted server (a new PreSaves on the same database) still owes the event
            restarted = PreSaves(db, Outbox(db, FAST_RETRY))
            deadline = time.monotonic() + 10
            while not listener.heard and time.monotonic() < deadline:
                assert await restarted.fire_due(announce, day) == []  # fired only once
                await asyncio.sleep(0.02)
            assert [p["slug"] for p in listener.heard] == [data["slug"]]
            assert listener.heard[0]["event_id"] == pending["event_id"]
            assert await restarted.outbox.pending() == []
            for _ in range(3):
                await restarted.fire_due(announce, day)
            assert listener.calls == 2 and len(listener.heard) == 1

    asyncio.run(go())


def test_release_day_job_survives_database_errors_and_a_failing_hook(tmp_path: Path) -> None:
    async def go() -> None:
        settings = {"distribution": {"presave_check_s": 0.02, "outbox": {
            "backoff_base": 0.02, "backoff_cap": 0.05}}}
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
                "acc", "rel-1", "Night Drive", "Ada", dt.date.today().isoformat())
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


def test_landing_page_escapes_user_text() -> None:
    page = landing_page({"title": "<script>x</script>", "artist": "A&B", "release_date":
                         "2026-12-01", "presaves": 3, "slug": "s", "services": ["spotify"]})
    assert "<script>x" not in page and "&lt;script&gt;" in page and "A&amp;B" in page
