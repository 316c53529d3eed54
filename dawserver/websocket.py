"""The aiohttp side of the collaboration endpoint ``/collab/{project_id}``.

:class:`dawclient.channel.AiohttpChannel` (the one adapter both ends use) turns
the server's aiohttp WebSocket into the tiny channel interface :mod:`collab.room`
speaks; :func:`collab_socket`
authenticates the peer and hands it to the project's room. The client end
(for the Python :class:`collab.client.SyncClient`) is :func:`dawclient.channel.connect`.

A message over ``max_message_bytes`` is refused by aiohttp's frame reader
before its payload is buffered; :class:`CollabSocket` makes that close say
4413 with a reason, as the room does, instead of aiohttp's bare 1009.
"""

from __future__ import annotations

import logging

from aiohttp import WSCloseCode, web

from collab.errors import AuthError, CapacityError, ProjectBusy, ProjectNotFound
from collab.protocol import CloseCode
from collab.room import Peer
from dawclient.channel import AiohttpChannel

from .access import authorize, request_token
from .keys import CONFIG, ROOMS

log = logging.getLogger(__name__)


class CollabSocket(web.WebSocketResponse):
    """The server's WebSocket: an over-size message closes it with 4413, not 1009."""

    def __init__(self, max_message_bytes: int) -> None:
        # aiohttp refuses a message of max_msg_size bytes or more: allow exactly the limit.
        super().__init__(max_msg_size=max_message_bytes + 1, compress=False, heartbeat=30.0)
        self.max_message_bytes = max_message_bytes

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"",
                    drain: bool = True) -> bool:
        """Close; aiohttp's own "message too big" (1009) is sent as 4413 with a reason."""
        if code == WSCloseCode.MESSAGE_TOO_BIG:
            code = CloseCode.MESSAGE_TOO_BIG
            message = (f"message over the {self.max_message_bytes}-byte limit "
                       "(max_message_bytes); send smaller updates").encode()
        return await super().close(code=code, message=message, drain=drain)


async def collab_socket(request: web.Request) -> web.WebSocketResponse:
    """``GET /collab/{project_id}``: a y-websocket session on one project."""
    ws = CollabSocket(request.app[CONFIG].max_message_bytes)
    await ws.prepare(request)
    channel = AiohttpChannel(ws)
    project_id = request.match_info["project_id"]
    try:
        grant = await authorize(request.app, project_id, request_token(request))
    except AuthError as exc:
        code = getattr(exc, "close_code", CloseCode.UNAUTHORIZED)
        await channel.close(code, str(exc))
        return ws
    try:
        async with request.app[ROOMS].use(project_id) as room:
            await room.serve(Peer(channel, grant))
    except ProjectNotFound:
        await channel.close(CloseCode.PROJECT_NOT_FOUND, CloseCode.PROJECT_NOT_FOUND.reason)
    except ProjectBusy:
        await channel.close(CloseCode.PROJECT_BUSY, CloseCode.PROJECT_BUSY.reason)
    except CapacityError:
        await channel.close(CloseCode.SERVER_FULL, CloseCode.SERVER_FULL.reason)
    return ws
