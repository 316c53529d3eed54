"""The durable store, on SQLite and on a real PostgreSQL server: same behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.errors import ProjectDeleted, ProjectNotFound, SeqConflict, StoreError
from collab.store import PROJECT_TABLES, QuarantinedUpdate, Store, open_store

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


async def test_load_many_reads_what_load_reads_for_every_held_project(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("snap", "Snapshot only", b"first")
        await store.create_project("log", "Log only", None)
        await store.append("log", 1, [b"l1", b"l2"])
        await store.create_project("both", "Compacted", b"first")
        await store.append("both", 1, [b"b1", b"b2", b"b3"])
        await store.compact("both", b"merged", 2)
        await store.create_project("empty", "Nothing", None)
        asked = ["both", "nope", "log", "snap", "empty", "log"]
        found = await store.load_many(asked)
        assert sorted(found) == ["both", "empty", "log", "snap"]  # unknown ids left out
        for project_id, stored in found.items():
            assert stored == await store.load(project_id), project_id
        assert (found["both"].snapshot, found["both"].snapshot_seq, found["both"].updates,
                found["both"].last_seq) == (b"merged", 2, [b"b3"], 3)
        assert (found["log"].snapshot, found["log"].updates, found["log"].last_seq) == (
            None, [b"l1", b"l2"], 2)
        assert await store.load_many([]) == {}


async def test_load_many_reads_in_one_round_trip_whatever_the_count(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        for index in range(12):
            await store.create_project(f"p{index}", "Song", b"first")
            await store.append(f"p{index}", 1, [b"u1"])
        loads: list[str] = []
        store.load = lambda project_id: loads.append(project_id)  # type: ignore[method-assign]
        store.get_project = lambda project_id: loads.append(project_id)  # type: ignore
        found = await store.load_many([f"p{index}" for index in range(12)])
        assert len(found) == 12 and loads == []  # not one load (or lookup) per project


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


async def rows_of(store: Store, project_id: str) -> dict[str, int]:
    """``{table: rows}`` of ``project_id`` in every collaboration table."""
    return {table: await store.database.fetchval(
        f"SELECT COUNT(*) FROM {table} WHERE project_id = ?", project_id)
        for table in PROJECT_TABLES}


async def test_a_deleted_project_leaves_no_row_and_is_never_written_again(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("a", "Song A", b"first")
        await store.create_project("b", "Song B", b"first")
        for project_id in ("a", "b"):
            await store.append(project_id, 1, [b"u1", b"u2", b"u3"])
            assert await store.compact(project_id, b"folded", 2)
            await store.quarantine(project_id, [QuarantinedUpdate(3, b"bad", "test")])
            await store.revoke(project_id, "sam", 10.0)
        assert set((await rows_of(store, "a")).values()) == {1}  # a row in every table

        assert await store.delete_project("a") is True
        assert await rows_of(store, "a") == dict.fromkeys(PROJECT_TABLES, 0)
        assert await store.get_project("a") is None
        assert [p.project_id for p in await store.list_projects()] == ["b"]
        # nothing brings it back: every write refuses, and so does a catch-up read
        with pytest.raises(ProjectDeleted, match="deleted"):
            await store.append("a", 4, [b"late"])
        with pytest.raises(ProjectDeleted):
            await store.compact("a", b"late snapshot", 4)
        with pytest.raises(ProjectDeleted):
            await store.quarantine("a", [QuarantinedUpdate(4, b"x", "late")])
        with pytest.raises(ProjectDeleted):
            await store.load_since("a", 0)
        with pytest.raises(ProjectNotFound):  # a ProjectDeleted is a ProjectNotFound too
            await store.append("a", 5, [b"later"])
        assert await rows_of(store, "a") == dict.fromkeys(PROJECT_TABLES, 0)
        assert await store.delete_project("a") is False  # a second time: nothing there
        # the other project is whole
        stored = await store.load("b")
        assert (stored.snapshot, stored.updates) == (b"folded", [b"u3"])
        assert await store.revocations("b") == {"sam": 10.0}
        assert await store.delete_project("never-made") is False


async def test_an_append_racing_a_deletion_lands_before_it_or_fails(
        collab_database_url: str, tmp_path: Path) -> None:
    """Appends of two projects go on, group-committed, while one is deleted: each append
    of it either committed before the deletion (and was deleted with the rest) or failed
    with ProjectDeleted, none after a failure succeeded, and the other never failed."""
    import asyncio

    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("gone", "Gone", None)
        await store.create_project("kept", "Kept", None)
        some_stored = asyncio.Event()

        async def write() -> list[bool]:
            landed = []
            for seq in range(1, 400):
                gone, kept = await asyncio.gather(store.append("gone", seq, [b"g"]),
                                                  store.append("kept", seq, [b"k"]),
                                                  return_exceptions=True)
                assert kept is None, kept
                if gone is not None and not isinstance(gone, ProjectDeleted):
                    raise gone
                landed.append(gone is None)
                if seq == 5:
                    some_stored.set()
                if not all(landed) and seq > 20 + landed.index(False):
                    break
            return landed

        writer = asyncio.create_task(write())
        async with asyncio.timeout(30):
            await some_stored.wait()
            assert await store.delete_project("gone") is True
            landed = await writer
        assert not all(landed), "every append succeeded, after the deletion too"
        first_failure = landed.index(False)
        assert first_failure >= 5
        assert not any(landed[first_failure:]), "an append succeeded after one failed"
        assert await rows_of(store, "gone") == dict.fromkeys(PROJECT_TABLES, 0)
        assert len((await store.load("kept")).updates) == len(landed)
