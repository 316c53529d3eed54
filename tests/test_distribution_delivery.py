"""The delivery pipeline against a real HTTP fake store that fails at random.

Nothing lost, nothing sent twice: every job ends ``delivered``, the store
accepted each message once, and (with the status probe) no message reached the
store's complete step twice, under 503s, dropped acknowledgements, and a worker
process killed with SIGKILL mid-delivery. Without the probe, a message is re-sent
exactly as often as its acknowledgement was lost, and the store's deduplication
makes each re-send a no-op.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distribution_helpers import (
    FlakyDatabase,
    make_art,
    make_audio,
    postgres_schema_url,
    release_dict,
)

from business.distribution.catalog import Catalog, _measured_digests
from business.distribution.compliance import ComplianceReport
from business.distribution.delivery import DeliveryPipeline, PipelineSettings, backoff_delay
from business.distribution.errors import ComplianceError
from business.distribution.plugin import MIGRATIONS
from business.distribution.stores.fakestore import FakeStore
from business.distribution.stores.http_drop import HttpDropConnector
from database import Migration, open_database

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(backoff_base=0.01, backoff_cap=0.1, lease_s=5.0, poll_s=0.02, concurrency=4,
            max_attempts=40)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {"art": make_art(root / "cover.jpg"),
            "audio": make_audio(root / "song.wav", seconds=1.0)}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'dist.sqlite3'}"
    else:
        yield postgres_schema_url(request.getfixturevalue("postgres_url"),
                                  f"d{abs(hash(request.node.name)) % 10**8}")


def _migrations() -> list[Migration]:
    return MIGRATIONS


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


async def _until(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def test_everything_is_delivered_exactly_once_under_random_failures(
        db_url: str, media: dict[str, Path]) -> None:
    async def go() -> dict:
        stores = ["alpha", "beta"]
        async with open_database(db_url) as db, \
                FakeStore(fail_rate=0.3, drop_rate=0.2, seed=7) as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            ids = await _seed(catalog, media, 10)
            pipeline = DeliveryPipeline(db, _connectors(store, stores), catalog.package,
                                        settings=PipelineSettings(**FAST), rng=random.Random(1))
            started = time.monotonic()
            for release_id in ids:
                await pipeline.enqueue("acc", release_id, stores)
            async with pipeline:
                async def done() -> bool:
                    jobs = await pipeline.jobs("acc")
                    return all(j["state"] in ("delivered", "dead") for j in jobs)
                await _until(done)
            elapsed = time.monotonic() - started
            jobs = await pipeline.jobs("acc")
            assert [j["state"] for j in jobs] == ["delivered"] * 20
            assert store.stats.failed_503 > 0 and store.stats.dropped > 0
            assert sum(store.stats.lost_acks.values()) > 0
            assert_sent_once_each(store, {j["message_id"] for j in jobs})
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
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore(fail_rate=0.2, drop_rate=0.3, seed=11) as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            ids = await _seed(catalog, media, 8)
            pipeline = DeliveryPipeline(
                db, _connectors(store, ["alpha"]), catalog.package, rng=random.Random(2),
                settings=PipelineSettings(**FAST, probe_before_resend=False))
            for release_id in ids:
                await pipeline.enqueue("acc", release_id, ["alpha"])
            async with pipeline:
                async def done() -> bool:
                    jobs = await pipeline.jobs("acc")
                    return all(j["state"] == "delivered" for j in jobs)
                await _until(done)
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
    from business.distribution.delivery import DeliveryPipeline, PipelineSettings
    from business.distribution.stores.http_drop import HttpDropConnector
    from database import open_database

    async def main(db_url, url):
        async with open_database(db_url) as db:
            catalog = Catalog(db)
            connector = HttpDropConnector("alpha", url, token="secret")
            pipeline = DeliveryPipeline(db, [connector], catalog.package, worker_id="doomed",
                settings=PipelineSettings(backoff_base=0.01, backoff_cap=0.1, lease_s=1.0,
                                          poll_s=0.02, concurrency=4, max_attempts=40))
            print("ready", flush=True)
            await pipeline.run()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


def test_worker_killed_mid_delivery_loses_nothing_and_sends_nothing_twice(
        db_url: str, tmp_path: Path, media: dict[str, Path]) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)

    async def go() -> None:
        async with open_database(db_url) as db, \
                FakeStore(fail_rate=0.2, drop_rate=0.1, seed=3, delay_s=0.05) as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            ids = await _seed(catalog, media, 16)
            pipeline = DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                        settings=PipelineSettings(**FAST), worker_id="heir")
            for release_id in ids:
                await pipeline.enqueue("acc", release_id, ["alpha"])
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(script), db_url, store.url, cwd=ROOT, env=env,
                stdout=subprocess.PIPE)
            assert (await proc.stdout.readline()).strip() == b"ready"

            async def some_delivered() -> bool:
                return len(store.accepted) >= 4
            await _until(some_delivered)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            in_flight = [j for j in await pipeline.jobs("acc") if j["state"] == "delivering"]
            assert 0 < len(store.accepted) < 16
            async with pipeline:
                async def done() -> bool:
                    jobs = await pipeline.jobs("acc")
                    return all(j["state"] == "delivered" for j in jobs)
                await _until(done)
            jobs = await pipeline.jobs("acc")
            assert len(jobs) == 16
            assert_sent_once_each(store, {j["message_id"] for j in jobs},
                                  sender_lost_acks=True)
            events = await db.fetch("SELECT detail FROM dist_job_events WHERE detail = ?",
                                    "lease expired, taken over")
            assert len(events) >= len(in_flight) > 0

    asyncio.run(go())


def test_what_ships_is_what_passed_the_gate(tmp_path: Path) -> None:
    art = make_art(tmp_path / "cover.jpg")
    audio = {"edited": make_audio(tmp_path / "edited.wav", seconds=1.0),
             "swapped": make_audio(tmp_path / "swapped.wav", seconds=1.0)}

    def raw(name: str, number: int) -> dict:
        return release_dict(tmp_path, release_id=name, isrc_base=number, art=art,
                            audio=[audio[name]])

    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore() as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            pipeline = DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                        settings=PipelineSettings(**FAST))
            for number, name in enumerate(audio, start=1):
                await catalog.save_release("acc", raw(name, number))
                snapshot = await catalog.snapshot("acc", name)
                await pipeline.enqueue("acc", name, ["alpha"], snapshot_id=snapshot)
            # after queueing, one release's title and the other's audio change
            await catalog.save_release("acc", {**raw("edited", 1),
                                               "title": "Night Drive feat. Bob"})
            make_audio(audio["swapped"], seconds=1.0, clip=True)
            await pipeline.run_once()
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
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore() as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            await catalog.save_release("acc", release_dict(tmp_path, art=art,
                                                           audio=[clipped]))
            pipeline = DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                        settings=PipelineSettings(**FAST))
            await pipeline.enqueue("acc", "rel-1", ["alpha"])
            await pipeline.run_once()
            [job] = await pipeline.jobs("acc")
            assert job["state"] == "dead" and "clips" in job["last_error"]
            assert store.stats.requests == 0

    asyncio.run(go())


CLAIM_SQL = "SELECT account_id, job_id, version, state FROM dist_jobs"
FINISH_SQL = "UPDATE dist_jobs SET state = ?"


def test_worker_survives_database_errors_and_still_delivers_everything(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as real, \
                FakeStore() as store:
            await real.migrate(_migrations())
            catalog = Catalog(real)
            ids = await _seed(catalog, media, 4)
            # the worker's first three claims fail, and so does recording its first result
            db = FlakyDatabase(real, {CLAIM_SQL: 3, FINISH_SQL: 1})
            pipeline = DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                        settings=PipelineSettings(**FAST))
            for release_id in ids:
                await pipeline.enqueue("acc", release_id, ["alpha"])
            async with pipeline:
                async def done() -> bool:
                    jobs = await pipeline.jobs("acc")
                    return all(j["state"] == "delivered" for j in jobs)
                await _until(done, 30)
                assert pipeline._task is not None and not pipeline._task.done()
            assert db.injected == {CLAIM_SQL: 3, FINISH_SQL: 1}
            jobs = await pipeline.jobs("acc")
            assert_sent_once_each(store, {j["message_id"] for j in jobs},
                                  sender_lost_acks=True)
            assert sum(store.stats.probed_accepted.values()) == 1
            # the job whose "delivered" was lost was taken over after its lease
            taken = await real.fetch("SELECT job_id FROM dist_job_events WHERE detail = ?",
                                     "lease expired, taken over")
            assert len(taken) == 1

    asyncio.run(go())


class ClaimWatch(FlakyDatabase):
    """A real database that tells when the worker's claim has found nothing due."""

    def __init__(self, db: Any) -> None:
        super().__init__(db, {})
        self.idle = asyncio.Event()

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        rows = await super().fetch(sql, *args)
        if sql.startswith(CLAIM_SQL) and not rows:
            self.idle.set()
        return rows


