"""What a transcription job does: one source decoded by Whisper, off the event loop.

Transcription jobs are jobs of the one durable job queue (:mod:`jobs`), in the
queue ``transcription``; their payload is a :class:`TranscriptionRequest`.  A
server serves the queue with as many slots as it has Whisper models
(:func:`queue_settings`), and its handler calls :func:`transcribe`, which
decodes in a thread (:meth:`jobs.JobContext.run_in_thread`) with a model
borrowed from a :class:`TranscriberPool`: each model is loaded once, by the
first thread that needs it, and used by one thread at a time (CTranslate2
releases the GIL while it decodes, so jobs run in parallel and the event loop
never waits on Whisper).  Progress is reported in :data:`PROGRESS_STEP` steps;
a cancelled job stops at the next decoded segment; a source or model that
cannot be read fails the job at once (:class:`jobs.Permanent`).

What the queue gives for free replaces what this module once did itself: a
job whose worker stopped is given back and runs again at the next start (or on
another node), and one whose worker died is claimed again when its lease
expires.  :class:`Job` is a job as the HTTP API and the document show it.

The table of the jobs before they moved to the queue, ``transcription_jobs``,
is moved into ``jobs`` and dropped by ``migrations/0002_into_job_queue``, which
needs the queue's table: apply both with :func:`migrate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import jobs
from database import Database, load_migrations
from jobs import JobContext, JobRecord, Permanent, QueueSettings

from .errors import JobCancelled, JobError, TranscriptionError
from .registry import ModelRegistry, model_sha256
from .transcript import Transcript

#: The job queue transcription jobs run on.
QUEUE = "transcription"
#: This component's migrations; :func:`migrate` applies them after the queue's.
MIGRATIONS = load_migrations("transcription", Path(__file__).with_name("migrations"))
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = frozenset({DONE, FAILED, CANCELLED})
#: The states a transcription job shows, by the queue's state of its job.
STATUS = {jobs.QUEUED: QUEUED, jobs.RETRYING: QUEUED, jobs.RUNNING: RUNNING, jobs.DONE: DONE,
          jobs.DEAD: FAILED, jobs.CANCELLED: CANCELLED}
#: Progress is stored and reported in steps of this fraction.
PROGRESS_STEP = 0.05

TranscriberFactory = Callable[[], Any]


async def migrate(database: Database) -> None:
    """Create or upgrade the tables transcription jobs live in (the queue's, then ours)."""
    await database.migrate([*jobs.MIGRATIONS, *MIGRATIONS])


def queue_settings(workers: int) -> QueueSettings:
    """How the ``transcription`` queue runs with ``workers`` models: that many jobs at once."""
    if workers < 1:
        raise JobError(f"workers must be >= 1, got {workers}")
    return QueueSettings(max_attempts=3, backoff_base=5.0, backoff_cap=300.0, lease_s=60.0,
                         concurrency=workers)


@dataclass(frozen=True)
class TranscriptionRequest:
    """A job's payload: which project, which source file and what part of it, which language.

    ``asset_id``: the project's asset that ``source`` is a local copy of. The worker that
    runs the job, on this node or another, fetches its own copy then, since a cached
    file may be evicted meanwhile or live on another node's disk. None: ``source`` is
    the file to read.
    """

    project_id: str
    source: str
    clip_id: str | None = None
    start_s: float = 0.0
    end_s: float | None = None
    language: str | None = None
    asset_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The job payload (JSON)."""
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TranscriptionRequest:
        """The request a job's payload holds (:class:`jobs.Permanent` if it is not one)."""
        try:
            return cls(**payload)
        except TypeError as exc:
            raise Permanent(f"not a transcription request: {exc}") from None


@dataclass
class Job:
    """A transcription job as the HTTP API shows it (:meth:`from_record`)."""

    project_id: str
    source: str
    id: str
    clip_id: str | None
    start_s: float
    end_s: float | None
    language: str | None
    status: str
    progress: float
    result: dict[str, Any] | None
    error: str | None
    created_at: float
    updated_at: float
    asset_id: str | None = None

    @classmethod
    def from_record(cls, record: JobRecord) -> Job:
        """The job a queue record holds.

        A running job someone cancelled shows ``cancelled`` at once: it stops at its next
        decoded segment and writes nothing.
        """
        request = TranscriptionRequest.from_payload(record.payload)
        status = STATUS[record.state]
        if record.state == jobs.RUNNING and record.cancel_requested:
            status = CANCELLED
        failed = status == FAILED or record.state == jobs.RETRYING
        return cls(id=record.id, **asdict(request), status=status, progress=record.progress,
                   result=record.result if status == DONE else None,
                   error=record.last_error if failed and record.last_error else None,
                   created_at=record.created_at, updated_at=record.updated_at)

    @property
    def request(self) -> TranscriptionRequest:
        """What the job was asked to do."""
        return TranscriptionRequest(
            project_id=self.project_id, source=self.source, clip_id=self.clip_id,
            start_s=self.start_s, end_s=self.end_s, language=self.language,
            asset_id=self.asset_id)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by the HTTP API."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def transcript(self) -> Transcript | None:
        """The result as a :class:`Transcript` (``None`` until done)."""
        return Transcript.from_dict(self.result) if self.result is not None else None


class TranscriberPool:
    """Up to ``size`` Whisper models, each loaded once and used by one thread at a time.

    ``factory()`` builds one :class:`~transcription.engine.Transcriber`; it runs
    in the first thread that needs a model while every loaded one is busy.
    """

    def __init__(self, factory: TranscriberFactory, size: int) -> None:
        if size < 1:
            raise JobError(f"workers must be >= 1, got {size}")
        self.size = size
        self._factory = factory
        self._idle: list[Any] = []
        self._loaded = 0
        self._changed = threading.Condition()

    @property
    def loaded(self) -> int:
        """How many models were loaded so far."""
        return self._loaded

    @contextlib.contextmanager
    def borrow(self, cancel: threading.Event | None = None) -> Iterator[Any]:
        """A model for this thread while the block runs (waits while all are busy)."""
        with self._changed:
            while not self._idle and self._loaded >= self.size:
                if cancel is not None and cancel.is_set():
                    raise JobCancelled("transcription cancelled while waiting for a model")
                self._changed.wait(0.1)
            build = not self._idle
            if build:
                self._loaded += 1
            else:
                model = self._idle.pop()
        if build:
            try:
                model = self._factory()
            except BaseException:
                with self._changed:
                    self._loaded -= 1
                    self._changed.notify()
                raise
        try:
            yield model
        finally:
            with self._changed:
                self._idle.append(model)
                self._changed.notify()


async def transcribe(ctx: JobContext, pool: TranscriberPool,
                     progress: Callable[[float], None] | None = None, *,
                     registry: ModelRegistry | None = None,
                     source: str | None = None) -> Transcript:
    """Decode the job's request with a model of ``pool``, in a thread.

    ``progress(fraction)`` is called on the event loop at every step of
    :data:`PROGRESS_STEP` (the job's stored progress moves with it).  A cancelled
    job raises :class:`jobs.JobCancelled`; a source or model that cannot be read
    raises :class:`jobs.Permanent` with the reason.  With a ``registry`` the decode
    is logged under the job's account, against the registered version of the model
    file that decoded it (registered on first use if it is not yet). ``source``: the
    file to decode instead of the request's (this node's copy of its asset).
    """
    request = TranscriptionRequest.from_payload(ctx.payload)
    source = source or request.source
    loop = asyncio.get_running_loop()
    last = 0.0

    def step(fraction: float) -> None:  # in the decoding thread
        nonlocal last
        if fraction - last >= PROGRESS_STEP or fraction >= 1.0:
            last = fraction
            ctx.progress(round(fraction, 3))
            if progress is not None:
                loop.call_soon_threadsafe(progress, round(fraction, 3))

    def work() -> tuple[Transcript, Path | None, str | None]:
        ctx.check()
        with pool.borrow(ctx.stop_requested) as transcriber:
            transcript = transcriber.transcribe(
                source, language=request.language, start=request.start_s,
                end=request.end_s, progress=step, cancel=ctx.stop_requested)
        if registry is None:
            return transcript, None, None
        model_dir = Path(transcriber.model_dir)
        # hashed once per model file and process (model_sha256 caches it)
        return transcript, model_dir, model_sha256(model_dir)

    try:
        transcript, model_dir, digest = await ctx.run_in_thread(work)
    except JobCancelled as exc:
        raise jobs.JobCancelled(str(exc)) from None
    except (TranscriptionError, OSError, RuntimeError, ValueError) as exc:
        raise Permanent(str(exc)) from None
    if registry is not None and model_dir is not None:
        version = await registry.identify(model_dir, sha256=digest)
        await registry.record_inference(ctx.job.account_id, version, transcript)
    return transcript
