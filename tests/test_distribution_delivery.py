"""The delivery pipeline on the job queue against a real HTTP fake store that fails at random.

Nothing lost, nothing sent twice: every job ends ``delivered``, the store
accepted each message once, and (with the status probe) no message reached the
store's complete step twice, under 503s, dropped acknowledgements, and a worker
process killed with SIGKILL mid-delivery. Without the probe, a message is re-sent
exactly as often as its acknowledgement was lost, and the store's deduplication
makes each re-send a no-op. Deliveries run as ``distribution.deliver`` jobs of the
job queue, served by a :class:`jobs.JobWorker` as in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from distribution_helpers import (
    TODAY,
    FlakyDatabase,
    make_art,
    make_audio,
    migrate,
    release_dict,
)
from loopback import self_signed_files

from business.distribution.catalog import Catalog, _measured_digests
from business.distribution.compliance import ComplianceReport
from business.distribution.delivery import (
    DEAD_EVENT,
    DELIVER,
    DELIVERED_EVENT,
    RESUMED,
    TAKEN_OVER,
    DeliveryPipeline,
    PipelineSettings,
)
from business.distribution.errors import ComplianceError, DistributionError
from business.distribution.schemas import DeliveryFailed, ReleaseDelivered
from business.distribution.stores.base import StoreConnector
from business.distribution.stores.fakestore import FakeStore
from business.distribution.stores.http_drop import HttpDropConnector
from database import open_database
from events import EventBus, InProcessTransport
from jobs import JobCancelled, JobContext, JobQueue, JobWorker

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(backoff_base=0.01, backoff_cap=0.1, lease_s=5.0, concurrency=4, max_attempts=40)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {"art": make_art(root / "cover.jpg"),
            "audio": make_audio(root / "song.wav", seconds=1.0)}


@contextlib.asynccontextmanager
async def _setup(where: str | Path, **store_options: Any
                 ) -> AsyncIterator[tuple[Any, FakeStore, Catalog]]:
    """A migrated database (a URL, or an SQLite file in the folder ``where``), a fake
    store on loopback (``store_options``) and the catalogue over the database."""
    url = f"sqlite://{where / 'd.sqlite3'}" if isinstance(where, Path) else where
    async with open_database(url) as db, FakeStore(**store_options) as store:
        await migrate(db)
        yield db, store, Catalog(db)


def _pipeline(db: Any, connectors: list[StoreConnector], catalog: Catalog, *,
              rng: random.Random | None = None, bus: EventBus | None = None,
              **settings: Any) -> DeliveryPipeline:
    """A pipeline on a job queue of its own over ``db`` (FAST settings, overridden),
    announcing its endings on ``bus``."""
    return DeliveryPipeline(db, JobQueue(db, rng=rng), connectors, catalog.package,
                            settings=PipelineSettings(**{**FAST, **settings}),
                            publish=bus.publish if bus is not None else None)


async def _outbox(db: Any) -> EventBus:
    """An event bus over ``db`` that is never started: what is published stays in its
    outbox (``events_outbox``), written in the transaction of the change it announces."""
    bus = EventBus(db, InProcessTransport(JobQueue(db)))
    bus.declare(DELIVERED_EVENT, ReleaseDelivered)
    bus.declare(DEAD_EVENT, DeliveryFailed)
    await bus.setup()
    return bus


async def _announced(db: Any) -> list[tuple[str, dict]]:
    """The events in the outbox, oldest first: (name, payload)."""
    return [(row["name"], json.loads(row["payload"])) for row in await db.fetch(
        "SELECT name, payload FROM events_outbox ORDER BY created_at")]


def _worker(pipeline: DeliveryPipeline, **options: Any) -> JobWorker:
    """A job worker serving the pipeline's deliveries, as the server's does."""
    return JobWorker(pipeline.queue, {DELIVER: pipeline.handle},
                     **{"poll_s": 0.02, **options})


async def _run_once(pipeline: DeliveryPipeline) -> int:
    """Run the deliveries due now, each to the end of one attempt."""
    return await _worker(pipeline).run_once(DELIVER)


async def _seed(catalog: Catalog, media: dict[str, Path], count: int) -> list[str]:
    ids = []
    for n in range(count):
        raw = release_dict(media["art"].parent, release_id=f"rel-{n}", isrc_base=n + 1,
                           art=media["art"], audio=[media["audio"]])
        ids.append((await catalog.save_release("acc", raw)).release_id)
    return ids


def _connectors(store: FakeStore, names: list[str], token: str = "secret"
                ) -> list[HttpDropConnector]:
    return [HttpDropConnector(n, store.url, token=token, dpid=f"PADPIDA{n.upper()}")
            for n in names]


def assert_sent_once_each(store: FakeStore, message_ids: set[str], *,
                          sender_lost_acks: bool = False) -> None:
    """Each message accepted once, its complete sent once; lost acks settled by a probe.

    A sender that died (or could not record a delivery) loses acknowledgements the
    store never knew it dropped: then probes also find messages whose answer the
    store did send.
    """
    stats = store.stats
    assert set(store.accepted) == message_ids
    assert Counter(stats.acceptances) == dict.fromkeys(message_ids, 1)
    assert stats.completes == dict.fromkeys(message_ids, 1)
    assert stats.duplicates == 0
    if sender_lost_acks:
        assert set(stats.lost_acks) <= set(stats.probed_accepted)
    else:
        assert stats.probed_accepted == dict.fromkeys(stats.lost_acks, 1)


async def _until(predicate, timeout: float = 60.0, describe=None) -> None:  # noqa: ANN001
    """Wait for ``predicate()``; on timeout, fail with what ``describe()`` says."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            seen = f": {await describe()}" if describe is not None else ""
            raise AssertionError(f"condition not reached in time{seen}")
        await asyncio.sleep(0.05)


