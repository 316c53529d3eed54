"""The Python y-websocket client: syncs, sends its edits, hears refusals and presence."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio
from room_helpers import project_room

from collab.client import SyncClient
from collab.room import Peer, Room
from collab.schema import ProjectDocument
from collab.store import open_store
from collab.tokens import Grant, Role
from dsp_core.session import Session, Track

pytestmark = pytest.mark.asyncio


class Pipe:
    """One end of an in-memory, bidirectional message pipe."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.other: Pipe | None = None

    async def send(self, data: bytes) -> None:
        self.other.inbox.put_nowait(data)

    async def close(self, code: int, reason: str) -> None:
        self.other.inbox.put_nowait(None)
        self.inbox.put_nowait(None)

    async def __aiter__(self):
        while (item := await self.inbox.get()) is not None:
            yield item


def pipe() -> tuple[Pipe, Pipe]:
    a, b = Pipe(), Pipe()
    a.other, b.other = b, a
    return a, b


@pytest_asyncio.fixture
async def room(tmp_path: Path):
    async with open_store(None, tmp_path) as store:
        session = Session(tracks=[Track("t1"), Track("t2")])
        await store.create_project("p", "P", ProjectDocument.from_session(session).doc.get_update())
        async with project_room("p", store) as room:
            yield room


async def join(room: Room, role: Role = Role.EDITOR, **kwargs) -> tuple[SyncClient, asyncio.Task]:
    server_end, client_end = pipe()
    task = asyncio.create_task(room.serve(Peer(server_end, Grant("p", role, "u", 0.0))))
    client = SyncClient(client_end, **kwargs)
    await client.start()
    await client.wait_synced()
    return client, task


async def eventually(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_the_client_syncs_and_its_edits_reach_the_room_and_other_clients(room) -> None:
    a, _ = await join(room)
    b, _ = await join(room)
    assert a.document.track_ids() == ["t1", "t2"]
    a.document.set_track_gain("t1", -3.0)
    await eventually(lambda: b.document.track("t1")["gain_db"] == -3.0)
    assert room.document.track("t1")["gain_db"] == -3.0 and room.last_seq == 1
    await a.stop()
    await b.stop()


async def test_a_viewer_client_records_the_refusal(room) -> None:
    viewer, _ = await join(room, Role.VIEWER)
    viewer.document.set_track_gain("t2", -9.0)
    await eventually(lambda: viewer.denials)
    assert "cannot edit" in viewer.denials[0] and room.last_seq == 0
    await viewer.stop()


async def test_presence_is_seen_by_others_and_cleared_on_stop(room) -> None:
    a, _ = await join(room, presence={"user": "ana", "track": "t1"})
    b, _ = await join(room)
    await eventually(lambda: {"user": "ana", "track": "t1"} in b.presence.values())
    await a.set_presence({"user": "ana", "track": "t2"})
    await eventually(lambda: {"user": "ana", "track": "t2"} in b.presence.values())
    await a.stop()
    await eventually(lambda: not b.presence)
    await b.stop()


async def test_a_client_back_on_the_same_document_is_seen_again(room) -> None:
    a, _ = await join(room, presence={"user": "ana", "track": "t1"})
    b, _ = await join(room)
    await eventually(lambda: {"user": "ana", "track": "t1"} in b.presence.values())
    await a.stop()
    await eventually(lambda: not b.presence)
    # same document, same awareness id, its clock starts again behind the server's null
    again, _ = await join(room, document=a.document, presence={"user": "ana", "track": "t2"})
    await eventually(lambda: b.presence == {a.doc.client_id: {"user": "ana", "track": "t2"}})
    await again.stop()
    await b.stop()
