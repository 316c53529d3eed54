"""Events in their account's data region: one outbox, relay and delivery per region.

:class:`RegionalEventBus` holds one :class:`~events.bus.EventBus` per region's
database, all sharing one set of declared events and subscribers.  An event
published for an account is written to the outbox of that account's region
(``tx`` must be on that region's database, as for the accounts store), relayed by
that region's relay to that region's transport, and on the in-process transport
delivered by jobs of that region's queue (:class:`jobs.regional.RegionalJobQueue`),
which that region's worker runs: the event never touches another region's database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from database import Session
from jobs.regional import RegionalJobQueue

from .bus import EventBus, Subscriber, Transport
from .in_process import InProcessTransport


class RegionalEventBus:
    """One :class:`EventBus` per region with shared declarations and subscribers."""

    def __init__(self, queue: RegionalJobQueue, *, poll_s: float = 0.5,
                 transport_for: Callable[[str], Transport] | None = None) -> None:
        self.queue = queue
        self.buses: dict[str, EventBus] = {}
        for region, jobs in queue.queues.items():
            transport = (transport_for(region) if transport_for is not None
                         else InProcessTransport(jobs))
            self.buses[region] = EventBus(jobs.db, transport, poll_s=poll_s)
        first = next(iter(self.buses.values()))
        #: The declared events and the subscribers, one dict each for every region.
        self.types = first.types
        self.subscribers = first.subscribers
        for bus in self.buses.values():
            bus.types, bus.subscribers = self.types, self.subscribers

    def bus_of(self, account_id: str) -> EventBus:
        """The bus of ``account_id``'s region."""
        return self.buses[self.queue.region_of(account_id)]

    async def setup(self) -> None:
        """Create the outbox in every region's database."""
        for bus in self.buses.values():
            await bus.setup()

    def declare(self, name: str, payload: type[BaseModel], description: str = "") -> None:
        """Declare event ``name`` (in every region)."""
        next(iter(self.buses.values())).declare(name, payload, description)

    def subscribe(self, subscriber: str, handler: Subscriber,
                  names: list[str] | None = None) -> None:
        """Subscribe ``handler`` (it hears the events of every region)."""
        next(iter(self.buses.values())).subscribe(subscriber, handler, names)

    def hears(self, subscriber: str, name: str) -> bool:
        """Whether ``subscriber`` is subscribed to events called ``name``."""
        return next(iter(self.buses.values())).hears(subscriber, name)

    def validate(self, name: str, payload: dict[str, Any] | BaseModel) -> dict[str, Any]:
        """``payload`` checked against event ``name``'s model."""
        return next(iter(self.buses.values())).validate(name, payload)

    async def publish(self, tx: Session, name: str, payload: dict[str, Any] | BaseModel, *,
                      account_id: str, event_id: str | None = None) -> str:
        """Write the event into the outbox of ``account_id``'s region inside ``tx``."""
        return await self.bus_of(account_id).publish(tx, name, payload,
                                                     account_id=account_id, event_id=event_id)

    async def publish_now(self, name: str, payload: dict[str, Any] | BaseModel, *,
                          account_id: str, event_id: str | None = None) -> str:
        """Publish in a transaction of its own on the account's region."""
        return await self.bus_of(account_id).publish_now(name, payload,
                                                         account_id=account_id,
                                                         event_id=event_id)

    def wake(self) -> None:
        """Relay pending events of every region now."""
        for bus in self.buses.values():
            bus.wake()

    async def pending(self) -> int:
        """Events written but not relayed yet, over every region."""
        return sum(await asyncio.gather(*(bus.pending() for bus in self.buses.values())))

    async def purge(self, older_than_s: float) -> int:
        """Delete old relayed events in every region; how many."""
        return sum(await asyncio.gather(*(bus.purge(older_than_s)
                                          for bus in self.buses.values())))

    async def relay_once(self) -> int:
        """Relay one batch in every region; how many events."""
        return sum([await bus.relay_once() for bus in self.buses.values()])

    async def start(self) -> None:
        """Start every region's transport and relay."""
        for bus in self.buses.values():
            await bus.start()

    async def stop(self) -> None:
        """Stop every region's relay and transport (idempotent)."""
        for bus in self.buses.values():
            await bus.stop()

    def handlers(self) -> Mapping[str, Callable]:
        """``{region: the events queue's handler}`` for the in-process transport."""
        return {region: bus.transport.handle for region, bus in self.buses.items()
                if isinstance(bus.transport, InProcessTransport)}