async def _states(pipeline: DeliveryPipeline) -> str:
    """Each record's state and attempts, and each queue job's state, for a failure."""
    records = [(j["release_id"], j["state"], j["attempts"], j["last_error"][:80])
               for j in await pipeline.jobs("acc")]
    runs = [(r.id[:8], r.state, r.attempts) for r in await pipeline.queue.find(queue=DELIVER)]
    return f"records {records}; queue jobs {runs}"


def test_everything_is_delivered_exactly_once_under_random_failures(
        db_url: str, media: dict[str, Path]) -> None:
    async def go() -> dict:
        stores = ["alpha", "beta"]
        async with _setup(db_url, fail_rate=0.3, drop_rate=0.2, seed=7) as (db, store, catalog):
            ids = await _seed(catalog, media, 10)
            # An attempt (probe, two uploads, complete) gets through about one time in
            # eight here, so 40 attempts left one of the 20 deliveries dead in about one
            # run in eight; 400 leave none, and a delivery still only ends dead for good
            # reason.
            pipeline = _pipeline(db, _connectors(store, stores), catalog,
                                 rng=random.Random(1), max_attempts=400,
                                 bus=await _outbox(db))
            started = time.monotonic()
            for release_id in ids:
                await pipeline.enqueue("acc", release_id, stores)
            async with _worker(pipeline):
                async def done() -> bool:
                    jobs = await pipeline.jobs("acc")
                    return all(j["state"] in ("delivered", "dead") for j in jobs)
                await _until(done, describe=lambda: _states(pipeline))
            elapsed = time.monotonic() - started
            jobs = await pipeline.jobs("acc")
            assert [j["state"] for j in jobs] == ["delivered"] * 20
            assert store.stats.failed_503 > 0 and store.stats.dropped > 0
            assert sum(store.stats.lost_acks.values()) > 0
            assert_sent_once_each(store, {j["message_id"] for j in jobs})
            # each delivery announced once, however many attempts it took
            announced = await _announced(db)
            assert [name for name, _ in announced] == [DELIVERED_EVENT] * 20
            assert Counter(p["message_id"] for _, p in announced) == {
                j["message_id"]: 1 for j in jobs}
            assert {(p["release_id"], p["store"], p["attempts"]) for _, p in announced} == {
                (j["release_id"], j["store"], j["attempts"]) for j in jobs}
            metrics = await pipeline.metrics("acc")
            assert metrics["jobs"]["delivered"] == 20
            assert metrics["attempts"] > 20
            assert metrics["entries_into_state"]["retrying"] > 0
            assert metrics["delivery_lag_s"]["count"] == 20
            stats = store.stats
            return {"elapsed": elapsed, "metrics": metrics,
                    "stats": f"{stats.failed_503} x 503, {stats.dropped} dropped acks "
                             f"({sum(stats.lost_acks.values())} of completes), "
                             f"{sum(stats.probed_accepted.values())} probes found it there"}

    result = asyncio.run(go())
    print(f"\n20 deliveries in {result['elapsed']:.2f} s, {result['metrics']['attempts']} "
          f"attempts, store stats {result['stats']}")


def test_without_the_probe_only_lost_acks_cause_resends_and_the_store_ignores_them(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(tmp_path, fail_rate=0.2, drop_rate=0.3, seed=11) as (db, store, catalog):
            ids = await _seed(catalog, media, 8)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog,
                                 rng=random.Random(2), probe_before_resend=False)
            for release_id in ids:
                await pipeline.enqueue("acc", release_id, ["alpha"])
            async with _worker(pipeline):
                async def done() -> bool:
                    jobs = await pipeline.jobs("acc")
                    return all(j["state"] == "delivered" for j in jobs)
                await _until(done, describe=lambda: _states(pipeline))
            messages = {j["message_id"] for j in await pipeline.jobs("acc")}
            stats = store.stats
            assert sum(stats.lost_acks.values()) > 0
            assert Counter(stats.acceptances) == dict.fromkeys(messages, 1)
            for message_id in messages:  # one send, plus one per lost acknowledgement
                assert stats.completes[message_id] == 1 + stats.lost_acks[message_id]
            assert stats.duplicates == sum(stats.lost_acks.values())
            assert not stats.probed_accepted

    asyncio.run(go())


