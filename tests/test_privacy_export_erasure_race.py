"""An export racing its person's erasure leaves nothing of them behind.

The export is held just before it writes its archive (past its checks) while the
erasure runs to its end, then let go: its archive must not stay on disk or in the object
store, whether the erasure's cancel reached it in this process (the worker runs it) or
not (another node's worker, which hears of a cancel only at its next heartbeat). Once
erased, no job row holds the person's id, while the erasure's receipt still answers.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import PASSWORD, Person, accounts_server, storage_overrides
from smtp_server import SmtpServer

from accounts.pseudonyms import pseudonym_of
from dawserver import privacy_export
from dawserver.keys import BACKGROUND, DATABASE
from dawserver.privacy_export import ExportJob, export_directory, export_prefix
from dawserver.storage.service import account_objects
from jobs import JobContext, JobRecord, Permanent

pytestmark = pytest.mark.asyncio

#: Seconds any one wait of these tests may take before it fails.
WAIT_S = 60


class HeldExport:
    """Holds every export job just before it writes its archive, until :meth:`release`;
    tells when a job reached that point and when its handler ended."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached, self.go, self.ended = threading.Event(), threading.Event(), asyncio.Event()
        write, handle = privacy_export._write_archive, ExportJob.__call__

        def held_write(*args: Any) -> int:
            self.reached.set()
            self.go.wait(WAIT_S)
            return write(*args)

        async def watched(job: ExportJob, ctx: JobContext) -> Any:
            try:
                return await handle(job, ctx)
            finally:
                self.ended.set()

        monkeypatch.setattr(privacy_export, "_write_archive", held_write)
        monkeypatch.setattr(ExportJob, "__call__", watched)

    async def wait_reached(self) -> None:
        """Until an export is held before writing."""
        async with asyncio.timeout(WAIT_S):
            assert await asyncio.to_thread(self.reached.wait, WAIT_S)

    def release(self) -> None:
        """Let the held export write its archive."""
        self.go.set()


async def _finished(person: Person, url: str) -> dict[str, Any]:
    """Poll a privacy job until it is finished; its last answer."""
    async with asyncio.timeout(WAIT_S):
        while True:
            status, job, _ = await person.call("GET", url)
            assert status == 200, job
            if job["state"] in ("done", "failed", "cancelled"):
                return job
            await asyncio.sleep(0.05)


async def _erase(person: Person) -> dict[str, Any]:
    """Erase ``person``'s account and wait for the erasure; the finished job."""
    status, job, _ = await person.call("POST", "/me/delete", {"password": PASSWORD})
    assert status == 202, job
    job = await _finished(person, job["url"])
    assert job["state"] == "done", job
    return job


async def _left_behind(app: Any, data_dir: Path, person_id: str) -> list[str]:
    """Everything of ``person_id``'s exports still stored: local paths, object keys."""
    left = [str(p) for p in data_dir.rglob("*") if person_id in str(p)]
    objects = account_objects(app, person_id)
    if objects.redirects:
        left += await objects.keys(export_prefix(person_id))
    return left


def _direct_job(person_id: str) -> JobRecord:
    """An export job run outside this process's worker (no heartbeat, no cancel)."""
    return JobRecord(account_id=person_id, id="elsewhere", queue=privacy_export.QUEUE,
                     payload={"person_id": person_id}, state="running", priority=0,
                     attempts=1, max_attempts=1, run_at=0.0, lease_until=0.0,
                     lease_token=None, worker=None, progress=0.0, note="", result=None,
                     last_error="", idempotency_key=None, cancel_requested=False,
                     created_at=0.0, updated_at=0.0, finished_at=None)


@pytest.mark.parametrize("storage", ["local", "s3"])
async def test_an_export_cancelled_by_the_erasure_while_writing_leaves_no_archive(
        storage: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    held = HeldExport(monkeypatch)
    options = await storage_overrides(storage, request)
    async with accounts_server(tmp_path, smtp_server, **options) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            status, export, _ = await ada.call("POST", "/me/export", {})
            assert status == 202, export
            await held.wait_reached()
            erasure = await _erase(ada)
            held.release()
            async with asyncio.timeout(WAIT_S):
                await held.ended.wait()
            assert await _left_behind(app, config.data_dir, ada.id) == []
            assert not export_directory(app, ada.id).exists()
            # the erasure's receipt still answers, and no job row names her
            status, receipt, _ = await ada.call("GET", erasure["url"])
            assert status == 200 and receipt["state"] == "done", receipt
            db = app[DATABASE]
            assert await db.fetchval(
                "SELECT COUNT(*) FROM jobs WHERE account_id = ? AND id = ?",
                pseudonym_of(ada.id), erasure["id"]) == 1
            rows = [dict(r) for r in await db.fetch("SELECT * FROM jobs")]
            assert [r for r in rows if ada.id in repr(r)] == []
        finally:
            held.release()
            await ada.close()


@pytest.mark.parametrize("storage", ["local", "s3"])
async def test_an_export_the_erasure_cannot_reach_withdraws_its_archive(
        storage: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """Another node's export, past its checks, writes and publishes after the erasure
    deleted the person's archives: it sees the person erased and withdraws its own."""
    held = HeldExport(monkeypatch)
    options = await storage_overrides(storage, request)
    async with accounts_server(tmp_path, smtp_server, **options) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            export = asyncio.create_task(ExportJob(app)(JobContext(_direct_job(ada.id))))
            await held.wait_reached()
            await _erase(ada)
            held.release()
            with pytest.raises(Permanent, match="erased"):
                async with asyncio.timeout(WAIT_S):
                    await export
            assert await _left_behind(app, config.data_dir, ada.id) == []
        finally:
            held.release()
            await ada.close()


async def test_the_erasure_deletes_the_persons_finished_jobs_of_any_queue(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            await bo.sign_up_and_in("Bo")
            queue = app[BACKGROUND].queue
            for person in (ada, bo):
                job = await queue.enqueue("tests.other", {"person_id": person.id},
                                          account_id=person.id, delay_s=3600)
                await queue.cancel(person.id, job.id)
            await _erase(ada)
            db = app[DATABASE]
            rows = [dict(r) for r in await db.fetch("SELECT * FROM jobs")]
            assert [r for r in rows if ada.id in repr(r)] == []
            assert [r["queue"] for r in rows if r["account_id"] == bo.id] == ["tests.other"]
        finally:
            await ada.close()
            await bo.close()
