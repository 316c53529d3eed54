"""Ingestion as jobs of the one job queue, against the fake sources: back-fills with
progress, scheduled runs (one per source and slot however many nodes schedule), two
workers on one window never double-counting, a token revoked mid-back-fill (progress
kept, source flagged), Retry-After and quotas rescheduling the job instead of sleeping,
a changed answer shape flagging the source, and our own events stored as points."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from analytics_helpers import migrated, plugin_context, worker

from business.analytics.fakes import FAKES, FakeSources
from business.analytics.runs import INGEST_JOB
from business.analytics.services import schedule_due, services, store_event
from business.analytics.sources import SOURCES
from business.analytics.sources.base import Credentials
from business.analytics.sources.spec import RateLimit

pytestmark = pytest.mark.timeout(180)
NOW = datetime(2024, 6, 30, 12, tzinfo=UTC)
START, END = date(2024, 4, 1), date(2024, 6, 29)
CREDS = Credentials("client-id", "client-secret", "api-key", "refresh-token")


def run(coro, timeout: float = 90.0):  # noqa: ANN001, ANN201
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def analytics(url: str, tmp_path: Path, *names: str,
                    ) -> AsyncIterator[tuple[Any, FakeSources, Any]]:
    """The plug-in on a migrated database, fakes of ``names``, a job worker."""
    fakes = [FAKES[name]() for name in names]
    async with migrated(url) as db, FakeSources(fakes) as server:
        settings = {"sources": {n: {"base_url": server.base_url(n)} for n in names},
                    "chunk_days": 30}
        context = await plugin_context(db, tmp_path, settings)
        module = services(context)
        module.ingestor.clock = lambda: NOW
        module.ingestor.connector_options = {"rng": random.Random(1),
                                             "rate_limit": RateLimit(10_000, 1)}
        try:
            yield context, server, worker(context)
        finally:
            await module.close()


async def connect(context: Any, source: str, account: str = "acct") -> Any:
    fake_id = FAKES[source].artist_id
    return await services(context).connections.connect(account, source, "artist", fake_id,
                                                        CREDS, "ada", "Ada")


def table(rows: list[dict[str, Any]]) -> dict[tuple, float]:
    from business.analytics.store import decode_dimensions

    return {(r["entity_kind"], r["entity_id"], r["metric"],
             datetime.fromtimestamp(r["at"], UTC).date(), decode_dimensions(r["dimensions"])):
            r["value"] for r in rows}


def into_second_chunk(fake: Any) -> int:
    """How many Spotify answers go out before the third page of the second 30-day chunk:
    a chunk is 5 pages of the timeline, then the pages of its playlist placements and of
    its audience breakdowns."""
    days = fake.days(START, date(2024, 4, 30))
    placed = sum(len(fake.placements.on(d, fake.track_ids())) for d in days)
    audience = len(days) * len(fake.audience_keys())
    return 5 + math.ceil(placed / 50) + math.ceil(audience / 50) + 2


async def job_of(context: Any, run: Any) -> Any:
    return await context.background.queue.get("acct", run.job_id)


def test_a_backfill_is_a_job_whose_points_match_the_source(db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with analytics(db_url, tmp_path, "spotify") as (context, server, jobs):
            module = services(context)
            source = await connect(context, "spotify")
            first, new = await module.runs.start(context, "acct", source.source_id, "backfill",
                                                 START, END, "k1")
            again, new_again = await module.runs.start(context, "acct", source.source_id,
                                                       "backfill", START, END, "k1")
            assert new and not new_again and again.run_id == first.run_id
            assert await jobs.run_once(INGEST_JOB) == 1
            done = await module.runs.get("acct", first.run_id)
            assert (done.state, done.complete_through) == ("done", END.isoformat())
            assert (await job_of(context, done)).state == "done" and done.fraction() == 1.0
            truth = server["spotify"].truth(START, END)
            assert table(await module.store.rows("acct")) == pytest.approx(truth)
            assert done.points == len(truth)
            # the same window asked again once done: a new run, and still no duplicates
            later, new_later = await module.runs.start(context, "acct", source.source_id,
                                                       "backfill", START, END, "k1")
            assert new_later and later.run_id != first.run_id
            await jobs.run_once(INGEST_JOB)
            assert await module.store.count("acct") == len(truth)
            tracks = [e for e in await module.catalog.entities("acct", "recording")]
            assert len(tracks) == len(server["spotify"].tracks)
            assert all(e.isrc for e in tracks)
            assert await module.store.count("other") == 0

    run(go())


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_source_ingests_end_to_end_through_the_job(name: str, tmp_path: Path) -> None:
    """Each source, connected and back-filled as a job, lands in the point store exactly
    as its fake's truth (SQLite; the PostgreSQL path is the same code, tested above)."""
    async def go() -> None:
        url = f"sqlite://{tmp_path / 'e2e.sqlite3'}"
        async with analytics(url, tmp_path, name) as (context, server, jobs):
            module = services(context)
            source = await connect(context, name)
            history = SOURCES[name].spec.history
            first, last = (START, END) if history else (NOW.date(), NOW.date())
            run_, _ = await module.runs.start(context, "acct", source.source_id, "backfill",
                                              first, last, f"e2e-{name}")
            assert await jobs.run_once(INGEST_JOB) == 1
            done = await module.runs.get("acct", run_.run_id)
            assert done.state == "done", done.error
            truth = server[name].truth(first, last)
            assert table(await module.store.rows("acct")) == pytest.approx(truth)
            assert done.points == len(truth) and await module.store.count("other") == 0
            assert {f["source"] for f in await module.store.freshness("acct")} == {name}

    run(go())


