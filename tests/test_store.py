"""The durable store, on SQLite and on a real PostgreSQL server: same behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.errors import ProjectNotFound, SeqConflict, StoreError
from collab.store import open_store

pytestmark = pytest.mark.asyncio


async def test_projects_are_created_listed_and_unique(collab_database_url: str,
                                                      tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        assert await store.get_project("a") is None
        await store.create_project("a", "Song A", None)
        await store.create_project("b", "Song B", b"snapshot")
        assert [p.project_id for p in await store.list_projects()] == ["a", "b"]
        assert (await store.get_project("b")).name == "Song B"
        with pytest.raises(StoreError, match="already exists"):
            await store.create_project("a", "again", None)


async def test_a_project_is_renamed_and_an_unknown_one_is_not_found(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        created = await store.create_project("a", "Song A", None)
        renamed = await store.rename_project("a", "Song B")
        assert renamed == (await store.get_project("a"))
        assert (renamed.name, renamed.created_at) == ("Song B", created.created_at)
        with pytest.raises(ProjectNotFound, match="'nope'"):
            await store.rename_project("nope", "x")


async def test_appended_updates_load_back_in_order_after_the_snapshot(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("a", "Song", b"first")
        await store.append("a", 1, [b"u1", b"u2"])
        await store.append("a", 3, [b"u3"])
    async with open_store(collab_database_url, tmp_path) as store:
        stored = await store.load("a")
        assert (stored.snapshot, stored.snapshot_seq, stored.updates, stored.last_seq) == (
            b"first", 0, [b"u1", b"u2", b"u3"], 3)


async def test_compaction_replaces_the_log_prefix_by_a_snapshot(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("a", "Song", None)
        await store.append("a", 1, [b"u1", b"u2", b"u3"])
        await store.compact("a", b"merged", 2)
        stored = await store.load("a")
        assert (stored.snapshot, stored.snapshot_seq, stored.updates, stored.last_seq) == (
            b"merged", 2, [b"u3"], 3)
        await store.compact("a", b"merged-again", 3)
        stored = await store.load("a")
        assert (stored.snapshot, stored.updates, stored.last_seq) == (b"merged-again", [], 3)


async def test_a_sequence_number_is_never_written_twice(collab_database_url: str,
                                                        tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("a", "Song", None)
        await store.append("a", 1, [b"u1"])
        with pytest.raises(SeqConflict, match="cannot append"):
            await store.append("a", 1, [b"other"])
        with pytest.raises(SeqConflict):  # a batch overlapping the log writes nothing
            await store.append("a", 0, [b"x", b"y", b"z"])
        assert (await store.load("a")).updates == [b"u1"]


async def test_a_sequence_number_folded_into_a_snapshot_stays_taken(
        collab_database_url: str, tmp_path: Path) -> None:
    # Compaction deletes log rows; their numbers must not be written again, or a slower
    # server process's append would land under the snapshot and never be loaded.
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("a", "Song", None)
        await store.append("a", 1, [b"u1", b"u2"])
        await store.compact("a", b"merged", 2)
        with pytest.raises(SeqConflict):
            await store.append("a", 2, [b"late"])
        await store.append("a", 3, [b"u3"])
        stored = await store.load("a")
        assert (stored.snapshot, stored.updates, stored.last_seq) == (b"merged", [b"u3"], 3)


async def test_load_since_gives_what_was_logged_after_a_sequence_number(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("a", "Song", b"first")
        await store.append("a", 1, [b"u1", b"u2", b"u3", b"u4"])
        since = await store.load_since("a", 2)
        assert (since.snapshot, since.snapshot_seq, since.updates, since.last_seq) == (
            None, 2, [b"u3", b"u4"], 4)
        nothing = await store.load_since("a", 4)
        assert (nothing.snapshot, nothing.updates, nothing.last_seq) == (None, [], 4)
        await store.compact("a", b"merged", 3)
        # Compacted past the asked-for point: the snapshot comes, then what follows it.
        past = await store.load_since("a", 1)
        assert (past.snapshot, past.snapshot_seq, past.updates, past.last_seq) == (
            b"merged", 3, [b"u4"], 4)


async def test_an_older_snapshot_never_replaces_a_newer_one(collab_database_url: str,
                                                           tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("a", "Song", None)
        await store.append("a", 1, [b"u1", b"u2", b"u3"])
        await store.compact("a", b"upto-2", 2)
        await store.compact("a", b"upto-1", 1)  # a slower server process compacts late
        stored = await store.load("a")
        assert (stored.snapshot, stored.snapshot_seq, stored.updates) == (b"upto-2", 2, [b"u3"])


async def test_revocations_are_remembered_per_project_and_user(collab_database_url: str,
                                                               tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        assert await store.revoked_at("a", "sam") is None
        await store.revoke("a", "sam", 100.0)
        await store.revoke("a", "sam", 200.0)
        assert await store.revoked_at("a", "sam") == 200.0
        assert await store.revoked_at("b", "sam") is None
        await store.revoke("a", "ida", 150.0)
        assert await store.revocations("a") == {"sam": 200.0, "ida": 150.0}
        assert await store.revocations("b") == {}


async def test_unsupported_urls_and_double_start_are_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported database URL"):
        open_store("mysql://x", tmp_path)
    store = open_store(None, tmp_path)
    async with store:
        with pytest.raises(StoreError, match="already started"):
            await store.start()
    assert (tmp_path / "collab.sqlite3").exists()


async def test_an_unreachable_postgres_is_one_clear_error(tmp_path: Path) -> None:
    from loopback import free_port

    store = open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/none", tmp_path)
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        await store.start()


async def test_sqlite_checkpoints_its_log_in_the_background(tmp_path: Path, monkeypatch) -> None:
    from database import sqlite

    monkeypatch.setattr(sqlite, "CHECKPOINT_BYTES", 64 * 1024)
    async with open_store(None, tmp_path) as store:
        await store.create_project("a", "Song", None)
        for seq in range(1, 200):
            await store.append("a", seq, [bytes(1000)])
        await store.database._checkpointing
        assert len((await store.load("a")).updates) == 199
    assert not (tmp_path / "collab.sqlite3-wal").exists() or (
        (tmp_path / "collab.sqlite3-wal").stat().st_size == 0)


async def test_appends_that_arrive_together_are_committed_in_one_transaction(
        collab_database_url: str, tmp_path: Path) -> None:
    """Group commit: 40 rooms append at once; far fewer transactions (fsyncs) than appends,
    every update stored, and a conflict fails only its own room's append."""
    import asyncio

    async with open_store(collab_database_url, tmp_path) as store:
        for i in range(40):
            await store.create_project(f"p{i}", "Song", None)
        await store.append("p7", 1, [b"already"])
        before = store.commits
        results = await asyncio.gather(
            *(store.append(f"p{i}", 1, [f"u{i}".encode(), b"more"]) for i in range(40)),
            return_exceptions=True)
        assert [type(r) for r in results if r is not None] == [SeqConflict]
        assert isinstance(results[7], SeqConflict)
        assert store.commits - before < 10
        for i in range(40):
            updates = (await store.load(f"p{i}")).updates
            assert updates == ([b"already"] if i == 7 else [f"u{i}".encode(), b"more"])


async def test_a_read_does_not_wait_behind_a_write(tmp_path: Path, monkeypatch) -> None:
    """Loading and revocation checks use their own connection: a held writer stalls no
    client that connects meanwhile."""
    import asyncio
    import threading

    async with open_store(None, tmp_path) as store:
        await store.create_project("a", "Song", b"snap")
        release = threading.Event()
        held = asyncio.create_task(store.database.write(lambda conn: release.wait(10)))
        await asyncio.sleep(0.05)
        try:
            stored = await asyncio.wait_for(store.load("a"), 5)
            assert stored.snapshot == b"snap"
            assert await asyncio.wait_for(store.revoked_at("a", "ana"), 5) is None
        finally:
            release.set()
            await held
