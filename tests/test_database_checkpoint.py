"""SQLite's background checkpoints: taken when the WAL has grown, not after every commit.

The writer connection turns SQLite's own checkpoints off and a second connection
checkpoints once the WAL file passes ``CHECKPOINT_BYTES``. SQLite reuses a WAL file from
its start after a complete checkpoint without shrinking it, so without
``journal_size_limit`` the file looked full after every later commit and each commit
started another checkpoint (an fsync of the database file next to every write's own).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from database import sqlite as sqlite_module
from database.sqlite import SqliteDatabase

pytestmark = pytest.mark.asyncio


async def test_a_checkpointed_wal_does_not_start_a_checkpoint_per_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_BYTES", 256 * 1024)
    monkeypatch.setattr(sqlite_module, "WAL_KEPT_BYTES", 64 * 1024)
    db = SqliteDatabase(tmp_path / "wal.sqlite3")
    taken = 0
    checkpoint = db._checkpoint

    def counted() -> None:
        nonlocal taken
        taken += 1
        checkpoint()

    db._checkpoint = counted  # type: ignore[method-assign]
    wal = Path(f"{db.path}-wal")
    async with db:
        await db.execute("CREATE TABLE t (data BLOB)")
        for _ in range(100):  # 400 kB: past the threshold
            await db.execute("INSERT INTO t VALUES (?)", os.urandom(4000))
        async with asyncio.timeout(30):
            while db._checkpointing is None or not db._checkpointing.done():
                await asyncio.sleep(0.01)
        assert taken >= 1
        # the background checkpoints ran beside the burst's writes and may have left
        # frames behind; one with no write beside it backfills them all, so the next
        # write starts the WAL again from its beginning
        await asyncio.to_thread(db._checkpoint)
        await db.execute("INSERT INTO t VALUES (?)", b"restarts the WAL")
        assert wal.stat().st_size <= 64 * 1024  # cut back when it was started again
        before = taken
        for _ in range(30):  # a page (4 kB) each: 120 kB, under the 256 kB threshold
            await db.execute("INSERT INTO t VALUES (?)", b"x" * 80)
        assert taken == before  # no checkpoint was due, so none started
        assert await db.fetchval("SELECT COUNT(*) FROM t") == 131
