"""The client end of ``/collab/{project_id}``: an aiohttp WebSocket as a collab channel.

:func:`connect` opens the channel a :class:`collab.client.SyncClient` speaks
through (send, close, async iteration of incoming messages).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import WSMsgType, web


class AiohttpChannel:
    """An aiohttp WebSocket, either end, seen as a :class:`collab.room.Channel`.

    The server's endpoint (:mod:`dawserver.websocket`) uses it too: both ends of
    ``/collab/{project_id}`` speak through the one adapter.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse | web.WebSocketResponse) -> None:
        self.ws = ws

    async def send(self, data: bytes) -> None:
        """Send one binary message."""
        await self.ws.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        """Close with an application code and a short reason."""
        await self.ws.close(code=int(code), message=reason.encode("utf-8")[:123])

    async def __aiter__(self) -> AsyncIterator[bytes | str]:
        async for message in self.ws:
            if message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                yield message.data
            else:
                return

    @property
    def close_code(self) -> int | None:
        """The close code once the socket is closed."""
        return self.ws.close_code


@contextlib.asynccontextmanager
async def connect(url: str, token: str | None = None) -> AsyncIterator[AiohttpChannel]:
    """Open a client channel to ``url`` (``ws://HOST:PORT/collab/PROJECT``)."""
    params = {"token": token} if token else None
    async with aiohttp.ClientSession() as session, session.ws_connect(
        url, params=params, max_msg_size=0, compress=0
    ) as ws:
        yield AiohttpChannel(ws)
