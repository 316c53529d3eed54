"""The event bus: outbox in the change's transaction, in-process and Redis Streams delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from pydantic import BaseModel

from database import Database, open_database
from events import (
    Envelope,
    EventBus,
    EventError,
    InProcessTransport,
    RedisStreamsTransport,
)
from events.in_process import QUEUE
from jobs import DEAD, JobQueue, JobWorker, QueueSettings
from tests.redis_cluster_helpers import flush_all


class TrackSold(BaseModel):
    track_id: str
    cents: int


async def until(check: Callable[[], object], timeout: float = 20.0) -> None:
    """Wait until ``check()`` is true; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def make_sales_table(db: Database) -> None:
    await db.execute("CREATE TABLE IF NOT EXISTS sales (account_id TEXT NOT NULL, "
                     "track_id TEXT NOT NULL, PRIMARY KEY (account_id, track_id))")


async def sell(bus: EventBus, track_id: str, *, fail: bool = False) -> None:
    """Record a sale and announce it in one transaction (``fail``: the change fails)."""
    async with bus.db.transaction() as tx:
        await tx.execute("INSERT INTO sales (account_id, track_id) VALUES (?, ?)", "acct",
                         track_id)
        await bus.publish(tx, "track.sold", {"track_id": track_id, "cents": 500},
                          account_id="acct")
        if fail:
            raise RuntimeError("the sale failed after announcing it")
    bus.wake()


def with_in_process_bus(url: str, body: Callable[[EventBus], Awaitable[None]],
                        setup: Callable[[EventBus], None]) -> None:
    async def go() -> None:
        async with asyncio.timeout(60), open_database(url) as db:
            queue = JobQueue(db, {QUEUE: QueueSettings(max_attempts=3, backoff_base=0.05,
                                                       backoff_cap=0.1, concurrency=4)})
            transport = InProcessTransport(queue)
            bus = EventBus(db, transport, poll_s=0.1)
            await queue.setup()
            await bus.setup()
            await make_sales_table(db)
            bus.declare("track.sold", TrackSold, "a track was sold")
            setup(bus)
            await bus.start()
            try:
                async with JobWorker(queue, {QUEUE: transport.handle}, poll_s=0.1):
                    await body(bus)
            finally:
                await bus.stop()

    asyncio.run(go())


def test_events_reach_every_subscriber_only_when_their_change_commits(
        collab_database_url: str) -> None:
    heard: dict[str, list[str]] = {"ledger": [], "flaky": [], "broken": []}
    failures = {"flaky": 1}

    def setup(bus: EventBus) -> None:
        async def ledger(event: Envelope) -> None:
            heard["ledger"].append(event.payload["track_id"])

        async def flaky(event: Envelope) -> None:
            if failures["flaky"]:
                failures["flaky"] -= 1
                raise ConnectionError("mail server down")
            heard["flaky"].append(event.payload["track_id"])

        async def broken(event: Envelope) -> None:
            heard["broken"].append(event.id)
            raise ValueError("always")

        bus.subscribe("ledger", ledger, ["track.sold"])
        bus.subscribe("flaky", flaky)
        bus.subscribe("broken", broken, ["track.sold"])

    async def body(bus: EventBus) -> None:
        with pytest.raises(RuntimeError):
            await sell(bus, "t0", fail=True)
        await sell(bus, "t1")
        await until(lambda: heard["ledger"] and heard["flaky"] and len(heard["broken"]) == 3)
        await asyncio.sleep(0.3)  # nothing more arrives
        assert heard["ledger"] == ["t1"] and heard["flaky"] == ["t1"]
        assert len(set(heard["broken"])) == 1  # one event, tried three times
        assert await bus.pending() == 0
        assert await bus.purge(older_than_s=3600) == 0  # relayed just now: kept
        assert await bus.purge(older_than_s=-1) == 1  # the one event that committed
        [dead] = await bus.transport.queue.dead_letters(QUEUE)
        assert dead.state == DEAD and dead.payload["subscriber"] == "broken"
        assert "always" in dead.last_error

    with_in_process_bus(collab_database_url, body, setup)


def test_undeclared_events_and_bad_payloads_are_refused(collab_database_url: str) -> None:
    async def body(bus: EventBus) -> None:
        with pytest.raises(EventError, match="not declared"):
            await bus.publish_now("track.lost", {}, account_id="acct")
        with pytest.raises(EventError, match="cents"):
            await bus.publish_now("track.sold", {"track_id": "t", "cents": "lots"},
                                  account_id="acct")
        with pytest.raises(EventError, match="undeclared"):
            bus.subscribe("late", lambda e: None, ["track.lost"])
        with pytest.raises(EventError, match="already declared"):
            bus.declare("track.sold", BaseModel)
        assert await bus.pending() == 0

    with_in_process_bus(collab_database_url, body, lambda bus: None)


# -- Redis Streams -------------------------------------------------------------------------


@pytest.fixture
def fresh_redis(any_redis_url: str) -> str:
    """The test Redis server (or Redis Cluster), emptied (streams and groups of earlier
    tests gone)."""
    flush_all(any_redis_url)
    return any_redis_url


def redis_bus(db: Database, url: str, node: str) -> EventBus:
    transport = RedisStreamsTransport(url, consumer=node, reclaim_idle_s=0.3,
                                      max_deliveries=3, block_s=0.1)
    bus = EventBus(db, transport, poll_s=0.1)
    bus.declare("track.sold", TrackSold)
    return bus