def test_stopping_an_idle_worker_just_as_a_job_wakes_it_returns(
        tmp_path: Path, media: dict[str, Path]) -> None:
    """A stop that meets a wake-up is not lost (asyncio.wait_for on 3.11 swallowed it)."""
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as real, \
                FakeStore() as store:
            await real.migrate(_migrations())
            catalog = Catalog(real)
            [release_id] = await _seed(catalog, media, 1)
            db = ClaimWatch(real)
            pipeline = DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                        settings=PipelineSettings(**{**FAST, "poll_s": 3600}))
            await pipeline.start()
            await db.idle.wait()  # the worker now sleeps until woken
            await pipeline.enqueue("acc", release_id, ["alpha"])  # wakes it ...
            await pipeline.stop()  # ... and stops it before it runs again
            [job] = await pipeline.jobs("acc")
            assert job["state"] == "queued" and store.stats.requests == 0

    asyncio.run(go())


def test_permanent_refusal_goes_dead_with_the_last_error_then_retries(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore() as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            [release_id] = await _seed(catalog, media, 1)
            bad = DeliveryPipeline(db, _connectors(store, ["alpha"], token="wrong"),
                                   catalog.package, settings=PipelineSettings(**FAST))
            [job] = await bad.enqueue("acc", release_id, ["alpha"])
            await bad.run_once()
            [job] = await bad.jobs("acc")
            assert job["state"] == "dead" and "HTTP 401" in job["last_error"]
            good = DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                    settings=PipelineSettings(**FAST))
            await good.retry_dead("acc", job["job_id"])
            await good.run_once()
            [job] = await good.jobs("acc")
            assert job["state"] == "delivered" and list(store.accepted) == [job["message_id"]]

    asyncio.run(go())


