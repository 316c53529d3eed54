"""Scale-out: link this server process to the others of a deployment through Redis.

With ``--redis URL`` (and a shared PostgreSQL store), several ``dawserver
serve`` processes serve the same projects: :class:`collab.relay.RedisRelay`
relays document batches and presence between their rooms, and member changes
announced by another process (or revocations found in the store) are applied
to this process's connections, WebRTC included.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from collab.registry import RoomRegistry
from collab.relay import RedisRelay

from .access import apply_member_change_here


@asynccontextmanager
async def relay_link(app: web.Application, registry: RoomRegistry, url: str
                       ) -> AsyncIterator[RedisRelay]:
    """Join the deployment's Redis for as long as the block runs."""
    async with RedisRelay(url) as relay:
        registry.on_room_loaded(relay.attach)
        registry.on_room_unloaded(relay.detach)
        relay.on_member_change(functools.partial(apply_member_change_here, app))
        yield relay
