"""A person's export archive expires: kept ``export_keep_seconds`` after its job is done,
shown with its ``expires_at``, then ``expired`` (the download answers 410) and deleted by
the hourly ``privacy.expire`` sweep wherever it lies (the region's local directory or
object store, the per-person and the older per-job places, archives whose job was
purged). An export under way is never swept; an archive that cannot be deleted is left
for the next sweep while the others go. Time passes through the sweep's clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import Person, accounts_server, storage_overrides
from smtp_server import SmtpServer

from dawserver.config import EXPORT_KEEP_S, ServerConfig
from dawserver.keys import BACKGROUND
from dawserver.privacy_export import (
    EXPIRE_QUEUE,
    EXPORT_EXPIRY,
    QUEUE,
    archive_path,
    export_key,
    legacy_export_key,
)
from dawserver.storage import StorageUnavailable
from dawserver.storage.service import account_objects


async def _done_export(person: Person) -> dict[str, Any]:
    """Ask for an export and poll it until it is done; its last answer."""
    status, job, _ = await person.call("POST", "/me/export", {})
    assert status == 202, job
    async with asyncio.timeout(60):
        while job["state"] not in ("done", "failed", "cancelled"):
            await asyncio.sleep(0.1)
            status, job, _ = await person.call("GET", job["url"])
            assert status == 200, job
    assert job["state"] == "done", job
    return job


async def _kept(app: Any, person: Person, job_id: str) -> bool:
    """Whether the person's archive of ``job_id`` is still stored."""
    objects = account_objects(app, person.id)
    if objects.redirects:
        return await objects.exists(export_key(person.id, job_id))
    return archive_path(app, person.id, job_id).is_file()


def _later(app: Any, at: float) -> None:
    """Make the time ``at`` for the routes and the sweep."""
    app[EXPORT_EXPIRY].clock = lambda: at


def test_the_keeping_period_is_a_setting_of_at_most_30_days(tmp_path: Path) -> None:
    assert ServerConfig(data_dir=tmp_path).export_keep_seconds == EXPORT_KEEP_S == 7 * 86_400
    assert ServerConfig(data_dir=tmp_path, export_keep_seconds=3600).export_keep_seconds == 3600
    for wrong in (0, -1, 31 * 86_400):
        with pytest.raises(ValueError, match="export_keep_seconds"):
            ServerConfig(data_dir=tmp_path, export_keep_seconds=wrong)


@pytest.mark.parametrize("storage", ["local", "s3"])
@pytest.mark.asyncio
async def test_an_export_expires_answers_410_and_its_archive_is_swept_everywhere(
        storage: str, request: pytest.FixtureRequest, tmp_path: Path,
        smtp_server: SmtpServer) -> None:
    keep_s = 2 * 86_400
    options = await storage_overrides(storage, request)
    async with accounts_server(tmp_path, smtp_server, export_keep_seconds=keep_s,
                               **options) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            job = await _done_export(ada)
            assert job["expires_at"] == job["finished_at"] + keep_s
            assert job["download"] is not None
            objects = account_objects(app, ada.id)
            # archives whose jobs were purged (30 days on), in the older per-job place too
            orphans = [export_key(ada.id, "purged-job"), legacy_export_key("older-job")]
            for key in orphans:
                await objects.put(key, b"PK-an old archive")
            expiry = app[EXPORT_EXPIRY]

            swept = await expiry.sweep()  # before its time: only the orphans go
            assert (swept.deleted, swept.kept, swept.failed) == (2, 1, 0)
            assert [await objects.exists(key) for key in orphans] == [False, False]
            assert await _kept(app, ada, job["id"])
            status, data, _ = await ada.call("GET", job["download"])
            assert status == 200 and data[:2] == b"PK"

            _later(app, job["expires_at"] - 1)
            status, shown, _ = await ada.call("GET", job["url"])
            assert status == 200 and shown["state"] == "done", shown
            _later(app, job["expires_at"])
            status, shown, _ = await ada.call("GET", job["url"])
            assert status == 200, shown
            assert (shown["state"], shown["download"]) == ("expired", None), shown
            assert shown["expires_at"] == job["expires_at"]
            status, body, _ = await ada.call("GET", job["download"])
            assert status == 410, body
            assert "expired" in body["error"] and "ask for a new export" in body["error"]
            assert "kept 2 days" in body["error"]

            swept = await expiry.sweep()
            assert (swept.deleted, swept.kept, swept.failed) == (1, 0, 0)
            assert not await _kept(app, ada, job["id"])
            assert not list((config.data_dir / "exports").rglob("*.zip"))
            status, body, _ = await ada.call("GET", job["download"])
            assert status == 410, body
        finally:
            await ada.close()


