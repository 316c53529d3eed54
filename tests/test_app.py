"""create_app: state under typed keys, routes, and a clean shutdown that persists documents."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from loopback import free_port
from nodepeer import running_server

from collab.client import SyncClient
from collab.registry import RoomRegistry
from collab.store import Store
from collab.tokens import Role
from dawclient.channel import connect
from dawserver.app import create_app
from dawserver.config import ServerConfig
from dawserver.keys import (
    BACKGROUND,
    CONFIG,
    DATABASE,
    PLUGIN_CONTEXT_KEY,
    ROOMS,
    STORE,
    TOKENS,
)
from dawserver.projects import import_session
from dsp_core.session import Session, Track

pytestmark = pytest.mark.asyncio


async def test_create_app_wires_config_tokens_and_routes(tmp_path: Path) -> None:
    app = create_app(ServerConfig(data_dir=tmp_path / "d"))
    assert app[CONFIG].data_dir == tmp_path / "d" and (tmp_path / "d" / "secret.key").exists()
    assert app[TOKENS].verify(app[TOKENS].issue("p", Role.VIEWER)).project_id == "p"
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/collab/{project_id}", "/projects", "/projects/{project_id}/tokens"} <= paths


async def test_the_store_jobs_and_plugins_share_the_one_database(
        tmp_path: Path, collab_database_url: str) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "d",
                          database_url=collab_database_url, engine=False)
    async with running_server(config) as app:
        database = app[DATABASE]
        assert database.started
        assert app[STORE].database is database
        assert app[BACKGROUND].queue.db is database  # bounces, transcription, plug-in jobs
        assert app[PLUGIN_CONTEXT_KEY].database() is database
        assert app[PLUGIN_CONTEXT_KEY].background is app[BACKGROUND]
        assert {"bounce", "transcription"} <= set(app[BACKGROUND].queues)
        tables = set(await database.tables())
        assert {"collab_projects", "jobs", "dist_jobs"} <= tables
        assert "transcription_jobs" not in tables  # moved into the one job queue
    assert not database.started


async def test_shutdown_persists_and_a_restart_restores_every_document(
        tmp_path: Path, collab_database_url: str) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "d",
                          database_url=collab_database_url, engine=False)
    async with running_server(config) as app:
        assert isinstance(app[STORE], Store) and isinstance(app[ROOMS], RoomRegistry)
        info = await import_session(app[STORE], Session(tracks=[Track("t1"), Track("t2")]))
        token = app[TOKENS].issue(info.project_id, Role.EDITOR, "ana")
        url = f"{config.collab_url}/{info.project_id}"
        async with connect(url, token) as channel, SyncClient(channel) as client:
            await client.wait_synced()
            client.document.set_track_gain("t2", -7.5)
            client.document.add_marker(100, "intro")
            room = app[ROOMS].loaded(info.project_id)
            async with asyncio.timeout(20):
                while room.last_seq < 2:
                    await asyncio.sleep(0.01)
        expected = room.document.to_json()
    async with running_server(config), connect(url, token) as channel, \
            SyncClient(channel) as client:
        await client.wait_synced()
        assert client.document.to_json() == expected
        assert client.document.track("t2")["gain_db"] == -7.5
