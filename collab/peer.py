"""One connected client as a room sees it: its channel, its grant, its outgoing queue.

A room never awaits a client: it :meth:`Peer.push`-es messages and each peer's
own writer task sends them, so one slow connection cannot hold up the others.
A peer that falls :attr:`Peer.max_outbox` messages, or :attr:`Peer.max_outbox_bytes`
bytes, behind is dropped (4408): a client that asks for the whole document again and
again without reading it cannot make the server hold copies of it without end.
A peer the server :meth:`Peer.refuse`-s (revoked, malformed input) is closed
too, and its updates still queued in the room are dropped instead of stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from . import protocol as p
from .tokens import Grant

log = logging.getLogger(__name__)


class Channel(Protocol):
    """The tiny WebSocket interface a room needs (``dawserver`` adapts aiohttp to it)."""

    def __aiter__(self) -> AsyncIterator[bytes | str]: ...

    async def send(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(eq=False)
class Peer:
    """One connected client: its channel, its grant and its outgoing queue."""

    channel: Channel
    grant: Grant
    outbox: list[bytes] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    awareness_ids: set[int] = field(default_factory=set)
    closing: tuple[int, str] | None = None
    refused: bool = False
    max_outbox: int = 10_000
    max_outbox_bytes: int = 64 * 1024 * 1024
    #: The bytes of the messages in :attr:`outbox`.
    outbox_bytes: int = 0
    #: Messages of this peer waiting in the room's queue (its sync step 1 waits behind them).
    queued: int = 0

    def push(self, message: bytes) -> None:
        """Queue ``message`` for this peer's writer task (a peer too far behind is dropped)."""
        if self.closing is not None and self.closing[0] == p.CloseCode.TOO_SLOW:
            return
        # one message is always let through, however big (a large document's step 2)
        if len(self.outbox) >= self.max_outbox or (
                self.outbox and self.outbox_bytes + len(message) > self.max_outbox_bytes):
            if self.closing is None:
                log.info("dropping %s: %d messages (%d bytes) unread", self.grant.user,
                         len(self.outbox), self.outbox_bytes)
                self.outbox.clear()
                self.outbox_bytes = 0
                self.closing = (p.CloseCode.TOO_SLOW, p.CloseCode.TOO_SLOW.reason)
                asyncio.get_running_loop().create_task(self.channel.close(*self.closing))
            return
        self.outbox.append(message)
        self.outbox_bytes += len(message)
        self.wake.set()

    def close_soon(self, code: int, reason: str) -> None:
        """Ask the writer to send what is queued, then close with ``code``."""
        if self.closing is None:
            self.closing = (code, reason[:120])
            self.wake.set()

    def refuse(self, code: int, reason: str) -> None:
        """Close on the server's own account: updates of this peer not yet stored are dropped.

        A client that closes, or one dropped for reading too slowly, keeps its
        last updates; a revoked or misbehaving one does not.
        """
        self.refused = True
        self.close_soon(code, reason)

    async def write_loop(self) -> None:
        """Send queued messages until the peer is closed (run as one task per peer)."""
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.outbox:
                    batch, self.outbox, self.outbox_bytes = self.outbox, [], 0
                    for message in batch:
                        await self.channel.send(message)
                if self.closing is not None:
                    if self.closing[0] != p.CloseCode.TOO_SLOW:
                        await self.channel.close(*self.closing)
                    return
        except (ConnectionError, RuntimeError) as exc:
            log.debug("peer %s: write failed: %s", self.grant.user, exc)
            with contextlib.suppress(Exception):
                await self.channel.close(1011, "write failed")
