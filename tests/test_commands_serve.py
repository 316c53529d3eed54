"""``dawserver serve`` as a real process: the demo command, and kill -9 in a burst of edits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from loopback import free_port

from collab.client import SyncClient
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawclient.channel import connect
from dawserver.projects import import_session
from dsp_core.session import Session, Track

ROOT = Path(__file__).resolve().parents[1]


def start_server(data: Path, port: int, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "dawserver", "serve", "--port", str(port), "--data", str(data),
         *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


async def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read()}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("server did not start")


def test_serve_demo_prints_id_owner_token_and_url_and_serves_the_project(tmp_path: Path
                                                                          ) -> None:
    port = free_port()
    proc = start_server(tmp_path, port, "--demo")
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        project_id = fields["demo project"].strip()
        token = fields["owner token"].strip()
        assert f"?project={project_id}&token={token}" in fields["browser"]
        grant = TokenSigner.from_data_dir(tmp_path).verify(token)
        assert grant.role is Role.OWNER and grant.project_id == project_id

        async def check() -> None:
            await wait_ready(port, proc)
            url = f"ws://127.0.0.1:{port}/collab/{project_id}"
            async with connect(url, token) as channel, SyncClient(channel) as client:
                await client.wait_synced(30)
                assert len(client.document.track_ids()) == 256

        asyncio.run(check())
    finally:
        proc.terminate()
        proc.wait(10)
    again = start_server(tmp_path, free_port(), "--demo")
    try:
        assert f"demo project: {project_id}" in "".join(again.stdout.readline()
                                                        for _ in range(2))
    finally:
        again.terminate()
        again.wait(10)


def test_every_update_another_client_saw_survives_kill_9(tmp_path: Path,
                                                         collab_database_url: str) -> None:
    """SIGKILL the server mid-burst; after a restart every relayed update is still there."""
    data, port = tmp_path / "data", free_port()
    database = [] if collab_database_url.startswith("sqlite") else ["--database",
                                                                    collab_database_url]
    url_for_store = None if not database else collab_database_url

    async def prepare() -> str:
        async with open_store(url_for_store, data) as store:
            info = await import_session(store, Session(tracks=[Track("t1")]))
        return info.project_id

    project_id = asyncio.run(prepare())
    token = TokenSigner.from_data_dir(data).issue(project_id, Role.EDITOR, "burst")
    url = f"ws://127.0.0.1:{port}/collab/{project_id}"

    async def burst_and_kill(proc: subprocess.Popen) -> set[str]:
        await wait_ready(port, proc)
        async with connect(url, token) as wch, connect(url, token) as och:
            writer, observer = SyncClient(wch), SyncClient(och)
            await writer.start()
            await observer.start()
            await writer.wait_synced()
            await observer.wait_synced()
            written = 0

            async def write() -> None:
                nonlocal written
                for i in range(20000):
                    writer.document.add_marker(i, f"m{i}")
                    written += 1
                    if i % 20 == 0:
                        await asyncio.sleep(0)

            task = asyncio.create_task(write())
            while len(observer.document.markers()) < 300:
                await asyncio.sleep(0.001)
            os.kill(proc.pid, signal.SIGKILL)
            task.cancel()
            proc.wait(10)
            await asyncio.sleep(0.2)
            seen = {m["name"] for m in observer.document.markers()}
        assert 300 <= len(seen) < written, "the kill must land in the middle of the burst"
        return seen

    proc = start_server(data, port, *database)
    try:
        seen = asyncio.run(burst_and_kill(proc))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)

    async def restored() -> set[str]:
        again = start_server(data, port, *database)
        try:
            await wait_ready(port, again)
            async with connect(url, token) as channel, SyncClient(channel) as client:
                await client.wait_synced()
                return {m["name"] for m in client.document.markers()}
        finally:
            again.terminate()
            again.wait(10)

    after = asyncio.run(restored())
    assert seen <= after, f"{len(seen - after)} relayed updates were lost"
