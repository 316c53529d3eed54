"""The one event bus of the platform: typed events through an outbox in the shared database.

An event is published in the transaction of the change it announces
(:meth:`EventBus.publish`), relayed from the ``events_outbox`` table to a
transport and delivered at least once to each subscriber, with its id so a
repeat can be told apart:

- :class:`InProcessTransport`, the embedded default: one job per subscriber on
  the job queue (:mod:`jobs`), with its retries and dead letters;
- :class:`RedisStreamsTransport`, when Redis is configured: consumer groups on
  Redis Streams, with pending-entry reclaim (``XAUTOCLAIM``) and a dead-letter
  stream.

This package imports :mod:`database` and :mod:`jobs` only.
"""

from __future__ import annotations

from .bus import MIGRATIONS, EventBus, Subscriber, Transport
from .envelope import Envelope, EventType
from .errors import EventError
from .in_process import InProcessTransport
from .redis_streams import RedisStreamsTransport

__all__ = ["MIGRATIONS", "Envelope", "EventBus", "EventError", "EventType",
           "InProcessTransport", "RedisStreamsTransport", "Subscriber", "Transport"]
