"""Scale-out: link this server process to the others of a deployment through Redis.

With ``--redis URL`` (and a shared PostgreSQL store), several ``dawserver
serve`` processes serve the same projects: :class:`collab.cluster.RedisCluster`
relays document batches and presence between their rooms, and this module
makes member changes (revocations, new roles) reach the user's connections on
every process, not only the one that took the request.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from collab.cluster import RedisCluster
from collab.registry import RoomRegistry
from collab.tokens import Role

from .access import apply_member_change, on_member_change

#: Set while a member change announced by another process is applied here.
_FROM_ELSEWHERE = contextvars.ContextVar("member_change_from_elsewhere", default=False)


@asynccontextmanager
async def cluster_link(app: web.Application, registry: RoomRegistry, url: str
                       ) -> AsyncIterator[RedisCluster]:
    """Join the deployment's Redis for as long as the block runs."""
    async with RedisCluster(url) as cluster:
        registry.on_room_loaded(cluster.attach)
        registry.on_room_unloaded(cluster.detach)

        async def announce(project_id: str, user: str, role: Role | None) -> int:
            if not _FROM_ELSEWHERE.get():
                cluster.publish_member_change(project_id, user, role)
            return 0

        async def apply_here(project_id: str, user: str, role: Role | None) -> None:
            token = _FROM_ELSEWHERE.set(True)
            try:
                await apply_member_change(app, project_id, user, role)
            finally:
                _FROM_ELSEWHERE.reset(token)

        on_member_change(app, announce)
        cluster.on_member_change(apply_here)
        yield cluster
