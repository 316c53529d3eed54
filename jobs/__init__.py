"""The one durable job queue of the platform, in the shared database.

Every kind of background work (bounces, transcription, store deliveries, event
delivery, and each plug-in's jobs) is a job of a named queue in the ``jobs``
table (:mod:`jobs.queue`), run by the process's :class:`JobWorker`
(:mod:`jobs.worker`) with leases, heartbeats, progress, backoff with jitter,
dead letters, cancellation, idempotency keys and per-queue concurrency.  On
PostgreSQL many nodes claim jobs side by side (``FOR UPDATE SKIP LOCKED``).
Each heartbeat is bounded: a worker whose heartbeats fail or hang stops its
handler before the lease can run out, so a database that fails or hangs never
lets another worker take over a job still running here (an event loop that stalls
past the lease is the exception: it then asks the database whether the job is
still its own).

This package imports only :mod:`database`; ``collab``, ``transcription``,
``dawserver`` and the plug-ins (through ``dawserver.plugin_api``) use it.
"""

from __future__ import annotations

from .backoff import backoff_delay
from .errors import JobCancelled, JobQueueError, Permanent, Retry, UnknownJob
from .queue import (
    CANCELLED,
    DEAD,
    DEAD_NOTICES,
    DONE,
    FINISHED,
    MIGRATIONS,
    QUEUED,
    RETRYING,
    RUNNING,
    STATES,
    WAITING,
    JobQueue,
    JobRecord,
    QueueSettings,
)
from .worker import Handler, JobContext, JobWorker

__all__ = [
    "CANCELLED", "DEAD", "DEAD_NOTICES", "DONE", "FINISHED", "MIGRATIONS", "QUEUED",
    "RETRYING", "RUNNING", "STATES", "WAITING", "Handler", "JobCancelled", "JobContext",
    "JobQueue", "JobQueueError", "JobRecord", "JobWorker", "Permanent", "QueueSettings",
    "Retry", "UnknownJob",
    "backoff_delay",
]
