"""The room registry: one load per project, idle unloading, a cap on documents in memory."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest
import pytest_asyncio
from room_helpers import Client, wait_for

from collab.errors import CapacityError, ProjectDeleted, ProjectNotFound
from collab.protocol import CloseCode
from collab.registry import RegistryLimits, RoomRegistry
from collab.schema import ProjectDocument
from collab.store import open_store
from dsp_core.session import Session, Track

pytestmark = pytest.mark.asyncio


class CountingStore:
    """A real store that counts ``load`` calls."""

    def __init__(self, inner) -> None:
        self.inner, self.loads = inner, 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def load(self, project_id: str):
        self.loads += 1
        await asyncio.sleep(0.02)
        return await self.inner.load(project_id)


@pytest_asyncio.fixture
async def store(tmp_path: Path):
    async with open_store(None, tmp_path) as store:
        update = ProjectDocument.from_session(Session(tracks=[Track("t1")])).doc.get_update()
        for name in ("a", "b", "c"):
            await store.create_project(name, name.upper(), update)
        yield CountingStore(store)


async def test_many_simultaneous_opens_load_a_project_once(store) -> None:
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        async def open_it():
            async with registry.use("a") as room:
                await asyncio.sleep(0.01)
                return room

        rooms = await asyncio.gather(*(open_it() for _ in range(20)))
        assert store.loads == 1 and len({id(r) for r in rooms}) == 1


async def test_unknown_project_is_not_found_and_leaves_nothing_behind(store) -> None:
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        with pytest.raises(ProjectNotFound, match="no project 'zzz'"):
            async with registry.use("zzz"):
                pass
        assert registry.rooms == {}


async def test_an_idle_room_is_persisted_and_unloaded(store) -> None:
    unloaded = []
    async with RoomRegistry(store, RegistryLimits(idle_seconds=0.05),
                            document_type=ProjectDocument) as registry:
        registry.on_room_unloaded(unloaded.append)
        async with registry.use("a") as room:
            await room.edit(lambda d: d.set_track_gain("t1", -4.0))
        assert registry.loaded("a") is room
        for _ in range(100):
            if unloaded:
                break
            await asyncio.sleep(0.01)
        assert registry.loaded("a") is None and unloaded == [room]
        assert (await store.load("a")).snapshot_seq == 1
        async with registry.use("a") as again:
            assert again is not room and again.document.track("t1")["gain_db"] == -4.0


async def test_an_unloaded_room_is_freed_with_its_documents(store) -> None:
    """Opening and closing a project again and again must not keep every room it had:
    the document's observer of the room lives in yrs, out of the collector's sight."""
    unloaded = []
    gone = []
    async with RoomRegistry(store, RegistryLimits(idle_seconds=0.0),
                            document_type=ProjectDocument) as registry:
        registry.on_room_unloaded(lambda room: unloaded.append(room.project_id))
        for cycle in range(5):
            async with registry.use("a") as room:
                client = Client(room)
                await client.sync()
                gain, name = -float(cycle), f"Cycle {cycle}"
                client.edit(lambda document, v=gain: document.set_track_gain("t1", v))
                await wait_for(lambda r=room, v=gain: r.document.track("t1")["gain_db"] == v)
                await room.edit(lambda d, n=name: d.rename(n), undoable=True)
                gone += [weakref.ref(room), weakref.ref(room.doc), weakref.ref(room.document)]
                client.channel.inbox.put_nowait(None)
                await client.task
                del room, client
            await wait_for(lambda n=cycle + 1: len(unloaded) == n)
        gc.collect()
        assert [ref for ref in gone if ref() is not None] == []
        async with registry.use("a") as room:  # and the project kept every cycle's edits
            assert room.document.track("t1")["gain_db"] == -4.0


async def test_reopening_before_the_idle_delay_keeps_the_room(store) -> None:
    async with RoomRegistry(store, RegistryLimits(idle_seconds=0.1),
                            document_type=ProjectDocument) as registry:
        async with registry.use("a") as first:
            pass
        await asyncio.sleep(0.05)
        async with registry.use("a") as second:
            await asyncio.sleep(0.1)
            assert second is first and registry.loaded("a") is first


async def test_the_document_cap_unloads_idle_rooms_and_refuses_when_all_are_busy(store) -> None:
    limits = RegistryLimits(max_documents=2, idle_seconds=60)
    async with RoomRegistry(store, limits, document_type=ProjectDocument) as registry:
        async with registry.use("a"):
            pass
        async with registry.use("b"), registry.use("c"):
            assert set(registry.rooms) == {"b", "c"}
            with pytest.raises(CapacityError, match="max_documents=2"):
                async with registry.use("a"):
                    pass
        assert set(registry.rooms) == {"b", "c"}


async def test_load_hooks_see_every_loaded_room(store) -> None:
    seen = []
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        registry.on_room_loaded(lambda room: seen.append(room.project_id))
        async with registry.use("a"), registry.use("b"):
            pass
    assert seen == ["a", "b"]


async def test_a_server_edit_that_cannot_be_stored_makes_the_room_reload(store) -> None:
    from collab.errors import StoreError

    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        async with registry.use("a") as room:
            real_append = store.inner.append

            async def broken(*args) -> None:
                raise StoreError("disk full")

            store.inner.append = broken
            with pytest.raises(StoreError, match="disk full"):
                await room.edit(lambda d: d.set_track_gain("t1", -30.0))
            store.inner.append = real_append
            assert room.diverged
        async with registry.use("a") as fresh:
            assert fresh is not room and not fresh.diverged
            assert fresh.document.track("t1")["gain_db"] == 0.0
        assert (await store.load("a")).updates == []


async def test_a_deleted_projects_room_closes_its_peers_and_is_not_loaded_again(
        store) -> None:
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        async with registry.use("a") as room:
            ana, ben = Client(room, user="ana"), Client(room, user="ben")
            await ana.sync()
            await ben.sync()
            assert await store.delete_project("a")
            assert await registry.close_deleted("a") == 2
            await wait_for(lambda: ana.channel.closed and ben.channel.closed)
            assert ana.channel.closed[0] == CloseCode.PROJECT_DELETED == 4411
            assert "deleted" in ana.channel.closed[1]
            with pytest.raises(ProjectDeleted):  # the room writes nothing more
                await room.edit(lambda document: document.rename("Back again"))
        assert registry.loaded("a") is None
        with pytest.raises(ProjectNotFound):
            async with registry.use("a"):
                pass
        assert await registry.close_deleted("a") == 0  # nothing loaded: nothing to close
    assert await store.get_project("a") is None  # no final snapshot brought it back
    assert await store.database.fetchval(
        "SELECT COUNT(*) FROM collab_snapshots WHERE project_id = 'a'") == 0


async def test_a_room_finds_out_at_its_next_write_that_another_process_deleted_it(
        store) -> None:
    """With several server processes, the one that did not delete the project learns it
    from the store: its next batch is refused and its peers are closed with 4411."""
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        async with registry.use("b") as room:
            ana, ben = Client(room, user="ana"), Client(room, user="ben")
            await ana.sync()
            await ben.sync()
            assert await store.delete_project("b")  # as another process would
            ana.edit(lambda document: document.rename("Lost"))
            await wait_for(lambda: ana.channel.closed and ben.channel.closed)
            assert ana.channel.closed[0] == ben.channel.closed[0] == 4411
            assert room.deleted
        with pytest.raises(ProjectNotFound):  # the deleted room is dropped, not reloaded
            async with registry.use("b"):
                pass
    assert await store.database.fetchval(
        "SELECT COUNT(*) FROM collab_updates WHERE project_id = 'b'") == 0
    assert await store.database.fetchval(
        "SELECT COUNT(*) FROM collab_snapshots WHERE project_id = 'b'") == 0
