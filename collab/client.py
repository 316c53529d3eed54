"""A Python y-websocket client: keeps a local document in sync through a channel.

Used by tests, tools and server-side helpers that want to join a session as
an ordinary peer.  The channel is any object with ``send``, ``close`` and
async iteration (``dawclient.channel.connect`` gives one over aiohttp).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from pycrdt import Doc, TransactionEvent

from . import protocol as p
from .peer import Channel
from .schema import ProjectDocument

log = logging.getLogger(__name__)


class SyncClient:
    """Synchronise ``document`` with a server through ``channel`` (an async context manager).

    Attributes
    ----------
    synced : asyncio.Event
        Set once the server's sync step 2 has been applied.
    denials : list of str
        Reasons the server gave for refusing this client's changes.
    presence : dict
        The other clients' awareness states by Yjs client id.
    """

    def __init__(self, channel: Channel, document: ProjectDocument | None = None,
                 *, presence: dict[str, Any] | None = None) -> None:
        self.channel = channel
        self.document = document or ProjectDocument()
        self.doc: Doc = self.document.doc
        self.synced = asyncio.Event()
        self.denials: list[str] = []
        self.presence: dict[int, dict] = {}
        self.received = 0
        self._local_presence = presence
        self._presence_clock = 0
        self._applying = False
        self._task: asyncio.Task[None] | None = None
        self._subscription = self.doc.observe(self._on_transaction)
        self.closed = asyncio.Event()

    async def __aenter__(self) -> SyncClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Send sync step 1 (and presence) and start reading."""
        await self.channel.send(p.sync_step1(self.doc.get_state()))
        if self._local_presence is not None:
            await self.set_presence(self._local_presence)
        self._task = asyncio.create_task(self._read_loop())

    async def stop(self) -> None:
        """Say goodbye (presence null) and close the channel."""
        self.doc.unobserve(self._subscription)
        with contextlib.suppress(Exception):
            if self._local_presence is not None:
                await self._send_presence(None)
            await self.channel.close(1000, "bye")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def wait_synced(self, timeout: float = 10.0) -> None:
        """Wait until the first sync with the server is complete."""
        async with asyncio.timeout(timeout):
            await self.synced.wait()

    async def set_presence(self, state: dict[str, Any]) -> None:
        """Publish this client's presence (user, colour, cursor, selected track...)."""
        self._local_presence = state
        await self._send_presence(state)

    async def _send_presence(self, state: dict[str, Any] | None) -> None:
        self._presence_clock += 1
        entry = p.AwarenessEntry(self.doc.client_id, self._presence_clock, state)
        await self.channel.send(p.awareness(p.encode_awareness([entry])))

    async def _outbid(self, entry: p.AwarenessEntry) -> None:
        """The server says this client is gone, at a clock not behind its own (it came
        back under the id after the server withdrew it): send the presence again past
        that clock, as yjs clients do."""
        if entry.state is None and self._local_presence is not None and \
                entry.clock >= self._presence_clock:
            self._presence_clock = entry.clock
            await self._send_presence(self._local_presence)

    def _on_transaction(self, event: TransactionEvent) -> None:
        if not self._applying and event.update != p.EMPTY_UPDATE:
            message = p.sync_update(event.update)
            asyncio.get_running_loop().create_task(self._send_quietly(message))

    async def _send_quietly(self, message: bytes) -> None:
        with contextlib.suppress(Exception):
            await self.channel.send(message)

    def _apply(self, update: bytes) -> None:
        self._applying = True
        try:
            self.doc.apply_update(update)
        finally:
            self._applying = False

    async def _read_loop(self) -> None:
        try:
            async for data in self.channel:
                if isinstance(data, str):
                    continue
                self.received += 1
                message = p.decode_message(data)
                if message.kind == p.MSG_SYNC:
                    if message.sub == p.SYNC_STEP1:
                        update = self.doc.get_update(message.payload)
                        await self.channel.send(p.sync_step2(update))
                    else:
                        self._apply(message.payload)
                        if message.sub == p.SYNC_STEP2:
                            self.synced.set()
                elif message.kind == p.MSG_AUTH:
                    reason = message.payload.decode("utf-8", "replace")
                    log.warning("server refused a change: %s", reason)
                    self.denials.append(reason)
                elif message.kind == p.MSG_AWARENESS:
                    for entry in p.decode_awareness(message.payload):
                        if entry.client_id == self.doc.client_id:
                            await self._outbid(entry)
                        elif entry.state is None:
                            self.presence.pop(entry.client_id, None)
                        else:
                            self.presence[entry.client_id] = entry.state
        finally:
            self.closed.set()

    def snapshot_json(self) -> str:
        """The document as sorted JSON (handy to compare replicas)."""
        return json.dumps(self.document.to_json(), sort_keys=True)