def test_store_that_always_fails_ends_dead_after_max_attempts(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore(fail_rate=1.0) as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            [release_id] = await _seed(catalog, media, 1)
            pipeline = DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                        settings=PipelineSettings(**{**FAST,
                                                                     "max_attempts": 3}))
            await pipeline.enqueue("acc", release_id, ["alpha"])
            async with pipeline:
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
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore() as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            [release_id] = await _seed(catalog, media, 1)
            pipeline = DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                        settings=PipelineSettings(**FAST))

            async def step(action: str, **kw: bool) -> dict:
                await pipeline.enqueue("acc", release_id, ["alpha"], action, **kw)
                await pipeline.run_once()
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


def test_unknown_store_is_refused_by_name(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db:
            await db.migrate(_migrations())
            pipeline = DeliveryPipeline(db, [], Catalog(db).package)
            with pytest.raises(Exception, match="store 'nowhere' is not configured"):
                await pipeline.enqueue("acc", "r", ["nowhere"])

    asyncio.run(go())


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(0)
    for attempt in range(1, 12):
        ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 1.0, 60.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered, not fixed


def test_two_workers_share_the_queue_and_slow_uploads_keep_their_lease(
        tmp_path: Path, media: dict[str, Path]) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'd.sqlite3'}") as db, \
                FakeStore(delay_s=6.0) as store:
            await db.migrate(_migrations())
            catalog = Catalog(db)
            ids = await _seed(catalog, media, 6)
            # Uploads twice as long as the lease; beats every 1 s, so only a 2 s stall of
            # the loop or the database (a loaded machine) lets a lease lapse.
            settings = PipelineSettings(**{**FAST, "lease_s": 3.0})
            one, two = (DeliveryPipeline(db, _connectors(store, ["alpha"]), catalog.package,
                                         settings=settings, worker_id=name)
                        for name in ("one", "two"))
            for release_id in ids:
                await one.enqueue("acc", release_id, ["alpha"])
            async with one, two:
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
    """A self-signed certificate for 127.0.0.1 made with the openssl command."""
    root = tmp_path_factory.mktemp("tls")
    key, cert = root / "key.pem", root / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
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
            await db.migrate(_migrations())
            catalog = Catalog(db)
            [release_id] = await _seed(catalog, media, 1)
            untrusted = DeliveryPipeline(
                db, [HttpDropConnector("alpha", store.url, token="secret")], catalog.package,
                settings=PipelineSettings(**FAST))
            await untrusted.enqueue("acc", release_id, ["alpha"])
            await untrusted.run_once()
            [job] = await untrusted.jobs("acc")
            assert job["state"] == "retrying" and "certificate" in job["last_error"].lower()
            assert store.stats.requests == 0
            trusted = DeliveryPipeline(
                db, [HttpDropConnector("alpha", store.url, token="secret",
                                       ca_file=str(tls["cert"]))], catalog.package,
                settings=PipelineSettings(**FAST))
            await asyncio.sleep(0.15)  # past the backoff
            await trusted.run_once()
            [job] = await trusted.jobs("acc")
            assert job["state"] == "delivered" and list(store.accepted) == [job["message_id"]]

    asyncio.run(go())
