"""Scale-out: link this server process to the others of a deployment through Redis.

With ``--redis URL`` (and a shared PostgreSQL store), several ``dawserver
serve`` processes serve the same projects: :class:`collab.cluster.RedisCluster`
relays document batches and presence between their rooms, and member changes
announced by another process (or revocations found in the store) are applied
to this process's connections, WebRTC included.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from collab.cluster import RedisCluster
from collab.registry import RoomRegistry

from .access import apply_member_change_here


@asynccontextmanager
async def cluster_link(app: web.Application, registry: RoomRegistry, url: str
                       ) -> AsyncIterator[RedisCluster]:
    """Join the deployment's Redis for as long as the block runs."""
    async with RedisCluster(url) as cluster:
        registry.on_room_loaded(cluster.attach)
        registry.on_room_unloaded(cluster.detach)
        cluster.on_member_change(functools.partial(apply_member_change_here, app))
        yield cluster
