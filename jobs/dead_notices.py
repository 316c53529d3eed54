"""Tell a queue's owner that one of its jobs died, however it died.

A handler can see its own last attempt fail, but not every death: a job whose workers
were killed on every attempt is made a dead letter by the next claim, without its
handler running (:meth:`jobs.worker.JobWorker`), and a ``Permanent`` raised deep in a
library reads like any other failure.  Work left half-done by such a job (a sale line
marked as being paid, a delivery shown as sending) would then stay so for good.

So :meth:`JobQueue.watch_dead` has the transaction that makes a watched queue's job
dead also enqueue a notice on :data:`~jobs.queue.DEAD_NOTICES`; the handler made here
runs the queue owner's ``on_dead(record)`` for it.  The notice is durable (written
with the death), retried with backoff when ``on_dead`` raises, and skipped when the
job is no longer dead (requeued meanwhile), so ``on_dead`` must be idempotent: a crash
after it acted and before the notice was recorded done runs it again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .queue import DEAD, JobQueue, JobRecord, QueueSettings
from .worker import Handler, JobContext

log = logging.getLogger(__name__)

#: ``await on_dead(record)``: the dead job as stored (its ``last_error`` says why).
OnDead = Callable[[JobRecord], Awaitable[Any]]

#: How notices run: an owner's ``on_dead`` that fails (its database restarting) is
#: tried again for about a day before the notice itself is a dead letter.
NOTICE_SETTINGS = QueueSettings(max_attempts=20, backoff_base=2.0, backoff_cap=3600.0,
                                lease_s=60.0, concurrency=2)


def dead_notice_handler(queue: JobQueue, hooks: Mapping[str, OnDead]) -> Handler:
    """The :data:`~jobs.queue.DEAD_NOTICES` handler: ``hooks[record.queue](record)`` for
    each notice whose job is still dead."""
    async def handle(ctx: JobContext) -> dict[str, Any]:
        name, job_id = str(ctx.payload["queue"]), str(ctx.payload["job_id"])
        record = await queue.get(ctx.job.account_id, job_id)
        if record.state != DEAD:  # requeued (and perhaps done) since: nothing to tell
            return {"queue": name, "job_id": job_id, "skipped": record.state}
        hook = hooks.get(name)
        if hook is None:
            log.warning("job %s of %s died but queue %s no longer has an on_dead hook",
                        job_id, ctx.job.account_id, name)
            return {"queue": name, "job_id": job_id, "skipped": "no hook"}
        await hook(record)
        return {"queue": name, "job_id": job_id, "told": True}

    return handle
