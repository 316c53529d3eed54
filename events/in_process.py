"""The embedded default transport: each event becomes one job per subscriber.

The relay calls :meth:`InProcessTransport.send` inside its transaction, so the
delivery jobs exist exactly when the event is marked relayed (an idempotency key
``event id/subscriber`` keeps a second relay of the same event from doubling
them).  The job worker runs the ``events`` queue with :meth:`handle`: a
subscriber that raises is retried with backoff and ends a dead letter of the job
queue after its last attempt, while the other subscribers are not held up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from database import Session
from jobs import JobContext, JobQueue, Permanent

from .envelope import Envelope

if TYPE_CHECKING:
    from .bus import EventBus

#: The job queue the deliveries run on.
QUEUE = "events"


class InProcessTransport:
    """Delivers events through the process's job queue and worker."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self._bus: EventBus | None = None

    async def start(self, bus: EventBus) -> None:
        """Remember the bus whose subscribers :meth:`handle` calls."""
        self._bus = bus

    async def stop(self) -> None:
        """Nothing to close: the job worker stops on its own."""

    def _subscribed(self) -> EventBus:
        if self._bus is None:
            raise RuntimeError("the in-process event transport is not started")
        return self._bus

    async def send(self, tx: Session, events: list[Envelope]) -> None:
        """One delivery job per (event, subscriber that hears it), inside ``tx``."""
        bus = self._subscribed()
        for event in events:
            for subscriber in bus.subscribers:
                if bus.hears(subscriber, event.name):
                    await self.queue.enqueue(
                        QUEUE, {"subscriber": subscriber, "event": event.to_json()},
                        account_id=event.account_id,
                        idempotency_key=f"{event.id}/{subscriber}", tx=tx)

    def sent(self) -> None:
        """The relay's transaction committed: start the new deliveries now."""
        self.queue.wake(QUEUE)

    async def handle(self, job: JobContext) -> None:
        """The ``events`` queue's handler: hand one event to one subscriber."""
        bus = self._subscribed()
        subscriber = job.payload["subscriber"]
        found = bus.subscribers.get(subscriber)
        if found is None:
            raise Permanent(f"no subscriber {subscriber!r} in this process")
        await found[1](Envelope.from_json(job.payload["event"]))