def test_redis_streams_deliver_each_event_once_per_subscriber_across_nodes(
        collab_database_url: str, fresh_redis: str) -> None:
    heard: dict[str, list[tuple[str, str]]] = {"ledger": [], "mailer": []}
    mailer_failures = {"t3": 2}

    def subscribers(node: str) -> Callable[[EventBus], None]:
        def setup(bus: EventBus) -> None:
            async def ledger(event: Envelope) -> None:
                heard["ledger"].append((node, event.payload["track_id"]))

            async def mailer(event: Envelope) -> None:
                track = event.payload["track_id"]
                if mailer_failures.get(track):
                    mailer_failures[track] -= 1
                    raise ConnectionError("smtp down")
                heard["mailer"].append((node, track))

            bus.subscribe("ledger", ledger)
            bus.subscribe("mailer", mailer)

        return setup

    async def go() -> None:
        async with asyncio.timeout(60), open_database(collab_database_url) as db:
            nodes = [redis_bus(db, fresh_redis, f"node{i}") for i in range(2)]
            await nodes[0].setup()
            await make_sales_table(db)
            for i, bus in enumerate(nodes):
                subscribers(f"node{i}")(bus)
                await bus.start()
            try:
                for n in range(6):
                    await sell(nodes[n % 2], f"t{n}")
                await until(lambda: len(heard["ledger"]) == 6 and len(heard["mailer"]) == 6)
                await asyncio.sleep(0.5)
            finally:
                for bus in nodes:
                    await bus.stop()
        tracks = [f"t{n}" for n in range(6)]
        assert sorted(t for _, t in heard["ledger"]) == tracks  # once each, across the nodes
        assert sorted(t for _, t in heard["mailer"]) == tracks  # t3 after two failures
        assert mailer_failures == {"t3": 0}

    asyncio.run(go())


def test_a_dead_nodes_pending_events_are_reclaimed_and_hopeless_ones_buried(
        collab_database_url: str, fresh_redis: str) -> None:
    heard: list[tuple[str, str]] = []
    stuck = asyncio.Event()

    async def go() -> None:
        async with asyncio.timeout(60), open_database(collab_database_url) as db:
            doomed, survivor = (redis_bus(db, fresh_redis, n) for n in ("doomed", "survivor"))
            await doomed.setup()
            await make_sales_table(db)

            async def hangs(event: Envelope) -> None:
                stuck.set()
                await asyncio.sleep(3600)  # the node dies while handling

            async def handles(event: Envelope) -> None:
                if event.payload["track_id"] == "poison":
                    raise ValueError("cannot book this sale")
                heard.append(("survivor", event.payload["track_id"]))

            doomed.subscribe("ledger", hangs)
            survivor.subscribe("ledger", handles)
            await doomed.start()
            await sell(doomed, "t1")
            async with asyncio.timeout(10):
                await stuck.wait()
            await doomed.stop()  # read, never acknowledged
            await survivor.start()
            try:
                await sell(survivor, "poison")
                await until(lambda: heard == [("survivor", "t1")])
                transport = survivor.transport
                assert isinstance(transport, RedisStreamsTransport)

                async def buried() -> list:
                    return await transport.dead_letters()

                letters: list = []

                async def poll() -> None:
                    while not letters:
                        letters.extend(await buried())
                        await asyncio.sleep(0.05)

                async with asyncio.timeout(20):
                    await poll()
            finally:
                await survivor.stop()
        [letter] = letters
        assert letter["subscriber"] == "ledger" and "cannot book" in letter["error"]
        assert Envelope.from_json(json.loads(letter["event"])).payload == {
            "track_id": "poison", "cents": 500}

    asyncio.run(go())


def test_an_event_relayed_twice_runs_its_handler_once_across_nodes(
        collab_database_url: str, fresh_redis: str) -> None:
    """A relay that died between XADD and its commit appends an event again; the two
    copies reach two nodes of one subscriber while the first is still being handled."""
    calls: list[str] = []
    release = asyncio.Event()

    async def ledger(event: Envelope) -> None:
        calls.append(event.id)
        await release.wait()

    async def go() -> None:
        async with asyncio.timeout(60), open_database(collab_database_url) as db:
            nodes = [redis_bus(db, fresh_redis, f"node{i}") for i in range(2)]
            await nodes[0].setup()
            for bus in nodes:
                bus.subscribe("ledger", ledger)
                await bus.start()
            transport = nodes[0].transport
            assert isinstance(transport, RedisStreamsTransport)
            stream = transport.stream("track.sold")
            pending = {"count": -1}

            async def count_pending() -> None:
                pending["count"] = (await transport.client.xpending(stream, "ledger"))[
                    "pending"]

            try:
                event = Envelope("evt-twice", "track.sold", "acct",
                                 {"track_id": "t1", "cents": 500}, 0.0)
                for _ in range(2):
                    await transport.send(None, [event])  # type: ignore[arg-type]
                while pending["count"] != 2:  # each node holds one copy
                    await count_pending()
                    await asyncio.sleep(0.02)
                await until(lambda: bool(calls))
                release.set()
                while pending["count"] != 0:  # the repeat is acknowledged unrun
                    await count_pending()
                    await asyncio.sleep(0.02)
            finally:
                for bus in nodes:
                    await bus.stop()
        assert calls == ["evt-twice"]

    asyncio.run(go())
