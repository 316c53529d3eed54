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
