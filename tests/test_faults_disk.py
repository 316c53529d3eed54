"""A full disk under a running server: its data directory (uploads, bounces and the SQLite
document store) on a tmpfs of a few MiB, filled to the last byte.

Uploads and bounces fail with a clear 507 and leave nothing half written, and nothing
half written is ever served; the SQLite store refuses the edit (its sender is asked to
reconnect) rather than acknowledging it or corrupting the log. Once space is freed the
same server takes the upload, the bounce and the edit, and nothing acknowledged before
was lost.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from fault_helpers import fill, small_disk, stored_json
from loopback import free_port
from nodepeer import eventually, running_server
from project_helpers import tone

from collab.client import SyncClient
from dawclient.channel import connect
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120),
              pytest.mark.skipif(os.geteuid() != 0,
                                 reason="mounting a tmpfs needs root")]


def files(root: Path, folder: str) -> set[str]:
    """Files under ``root/folder`` (relative paths), the filler aside."""
    base = root / folder
    return {p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file()}


async def test_a_full_disk_refuses_uploads_bounces_and_edits_cleanly_and_recovers(
        tmp_path: Path) -> None:
    audio = tmp_path / "tone.wav"
    audio.write_bytes(tone(330))
    with small_disk(tmp_path / "disk", 24 * 1024) as disk:
        data = disk / "data"
        config = ServerConfig(port=free_port(), data_dir=data, engine=False)
        async with running_server(config) as app, aiohttp.ClientSession() as http:
            session = Session(name="Full", tracks=[Track("t1", clips=[
                Clip(str(audio), 0, 24000, id="c1")])])
            info = await import_session(app[STORE], session, assets=app[ASSETS])
            project = info.project_id
            token = app[TOKENS].issue(project, "editor", "eddie")
            headers = {"Authorization": f"Bearer {token}"}
            base = f"{config.base_url}/projects/{project}"
            url = f"{config.collab_url}/{project}"
            async with connect(url, token) as channel, SyncClient(channel) as ana:
                await ana.wait_synced()
                ana.document.set_track_gain("t1", -3.0)  # acknowledged: on disk before
                await eventually(lambda: _gain_stored(app, project, -3.0))
            before = {folder: files(data, folder) for folder in ("assets", "bounces")}

            filler = fill(disk)
            # An upload: 507, and no trace of it (no object, no temporary file).
            async with http.post(f"{base}/assets?name=b.wav", data=tone(440),
                                 headers=headers) as answer:
                body = await answer.json()
                assert answer.status == 507, body
                assert "space" in body["error"] and "free" in body["error"]
            assert files(data, "assets") == before["assets"]
            # A bounce: 507 when it is asked for; no snapshot, no file.
            async with http.post(f"{base}/bounces", json={}, headers=headers) as answer:
                body = await answer.json()
                assert answer.status == 507, body
            assert files(data, "bounces") == before["bounces"]
            async with http.get(f"{base}/bounces", headers=headers) as answer:
                assert await answer.json() == []
            # An edit: refused (the editor is asked to reconnect), never acknowledged.
            async with connect(url, token) as channel, SyncClient(channel) as ana:
                await ana.wait_synced()
                ana.document.set_track_gain("t1", -9.0)
                async with asyncio.timeout(20):
                    await ana.closed.wait()
                assert channel.close_code == 1011
            assert (await stored_json(app, project))["tracks"]["t1"]["gain_db"] == -3.0

            filler.unlink()
            # Space again: the same server takes all three.
            async with http.post(f"{base}/assets?name=b.wav", data=tone(440),
                                 headers=headers) as answer:
                assert answer.status == 201, await answer.text()
            async with http.post(f"{base}/bounces", json={}, headers=headers) as answer:
                job = await answer.json()
                assert answer.status == 202, job
            async with asyncio.timeout(60):
                while job["status"] not in ("done", "failed", "cancelled"):
                    await asyncio.sleep(0.05)
                    async with http.get(f"{base}/bounces/{job['id']}",
                                        headers=headers) as answer:
                        job = await answer.json()
            assert job["status"] == "done", job
            async with connect(url, token) as channel, SyncClient(channel) as ana:
                await ana.wait_synced()
                assert ana.document.to_json()["tracks"]["t1"]["gain_db"] == -3.0
                ana.document.set_track_gain("t1", -12.0)
                await eventually(lambda: _gain_stored(app, project, -12.0))
        database = data / "collab.sqlite3"
        with sqlite3.connect(database) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def _gain_stored(app, project_id: str, value: float) -> bool:
    return (await stored_json(app, project_id))["tracks"]["t1"]["gain_db"] == value