WORKER = textwrap.dedent("""
    import asyncio, sys
    from business.distribution.catalog import Catalog
    from business.distribution.delivery import DELIVER, DeliveryPipeline, PipelineSettings
    from business.distribution.stores.http_drop import HttpDropConnector
    from database import open_database
    from jobs import JobQueue, JobWorker

    async def main(db_url, url):
        async with open_database(db_url) as db:
            catalog = Catalog(db)
            connector = HttpDropConnector("alpha", url, token="secret")
            pipeline = DeliveryPipeline(db, JobQueue(db), [connector], catalog.package,
                settings=PipelineSettings(backoff_base=0.01, backoff_cap=0.1, lease_s=1.0,
                                          concurrency=4, max_attempts=40))
            async with JobWorker(pipeline.queue, {DELIVER: pipeline.handle},
                                 worker_id="doomed", poll_s=0.02):
                print("ready", flush=True)
                await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


def test_worker_killed_mid_delivery_loses_nothing_and_sends_nothing_twice(
        db_url: str, tmp_path: Path, media: dict[str, Path]) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)

    async def go() -> None:
        async with _setup(db_url, fail_rate=0.2, drop_rate=0.1, seed=3,
                          delay_s=0.05) as (db, store, catalog):
            ids = await _seed(catalog, media, 16)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            for release_id in ids:
                await pipeline.enqueue("acc", release_id, ["alpha"])
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(script), db_url, store.url, cwd=ROOT, env=env,
                stdout=subprocess.PIPE)
            async with asyncio.timeout(60):
                assert (await proc.stdout.readline()).strip() == b"ready"

            async def some_delivered() -> bool:
                return len(store.accepted) >= 4
            await _until(some_delivered, describe=lambda: _states(pipeline))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            in_flight = [j for j in await pipeline.jobs("acc") if j["state"] == "delivering"]
            assert 0 < len(store.accepted) < 16
            async with _worker(pipeline, worker_id="heir"):
                async def done() -> bool:
                    jobs = await pipeline.jobs("acc")
                    return all(j["state"] == "delivered" for j in jobs)
                await _until(done, describe=lambda: _states(pipeline))
            jobs = await pipeline.jobs("acc")
            assert len(jobs) == 16
            assert_sent_once_each(store, {j["message_id"] for j in jobs},
                                  sender_lost_acks=True)
            events = await db.fetch("SELECT detail FROM dist_job_events WHERE detail = ?",
                                    TAKEN_OVER)
            assert len(events) >= len(in_flight) > 0

    asyncio.run(go())


def test_an_attempt_that_loses_the_start_race_to_a_stale_one_still_delivers(
        tmp_path: Path, media: dict[str, Path]) -> None:
    """A stale attempt (its lease ran out) writes between the new holder's read and its
    start, then stops for good, as one cancelled at its next heartbeat does: the holder
    reads the record again and delivers it, rather than end the job "superseded" and
    leave the record "delivering" for ever."""
    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            await pipeline.enqueue("acc", release_id, ["alpha"])
            start, raced = pipeline._start, []

            async def stale_writes_first(record: dict, attempt: int) -> dict | None:
                if not raced:
                    raced.append(await start(record, attempt))
                return await start(record, attempt)

            pipeline._start = stale_writes_first
            assert await _run_once(pipeline) == 1
            assert raced and raced[0] is not None
            [job] = await pipeline.jobs("acc")
            assert job["state"] == "delivered"
            assert set(store.accepted) == {job["message_id"]}
            [run] = await pipeline.queue.find(queue=DELIVER)
            assert run.state == "done" and run.result["outcome"] == "delivered"

    asyncio.run(go())


def test_an_attempt_whose_lease_ran_out_does_not_start(
        tmp_path: Path, media: dict[str, Path]) -> None:
    """A stalled attempt that wakes after another worker claimed its job confirms its
    lease before starting, and stops without touching the record or the store."""
    async def go() -> None:
        now = [time.time()]
        async with _setup(tmp_path) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            queue = JobQueue(db, clock=lambda: now[0])
            pipeline = DeliveryPipeline(db, queue, _connectors(store, ["alpha"]),
                                        catalog.package, settings=PipelineSettings(**FAST))
            await pipeline.enqueue("acc", release_id, ["alpha"])
            [stale] = await queue.claim(DELIVER, "stalled")
            now[0] += FAST["lease_s"] + 1
            [held] = await queue.claim(DELIVER, "holder")
            [before] = await pipeline.jobs("acc")
            with pytest.raises(JobCancelled):
                await pipeline.handle(JobContext(stale, lambda: queue.heartbeat(stale)))
            assert await pipeline.jobs("acc") == [before]
            assert not store.accepted and not store.stats.requests
            outcome = await pipeline.handle(JobContext(held, lambda: queue.heartbeat(held)))
            assert outcome == {"outcome": "delivered", "message_id": before["message_id"]}

    asyncio.run(go())


def test_a_retry_ships_nothing_changed_since_the_gate_even_from_its_cache(
        tmp_path: Path) -> None:
    """Attempt 1 built (and cached) the package; the audio is replaced before the retry,
    which must refuse it as changed, not ship the cached package's old checksum with the
    new bytes."""
    art = make_art(tmp_path / "cover.jpg")
    wav = make_audio(tmp_path / "take.wav", seconds=1.0)

    async def go() -> None:
        async with _setup(tmp_path) as (_db, _store, catalog):
            await catalog.save_release("acc", release_dict(tmp_path, release_id="r", art=art,
                                                           audio=[wav]))
            snapshot = await catalog.snapshot("acc", "r")
            first = await catalog.package("acc", "r", "alpha", "new", "m1", snapshot)
            again = await catalog.package("acc", "r", "alpha", "new", "m1", snapshot)
            assert again is first  # unchanged: the retry reuses the package
            make_audio(wav, seconds=1.0, clip=True)  # re-rendered after attempt 1
            with pytest.raises(ComplianceError, match="take.wav changed after the release "
                                                      "passed the gate"):
                await catalog.package("acc", "r", "alpha", "new", "m1", snapshot)
            Path(wav).unlink()
            with pytest.raises(ComplianceError, match="take.wav changed"):
                await catalog.package("acc", "r", "alpha", "new", "m1", snapshot)

    asyncio.run(go())


def test_what_ships_is_what_passed_the_gate(tmp_path: Path) -> None:
    art = make_art(tmp_path / "cover.jpg")
    audio = {"edited": make_audio(tmp_path / "edited.wav", seconds=1.0),
             "swapped": make_audio(tmp_path / "swapped.wav", seconds=1.0)}

    def raw(name: str, number: int) -> dict:
        return release_dict(tmp_path, release_id=name, isrc_base=number, art=art,
                            audio=[audio[name]])

    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            for number, name in enumerate(audio, start=1):
                await catalog.save_release("acc", raw(name, number))
                snapshot = await catalog.snapshot("acc", name)
                await pipeline.enqueue("acc", name, ["alpha"], snapshot_id=snapshot)
            # after queueing, one release's title and the other's audio change
            await catalog.save_release("acc", {**raw("edited", 1),
                                               "title": "Night Drive feat. Bob"})
            make_audio(audio["swapped"], seconds=1.0, clip=True)
            await _run_once(pipeline)
            jobs = {j["release_id"]: j for j in await pipeline.jobs("acc")}
            assert jobs["edited"]["state"] == "delivered"
            assert store.accepted[jobs["edited"]["message_id"]]["title"] == "Night Drive"
            assert jobs["swapped"]["state"] == "dead"
            assert "swapped.wav changed after the release passed the gate" in \
                jobs["swapped"]["last_error"]
            assert set(store.accepted) == {jobs["edited"]["message_id"]}
            # the same release checked again is refused for what changed
            with pytest.raises(ComplianceError) as refused:
                await catalog.snapshot("acc", "swapped")
            assert {i.code for i in refused.value.issues} == {"audio_clipping"}
            missing = {**raw("edited", 1), "release_id": "missing"}
            missing["tracks"][0]["audio_path"] = str(tmp_path / "nowhere.wav")
            await catalog.save_release("acc", missing)
            with pytest.raises(ComplianceError, match="nowhere.wav"):
                await catalog.snapshot("acc", "missing")

    asyncio.run(go())


def test_a_file_the_gate_read_twice_with_two_contents_is_not_frozen() -> None:
    report = ComplianceReport(audio={"0": {"path": "/a.wav", "sha256": "1" * 64},
                                     "1": {"path": "/a.wav", "sha256": "2" * 64}},
                              artwork={"path": "/cover.jpg", "sha256": "3" * 64})
    with pytest.raises(ComplianceError, match="/a.wav changed after the release passed"):
        _measured_digests(report, 0.0)
    report.audio.pop("1")
    assert _measured_digests(report, 0.0) == {"/a.wav": "1" * 64, "/cover.jpg": "3" * 64}


def test_a_job_queued_without_a_snapshot_runs_the_full_gate_when_packaged(
        tmp_path: Path) -> None:
    art = make_art(tmp_path / "cover.jpg")
    clipped = make_audio(tmp_path / "clipped.wav", seconds=1.0, clip=True)

    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            await catalog.save_release("acc", release_dict(tmp_path, art=art,
                                                           audio=[clipped]))
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            await pipeline.enqueue("acc", "rel-1", ["alpha"])
            await _run_once(pipeline)
            [job] = await pipeline.jobs("acc")
            assert job["state"] == "dead" and "clips" in job["last_error"]
            assert store.stats.requests == 0

    asyncio.run(go())


#: The job queue's claim, and the pipeline's write of an attempt's outcome.
CLAIM_SQL = "UPDATE jobs SET state = 'running'"
FINISH_SQL = "UPDATE dist_jobs SET state = ?"


def test_worker_survives_database_errors_and_still_delivers_everything(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as real, \
                FakeStore() as store:
            await migrate(real)
            catalog = Catalog(real)
            ids = await _seed(catalog, media, 4)
            # the worker's first three claims fail, and so does recording its first result
            db = FlakyDatabase(real, {CLAIM_SQL: 3, FINISH_SQL: 1})
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            for release_id in ids:
                await pipeline.enqueue("acc", release_id, ["alpha"])
            async with _worker(pipeline, error_backoff_cap=0.05) as worker:
                async def done() -> bool:
                    jobs = await pipeline.jobs("acc")
                    return all(j["state"] == "delivered" for j in jobs)
                await _until(done, 30)
                assert worker._loops and not any(task.done() for task in worker._loops)
            assert db.injected == {CLAIM_SQL: 3, FINISH_SQL: 1}
            jobs = await pipeline.jobs("acc")
            assert_sent_once_each(store, {j["message_id"] for j in jobs},
                                  sender_lost_acks=True)
            assert sum(store.stats.probed_accepted.values()) == 1
            # the job whose "delivered" was lost was taken over by its next attempt
            taken = await real.fetch("SELECT job_id FROM dist_job_events WHERE detail = ?",
                                     TAKEN_OVER)
            assert len(taken) == 1

    asyncio.run(go())


class ClaimWatch(FlakyDatabase):
    """A real database that tells when the worker's claim has found nothing due."""

    def __init__(self, db: Any) -> None:
        super().__init__(db, {})
        self.idle = asyncio.Event()

    def fetched(self, sql: str, rows: list[dict[str, Any]]) -> None:
        if sql.startswith(CLAIM_SQL) and not rows:
            self.idle.set()


def test_stopping_an_idle_worker_just_as_a_job_wakes_it_returns(
        tmp_path: Path, media: dict[str, Path]) -> None:
    """A stop that meets a wake-up is not lost (asyncio.wait_for on 3.11 swallowed it)."""
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as real, \
                FakeStore() as store:
            await migrate(real)
            catalog = Catalog(real)
            [release_id] = await _seed(catalog, media, 1)
            db = ClaimWatch(real)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            worker = _worker(pipeline, poll_s=3600)
            worker.start()
            async with asyncio.timeout(30):
                await db.idle.wait()  # the worker now sleeps until woken
            await pipeline.enqueue("acc", release_id, ["alpha"])  # wakes it ...
            await worker.stop()  # ... and stops it before it runs again
            [job] = await pipeline.jobs("acc")
            assert job["state"] == "queued" and store.stats.requests == 0

    asyncio.run(go())


def test_permanent_refusal_goes_dead_with_the_last_error_then_retries(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            bus = await _outbox(db)
            bad = _pipeline(db, _connectors(store, ["alpha"], token="wrong"), catalog,
                            bus=bus)
            [job] = await bad.enqueue("acc", release_id, ["alpha"])
            await _run_once(bad)
            [job] = await bad.jobs("acc")
            assert job["state"] == "dead" and "HTTP 401" in job["last_error"]
            assert job["attempts"] == 1  # a permanent refusal is not retried
            [letter] = await bad.queue.dead_letters(DELIVER)
            assert letter.id == job["run_id"] and "HTTP 401" in letter.last_error
            [(name, failed)] = await _announced(db)
            assert name == DEAD_EVENT and "HTTP 401" in failed["error"]
            assert (failed["release_id"], failed["store"], failed["account_id"]) == (
                release_id, "alpha", "acc")
            good = _pipeline(db, _connectors(store, ["alpha"]), catalog, bus=bus)
            await good.retry_dead("acc", job["job_id"])
            await _run_once(good)
            [job] = await good.jobs("acc")
            assert job["state"] == "delivered" and list(store.accepted) == [job["message_id"]]
            [_, (name, delivered)] = await _announced(db)
            assert name == DELIVERED_EVENT and delivered["message_id"] == job["message_id"]
            assert delivered["store_had_it"] is False

    asyncio.run(go())


def test_store_that_always_fails_ends_dead_after_max_attempts(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(tmp_path, fail_rate=1.0) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog, max_attempts=3)
            await pipeline.enqueue("acc", release_id, ["alpha"])
            async with _worker(pipeline):
                async def dead() -> bool:
                    return (await pipeline.jobs("acc"))[0]["state"] == "dead"
                await _until(dead, 20)
            [job] = await pipeline.jobs("acc")
            assert job["attempts"] == 3 and "HTTP 503" in job["last_error"]
            states = [r["state"] for r in await db.fetch(
                "SELECT state FROM dist_job_events ORDER BY seq")]
            assert states == ["queued", "delivering", "failed", "retrying", "delivering",
                              "failed", "retrying", "delivering", "failed", "dead"]

    asyncio.run(go())


def test_update_takedown_and_redelivery_are_idempotent(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)

            async def step(action: str, **kw: bool) -> dict:
                await pipeline.enqueue("acc", release_id, ["alpha"], action, **kw)
                await _run_once(pipeline)
                return (await pipeline.jobs("acc"))[0]

            first = await step("new")
            again = await step("new")
            assert again["message_id"] == first["message_id"]
            assert again["version"] == first["version"]  # nothing re-queued
            redelivered = await step("new", redeliver=True)
            assert redelivered["state"] == "delivered"
            assert redelivered["message_id"] == first["message_id"]
            assert store.stats.duplicates == 1
            update = await step("update")
            takedown = await step("takedown")
            assert update["revision"] == 2 and takedown["revision"] == 3
            assert [v["action"] for v in store.accepted.values()] == ["new", "update",
                                                                      "takedown"]
            assert len({first["message_id"], update["message_id"],
                        takedown["message_id"]}) == 3

    asyncio.run(go())


def test_a_live_release_takes_an_update_and_a_resend_but_no_late_first_delivery(
        db_url: str, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(db_url) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)  # out on TODAY + 21
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            too_late = TODAY + dt.timedelta(days=30)
            for asked in ({"action": "update"}, {"redeliver": True}):  # nothing out yet
                with pytest.raises(ComplianceError) as late:
                    await catalog.snapshot("acc", release_id, today=too_late, **asked)
                assert {i.code for i in late.value.issues} == {"release_date_past"}, asked
            first = await catalog.snapshot("acc", release_id, today=TODAY)
            await pipeline.enqueue("acc", release_id, ["alpha"], snapshot_id=first)
            await _run_once(pipeline)
            raw = release_dict(media["art"].parent, release_id=release_id,
                               art=media["art"], audio=[media["audio"]])
            await catalog.save_release("acc", {**raw, "title": "Night Drive (fixed)"})
            month_later = TODAY + dt.timedelta(days=51)
            with pytest.raises(ComplianceError) as late:  # a first delivery comes too late
                await catalog.snapshot("acc", release_id, today=month_later)
            assert {i.code for i in late.value.issues} == {"release_date_past"}
            await catalog.snapshot("acc", release_id, today=month_later, redeliver=True)
            fixed = await catalog.snapshot("acc", release_id, today=month_later,
                                           action="update")
            [update] = await pipeline.enqueue("acc", release_id, ["alpha"], "update",
                                              snapshot_id=fixed)
            await _run_once(pipeline)
            [job] = await pipeline.jobs("acc")
            assert (job["state"], job["revision"]) == ("delivered", 2)
            assert [(v["action"], v["title"]) for v in store.accepted.values()] == [
                ("new", "Night Drive"), ("update", "Night Drive (fixed)")]

    asyncio.run(go())


def test_a_new_request_on_a_dead_first_delivery_ships_the_fixed_release_once(
        db_url: str, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(db_url, fail_rate=1.0) as (db, store, catalog):
            raw = release_dict(media["art"].parent, art=media["art"], audio=[media["audio"]])
            await catalog.save_release("acc", {**raw, "title": "Nite Drive"})
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog, max_attempts=1)

            async def new() -> dict:
                snapshot = await catalog.snapshot("acc", "rel-1", today=TODAY)
                [record] = await pipeline.enqueue("acc", "rel-1", ["alpha"],
                                                  snapshot_id=snapshot)
                return record

            first = await new()
            await _run_once(pipeline)
            [dead] = await pipeline.jobs("acc")
            assert dead["state"] == "dead" and not store.accepted
            store.fail_rate = 0.0
            await catalog.save_release("acc", raw)  # the title fixed: "Night Drive"
            armed = await new()
            assert (armed["state"], armed["revision"]) == ("queued", 2)
            assert armed["message_id"] != first["message_id"]
            assert (await new())["version"] == armed["version"]  # queued: nothing changes
            await _run_once(pipeline)
            delivered = await new()  # delivered: nothing changes either
            assert delivered["state"] == "delivered" and delivered["revision"] == 2
            assert await _run_once(pipeline) == 0
            assert [v["title"] for v in store.accepted.values()] == ["Night Drive"]
            assert_sent_once_each(store, {armed["message_id"]})

    asyncio.run(go())


def test_unknown_store_is_refused_by_name(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db:
            await migrate(db)
            pipeline = DeliveryPipeline(db, JobQueue(db), [], Catalog(db).package)
            with pytest.raises(Exception, match="store 'nowhere' is not configured"):
                await pipeline.enqueue("acc", "r", ["nowhere"])

    asyncio.run(go())


def test_two_workers_share_the_queue_and_slow_uploads_keep_their_lease(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(tmp_path, delay_s=6.0) as (db, store, catalog):
            ids = await _seed(catalog, media, 6)
            # Uploads twice as long as the lease; beats every 1 s, so only a 2 s stall of
            # the loop or the database (a loaded machine) lets a lease lapse.
            one, two = (_pipeline(db, _connectors(store, ["alpha"]), catalog, lease_s=3.0)
                        for _ in range(2))
            for release_id in ids:
                await one.enqueue("acc", release_id, ["alpha"])
            async with _worker(one, worker_id="one"), _worker(two, worker_id="two"):
                async def done() -> bool:
                    jobs = await one.jobs("acc")
                    return all(j["state"] == "delivered" for j in jobs)
                await _until(done, 60)
            assert set(store.stats.completes.values()) == {1}  # no message sent twice
            assert len(store.accepted) == 6
            workers = {r["detail"] for r in await db.fetch(
                "SELECT detail FROM dist_job_events WHERE state = 'delivering'")}
            assert workers == {""}  # no lease ever expired under a running upload

    asyncio.run(go())


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate for 127.0.0.1."""
    cert, key = self_signed_files(tmp_path_factory.mktemp("tls"))
    return {"key": key, "cert": cert}


def test_https_upload_needs_a_trusted_certificate(
        tmp_path: Path, media: dict[str, Path], tls: dict[str, Path]) -> None:
    import ssl

    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(tls["cert"], tls["key"])

    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore(ssl_context=server_ssl) as store:
            assert store.url.startswith("https://")
            await migrate(db)
            catalog = Catalog(db)
            [release_id] = await _seed(catalog, media, 1)
            untrusted = _pipeline(
                db, [HttpDropConnector("alpha", store.url, token="secret")], catalog)
            await untrusted.enqueue("acc", release_id, ["alpha"])
            await _run_once(untrusted)
            [job] = await untrusted.jobs("acc")
            assert job["state"] == "retrying" and "certificate" in job["last_error"].lower()
            assert store.stats.requests == 0
            trusted = _pipeline(
                db, [HttpDropConnector("alpha", store.url, token="secret",
                                       ca_file=str(tls["cert"]))], catalog)
            await asyncio.sleep(0.15)  # past the backoff
            await _run_once(trusted)
            [job] = await trusted.jobs("acc")
            assert job["state"] == "delivered" and list(store.accepted) == [job["message_id"]]

    asyncio.run(go())


class AckNeverComes(HttpDropConnector):
    """A connector whose message reaches the store, then waits forever for the answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = asyncio.Event()

    async def deliver(self, package: Any) -> Any:
        await super().deliver(package)
        self.sent.set()
        await asyncio.Event().wait()


def test_a_delivery_given_back_by_a_stopping_worker_is_probed_not_sent_again(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            stuck = AckNeverComes("alpha", store.url, token="secret")
            stopping = _pipeline(db, [stuck], catalog)
            [job] = await stopping.enqueue("acc", release_id, ["alpha"])
            async with _worker(stopping), asyncio.timeout(30):
                await stuck.sent.wait()  # the store has it; the worker stops before the ack
            run = await stopping.queue.get("acc", job["run_id"])
            assert (run.state, run.attempts) == ("queued", 0)  # given back, not counted
            await _run_once(_pipeline(db, _connectors(store, ["alpha"]), catalog))
            [job] = await stopping.jobs("acc")
            assert job["state"] == "delivered"
            assert job["last_error"] == "store already had it (status probe)"
            assert store.stats.completes == {job["message_id"]: 1}
            assert store.stats.probed_accepted == {job["message_id"]: 1}
            details = [r["detail"] for r in await db.fetch(
                "SELECT detail FROM dist_job_events WHERE state = 'delivering' ORDER BY seq")]
            assert details == ["", RESUMED]

    asyncio.run(go())


def test_a_job_of_an_earlier_revision_finds_itself_superseded_and_sends_nothing(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(tmp_path, fail_rate=1.0) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            [first] = await pipeline.enqueue("acc", release_id, ["alpha"])
            await _run_once(pipeline)
            assert (await pipeline.jobs("acc"))[0]["state"] == "retrying"
            [update] = await pipeline.enqueue("acc", release_id, ["alpha"], "update")
            assert update["run_id"] != first["run_id"] and update["revision"] == 2
            store.fail_rate = 0.0
            await asyncio.sleep(0.15)  # past the first job's backoff
            assert await _run_once(pipeline) == 2
            old = await pipeline.queue.get("acc", first["run_id"])
            new = await pipeline.queue.get("acc", update["run_id"])
            assert (old.state, old.result) == ("done", {"outcome": "superseded"})
            assert (new.state, new.result["outcome"]) == ("done", "delivered")
            assert new.payload == {"delivery_id": update["job_id"]}
            assert new.idempotency_key == f"{release_id}/alpha/r2/v{update['version']}"
            assert list(store.accepted) == [update["message_id"]]
            [job] = await pipeline.jobs("acc")
            assert (job["state"], job["revision"]) == ("delivered", 2)

    asyncio.run(go())


def test_a_record_and_its_job_are_written_in_one_transaction(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as real:
            await migrate(real)
            catalog = Catalog(real)
            [release_id] = await _seed(catalog, media, 1)
            db = FlakyDatabase(real, {"INSERT INTO dist_jobs": 1})
            pipeline = _pipeline(db, [HttpDropConnector("alpha", "http://127.0.0.1:9")],
                                 catalog)
            with pytest.raises(Exception, match="injected failure"):
                await pipeline.enqueue("acc", release_id, ["alpha"])
            assert await pipeline.jobs("acc") == []
            assert await pipeline.queue.find(queue=DELIVER) == []  # rolled back with it
            [job] = await pipeline.enqueue("acc", release_id, ["alpha"])
            [run] = await pipeline.queue.find(queue=DELIVER)
            assert run.id == job["run_id"] and run.state == "queued"

    asyncio.run(go())


def test_a_job_the_queue_gave_up_on_shows_its_record_dead_and_it_retries(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog, max_attempts=1,
                                 lease_s=0.1)
            [job] = await pipeline.enqueue("acc", release_id, ["alpha"])
            await pipeline.queue.claim(DELIVER, "crashed")  # its worker dies at once
            await asyncio.sleep(0.2)  # past the lease
            await _run_once(pipeline)  # the queue gives up: no attempt left
            assert (await pipeline.queue.get("acc", job["run_id"])).state == "dead"
            [shown] = await pipeline.jobs("acc")
            assert shown["state"] == "dead" and "gave up after 1 attempts" in \
                shown["last_error"]
            assert (await pipeline.metrics("acc"))["jobs"]["dead"] == 1
            assert store.stats.requests == 0
            await pipeline.retry_dead("acc", job["job_id"])
            await _run_once(pipeline)
            [job] = await pipeline.jobs("acc")
            assert job["state"] == "delivered" and list(store.accepted) == [job["message_id"]]

    asyncio.run(go())


def test_a_job_dead_by_worker_kills_ends_its_record_dead_announced_once(
        tmp_path: Path, media: dict[str, Path]) -> None:
    """A job whose workers were killed on every attempt dies at its next claim with no
    attempt to write its record: the plug-in's dead-letter notice ends the record
    ``dead`` in the database and announces ``delivery_failed`` once, so developers'
    webhooks hear of it (before, the record stayed ``delivering``, never announced)."""
    from business.distribution.plugin import jobs as declared_jobs
    from business.distribution.services import delivery_died
    from jobs import DEAD_NOTICES
    from jobs.dead_notices import dead_notice_handler

    assert [j.on_dead for j in declared_jobs()] == [delivery_died]

    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            [release_id] = await _seed(catalog, media, 1)
            bus = await _outbox(db)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog, max_attempts=1,
                                 lease_s=0.1, bus=bus)
            pipeline.queue.watch_dead(DELIVER)
            [job] = await pipeline.enqueue("acc", release_id, ["alpha"])
            await pipeline.queue.claim(DELIVER, "killed")  # its worker dies at once
            await asyncio.sleep(0.2)  # past the lease
            worker = JobWorker(pipeline.queue, {
                DELIVER: pipeline.handle,
                DEAD_NOTICES: dead_notice_handler(pipeline.queue, {DELIVER: pipeline.on_dead})},
                poll_s=0.02)
            await worker.run_once(DELIVER)  # the queue gives up: no attempt left
            assert await worker.run_once(DEAD_NOTICES) == 1
            row = await db.fetchrow("SELECT state, last_error FROM dist_jobs WHERE "
                                    "account_id = ? AND job_id = ?", "acc", job["job_id"])
            assert row["state"] == "dead"
            assert "workers stopped before finishing" in row["last_error"]
            dead = [p for name, p in await _announced(db) if name == DEAD_EVENT]
            assert [(d["release_id"], d["store"]) for d in dead] == [(release_id, "alpha")]
            run = await pipeline.queue.get("acc", job["run_id"])
            assert await pipeline.on_dead(run) is False  # a notice run again: no news
            assert len([n for n, _ in await _announced(db) if n == DEAD_EVENT]) == 1
            assert store.stats.requests == 0

    asyncio.run(go())


def test_pipeline_settings_are_the_delivery_queues_and_retired_ones_are_ignored(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = PipelineSettings.from_config({"max_attempts": 3, "backoff_base": 0.5,
                                                 "backoff_cap": 9.0, "lease_s": 30.0,
                                                 "concurrency": 2, "poll_s": 0.1,
                                                 "error_backoff_cap": 5.0,
                                                 "probe_before_resend": False})
    assert "['error_backoff_cap', 'poll_s'] are no longer used" in caplog.text
    queue = settings.queue_settings()
    assert (queue.max_attempts, queue.backoff_base, queue.backoff_cap, queue.lease_s,
            queue.concurrency) == (3, 0.5, 9.0, 30.0, 2)
    assert settings.probe_before_resend is False
    with pytest.raises(DistributionError, match=r"unknown pipeline settings \['retries'\]"):
        PipelineSettings.from_config({"retries": 3})


def test_deliveries_owed_before_the_upgrade_run_on_the_job_queue(
        tmp_path: Path, media: dict[str, Path]) -> None:
    from business.distribution.plugin import MIGRATIONS
    from events import MIGRATIONS as EVENTS
    from jobs import MIGRATIONS as JOBS

    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore() as store:
            await db.migrate([*JOBS, *EVENTS])
            await db.migrate([m for m in MIGRATIONS if m.version <= 7])  # the old schema
            catalog = Catalog(db)
            ids = await _seed(catalog, media, 3)
            old = ("INSERT INTO dist_jobs (account_id, job_id, release_id, store, action, "
                   "revision, message_id, state, attempts, version, next_attempt_at, "
                   "lease_until, worker, last_error, queued_at, updated_at, delivered_at, "
                   "snapshot_id) VALUES ('acc', ?, ?, 'alpha', 'new', 1, ?, ?, ?, ?, 0, 0, "
                   "'', '', 1, 1, ?, '')")
            from business.distribution.delivery import message_id_for
            rows = [("owed", ids[0], "retrying", 2, 5, None),
                    ("lost", ids[1], "delivering", 1, 3, None),
                    ("done", ids[2], "delivered", 1, 4, 2.0)]
            for job_id, release_id, state, attempts, version, delivered in rows:
                await db.execute(old, job_id, release_id,
                                 message_id_for("acc", release_id, "alpha", 1), state,
                                 attempts, version, delivered)
            await db.migrate(MIGRATIONS)
            runs = {r.id: r for r in await JobQueue(db).find(queue=DELIVER)}
            assert set(runs) == {"owed", "lost"}
            assert (runs["owed"].attempts, runs["owed"].payload) == (2, {"delivery_id": "owed"})
            assert runs["owed"].idempotency_key == f"{ids[0]}/alpha/r1/v5"
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            await _run_once(pipeline)
            jobs = {j["job_id"]: j for j in await pipeline.jobs("acc")}
            assert {k: j["state"] for k, j in jobs.items()} == dict.fromkeys(
                ("owed", "lost", "done"), "delivered")
            assert (jobs["owed"]["attempts"], jobs["lost"]["attempts"]) == (3, 2)
            assert len(store.accepted) == 2
            assert "next_attempt_at" not in jobs["done"]

    asyncio.run(go())
