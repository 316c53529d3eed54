"""The server's background work: the one job queue, its worker and the one event bus.

Components register their queues before the server starts (bounces,
transcription, each plug-in's declared :class:`~dawserver.declarations.Job`);
:meth:`Background.start` then opens the job queue (:mod:`jobs`) and the event
bus (:mod:`events`) on the process's database and starts one
:class:`jobs.JobWorker` serving every registered queue, plus the event bus's
``events`` queue.  Events go in-process through the job queue by default, and
through Redis Streams when ``redis_url`` is configured.  A queue registered with an
``on_dead`` hook hears of each job of it that dies (:mod:`jobs.dead_notices`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from database import Database
from events import EventBus, InProcessTransport, RedisStreamsTransport
from events.in_process import QUEUE as EVENTS_QUEUE
from jobs import DEAD_NOTICES, Handler, JobQueue, JobWorker, QueueSettings
from jobs.dead_notices import NOTICE_SETTINGS, OnDead, dead_notice_handler

from .errors import PluginError

log = logging.getLogger(__name__)

#: Finished jobs (done, cancelled) and relayed events are kept this long (seconds);
#: dead letters stay until someone requeues or deletes them.
KEEP_FINISHED_S = 30 * 24 * 3600
#: How often the old rows are deleted (seconds).
PURGE_EVERY_S = 3600.0

#: How the event deliveries run on the in-process transport.
EVENT_DELIVERY = QueueSettings(max_attempts=8, backoff_base=1.0, backoff_cap=300.0,
                               lease_s=60.0, concurrency=4)


@dataclass(frozen=True)
class Registered:
    """A queue some component serves: its handler and how it runs."""

    owner: str
    handler: Handler
    settings: QueueSettings
    on_dead: OnDead | None = None


class Background:
    """The registered queues, and once started the job queue, worker and event bus."""

    def __init__(self, *, poll_s: float = 1.0, keep_finished_s: float = KEEP_FINISHED_S,
                 purge_every_s: float = PURGE_EVERY_S) -> None:
        self.poll_s = poll_s
        self.keep_finished_s = keep_finished_s
        self.purge_every_s = purge_every_s
        self.queues: dict[str, Registered] = {}
        self._purger: asyncio.Task | None = None
        self._queue: JobQueue | None = None
        self._bus: EventBus | None = None
        self._worker: JobWorker | None = None

    def register(self, name: str, handler: Handler, settings: QueueSettings | None = None,
                 *, owner: str = "core", on_dead: OnDead | None = None) -> None:
        """Serve queue ``name`` with ``handler``; a queue has one owner.

        ``await on_dead(record)`` runs (durably, retried, maybe more than once) for each
        of its jobs that becomes a dead letter, however it died."""
        known = self.queues.get(name)
        if known is not None:
            raise PluginError(f"job queue {name!r} is already served by {known.owner!r}; "
                              f"{owner!r} must name its queue differently")
        if name in (EVENTS_QUEUE, DEAD_NOTICES):
            raise PluginError(f"job queue {name!r} belongs to the platform")
        self.queues[name] = Registered(owner, handler, settings or QueueSettings(), on_dead)

    @property
    def started(self) -> bool:
        """Whether the job queue is open (:meth:`prepare` ran)."""
        return self._queue is not None

    @property
    def queue(self) -> JobQueue:
        """The job queue (the server has started)."""
        if self._queue is None:
            raise PluginError("the job queue is not open yet; use it once the server started")
        return self._queue

    @property
    def bus(self) -> EventBus:
        """The event bus (created by :meth:`prepare`)."""
        if self._bus is None:
            raise PluginError("the event bus is not open yet; use it once the server started")
        return self._bus

    async def prepare(self, db: Database, redis_url: str | None = None) -> EventBus:
        """Open the queue and the bus on ``db`` (tables migrated); declare events next."""
        settings = {name: q.settings for name, q in self.queues.items()}
        settings[EVENTS_QUEUE] = EVENT_DELIVERY
        settings[DEAD_NOTICES] = NOTICE_SETTINGS
        self._queue = JobQueue(db, settings)
        for name in self._dead_hooks():
            self._queue.watch_dead(name)
        await self._queue.setup()
        transport = (RedisStreamsTransport(redis_url) if redis_url
                     else InProcessTransport(self._queue))
        self._bus = EventBus(db, transport)
        await self._bus.setup()
        return self._bus

    async def start(self) -> None:
        """Start the event bus and the worker (after :meth:`prepare` and subscriptions)."""
        bus, queue = self.bus, self.queue
        handlers = {name: q.handler for name, q in self.queues.items()}
        if isinstance(bus.transport, InProcessTransport):
            handlers[EVENTS_QUEUE] = bus.transport.handle
        if hooks := self._dead_hooks():
            handlers[DEAD_NOTICES] = dead_notice_handler(queue, hooks)
        await bus.start()
        self._worker = JobWorker(queue, handlers, poll_s=self.poll_s)
        self._worker.start()
        self._purger = asyncio.create_task(self._purge_forever(), name="background:purge")
        log.info("background work started: queues %s, events via %s", sorted(handlers),
                 type(bus.transport).__name__)

    def _dead_hooks(self) -> dict[str, OnDead]:
        return {name: q.on_dead for name, q in self.queues.items() if q.on_dead is not None}

    async def purge(self) -> tuple[int, int]:
        """Delete finished jobs and relayed events older than ``keep_finished_s``.

        How many of each; dead letters are kept.
        """
        return (await self.queue.purge(self.keep_finished_s),
                await self.bus.purge(self.keep_finished_s))

    async def _purge_forever(self) -> None:
        while True:
            try:
                jobs_gone, events_gone = await self.purge()
                if jobs_gone or events_gone:
                    log.info("deleted %d finished jobs and %d relayed events older than "
                             "%.0f days", jobs_gone, events_gone, self.keep_finished_s / 86400)
            except Exception as exc:  # the database may be down for a while
                log.warning("cannot delete old jobs and events: %s", exc)
            await asyncio.sleep(self.purge_every_s)

    async def stop(self) -> None:
        """Stop the worker (running jobs given back) and the event bus (idempotent)."""
        purger, self._purger = self._purger, None
        if purger is not None:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop()
        if self._bus is not None:
            await self._bus.stop()
