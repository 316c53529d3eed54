"""Errors of the job queue, and the ones a job's handler raises to steer it."""

from __future__ import annotations


class JobQueueError(Exception):
    """Base class of the job queue's errors."""


class UnknownJob(JobQueueError):
    """No job of that account has that id."""


class Permanent(Exception):  # noqa: N818 - a handler raises it: "this failure is permanent"
    """Raised by a handler: retrying cannot help; the job becomes a dead letter now."""


class Retry(Exception):  # noqa: N818 - a handler raises it: "retry after N seconds"
    """Raised by a handler: try again after ``after`` seconds (counts as an attempt).

    A negative ``after`` retries at once; a NaN or infinite one gets the queue's backoff;
    one beyond 366 days waits that long (:data:`jobs.queue.MAX_RETRY_AFTER_S`).
    """

    def __init__(self, message: str = "", after: float = 0.0) -> None:
        super().__init__(message)
        self.after = after


class JobCancelled(Exception):  # noqa: N818 - raised inside a cancelled job
    """Raised inside a handler (by :meth:`jobs.JobContext.check`) once its job is cancelled."""
