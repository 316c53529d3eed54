"""``dawserver serve`` as a real process: the demo command, and kill -9 in a burst of edits."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from loopback import free_port
from process_output import OutputLines

from collab.client import SyncClient
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawclient.channel import connect
from dawserver.config import ServerConfig
from dawserver.projects import import_session
from dsp_core.session import Session, Track

ROOT = Path(__file__).resolve().parents[1]
#: Seconds a demo server (256 tracks) may take to store and stop after SIGTERM: on a
#: loaded CI machine with a second test worker it took over 10.
SHUTDOWN_S = 60


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
        lines = OutputLines(proc).take(5)
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
        proc.wait(SHUTDOWN_S)
    again = start_server(tmp_path, free_port(), "--demo")
    try:
        assert f"demo project: {project_id}" in "".join(OutputLines(again).take(2))
    finally:
        again.terminate()
        again.wait(SHUTDOWN_S)


def test_every_update_another_client_saw_survives_kill_9(tmp_path: Path,
                                                         collab_database_url: str) -> None:
    """SIGKILL the server mid-burst; after a restart every relayed update is still there."""
    relayed_updates_survive_kill_9(
        tmp_path, None if collab_database_url.startswith("sqlite") else collab_database_url)


def test_commits_without_fsync_still_survive_kill_9_of_the_process(tmp_path: Path) -> None:
    """``?synchronous=normal`` skips the fsync, not the write: a killed process loses nothing."""
    relayed_updates_survive_kill_9(tmp_path, "sqlite://?synchronous=normal")


#: How many markers the burst's writer may be ahead of what its observer saw.
LEAD = 200


def relayed_updates_survive_kill_9(tmp_path: Path, url_for_store: str | None) -> None:
    """Kill the server (on ``url_for_store``; None: the default) in a burst of edits."""
    data, port = tmp_path / "data", free_port()
    database = [] if url_for_store is None else ["--database", url_for_store]

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
                # Endless, so the writer is still writing when the kill lands however fast
                # or slow the relay is on this machine; at most LEAD markers ahead of what
                # the observer saw, so a slow relay is not flooded (a busy machine took a
                # minute and a GB of this process's memory to relay the first 300).
                nonlocal written
                for i in itertools.count():
                    writer.document.add_marker(i, f"m{i}")
                    written += 1
                    if i % 20 == 0:
                        await asyncio.sleep(0.001)
                        while written - len(observer.document.markers()) > LEAD:
                            await asyncio.sleep(0.005)

            task = asyncio.create_task(write())
            async with asyncio.timeout(60):  # a lost relay fails here, not the whole run
                while len(observer.document.markers()) < 300:
                    await asyncio.sleep(0.001)
            os.kill(proc.pid, signal.SIGKILL)
            assert not task.done(), "the kill must land in the middle of the burst"
            task.cancel()
            proc.wait(10)
            await asyncio.sleep(0.2)
            seen = {m["name"] for m in observer.document.markers()}
        assert 300 <= len(seen) <= written
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


def test_serve_takes_mail_providers_and_hashing_from_options_or_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dawserver.app
    from dawserver.cli import main

    made: list[ServerConfig] = []

    def create_app(config: ServerConfig) -> None:  # stop before listening
        made.append(config)
        raise OSError("stopped by the test")

    monkeypatch.setattr(dawserver.app, "create_app", create_app)
    providers = tmp_path / "providers.json"
    providers.write_text(json.dumps({"google": {"client_id": "id", "client_secret": "s"}}))
    runner = CliRunner()
    result = runner.invoke(main, ["serve", "--data", str(tmp_path / "data"),
                                  "--mail", "smtp://127.0.0.1:2525?from=a@example.org",
                                  "--sign-in-providers", str(providers),
                                  "--password-hashing", "2,19456,1",
                                  "--collab-token-lifetime", "600",
                                  "--export-keep-days", "1.5",
                                  "--sign-ups-per-client", "200"])
    assert result.exit_code == 1 and "stopped by the test" in result.output
    assert made[-1].collab_token_seconds == 600.0
    assert made[-1].export_keep_seconds == 1.5 * 86_400
    assert made[-1].sign_ups_per_client == 200
    assert made[-1].mail_url == "smtp://127.0.0.1:2525?from=a@example.org"
    assert made[-1].sign_in_providers == {"google": {"client_id": "id", "client_secret": "s"}}
    assert made[-1].password_hashing == (2, 19456, 1)
    result = runner.invoke(main, ["serve", "--data", str(tmp_path / "data")], env={
        "DAW_MAIL_URL": "smtps://mail.example.org", "DAW_PASSWORD_HASHING": "1,1024,1",
        "DAW_SIGN_IN_PROVIDERS": str(providers), "DAW_COLLAB_TOKEN_SECONDS": "30",
        "DAW_EXPORT_KEEP_DAYS": "30", "DAW_SIGN_UPS_PER_CLIENT": "1"})
    assert (made[-1].mail_url, made[-1].password_hashing) == ("smtps://mail.example.org",
                                                               (1, 1024, 1))
    assert made[-1].collab_token_seconds == 30.0
    assert made[-1].export_keep_seconds == 30 * 86_400
    assert made[-1].sign_ups_per_client == 1
    assert list(made[-1].sign_in_providers) == ["google"]


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--password-hashing", "3,64", "three whole numbers"),
    ("--password-hashing", "1,4,1", "M >= 8*P"),
    ("--sign-in-providers", "not-json", "cannot read"),
    ("--sign-in-providers", "a-list", "must hold"),
    ("--collab-token-lifetime", "0.5", "x>=1"),
    ("--export-keep-days", "0", "0<x<=30"),
    ("--export-keep-days", "31", "0<x<=30"),
    ("--sign-ups-per-client", "0", "x>=1"),
])
def test_serve_refuses_unusable_account_options_with_what_to_give(
        tmp_path: Path, option: str, value: str, says: str) -> None:
    from dawserver.cli import main

    if option == "--sign-in-providers":
        path = tmp_path / "providers.json"
        path.write_text("[1, 2]" if value == "a-list" else "{not json")
        value = str(path)
    result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path / "data"), option, value])
    assert result.exit_code == 2
    assert says in result.output
