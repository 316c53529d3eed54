"""Transcription jobs in the shared database: SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from database import open_database
from transcription.engine import Transcriber
from transcription.errors import JobError
from transcription.evaluation import SAMPLES, synthesize
from transcription.job_store import TABLE, JobStore
from transcription.jobs import DONE, QUEUED, RUNNING, Job, JobService


def test_jobs_are_saved_updated_and_listed(collab_database_url: str) -> None:
    async def scenario() -> None:
        async with open_database(collab_database_url) as database:
            store = JobStore(database)
            await store.setup()
            await store.setup()  # idempotent
            first = Job(project_id="p1", source="/a.wav", clip_id="c1", end_s=2.5,
                        language="de", created_at=1.0)
            second = Job(project_id="p1", source="/b.wav", status=RUNNING, created_at=2.0)
            other = Job(project_id="p2", source="/c.wav", status=DONE, created_at=3.0,
                        result={"language": "en", "segments": []})
            for job in (first, second, other):
                await store.save(job)
            first.progress, first.status = 0.5, RUNNING
            await store.save(first)
            loaded = await store.get(first.id)
            assert (loaded.status, loaded.progress, loaded.end_s, loaded.language) == (
                RUNNING, 0.5, 2.5, "de")
            assert (await store.get(other.id)).result == {"language": "en", "segments": []}
            assert [j.id for j in await store.for_project("p1")] == [first.id, second.id]
            assert [j.id for j in await store.unfinished()] == [first.id, second.id]
            with pytest.raises(JobError, match="no transcription job"):
                await store.get("missing")
            columns = (await database.tables())[TABLE]
            assert {"project_id", "id", "status", "progress", "result"} <= set(columns)

    asyncio.run(scenario())


def test_the_service_requeues_from_the_database(collab_database_url: str, tmp_path: Path,
                                                transcriber: Transcriber) -> None:
    voice, text = SAMPLES["en"]
    speech = synthesize(text, voice, tmp_path / "en.wav")

    async def scenario() -> Job:
        async with open_database(collab_database_url) as database:
            store = JobStore(database)
            await store.setup()
            crashed = Job(project_id="p1", source=str(speech), status=RUNNING)
            waiting = Job(project_id="p1", source=str(speech), status=QUEUED)
            await store.save(crashed)
            await store.save(waiting)
            async with JobService(store, lambda: transcriber) as service:
                await service.wait(crashed.id)
                return await service.wait(waiting.id)

    job = asyncio.run(scenario())
    assert job.status == DONE and job.transcript.words