def test_two_workers_on_the_same_window_never_double_count(db_url: str,
                                                           tmp_path: Path) -> None:
    async def go() -> None:
        async with analytics(db_url, tmp_path, "shazam") as (context, server, _):
            module = services(context)
            source = await connect(context, "shazam")
            runs = [(await module.runs.start(context, "acct", source.source_id, "backfill",
                                             START, END, f"w{i}"))[0] for i in range(2)]
            results = await asyncio.gather(*(module.ingestor.run("acct", r.run_id)
                                             for r in runs))
            truth = server["shazam"].truth(START, END)
            assert [r["points"] for r in results] == [len(truth)] * 2
            assert table(await module.store.rows("acct")) == pytest.approx(truth)

    run(go())


def test_a_token_revoked_mid_backfill_stops_the_job_and_keeps_its_progress(
        db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with analytics(db_url, tmp_path, "spotify") as (context, server, jobs):
            module = services(context)
            source = await connect(context, "spotify")
            run_, _ = await module.runs.start(context, "acct", source.source_id, "backfill",
                                              START, END, "revoke")
            server["spotify"].fail("revoked", after=into_second_chunk(server["spotify"]))
            await jobs.run_once(INGEST_JOB)
            stopped = await module.runs.get("acct", run_.run_id)
            assert stopped.state == "stopped" and "reconnect" in stopped.error
            assert stopped.complete_through == "2024-04-30"
            job = await job_of(context, stopped)
            assert job.state == "dead" and "reconnect the source" in job.last_error
            flagged = await module.connections.get("acct", source.source_id)
            assert flagged.state == "needs_reconnect" and flagged.last_error
            kept = table(await module.store.rows("acct"))
            truth = server["spotify"].truth(START, END)
            assert kept.items() <= truth.items()
            assert any(k[3] <= date(2024, 4, 30) for k in kept)
            april = {k for k in truth if k[3] <= date(2024, 4, 30)}
            assert april <= set(kept) and len(kept) > len(april)  # chunk 2's first pages too
            assert stopped.points == len(kept)
            assert await schedule_due(context, time.time() + 10**6) == 0   # not scheduled

    run(go())


def test_retry_after_reschedules_the_job_instead_of_sleeping(db_url: str,
                                                             tmp_path: Path) -> None:
    """A long wait the platform asks for ends the attempt rather than sleeping; the
    run's points count what is stored, each point once, across the two attempts."""
    async def go() -> None:
        async with analytics(db_url, tmp_path, "spotify") as (context, server, jobs):
            module = services(context)
            source = await connect(context, "spotify")
            run_, _ = await module.runs.start(context, "acct", source.source_id, "backfill",
                                              START, END, "throttled")
            server["spotify"].fail("rate_limited", retry_after=120,
                                   after=into_second_chunk(server["spotify"]))
            began = time.monotonic()
            await jobs.run_once(INGEST_JOB)
            assert time.monotonic() - began < 20           # nobody slept 120 s
            waiting = await module.runs.get("acct", run_.run_id)
            assert waiting.state == "waiting" and waiting.complete_through == "2024-04-30"
            # the second chunk was cut short: its days fetched so far are stored, and
            # fetched (and counted) again by the next attempt, so not counted yet
            assert await module.store.count("acct") > waiting.points
            job = await job_of(context, waiting)
            assert job.state == "retrying" and 110 < job.run_at - time.time() <= 121
            assert await jobs.run_once(INGEST_JOB) == 0    # not due yet
            await context.database().execute("UPDATE jobs SET run_at = 0 WHERE id = ?", job.id)
            assert await jobs.run_once(INGEST_JOB) == 1
            done = await module.runs.get("acct", run_.run_id)
            assert done.state == "done"
            assert done.points == await module.store.count("acct")  # each counted once
            truth = server["spotify"].truth(START, END)
            assert table(await module.store.rows("acct")) == pytest.approx(truth)

    run(go())


def test_a_spent_quota_reschedules_the_job_for_its_reset(db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with analytics(db_url, tmp_path, "youtube") as (context, server, jobs):
            module = services(context)
            source = await connect(context, "youtube")
            run_, _ = await module.runs.start(context, "acct", source.source_id, "backfill",
                                              START, END, "quota")
            server["youtube"].fail("quota")
            await jobs.run_once(INGEST_JOB)
            job = await job_of(context, run_)
            assert job.state == "retrying" and "quota" in job.last_error
            assert job.run_at - time.time() > 60    # at the reset, not a short backoff
            assert (await module.runs.get("acct", run_.run_id)).state == "waiting"

    run(go())


def test_a_changed_answer_shape_flags_the_source(db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with analytics(db_url, tmp_path, "shazam") as (context, server, jobs):
            module = services(context)
            source = await connect(context, "shazam")
            run_, _ = await module.runs.start(context, "acct", source.source_id, "backfill",
                                              START, END, "renamed")
            server["shazam"].fail("renamed")
            await jobs.run_once(INGEST_JOB)
            assert (await job_of(context, run_)).state == "dead"
            flagged = await module.connections.get("acct", source.source_id)
            assert flagged.state == "failing" and "changed shape" in flagged.last_error
            assert await module.store.count("acct") == 0   # nothing of that page kept

    run(go())


def test_due_sources_are_scheduled_once_per_slot_across_nodes(db_url: str,
                                                               tmp_path: Path) -> None:
    async def go() -> None:
        async with analytics(db_url, tmp_path, "spotify", "deezer") as (context, server, jobs):
            module = services(context)
            spotify = await connect(context, "spotify")
            await connect(context, "deezer")
            now = time.time()
            counts = await asyncio.gather(schedule_due(context, now), schedule_due(context, now))
            assert sorted(counts) in ([0, 2], [1, 1])
            assert await schedule_due(context, now + 60) == 0     # next slot not due yet
            runs = await module.runs.of_source("acct", spotify.source_id)
            assert [(r.kind, r.first_day, r.last_day) for r in runs] == [
                ("scheduled", "2024-06-28", "2024-06-30")]    # spotify's 2-day lookback
            while await jobs.run_once(INGEST_JOB):
                pass
            assert await module.store.count("acct", "deezer") == len(
                server["deezer"].truth(NOW.date(), NOW.date()))
            fresh = {f["source"] for f in await module.store.freshness("acct")}
            assert fresh == {"spotify", "deezer"}

    run(go())


def test_presave_events_are_stored_as_points_once(tmp_path: Path) -> None:
    async def go() -> None:
        async with migrated(f"sqlite://{tmp_path / 'e.sqlite3'}") as db:
            context = await plugin_context(db, tmp_path)
            payload = {"account_id": "acct", "slug": "s", "campaign_id": "c", "release_id":
                       "rel-1", "title": "Night Drive", "artist": "Ada", "release_date":
                       "2024-06-28", "services": ["spotify"], "presaves": 42,
                       "released": True, "event_id": "e1"}
            await store_event(context, "presave.release_day", payload)
            await store_event(context, "presave.release_day", payload)   # heard again
            await store_event(context, "social.post_approved", {"account_id": "acct"})
            module = services(context)
            [row] = await module.store.rows("acct")
            assert (row["source"], row["entity_id"], row["metric"], row["value"]) == (
                "presave", "rel-1", "presaves", 42)
            [release] = await module.catalog.entities("acct", "release")
            assert release.name == "Night Drive"
            await module.close()

    run(go())
