"""Test helpers: a room's peers in memory (no WebSocket), driven by pycrdt documents."""

from __future__ import annotations

import asyncio

from collab import protocol as p
from collab.room import Peer, Room, RoomLimits
from collab.schema import ProjectDocument
from collab.store import Store
from collab.tokens import Grant, Role


class MemoryChannel:
    """An in-memory stand-in for a WebSocket: what the peer sends in, what the room sent out."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.arrived = asyncio.Event()

    async def send(self, data: bytes) -> None:
        self.sent.append(data)
        self.arrived.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.inbox.put_nowait(None)
        self.arrived.set()

    async def __aiter__(self):
        while (item := await self.inbox.get()) is not None:
            yield item

    def messages(self, kind: int, sub: int | None = None) -> list[p.Message]:
        decoded = [p.decode_message(m) for m in self.sent]
        return [m for m in decoded if m.kind == kind and (sub is None or m.sub == sub)]


class Client:
    """A peer's side of a room session: a local document and a memory channel."""

    def __init__(self, room: Room, role: Role = Role.EDITOR, user: str = "ana") -> None:
        self.channel = MemoryChannel()
        self.peer = Peer(self.channel, Grant(room.project_id, role, user, 0.0))
        self.doc = ProjectDocument()
        self.applied = 0
        self.task = asyncio.create_task(room.serve(self.peer))

    def send(self, data: bytes | str) -> None:
        self.channel.inbox.put_nowait(data)

    async def sync(self) -> None:
        self.send(p.sync_step1(self.doc.doc.get_state()))
        await wait_for(lambda: self.channel.messages(p.MSG_SYNC, p.SYNC_STEP2))
        self.apply_received()

    def apply_received(self) -> None:
        """Apply the updates received since the last call."""
        fresh, self.applied = self.channel.sent[self.applied:], len(self.channel.sent)
        for data in fresh:
            message = p.decode_message(data)
            if message.kind == p.MSG_SYNC and message.sub != p.SYNC_STEP1:
                self.doc.doc.apply_update(message.payload)

    def edit(self, change) -> bytes:
        before = self.doc.doc.get_state()
        change(self.doc)
        update = self.doc.doc.get_update(before)
        self.send(p.sync_update(update))
        return update

    async def leave(self) -> None:
        self.send(None)
        await self.task


def state_of(doc) -> dict[int, int]:  # noqa: ANN001 - a pycrdt Doc
    """``doc``'s state vector as ``{client: clock}``: two documents that hold the same
    updates have equal ones (their encoded bytes list clients in hash order, which may
    differ between documents)."""
    return p.read_state_vector(doc.get_state())


async def wait_for(check, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
    return result


def project_room(project_id: str, store: Store, limits: RoomLimits | None = None) -> Room:
    """A room whose document is a project (:class:`ProjectDocument`), as the server has."""
    return Room(project_id, store, limits, document_type=ProjectDocument)
