"""The periodic collection of forgotten audio on object storage
(:mod:`dawserver.asset_collection`), in running servers on the real S3 server of the test
setup (SeaweedFS on loopback), with windows of half a second.

A forgotten asset is made as a project deletion makes it (``forget_project``: the
description goes, a tombstone ``assets/forgotten/<id>`` is left); "past its grace" is a
tombstone written as a deletion two hours ago would have written it. No project is
deleted while the collection is awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from loopback import free_port
from nodepeer import running_server
from prometheus_client import REGISTRY
from test_storage_http import make_bucket, wav

from dawserver import asset_objects
from dawserver.asset_collection import ASSET_COLLECTION, COLLECT_ACCOUNT, QUEUE
from dawserver.asset_store import AssetStore
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import BACKGROUND
from dawserver.storage import StorageSettings, open_object_store
from jobs import DEAD, DONE, QUEUED, RETRYING, RUNNING, JobRecord

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
WINDOW_S = 0.5
#: A tombstone this old is past the grace period.
LONG_AGO = asset_objects.FORGET_GRACE_S + 3600


@contextlib.asynccontextmanager
async def node(tmp_path: Path, name: str, storage_url: str, options: dict,
               database_url: str | None = None) -> AsyncIterator:
    """A running server on ``storage_url`` collecting every :data:`WINDOW_S`."""
    config = ServerConfig(port=free_port(), data_dir=tmp_path / name, engine=False,
                          database_url=database_url, storage_url=storage_url,
                          storage_options=options, asset_collection_seconds=WINDOW_S)
    async with running_server(config) as app:
        yield app


async def uploaded(store: AssetStore, project_id: str, data: bytes) -> str:
    """``data`` uploaded to ``project_id`` through ``store``; its id."""

    async def body() -> AsyncIterator[bytes]:
        yield data

    return (await store.ingest_stream(body(), project_id=project_id, name="take.wav")).id


async def forgotten(store: AssetStore, data: bytes) -> str:
    """``data`` as an asset whose only project was just deleted; its id. (Backdate its
    tombstone after the last deletion: a deletion collects what is past its grace.)"""
    project_id = f"gone-{uuid.uuid4().hex[:8]}"
    asset_id = await uploaded(store, project_id, data)
    await asset_objects.forget_project(store, project_id)
    return asset_id


async def backdate(store: AssetStore, asset_id: str, objects: Any = None) -> None:
    """Make ``asset_id``'s tombstone old enough to collect (written through ``objects``,
    the store's own by default)."""
    objects = objects or store.objects
    assert objects is not None
    await objects.put(f"assets/forgotten/{asset_id}", str(time.time() - LONG_AGO).encode())


async def keys_of(store: AssetStore, asset_id: str) -> list[str]:
    assert store.objects is not None
    return sorted(key for key in await store.objects.keys("assets/") if asset_id in key)


def collected() -> float:
    return REGISTRY.get_sample_value("asset_objects_collected_total",
                                     {"region": "default"}) or 0.0


async def runs_after(app, window: int, states: tuple[str, ...] = (DONE,)  # noqa: ANN001
                     ) -> list[JobRecord]:
    """Wait for a collection of a window after ``window`` to end in ``states``, and
    every earlier one to end too; every collection job so far."""
    queue = app[BACKGROUND].queue
    async with asyncio.timeout(60):
        while True:
            jobs = await queue.find(account_id=COLLECT_ACCOUNT, queue=QUEUE)
            ended = [j.payload["window"] for j in jobs
                     if j.payload["window"] > window and j.state in states]
            if ended and not any(j.state in (QUEUED, RUNNING) for j in jobs
                                 if j.payload["window"] <= min(ended)):
                return jobs
            await asyncio.sleep(0.05)


