"""Jobs and events of an account live in its data region's database and nowhere else.

Three databases per test, as in test_accounts_regions.py: the main one (``default``),
``eu`` (SQLite, then a real PostgreSQL database) and ``us`` (SQLite). Each region has
its own job queue, worker, outbox and relay; after each flow the raw ``jobs`` and
``events_outbox`` tables of every database are read back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import BaseModel

from accounts.models import DEFAULT_REGION
from accounts.regions import new_account_id, open_regions, region_of
from database import Database, open_database
from events import Envelope
from events.in_process import QUEUE as EVENTS
from events.regional import RegionalEventBus
from jobs import DONE, JobContext, JobQueueError, QueueSettings
from jobs.regional import RegionalJobQueue

pytestmark = pytest.mark.asyncio

FAST = QueueSettings(max_attempts=2, backoff_base=0.01, backoff_cap=0.02, concurrency=4)


class Mixed(BaseModel):
    track_id: str


@dataclass
class Setup:
    databases: dict[str, Database]
    queue: RegionalJobQueue
    bus: RegionalEventBus
    ran: list[tuple[str, str]]
    heard: list[Envelope]


@pytest_asyncio.fixture
async def regions(collab_database_url: str, tmp_path: Path) -> AsyncIterator[Setup]:
    main_url = f"sqlite://{tmp_path / 'main.sqlite3'}"
    urls = {"eu": collab_database_url, "us": f"sqlite://{tmp_path / 'us.sqlite3'}"}
    async with (open_database(main_url) as main,
                open_regions(main, main_url, urls, tmp_path) as databases):
        names = tuple(databases)
        queue = RegionalJobQueue.over(databases, lambda a: region_of(a, names),
                                      {"mix": FAST, EVENTS: FAST})
        await queue.setup()
        bus = RegionalEventBus(queue)
        await bus.setup()
        heard: list[Envelope] = []

        async def hear(event: Envelope) -> None:
            heard.append(event)

        bus.declare("track.mixed", Mixed)
        bus.subscribe("listener", hear)
        yield Setup(databases, queue, bus, [], heard)
        await bus.stop()


async def rows(db: Database, table: str) -> list[dict]:
    return await db.fetch(f"SELECT * FROM {table}")


async def where(setup: Setup, table: str, account_id: str) -> set[str]:
    """The regions whose ``table`` has a row of ``account_id``."""
    return {name for name, db in setup.databases.items()
            if any(r["account_id"] == account_id for r in await rows(db, table))}


async def test_a_job_runs_and_stays_in_its_accounts_region(regions: Setup) -> None:
    people = {region: new_account_id("p", region) for region in regions.databases}
    for region, person in people.items():
        await regions.queue.enqueue("mix", {"region": region}, account_id=person)
    for person in people.values():
        assert await where(regions, "jobs", person) == {regions.queue.region_of(person)}

    ran: list[tuple[str, str]] = []

    def handler_for(region: str):  # noqa: ANN202 - a job handler
        async def mix(job: JobContext) -> str:
            ran.append((region, job.payload["region"]))
            return region
        return mix

    workers = {region: regions.queue.workers({"mix": handler_for(region)})[region]
               for region in regions.databases}
    for worker in workers.values():
        assert await worker.run_once("mix") == 1
    assert sorted(ran) == sorted((r, r) for r in regions.databases)
    for region, person in people.items():
        job = (await regions.queue.find(account_id=person))[0]
        assert job.state == DONE and job.result == region
    assert len(await regions.queue.find(queue="mix", states=[DONE])) == 3



async def test_an_erasure_deletes_and_rewrites_jobs_in_the_persons_region_only(
        regions: Setup) -> None:
    """What an erasure asks of the queue (privacy_erase) reaches the person's region."""
    ada, bo = new_account_id("p", "us"), new_account_id("p", "us")
    kept = await regions.queue.enqueue("mix", {"who": "ada"}, account_id=ada,
                                       idempotency_key="ada-mix", delay_s=3600)
    gone = await regions.queue.enqueue(EVENTS, {"who": "ada"}, account_id=ada, delay_s=3600)
    other = await regions.queue.enqueue(EVENTS, {"who": "bo"}, account_id=bo, delay_s=3600)
    assert await regions.queue.rewrite(ada, kept.id, {}, None)
    assert not await regions.queue.rewrite(ada, "no-such-job", {}, None)
    assert await regions.queue.delete_jobs(ada, queue=EVENTS) == 1
    left = {job.id: job for job in await regions.queue.find(queue=None)}
    assert set(left) == {kept.id, other.id} and gone.id not in left
    assert (left[kept.id].payload, left[kept.id].idempotency_key) == ({}, None)
    assert await where(regions, "jobs", ada) == {regions.queue.region_of(ada)}


async def test_a_job_in_a_transaction_is_written_with_the_regions_change(
        regions: Setup) -> None:
    person = new_account_id("p", "eu")
    eu = regions.databases["eu"]
    with pytest.raises(RuntimeError):
        async with eu.transaction() as tx:
            await regions.queue.enqueue("mix", {}, account_id=person, tx=tx)
            raise RuntimeError("the change failed")
    assert await where(regions, "jobs", person) == set()
    async with eu.transaction() as tx:
        job = await regions.queue.enqueue("mix", {}, account_id=person, tx=tx)
    assert (await regions.queue.get(person, job.id)).id == job.id
    assert await where(regions, "jobs", person) == {"eu"}
    cancelled = await regions.queue.cancel(person, job.id)
    assert cancelled.state == "cancelled"


async def test_an_event_is_relayed_and_delivered_in_its_accounts_region(
        regions: Setup) -> None:
    eu_person, us_person = new_account_id("p", "eu"), new_account_id("o", "us")
    await regions.bus.publish_now("track.mixed", {"track_id": "t1"}, account_id=eu_person)
    async with regions.databases["us"].transaction() as tx:
        await regions.bus.publish(tx, "track.mixed", Mixed(track_id="t2"),
                                  account_id=us_person)
    assert await regions.bus.pending() == 2
    assert await where(regions, "events_outbox", eu_person) == {"eu"}
    assert await where(regions, "events_outbox", us_person) == {"us"}
    for bus in regions.bus.buses.values():
        await bus.transport.start(bus)
    assert await regions.bus.relay_once() == 2
    # the delivery jobs are in the event's region too
    assert await where(regions, "jobs", eu_person) == {"eu"}
    assert await where(regions, "jobs", us_person) == {"us"}
    handlers = regions.bus.handlers()
    workers = {region: regions.queue.workers({EVENTS: handlers[region]})[region]
               for region in regions.databases}
    assert await workers[DEFAULT_REGION].run_once(EVENTS) == 0
    assert await workers["eu"].run_once(EVENTS) == 1
    assert [e.account_id for e in regions.heard] == [eu_person]
    assert await workers["us"].run_once(EVENTS) == 1
    assert {e.payload["track_id"] for e in regions.heard} == {"t1", "t2"}
    assert not await rows(regions.databases[DEFAULT_REGION], "events_outbox")


async def test_an_account_of_an_unserved_region_is_refused(regions: Setup) -> None:
    only_main = RegionalJobQueue({DEFAULT_REGION: regions.queue.queues[DEFAULT_REGION]},
                                 lambda a: region_of(a, ("default", "eu")))
    with pytest.raises(JobQueueError, match="region 'eu', which has no job queue"):
        await only_main.enqueue("mix", {}, account_id=new_account_id("p", "eu"))
