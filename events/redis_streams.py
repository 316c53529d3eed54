"""The scale-out transport: Redis Streams, one consumer group per subscriber.

Each event name has a stream (``maxbooster:{events}:NAME``; the hash tag keeps
every stream in one Redis Cluster slot, so one ``XREADGROUP`` reads them all; the
URL may name one Redis or a Redis Cluster, :mod:`database.redis_client`).
The relay appends events with ``XADD`` (capped at about :data:`STREAM_MAXLEN`
entries).  Each subscriber is a consumer group and each server process one
consumer in it, so every subscriber hears every event once across the
deployment:

- an entry is acknowledged (``XACK``) after its handler returns;
- a handler that raises leaves its entry pending; any consumer of the group
  takes it over with ``XAUTOCLAIM`` once it has been idle :attr:`reclaim_idle_s`
  (the same happens to what a crashed process held), so a failing handler is
  retried at that pace;
- an entry delivered :attr:`max_deliveries` times goes to the dead-letter
  stream ``maxbooster:{events}:dead`` with its subscriber and last error, and is
  acknowledged;
- a relay that crashed between ``XADD`` and its commit may append an event
  twice; a delivery first claims the event's id for its subscriber (``SET NX``,
  for :attr:`claim_s`), so only one copy runs the handler at a time: a copy that
  finds the id claimed stays pending until reclaimed, one that finds it handled
  is acknowledged unrun.  The claim becomes "handled" (kept :data:`SEEN_TTL_S`)
  when the handler returns and is dropped when it raises.

A new subscriber's group starts at the stream's end: it hears events relayed
from its first start on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import uuid
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from database import Session
from database.redis_client import RedisClient, redis_client

from .envelope import Envelope

if TYPE_CHECKING:
    from .bus import EventBus

log = logging.getLogger(__name__)

PREFIX = "maxbooster:{events}"
#: Roughly how many entries a stream keeps (``XADD MAXLEN ~``).
STREAM_MAXLEN = 100_000
#: How long a subscriber remembers an event id it handled (seconds).
SEEN_TTL_S = 7 * 24 * 3600
#: What a subscriber's key of an event id holds while a delivery runs its handler, and
#: once one succeeded.
RUNNING, DONE = "running", "done"


class RedisStreamsTransport:
    """Delivers events through Redis Streams consumer groups."""

    def __init__(self, url: str, *, consumer: str | None = None, reclaim_idle_s: float = 30.0,
                 max_deliveries: int = 8, block_s: float = 1.0, batch: int = 50,
                 claim_s: float = 300.0) -> None:
        self.url = url
        #: How long a delivery's claim on an event id lasts (seconds): a process that
        #: dies while handling it holds the event back that long.
        self.claim_s = claim_s
        self.consumer = consumer or f"node-{uuid.uuid4().hex[:12]}"
        self.reclaim_idle_s = reclaim_idle_s
        self.max_deliveries = max_deliveries
        self.block_s = block_s
        self.batch = batch
        self._redis: RedisClient | None = None
        self._bus: EventBus | None = None
        self._tasks: list[asyncio.Task] = []

    @staticmethod
    def stream(name: str) -> str:
        """The stream of events called ``name``."""
        return f"{PREFIX}:{name}"

    #: Where entries that failed every delivery end up.
    DEAD_LETTERS = f"{PREFIX}:dead"

    @property
    def client(self) -> RedisClient:
        """The Redis connection (started)."""
        if self._redis is None:
            raise RuntimeError("the Redis event transport is not started")
        return self._redis

    async def start(self, bus: EventBus) -> None:
        """Create the subscribers' consumer groups and start consuming."""
        self._bus = bus
        self._redis = redis_client(self.url, decode_responses=True)
        for subscriber in bus.subscribers:
            streams = self._streams_of(subscriber)
            for stream in streams:
                with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
                    await self.client.xgroup_create(stream, subscriber, id="$", mkstream=True)
            self._tasks.append(asyncio.create_task(self._consume(subscriber, streams),
                                                   name=f"events:{subscriber}"))

    async def stop(self) -> None:
        """Stop consuming and close the connection (idempotent)."""
        tasks, self._tasks = self._tasks, []
        pending = set(tasks)
        while pending:  # cancelled again if an await swallowed it (redis-py's can)
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def _streams_of(self, subscriber: str) -> list[str]:
        assert self._bus is not None
        return [self.stream(name) for name in sorted(self._bus.types)
                if self._bus.hears(subscriber, name)]

    async def send(self, tx: Session, events: list[Envelope]) -> None:
        """Append ``events`` to their streams (inside the relay's transaction)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(self.stream(event.name), {"event": json.dumps(event.to_json())},
                          maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()

    def sent(self) -> None:
        """Nothing to do after the relay commits: consumers are blocked on the streams."""

    # -- consuming ------------------------------------------------------------------

    async def _consume(self, subscriber: str, streams: list[str]) -> None:
        if not streams:
            return
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        failures = 0
        while True:
            try:
                if loop.time() >= next_reclaim:
                    for stream in streams:
                        await self._reclaim(subscriber, stream)
                    next_reclaim = loop.time() + max(self.reclaim_idle_s / 2, 0.05)
                replies = await self.client.xreadgroup(
                    subscriber, self.consumer, dict.fromkeys(streams, ">"), count=self.batch,
                    block=max(1, int(min(self.block_s, self.reclaim_idle_s) * 1000)))
                for stream, entries in replies or []:
                    for entry_id, fields in entries:
                        await self._handle(subscriber, stream, entry_id, fields)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis unreachable: wait and try again, never die
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 10))
                log.warning("event subscriber %s cannot read Redis (%s); retrying in %.1f s",
                            subscriber, exc, delay)
                await asyncio.sleep(delay)

    async def _reclaim(self, subscriber: str, stream: str) -> None:
        """Take over entries idle past the reclaim time (failed, or their consumer died)."""
        start = "0-0"
        while True:
            reply = await self.client.xautoclaim(
                stream, subscriber, self.consumer, int(self.reclaim_idle_s * 1000),
                start_id=start, count=self.batch)
            start, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if fields is not None:
                    await self._handle(subscriber, stream, entry_id, fields)
            if start in ("0-0", b"0-0"):
                return

    async def _handle(self, subscriber: str, stream: str, entry_id: str,
                      fields: dict[str, Any]) -> None:
        assert self._bus is not None
        try:
            event = Envelope.from_json(json.loads(fields["event"]))
        except (KeyError, TypeError, ValueError) as exc:
            await self._bury(subscriber, stream, entry_id, fields, f"unreadable entry: {exc}")
            return
        seen = f"{PREFIX}:seen:{subscriber}:{event.id}"
        # claim the event id before running the handler, so two copies of one event
        # (a relay that crashed between XADD and its commit) never run at once
        if not await self.client.set(seen, RUNNING, nx=True,
                                     ex=max(1, math.ceil(self.claim_s))):
            if await self.client.get(seen) != RUNNING:  # handled: a repeat
                await self.client.xack(stream, subscriber, entry_id)
            # else another delivery runs it now: left pending, looked at again once
            # reclaimed (acknowledged then if that run succeeded)
            return
        try:
            await self._bus.subscribers[subscriber][1](event)
        except BaseException as exc:
            with contextlib.suppress(Exception):  # free the id for the next delivery
                await self.client.delete(seen)
            if not isinstance(exc, Exception):  # cancelled: this process is stopping
                raise
            error = f"{type(exc).__name__}: {exc}"
            deliveries = await self._deliveries(subscriber, stream, entry_id)
            if deliveries >= self.max_deliveries:
                await self._bury(subscriber, stream, entry_id, fields, error)
            else:
                log.warning("event %s (%s) to %s failed (delivery %d of %d), retried in "
                            "%.0f s: %s", event.id, event.name, subscriber, deliveries,
                            self.max_deliveries, self.reclaim_idle_s, error)
            return
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(seen, DONE, ex=SEEN_TTL_S)
            pipe.xack(stream, subscriber, entry_id)
            await pipe.execute()

    async def _deliveries(self, subscriber: str, stream: str, entry_id: str) -> int:
        pending = await self.client.xpending_range(stream, subscriber, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _bury(self, subscriber: str, stream: str, entry_id: str, fields: dict[str, Any],
                    error: str) -> None:
        log.error("event entry %s of %s to %s is a dead letter: %s", entry_id, stream,
                  subscriber, error)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xadd(self.DEAD_LETTERS, {**fields, "stream": stream, "entry": entry_id,
                                          "subscriber": subscriber, "error": error[:2000]},
                      maxlen=STREAM_MAXLEN, approximate=True)
            pipe.xack(stream, subscriber, entry_id)
            await pipe.execute()

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Entries that failed every delivery (newest last)."""
        return [fields for _, fields in await self.client.xrange(self.DEAD_LETTERS)]