async def test_forgotten_audio_past_its_grace_is_collected_by_the_periodic_run(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Only the asset past its grace loses its audio and peaks; a fresh tombstone and an
    asset uploaded again after its deletion keep theirs; the metric counts the two."""
    bucket = await make_bucket(s3_server)
    async with node(tmp_path, "a", f"s3://{bucket}/studio", s3_server.settings()) as app:
        store, before = app[ASSETS], collected()
        old = await forgotten(store, wav(0.2, hz=220))
        fresh = await forgotten(store, wav(0.2, hz=330))
        data = wav(0.2, hz=440)  # made once: a float WAV's PEAK chunk holds its time
        again = await forgotten(store, data)
        assert await uploaded(store, "keeps-it", data) == again  # used again since
        await backdate(store, old)
        await backdate(store, again)  # its tombstone outlived the new upload
        window = app[ASSET_COLLECTION].window()

        jobs = await runs_after(app, window)

        assert await keys_of(store, old) == []
        assert asset_objects.object_key(fresh, "wav") in await keys_of(store, fresh)
        assert f"assets/forgotten/{fresh}" in await keys_of(store, fresh)
        assert await keys_of(store, again) == sorted([
            asset_objects.object_key(again, "json"), asset_objects.object_key(again, "wav"),
            asset_objects.object_key(again, "peaks.npz"),
            asset_objects.member_key("keeps-it", again),
            f"assets/members/{again[:2]}/{again}/keeps-it"])
        assert sum(j.result["deleted"] for j in jobs if j.state == DONE) == 2
        assert collected() - before == 2


async def test_two_nodes_on_one_database_collect_each_window_once(
        s3_server, postgres_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    """Both nodes queue every window; each window has one job, run once, and the audio
    is deleted once."""
    bucket = await make_bucket(s3_server)
    where, options = f"s3://{bucket}/studio", s3_server.settings()
    async with node(tmp_path, "a", where, options, postgres_url) as a, \
            node(tmp_path, "b", where, options, postgres_url) as b:
        old = await forgotten(a[ASSETS], wav(0.2))
        await backdate(a[ASSETS], old)
        start = a[ASSET_COLLECTION].window()
        await runs_after(b, start + 2)
        await asyncio.gather(a[ASSET_COLLECTION].schedule(), b[ASSET_COLLECTION].schedule())

        jobs = await a[BACKGROUND].queue.find(account_id=COLLECT_ACCOUNT, queue=QUEUE)
        windows = [j.payload["window"] for j in jobs]
        assert len(windows) == len(set(windows)) and len(windows) >= 2
        assert all(j.attempts == 1 for j in jobs if j.state == DONE)
        assert sum(j.result["deleted"] for j in jobs if j.state == DONE) == 2
        assert await keys_of(b[ASSETS], old) == []


async def test_an_s3_outage_fails_a_run_and_the_next_run_collects(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """While the object store cannot be reached a window's run fails (retried later) and
    the loop goes on; once it is back the next window's run collects."""
    bucket = await make_bucket(s3_server)
    async with node(tmp_path, "a", f"s3://{bucket}/studio", s3_server.settings()) as app:
        store = app[ASSETS]
        old = await forgotten(store, wav(0.2))
        real = store.objects
        dead = StorageSettings(endpoint_url=f"http://127.0.0.1:{free_port()}",
                               access_key_id="a", secret_access_key="b", connect_timeout=1,
                               max_attempts=1)
        async with open_object_store("s3://nowhere/studio", dead) as down:
            store.objects = down
            try:
                # past its grace only now: a periodic run before the outage would collect it
                await backdate(store, old, real)
                outage = app[ASSET_COLLECTION].window()
                jobs = await runs_after(app, outage, (RETRYING, DEAD))
            finally:
                store.objects = real
        failed = [j for j in jobs if j.payload["window"] > outage and j.state in (RETRYING, DEAD)]
        assert failed and all("cannot be reached" in j.last_error for j in failed), failed
        assert asset_objects.object_key(old, "wav") in await keys_of(store, old)

        back = app[ASSET_COLLECTION].window()
        jobs = await runs_after(app, back)

        assert await keys_of(store, old) == []
        assert any(j.result["deleted"] == 2 for j in jobs if j.state == DONE)
