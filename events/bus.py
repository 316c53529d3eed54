"""The one event bus: typed events written through an outbox, delivered at least once.

A component announces a change by publishing an event *in the transaction that
makes the change* (:meth:`EventBus.publish` with ``tx``): the event is a row of
``events_outbox``, so it exists exactly when the change does.  The relay
(:meth:`EventBus.relay_once`, run by :meth:`EventBus.run`) hands pending rows to
the transport and stamps them relayed, in one transaction per batch:

- :class:`~events.in_process.InProcessTransport` (the embedded default) turns
  each event into one job per subscriber on the job queue (``events`` queue,
  idempotency key ``event id/subscriber``), in that same transaction; the job
  worker calls the subscriber, with the queue's retries and dead letters;
- :class:`~events.redis_streams.RedisStreamsTransport` (when Redis is configured)
  appends each event to a Redis stream per event name; each subscriber is a
  consumer group, every server process a consumer in it, and entries a dead
  process left pending are reclaimed (``XAUTOCLAIM``).

Event names and payload models are declared (:meth:`EventBus.declare`); a
payload that does not match is refused when published.  Every delivery carries
the event's id, so a subscriber that may see an event twice ignores the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from database import Database, Session, load_migrations

from .envelope import Envelope, EventType
from .errors import EventError

log = logging.getLogger(__name__)

#: The outbox's schema (applied by :meth:`EventBus.setup`).
MIGRATIONS = load_migrations("events", Path(__file__).with_name("migrations"))
#: Events relayed per transaction.
RELAY_BATCH = 200

Subscriber = Callable[[Envelope], Awaitable[None]]


class Transport(Protocol):
    """Carries relayed events to the subscribers."""

    async def start(self, bus: EventBus) -> None:
        """Begin delivering to the bus's subscribers."""

    async def stop(self) -> None:
        """Stop delivering (idempotent)."""

    async def send(self, tx: Session, events: list[Envelope]) -> None:
        """Hand ``events`` on, inside the relay's transaction ``tx``."""

    def sent(self) -> None:
        """The relay's transaction has committed."""