@pytest.mark.asyncio
async def test_an_export_under_way_is_never_swept(tmp_path: Path,
                                                  smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            # a retry an hour from now, its archive written before the try that failed
            queued = await app[BACKGROUND].queue.enqueue(
                QUEUE, {"person_id": ada.id}, account_id=ada.id, delay_s=3600)
            path = archive_path(app, ada.id, queued.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"PK-being made")
            _later(app, queued.created_at + 40 * 86_400)
            swept = await app[EXPORT_EXPIRY].sweep()
            assert (swept.deleted, swept.kept, swept.failed) == (0, 1, 0)
            assert path.read_bytes() == b"PK-being made"
            status, shown, _ = await ada.call("GET", f"/me/export/{queued.id}")
            assert status == 200 and shown["state"] == "queued", shown
            assert shown["expires_at"] is None
        finally:
            await ada.close()


@pytest.mark.asyncio
async def test_a_failed_deletion_leaves_that_archive_to_the_next_sweep_only(
        tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            jobs = [await _done_export(ada) for _ in range(2)]
            _later(app, max(job["expires_at"] for job in jobs))
            objects = account_objects(app, ada.id)
            delete = objects.delete
            stuck = export_key(ada.id, jobs[0]["id"])

            async def unreachable_for_one(key: str) -> None:
                if key == stuck:
                    raise StorageUnavailable("the disk is not answering")
                await delete(key)

            monkeypatch.setattr(objects, "delete", unreachable_for_one)
            swept = await app[EXPORT_EXPIRY].sweep()
            assert (swept.deleted, swept.kept, swept.failed) == (1, 0, 1)
            assert [await _kept(app, ada, job["id"]) for job in jobs] == [True, False]
            monkeypatch.setattr(objects, "delete", delete)
            swept = await app[EXPORT_EXPIRY].sweep()  # the next time
            assert (swept.deleted, swept.kept, swept.failed) == (1, 0, 0)
            assert [await _kept(app, ada, job["id"]) for job in jobs] == [False, False]
        finally:
            await ada.close()


async def _finished(app: Any, account_id: str, job_id: str) -> Any:
    """The job once finished (polled on the queue)."""
    queue = app[BACKGROUND].queue
    async with asyncio.timeout(30):
        while not (record := await queue.get(account_id, job_id)).finished:
            await asyncio.sleep(0.05)
    return record


@pytest.mark.asyncio
async def test_the_sweep_runs_each_window_as_one_job_of_the_queue(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """The server queues the window's sweep as it starts; every node asking for one
    window gets the same job; its worker deletes what is due."""
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            expiry, queue = app[EXPORT_EXPIRY], app[BACKGROUND].queue
            async with asyncio.timeout(30):  # the window of the server's start
                while not (started := await queue.find(queue=EXPIRE_QUEUE)):
                    await asyncio.sleep(0.05)
            assert started[0].payload == {"window": expiry.window()}
            await ada.sign_up_and_in("Ada")
            job = await _done_export(ada)
            _later(app, job["expires_at"] + 3600)
            first = await expiry.schedule()
            assert (await expiry.schedule()).id == first.id  # another node, same window
            record = await _finished(app, first.account_id, first.id)
            assert record.state == "done", record
            assert record.result == {"deleted": 1, "kept": 0, "failed": 0}
            assert not await _kept(app, ada, job["id"])
        finally:
            await ada.close()

