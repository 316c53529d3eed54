"""A peer's outgoing queue: sent in order by its own writer, closed when asked or too slow."""

from __future__ import annotations

import asyncio

import pytest

from collab import protocol as p
from collab.peer import Peer
from collab.tokens import Grant, Role

pytestmark = pytest.mark.asyncio


class Recorder:
    def __init__(self, block: bool = False) -> None:
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.block = block

    async def send(self, data: bytes) -> None:
        if self.block:
            await asyncio.Event().wait()
        self.sent.append(data)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    async def __aiter__(self):
        return
        yield


def a_peer(channel: Recorder, **kwargs) -> Peer:
    return Peer(channel, Grant("p", Role.EDITOR, "ana", 0.0), **kwargs)


async def test_queued_messages_are_sent_in_order_before_the_close() -> None:
    channel = Recorder()
    peer = a_peer(channel)
    writer = asyncio.create_task(peer.write_loop())
    for i in range(5):
        peer.push(bytes([i]))
    peer.close_soon(4001, "bye")
    peer.push(b"late")
    await asyncio.wait_for(writer, 2)
    assert channel.sent[:5] == [bytes([i]) for i in range(5)]
    assert channel.closed == (4001, "bye")


async def test_a_peer_that_does_not_read_is_closed_as_too_slow() -> None:
    channel = Recorder(block=True)
    peer = a_peer(channel, max_outbox=3)
    writer = asyncio.create_task(peer.write_loop())
    for i in range(10):
        peer.push(bytes([i]))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert channel.closed == (p.CloseCode.TOO_SLOW, p.CloseCode.TOO_SLOW.reason)
    assert peer.outbox == []
    writer.cancel()


async def test_a_peer_that_does_not_read_is_closed_once_its_queue_is_too_big() -> None:
    """Bytes count as well as messages: a viewer asking for the whole document again and
    again without reading cannot make the server hold a copy per request (4408). One
    message bigger than the limit still goes to a peer that is keeping up."""
    channel = Recorder(block=True)
    peer = a_peer(channel, max_outbox_bytes=1000)
    peer.push(b"x" * 5000)  # alone in the queue: let through
    assert peer.closing is None and peer.outbox_bytes == 5000
    writer = asyncio.create_task(peer.write_loop())
    await asyncio.sleep(0.01)  # the writer took it and blocks sending it
    for _ in range(3):
        peer.push(b"y" * 400)
    await asyncio.sleep(0.01)
    assert channel.closed == (p.CloseCode.TOO_SLOW, p.CloseCode.TOO_SLOW.reason)
    assert peer.outbox == [] and peer.outbox_bytes == 0
    writer.cancel()
