"""Runs the handlers of the job queue's queues, each job under a heartbeat-kept lease.

One :class:`JobWorker` per process serves every queue it has a handler for: it
claims as many due jobs of a queue as that queue has free slots
(``QueueSettings.concurrency``), runs each handler as a task, and keeps the
job's lease alive while it runs (writing its progress on the way).  A handler
is ``async def handler(job: JobContext) -> result`` (the result is stored as
JSON); blocking work goes through :meth:`JobContext.run_in_thread`.

What a handler's end means:

- it returns: the job is ``done`` with the result (a dead letter if the result is
  not JSON);
- it raises :class:`~jobs.errors.Permanent`: a dead letter now;
  :class:`~jobs.errors.Retry`: retried after its delay; anything else: retried
  with backoff, a dead letter after the last attempt;
- the job is cancelled (from any process): the handler's task is cancelled
  (``JobContext.check`` raises in a thread), the job ends ``cancelled``; a
  handler about to do something a cancelled job must not do (write its result
  elsewhere) first awaits :meth:`JobContext.confirm`, which asks the database;
- the worker stops: running handlers are cancelled and their jobs given back
  unfinished (not counted as attempts), so another worker starts them again; a
  handler that already ended has its outcome recorded instead (never run again);
- the lease is lost (this process stalled past it, another worker took the
  job), or may have been (no heartbeat got through, failing or getting no answer
  in time, for the length of the lease): the handler is cancelled and nothing of
  it is recorded, before another worker can claim the job.

Each heartbeat is bounded (``BEAT_TIMEOUT_SHARE`` of ``lease_s``, between
``MIN_BEAT_TIMEOUT_S`` and ``MAX_BEAT_TIMEOUT_S``, and never past the lease it
renews), so a database that
hangs (a network partition, a locked SQLite file) cannot keep a worker running
a job whose lease ran out; one beat that times out while the lease still holds
is a blip, and the job runs on when the next one gets through.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Self, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .errors import JobCancelled, JobQueueError, Permanent, Retry
from .queue import CANCELLED, DEAD, DONE, QUEUED, RETRYING, Beat, JobQueue, JobRecord

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
_propagator = TraceContextTextMapPropagator()

T = TypeVar("T")
Handler = Callable[["JobContext"], Awaitable[Any]]
#: Progress is written at most this often (seconds) while a job runs.
PROGRESS_INTERVAL_S = 0.5
#: A running job's lease is renewed at least this often (seconds), so a cancel
#: from another process is seen within it.
MAX_BEAT_INTERVAL_S = 5.0
#: A worker whose heartbeats fail stops its handler this share of ``lease_s`` (at most
#: ``MAX_LEASE_MARGIN_S``) before the lease it last renewed runs out.
LEASE_MARGIN = 0.1
MAX_LEASE_MARGIN_S = 2.0
#: A heartbeat is given up (counted as failed) after this share of ``lease_s`` (at least
#: ``MIN_BEAT_TIMEOUT_S``, so a slow database under load is waited for; at most
#: ``MAX_BEAT_TIMEOUT_S``), and in any case when the lease it renews may run out.
BEAT_TIMEOUT_SHARE = 0.25
MIN_BEAT_TIMEOUT_S = 1.0
MAX_BEAT_TIMEOUT_S = 10.0
#: How long stopping waits for cancelled handlers to end (seconds).
STOP_GRACE_S = 30.0
#: How long a stopping worker waits to give one job back before leaving it to its lease.
RELEASE_TIMEOUT_S = 10.0


class JobContext:
    """What a handler gets: its job, a progress reporter and the cancel signal."""

    def __init__(self, job: JobRecord,
                 beat: Callable[[], Awaitable[Beat]] | None = None) -> None:
        self.job = job
        self.stop_requested = threading.Event()
        self.shutting_down = False
        self.cancel_requested = False
        #: The state this attempt left the job in (None: not recorded, e.g. lease lost).
        self.outcome: str | None = None
        #: Whether the worker began running it (a task cancelled first never does).
        self.started = False
        self._beat = beat
        #: When (``time.monotonic()``) the job was claimed: its lease holds from then.
        self.claimed_at = time.monotonic()
        self._lock = threading.Lock()
        self._progress: tuple[float | None, str | None] | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """The job's payload as enqueued."""
        return self.job.payload

    @property
    def attempt(self) -> int:
        """This attempt's number (1 for the first)."""
        return self.job.attempts

    def progress(self, fraction: float, note: str | None = None) -> None:
        """Report progress (0..1) and an optional note; safe from any thread.

        A fraction that is not a number (NaN, e.g. done/total of an empty total) keeps
        the progress last reported; the note is still written.
        """
        value: float | None = float(fraction)
        if math.isnan(value):
            value = None
        with self._lock:
            self._progress = (value, note)

    def take_progress(self) -> tuple[float | None, str | None] | None:
        """The progress reported since the last call (None: nothing new)."""
        with self._lock:
            progress, self._progress = self._progress, None
        return progress

    def check(self) -> None:
        """Raise :class:`JobCancelled` once the job is cancelled or the worker stops."""
        if self.stop_requested.is_set():
            raise JobCancelled(f"job {self.job.id} was stopped")

    async def confirm(self) -> None:
        """Raise :class:`JobCancelled` unless the job is still ours and nobody cancelled it.

        Unlike :meth:`check` it asks the database (renewing the lease), so a
        cancel from another process is seen now rather than at the next
        heartbeat.  Await it just before an effect a cancelled job must not have.
        """
        self.check()
        if self._beat is None:
            return
        beat = await self._beat()
        if beat.cancel_requested:
            self.cancel_requested = True
        if beat.cancel_requested or not beat.held:
            self.stop_requested.set()
            raise JobCancelled(f"job {self.job.id} was "
                               f"{'cancelled' if beat.held else 'taken over by another worker'}")

    async def run_in_thread(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking ``func(*args)`` in a thread; on cancel, wait for it to notice.

        ``func`` should call :meth:`check` now and then so a cancelled job stops
        soon; the thread is never abandoned while it may still write files. It runs in a
        copy of the caller's context (its context variables, as ``asyncio.to_thread``).
        """
        run = functools.partial(contextvars.copy_context().run, func, *args)
        future = asyncio.get_running_loop().run_in_executor(None, run)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.stop_requested.set()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await future
            raise


class JobWorker:
    """Serves queues of a :class:`JobQueue` with handlers (an async context manager)."""

    def __init__(self, queue: JobQueue, handlers: Mapping[str, Handler], *,
                 worker_id: str | None = None, poll_s: float = 1.0,
                 error_backoff_cap: float = 30.0) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.poll_s = poll_s
        self.error_backoff_cap = error_backoff_cap
        self._loops: list[asyncio.Task] = []
        self._running: dict[str, dict[asyncio.Task, JobContext]] = {}
        #: Heartbeats given up on and cancelled, held until they end.
        self._abandoned_beats: set[asyncio.Task] = set()
        self._stopping = False

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        """Start serving every queue that has a handler; starting twice is an error."""
        if self._loops:
            raise JobQueueError(f"job worker {self.worker_id} is already started")
        self._stopping = False
        for name in self.handlers:
            self._running[name] = {}
            self._loops.append(asyncio.create_task(self._serve(name),
                                                   name=f"jobs:{name}:{self.worker_id}"))

    async def stop(self) -> None:
        """Stop claiming; cancel running handlers and give their jobs back."""
        self._stopping = True
        for task in self._loops:
            task.cancel()
        running = [(task, ctx) for jobs in self._running.values() for task, ctx in jobs.items()]
        for task, ctx in running:
            ctx.shutting_down = True
            ctx.stop_requested.set()
            task.cancel()
        pending = [*self._loops, *(task for task, _ in running)]
        if pending:
            done, still = await asyncio.wait(pending, timeout=STOP_GRACE_S)
            for task in still:
                log.error("job worker %s: %s did not stop within %.0f s", self.worker_id,
                          task.get_name(), STOP_GRACE_S)
        for task, ctx in running:  # cancelled before its first step: nothing released it
            if not ctx.started and task.done():
                await self._give_back(ctx.job)
        self._loops.clear()

    async def run_once(self, name: str) -> int:
        """Claim the due jobs of queue ``name`` (up to its concurrency) and run each to its end.

        For tools, tests and benchmarks that step a queue by hand instead of
        :meth:`start`; the jobs run exactly as a started worker runs them.  How
        many were claimed.
        """
        if name not in self.handlers:
            raise JobQueueError(f"job worker {self.worker_id} has no handler for queue {name!r}")
        jobs = await self.queue.claim(name, self.worker_id,
                                      self.queue.settings_for(name).concurrency)
        await asyncio.gather(*(self._run(name, self._context(job)) for job in jobs))
        return len(jobs)

    def running(self, queue: str) -> list[JobRecord]:
        """The jobs of ``queue`` this worker runs now."""
        return [ctx.job for ctx in self._running.get(queue, {}).values()]

    # -- claiming -----------------------------------------------------------------

    async def _serve(self, name: str) -> None:
        settings = self.queue.settings_for(name)
        wake = self.queue.wake_event(name)
        failures = 0
        while not self._stopping:
            wake.clear()
            free = settings.concurrency - len(self._running[name])
            if free > 0:
                claiming = asyncio.ensure_future(self.queue.claim(name, self.worker_id, free))
                try:
                    jobs = await asyncio.shield(claiming)
                except asyncio.CancelledError:  # stopping: what the claim got goes back
                    await self._give_back_claimed(claiming)
                    raise
                except Exception as exc:  # the database is down: wait, never die
                    failures += 1
                    delay = min(self.error_backoff_cap, 0.5 * 2 ** min(failures, 10))
                    log.warning("job worker %s cannot claim %s jobs (%s); trying again in "
                                "%.1f s", self.worker_id, name, exc, delay)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                for job in jobs:
                    self._launch(name, job)
                if len(jobs) == free:
                    continue  # maybe more are due, and slots may free soon
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await wake.wait()

    async def _give_back_claimed(self, claiming: asyncio.Future[list[JobRecord]]) -> None:
        """Release the jobs of a claim the stopping worker stopped waiting for (it may
        still land); otherwise they would wait out their lease unrun."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RELEASE_TIMEOUT_S):  # the claim and its releases
                for job in await claiming:
                    await self.queue.release(job)

    async def _record_stopping(self, ctx: JobContext, handler_task: asyncio.Task) -> None:
        """Record the outcome of a handler that ended as the worker stopped (its
        recording, if begun, was cancelled), within :data:`RELEASE_TIMEOUT_S`; giving
        the job back instead would run a finished attempt again."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RELEASE_TIMEOUT_S):
                await self._record(ctx, handler_task)

    async def _give_back(self, job: JobRecord) -> None:
        """Release ``job`` unfinished as the worker stops, within
        :data:`RELEASE_TIMEOUT_S`; if that fails, its lease runs out instead."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RELEASE_TIMEOUT_S):
                await self.queue.release(job)

    def _context(self, job: JobRecord) -> JobContext:
        """What the handler of ``job`` gets; its ``confirm`` asks this worker's queue."""
        return JobContext(job, lambda: self.queue.heartbeat(job))

    def _launch(self, name: str, job: JobRecord) -> None:
        ctx = self._context(job)
        task = asyncio.create_task(self._run(name, ctx), name=f"job:{name}:{job.id}")
        self._running[name][task] = ctx

        def finished(done: asyncio.Task) -> None:
            self._running[name].pop(done, None)
            self.queue.wake(name)

        task.add_done_callback(finished)

    # -- running one job ------------------------------------------------------------------

    async def _run(self, name: str, ctx: JobContext) -> None:
        """Run one claimed job in a span that continues the trace that enqueued it."""
        job = ctx.job
        parent = (_propagator.extract({"traceparent": job.traceparent})
                  if job.traceparent else None)
        with _tracer.start_as_current_span(
                f"jobs.run {name}", context=parent, kind=SpanKind.CONSUMER,
                attributes={"jobs.queue": name, "jobs.id": job.id,
                            "jobs.attempt": job.attempts}) as span:
            await self._run_held(name, ctx)
            if ctx.outcome is not None:
                span.set_attribute("jobs.outcome", ctx.outcome)
                if ctx.outcome in (RETRYING, DEAD):
                    span.set_status(StatusCode.ERROR)

    async def _run_held(self, name: str, ctx: JobContext) -> None:
        job = ctx.job
        ctx.started = True
        if job.attempts > job.max_attempts:  # its leases expired time and again
            await self.queue.fail(job, f"gave up after {job.max_attempts} attempts whose "
                                  "workers stopped before finishing", permanent=True)
            return
        handler_task = asyncio.create_task(self.handlers[name](ctx), name=f"handler:{job.id}")

        def cancel() -> None:
            ctx.cancel_requested = True
            ctx.stop_requested.set()
            handler_task.cancel()

        self.queue.on_cancel(job, cancel)
        try:
            held = await self._hold(ctx, handler_task, cancel)
            if held:
                await self._record(ctx, handler_task)
        except asyncio.CancelledError:  # the worker is stopping
            ctx.shutting_down = True
            ended = handler_task.done() and not handler_task.cancelled()
            handler_task.cancel()
            with contextlib.suppress(BaseException):
                await handler_task
            if ended:  # it ran to its end: record that, never run it again
                await self._record_stopping(ctx, handler_task)
            else:
                await self._give_back(job)
            raise
        except Exception:  # recording failed (database down): the lease will expire
            log.exception("job %s (%s): cannot record its outcome", job.id, name)
        finally:
            self.queue.on_cancel(job, None)

    async def _hold(self, ctx: JobContext, handler_task: asyncio.Task,
                    cancel: Callable[[], None]) -> bool:
        """Keep the lease while the handler runs; False if it was (or may have been) lost,
        the handler then stopped."""
        job = ctx.job
        lease_s = self.queue.settings_for(job.queue).lease_s
        beat_every = min(lease_s / 3, MAX_BEAT_INTERVAL_S)
        beat_timeout = min(max(lease_s * BEAT_TIMEOUT_SHARE, MIN_BEAT_TIMEOUT_S),
                           MAX_BEAT_TIMEOUT_S)
        # the lease surely holds until lease_s after the last beat that got through
        # (the claim counts as one), less a margin for the time the beat took to land
        holds_for = lease_s - min(lease_s * LEASE_MARGIN, MAX_LEASE_MARGIN_S)
        last_beat = last_good_beat = ctx.claimed_at
        failing = False  # the last beat failed or timed out (an event loop that stalled has not)
        while not handler_task.done():
            lease_left = last_good_beat + holds_for - time.monotonic()
            await asyncio.wait({handler_task}, timeout=max(0.0, min(PROGRESS_INTERVAL_S,
                                                                    lease_left)))
            if handler_task.done():
                break
            if failing and time.monotonic() - last_good_beat >= holds_for:
                log.warning("job %s (%s): no heartbeat got through for the length of its "
                            "lease (the database failed or did not answer); stopping its "
                            "handler, another worker may have the job now", job.id, job.queue)
                await _stop(handler_task)
                return False
            progress = ctx.take_progress()
            if progress is None and time.monotonic() - last_beat < beat_every:
                continue
            sent = time.monotonic()
            beat = await self._beat_within(
                job, progress, _beat_limit(beat_timeout, last_good_beat + holds_for - sent))
            if beat is None:  # keep running while the lease may still hold
                failing = True
                continue
            last_beat = last_good_beat = sent
            failing = False
            if not beat.held:
                log.warning("job %s (%s): lease lost; another worker has it now", job.id,
                            job.queue)
                await _stop(handler_task)
                return False
            if beat.cancel_requested and not ctx.cancel_requested:
                cancel()
        return True

    async def _beat_within(self, job: JobRecord, progress: tuple[float | None, str | None]
                           | None, limit_s: float) -> Beat | None:
        """One heartbeat of ``job``, given up after ``limit_s``; None if it failed or timed out.

        The database call runs as a task of its own, so giving up never waits for it to
        end (a statement on SQLite's writer runs to its end even when cancelled).
        """
        beat = asyncio.create_task(self.queue.heartbeat(job, *(progress or (None, None))),
                                   name=f"heartbeat:{job.id}")
        try:
            await asyncio.wait({beat}, timeout=limit_s)
        finally:
            if not beat.done():
                self._abandon(beat)
        if not beat.done():
            log.warning("job %s (%s): heartbeat got no answer within %.2f s", job.id,
                        job.queue, limit_s)
            return None
        try:
            return beat.result()
        except Exception as exc:
            log.warning("job %s (%s): heartbeat failed: %s", job.id, job.queue, exc)
            return None

    def _abandon(self, beat: asyncio.Task) -> None:
        """Cancel a heartbeat given up on, and hold it (unawaited) until it ends."""
        beat.cancel()
        self._abandoned_beats.add(beat)
        beat.add_done_callback(self._forget_beat)

    def _forget_beat(self, beat: asyncio.Task) -> None:
        """Drop an abandoned heartbeat that ended; how it ended is no news any more."""
        self._abandoned_beats.discard(beat)
        if not beat.cancelled():
            beat.exception()  # retrieved, so asyncio does not log it as lost

    async def _record(self, ctx: JobContext, handler_task: asyncio.Task) -> None:
        job = ctx.job
        if handler_task.cancelled():
            outcome: BaseException | None = JobCancelled("cancelled")
        else:
            outcome = handler_task.exception()
        if outcome is None:
            result = handler_task.result()
            try:
                json.dumps(result)
            except (TypeError, ValueError) as exc:  # running it again returns the same
                ctx.outcome = await self.queue.fail(job, f"result is not JSON: {exc}",
                                                    permanent=True) or None
                return
            if await self.queue.complete(job, result):
                ctx.outcome = DONE
        elif isinstance(outcome, JobCancelled) and ctx.shutting_down:
            if await self.queue.release(job):
                ctx.outcome = QUEUED
        elif isinstance(outcome, JobCancelled) and ctx.cancel_requested:
            if await self.queue.cancelled(job):
                ctx.outcome = CANCELLED
        elif isinstance(outcome, Permanent):
            ctx.outcome = await self.queue.fail(job, _describe(outcome), permanent=True) or None
        elif isinstance(outcome, Retry):
            ctx.outcome = await self.queue.fail(job, _describe(outcome),
                                                retry_after=outcome.after) or None
        else:
            if not isinstance(outcome, JobCancelled | Exception):
                log.error("job %s (%s): handler raised %r", job.id, job.queue, outcome)
            ctx.outcome = await self.queue.fail(job, _describe(outcome)) or None


def _beat_limit(beat_timeout: float, lease_left: float) -> float:
    """How long a heartbeat may take: it gives up before the lease it renews may run out.

    After a stall of the event loop past the lease (no beat failed: ``lease_left`` is
    not positive) only the database knows whether the job is still ours, so it is asked,
    within ``beat_timeout``.
    """
    return min(beat_timeout, lease_left) if lease_left > 0 else beat_timeout


async def _stop(handler_task: asyncio.Task) -> None:
    """Cancel a handler whose lease is gone and wait for it to end."""
    handler_task.cancel()
    with contextlib.suppress(BaseException):
        await handler_task


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if text and isinstance(exc, Permanent | Retry):  # the handler's own words
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
