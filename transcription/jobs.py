"""Transcription jobs: a persisted queue served by a pool of worker threads.

Each worker thread loads its own Whisper model once (CTranslate2 releases the
GIL while it decodes, so threads run in parallel off the event loop).  Jobs
live in the process's database, in the one ``transcription_jobs`` table
(:class:`transcription.job_store.JobStore`).  Jobs that were queued or running
when the server stopped are requeued when it starts again.  Progress and results are reported to
listeners on the event loop, which write them into the shared document.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import JobCancelled, JobError, TranscriptionError
from .transcript import Transcript

if TYPE_CHECKING:
    from .job_store import JobStore

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = frozenset({DONE, FAILED, CANCELLED})
#: Progress is stored and reported in steps of this fraction (each step is one commit).
PROGRESS_STEP = 0.05


@dataclass
class Job:
    """One transcription request and its state."""

    project_id: str
    source: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    clip_id: str | None = None
    start_s: float = 0.0
    end_s: float | None = None
    language: str | None = None
    status: str = QUEUED
    progress: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by the HTTP API."""
        return asdict(self)

    @property
    def transcript(self) -> Transcript | None:
        """The result as a :class:`Transcript` (``None`` until done)."""
        return Transcript.from_dict(self.result) if self.result is not None else None


Listener = Callable[[Job], None]
TranscriberFactory = Callable[[], Any]


class JobService:
    """Runs :class:`Job` s from a :class:`~transcription.job_store.JobStore` on worker threads.

    Use as ``async with JobService(store, factory) as service``.  ``factory``
    builds one :class:`~transcription.engine.Transcriber` per worker thread.
    Listeners are called on the event loop whenever a job changes.
    """

    def __init__(self, store: JobStore, transcriber_factory: TranscriberFactory, *,
                 workers: int = 1) -> None:
        if workers < 1:
            raise JobError(f"workers must be >= 1, got {workers}")
        self.store = store
        self.workers = workers
        self._factory = transcriber_factory
        self._local = threading.local()
        self._listeners: list[Listener] = []
        self._events: dict[str, threading.Event] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(job)`` on the event loop after every change of a job."""
        self._listeners.append(listener)

    async def __aenter__(self) -> JobService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the workers and requeue unfinished jobs."""
        if self._executor is not None:
            raise JobError("the transcription service is already started")
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="transcribe")
        for job in await self.store.unfinished():
            log.info("requeueing transcription job %s (%s)", job.id, job.status)
            job.status, job.progress = QUEUED, 0.0
            await self.store.save(job)
            self._schedule(job)

    async def stop(self) -> None:
        """Stop: running jobs are interrupted and stay queued for the next start."""
        if self._executor is None:
            return
        self._stopping = True
        for event in self._events.values():
            event.set()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        executor, self._executor = self._executor, None
        await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)

    async def submit(self, project_id: str, source: str | os.PathLike[str], *,
               clip_id: str | None = None, start_s: float = 0.0, end_s: float | None = None,
               language: str | None = None) -> Job:
        """Queue a job (persisted before this returns) and return it."""
        if self._executor is None:
            raise JobError("the transcription service is not started")
        job = Job(project_id=project_id, source=str(source), clip_id=clip_id,
                  start_s=start_s, end_s=end_s, language=language)
        await self.store.save(job)
        self._schedule(job)
        self._notify(job)
        return job

    async def get(self, job_id: str) -> Job:
        """The current state of a job."""
        return await self.store.get(job_id)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (a finished one is returned unchanged)."""
        job = await self.store.get(job_id)
        if job.status in FINISHED:
            return job
        event = self._events.get(job_id)
        if event is not None:
            event.set()
        job.status = CANCELLED
        await self.store.save(job)
        self._notify(job)
        return job

    async def wait(self, job_id: str) -> Job:
        """Wait until a job has finished (or the service stops) and return it."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        return await self.store.get(job_id)

    def _schedule(self, job: Job) -> None:
        event = threading.Event()
        self._events[job.id] = event
        task = asyncio.get_running_loop().create_task(self._run(job.id, event))
        self._tasks[job.id] = task

    async def _run(self, job_id: str, event: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._work, job_id, event)
        except asyncio.CancelledError:
            event.set()
        finally:
            self._events.pop(job_id, None)
            self._tasks.pop(job_id, None)

    # -- worker thread ------------------------------------------------------

    def _transcriber(self) -> Any:
        transcriber = getattr(self._local, "transcriber", None)
        if transcriber is None:
            transcriber = self._local.transcriber = self._factory()
        return transcriber

    def _work(self, job_id: str, event: threading.Event) -> None:
        job = self._call(self.store.get, job_id)
        if job.status != QUEUED or event.is_set():
            return
        self._call(self._update, job_id, status=RUNNING, progress=0.0)
        last = [0.0]

        def progress(fraction: float) -> None:
            if fraction - last[0] >= PROGRESS_STEP or fraction >= 1.0:
                last[0] = fraction
                self._call(self._update, job_id, progress=round(fraction, 3))

        try:
            transcript = self._transcriber().transcribe(
                job.source, language=job.language, start=job.start_s, end=job.end_s,
                progress=progress, cancel=event)
        except JobCancelled:
            if self._stopping:
                self._call(self._update, job_id, status=QUEUED, progress=0.0, only_running=True)
            else:
                self._call(self._update, job_id, status=CANCELLED)
            return
        except (TranscriptionError, OSError, RuntimeError, ValueError) as exc:
            log.warning("transcription job %s failed: %s", job_id, exc)
            self._call(self._update, job_id, status=FAILED, error=str(exc))
            return
        self._call(self._update, job_id, status=DONE, progress=1.0,
                   result=transcript.to_dict())

    def _call(self, function: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run the coroutine function ``function`` on the event loop; return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(function(*args, **kwargs), self._loop).result()

    async def _update(self, job_id: str, *, only_running: bool = False,
                      **changes: Any) -> Job:
        job = await self.store.get(job_id)
        if job.status == CANCELLED and changes.get("status") != CANCELLED:
            return job  # cancelled meanwhile: keep it cancelled
        if only_running and job.status != RUNNING:
            return job
        for name, value in changes.items():
            setattr(job, name, value)
        await self.store.save(job)
        self._notify(job)
        return job

    def _notify(self, job: Job) -> None:
        for listener in self._listeners:
            try:
                listener(job)
            except Exception:  # a broken listener must not stop the queue
                log.exception("transcription job listener failed for %s", job.id)