class EventBus:
    """Declared event types, the outbox, the subscribers and the relay to a transport."""

    def __init__(self, db: Database, transport: Transport, *, poll_s: float = 0.5) -> None:
        self.db = db
        self.transport = transport
        self.poll_s = poll_s
        self.types: dict[str, EventType] = {}
        #: subscriber name → (event names it hears, None: all; its handler)
        self.subscribers: dict[str, tuple[frozenset[str] | None, Subscriber]] = {}
        self._wake = asyncio.Event()
        self._relay: asyncio.Task | None = None

    async def setup(self) -> None:
        """Create the outbox table if needed (the server runs every migration at start)."""
        await self.db.migrate(MIGRATIONS)

    # -- declarations -------------------------------------------------------------

    def declare(self, name: str, payload: type[BaseModel], description: str = "") -> None:
        """Declare event ``name`` with its payload model; a name is declared once."""
        known = self.types.get(name)
        if known is not None and known.payload is not payload:
            raise EventError(f"event {name!r} is already declared with payload "
                             f"{known.payload.__name__}; give the new event another name")
        self.types[name] = EventType(name, payload, description)

    def subscribe(self, subscriber: str, handler: Subscriber,
                  names: list[str] | None = None) -> None:
        """Call ``handler(envelope)`` for each event of ``names`` (None: every event).

        ``subscriber`` names the subscription: deliveries are tracked (and, with
        Redis, consumer groups named) by it, so it must stay the same across restarts.
        """
        if subscriber in self.subscribers:
            raise EventError(f"subscriber {subscriber!r} is already subscribed")
        unknown = sorted(set(names or ()) - set(self.types))
        if unknown:
            raise EventError(f"cannot subscribe {subscriber!r} to undeclared events {unknown}; "
                             f"declared: {sorted(self.types)}")
        self.subscribers[subscriber] = (None if names is None else frozenset(names), handler)

    def hears(self, subscriber: str, name: str) -> bool:
        """Whether ``subscriber`` is subscribed to events called ``name``."""
        names = self.subscribers[subscriber][0]
        return names is None or name in names

    # -- publishing ---------------------------------------------------------------------

    def validate(self, name: str, payload: dict[str, Any] | BaseModel) -> dict[str, Any]:
        """``payload`` checked against event ``name``'s model, as JSON-able fields."""
        declared = self.types.get(name)
        if declared is None:
            raise EventError(f"event {name!r} is not declared; declared: {sorted(self.types)}")
        try:
            model = (payload if isinstance(payload, declared.payload)
                     else declared.payload.model_validate(
                         payload.model_dump() if isinstance(payload, BaseModel) else payload))
        except ValidationError as exc:
            raise EventError(f"payload of event {name!r} does not match "
                             f"{declared.payload.__name__}: {exc}") from None
        return model.model_dump(mode="json")

    async def publish(self, tx: Session, name: str, payload: dict[str, Any] | BaseModel, *,
                      account_id: str, event_id: str | None = None) -> str:
        """Write event ``name`` into the outbox inside ``tx``; its id.

        ``event_id`` names the event when the change it announces may be announced again
        (a job run twice): an event of that id already written is kept, not repeated.
        Call :meth:`wake` after ``tx`` commits so this process relays it at once.
        """
        fields = self.validate(name, payload)
        event_id = event_id or uuid.uuid4().hex
        await tx.execute(
            "INSERT INTO events_outbox (account_id, id, name, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, id) DO NOTHING",
            account_id, event_id, name, json.dumps(fields), time.time())
        return event_id

    async def publish_now(self, name: str, payload: dict[str, Any] | BaseModel, *,
                          account_id: str, event_id: str | None = None) -> str:
        """Publish in a transaction of its own (nothing else to commit with it)."""
        async with self.db.transaction() as tx:
            event_id = await self.publish(tx, name, payload, account_id=account_id,
                                          event_id=event_id)
        self.wake()
        return event_id

    def wake(self) -> None:
        """Relay pending events now rather than at the next poll."""
        self._wake.set()

    async def pending(self) -> int:
        """Events written but not relayed yet."""
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM events_outbox WHERE relayed_at IS NULL") or 0)

    async def purge(self, older_than_s: float) -> int:
        """Delete events relayed more than ``older_than_s`` ago; how many."""
        return await self.db.execute(
            "DELETE FROM events_outbox WHERE relayed_at IS NOT NULL AND relayed_at < ?",
            time.time() - older_than_s)

    # -- relaying ---------------------------------------------------------------------------

    async def relay_once(self) -> int:
        """Relay one batch of pending events; how many."""
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT account_id, id, name, payload, created_at FROM events_outbox "
                f"WHERE relayed_at IS NULL ORDER BY created_at, id LIMIT ?{lock}", RELAY_BATCH)
            if not rows:
                return 0
            events = [Envelope(r["id"], r["name"], r["account_id"], json.loads(r["payload"]),
                               r["created_at"]) for r in rows]
            await self.transport.send(tx, events)
            now = time.time()
            await tx.executemany(
                "UPDATE events_outbox SET relayed_at = ? WHERE account_id = ? AND id = ?",
                [(now, e.account_id, e.id) for e in events])
        self.transport.sent()
        return len(events)

    async def start(self) -> None:
        """Start the transport and the relay; starting twice is an error."""
        if self._relay is not None:
            raise EventError("the event bus is already started")
        await self.transport.start(self)
        self._relay = asyncio.create_task(self.run(), name="events:relay")

    async def stop(self) -> None:
        """Stop the relay and the transport (idempotent)."""
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        await self.transport.stop()

    async def run(self) -> None:
        """Relay pending events until cancelled; a failing database is retried, never fatal."""
        failures = 0
        while True:
            self._wake.clear()
            try:
                while await self.relay_once() == RELAY_BATCH:
                    pass
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 10))
                log.warning("event relay failed (%s); trying again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
