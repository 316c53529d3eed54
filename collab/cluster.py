"""Several server processes serving the same projects, relayed through Redis.

Every process keeps its own rooms on the shared store (PostgreSQL).  A durable
batch one process stores is announced on the project's Redis channel, and
each other process that has the project loaded applies it and relays it to
its own clients; presence (awareness) travels the same way, and so do member
changes (a revocation or a new role reaches the user's connections on every
process).

Redis only carries announcements; the store's log stays the truth.  An
announcement that is lost (Redis restarted, a subscriber fell behind) shows
as a gap in the sequence numbers or is found by a periodic check, and the room
reads it from the store (:meth:`collab.room.Room.catch_up_soon`).  Messages:

- ``PREFIX:room:PROJECT``: ``b"U"`` + sender id (16 bytes) + first sequence
  number (8 bytes, big-endian) + count (4 bytes) + the merged Yjs update, or
  ``b"A"`` + sender id + a y-websocket awareness message;
- ``PREFIX:members``: JSON ``{"from", "project", "user", "role"}`` (role null:
  revoked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import uuid
from collections.abc import Awaitable, Callable
from typing import Self

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import CollabError
from .room import Room
from .tokens import Role

log = logging.getLogger(__name__)

UPDATE, AWARENESS = b"U", b"A"
_UPDATE_HEAD = struct.Struct(">QI")
_ID_BYTES = 16

#: ``await callback(project_id, user, role)`` for a member change made on another process.
MemberCallback = Callable[[str, str, Role | None], Awaitable[object]]


class ClusterError(CollabError):
    """Redis could not be reached or refused the subscription."""


class RedisCluster:
    """This process's link to the other server processes (an async context manager).

    Parameters
    ----------
    url:
        ``redis://HOST:PORT/DB``.
    prefix:
        Channel name prefix, so several deployments can share one Redis.
    poll_seconds:
        How often each loaded room checks the store for batches whose
        announcement never arrived.
    """

    def __init__(self, url: str, *, prefix: str = "maxbooster", poll_seconds: float = 2.0
                 ) -> None:
        self.url = url
        self.prefix = prefix
        self.poll_seconds = poll_seconds
        self.instance = uuid.uuid4().bytes
        self.rooms: dict[str, Room] = {}
        self._member_callbacks: list[MemberCallback] = []
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._redis: aioredis.Redis | None = None
        self._pubsub: aioredis.client.PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect, subscribe, and start the reader, publisher and poller tasks."""
        if self._redis is not None:
            raise CollabError("the Redis cluster link is already started")
        self._redis = aioredis.from_url(self.url)
        try:
            await self._redis.ping()
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            await self._pubsub.psubscribe(f"{self.prefix}:room:*")
            await self._pubsub.subscribe(self._members_channel)
        except (OSError, RedisError) as exc:
            await self._redis.aclose()
            self._redis = None
            raise ClusterError(f"cannot reach Redis at {self.url}: {exc}") from None
        self._tasks = [asyncio.create_task(self._read_loop(), name="cluster reader"),
                       asyncio.create_task(self._publish_loop(), name="cluster publisher"),
                       asyncio.create_task(self._poll_loop(), name="cluster poller")]
        log.info("cluster link up (%s, instance %s)", self.url, self.instance.hex())

    async def stop(self) -> None:
        """Send what is queued, then disconnect (idempotent)."""
        if self._redis is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._outbox.join(), 2.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self._redis.aclose()
        self._redis = self._pubsub = None

    # -- rooms ---------------------------------------------------------------------------

    def attach(self, room: Room) -> None:
        """Link a freshly loaded room (and read what was stored while it was loading)."""
        room.link = self
        self.rooms[room.project_id] = room
        room.catch_up_soon()

    def detach(self, room: Room) -> None:
        """Forget an unloaded room."""
        if self.rooms.get(room.project_id) is room:
            del self.rooms[room.project_id]

    def publish_update(self, project_id: str, first_seq: int, count: int,
                       update: bytes) -> None:
        """Announce a durable batch to the other processes (never blocks)."""
        head = UPDATE + self.instance + _UPDATE_HEAD.pack(first_seq, count)
        self._outbox.put_nowait((self._room_channel(project_id), head + update))

    def publish_awareness(self, project_id: str, message: bytes) -> None:
        """Announce a local peer's presence message to the other processes."""
        self._outbox.put_nowait((self._room_channel(project_id),
                                 AWARENESS + self.instance + message))

    # -- member changes ------------------------------------------------------------------

    def publish_member_change(self, project_id: str, user: str, role: Role | None) -> None:
        """Tell the other processes that ``user`` was revoked (None) or given ``role``."""
        body = json.dumps({"from": self.instance.hex(), "project": project_id, "user": user,
                           "role": role.value if role else None})
        self._outbox.put_nowait((self._members_channel, body.encode()))

    def on_member_change(self, callback: MemberCallback) -> None:
        """Call ``callback`` for every member change another process announces."""
        self._member_callbacks.append(callback)

    # -- tasks ---------------------------------------------------------------------------

    @property
    def _members_channel(self) -> str:
        return f"{self.prefix}:members"

    def _room_channel(self, project_id: str) -> str:
        return f"{self.prefix}:room:{project_id}"

    async def _publish_loop(self) -> None:
        assert self._redis is not None
        while True:
            channel, data = await self._outbox.get()
            try:
                await self._redis.publish(channel, data)
            except (OSError, RedisError) as exc:  # the rooms elsewhere read it from the store
                log.warning("cluster: could not publish on %s: %s", channel, exc)
            finally:
                self._outbox.task_done()

    async def _read_loop(self) -> None:
        assert self._pubsub is not None
        delay = 0.1
        while True:
            try:
                async for message in self._pubsub.listen():
                    delay = 0.1
                    await self._dispatch(message)
            except (OSError, RedisError) as exc:
                log.warning("cluster: Redis subscription lost (%s); retrying in %.1f s",
                            exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                for room in list(self.rooms.values()):  # announcements may have been missed
                    room.catch_up_soon()

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            for room in list(self.rooms.values()):
                if room.peers:
                    room.catch_up_soon()

    async def _dispatch(self, message: dict) -> None:
        channel = message["channel"].decode()
        data: bytes = message["data"]
        if channel == self._members_channel:
            await self._member_change(data)
            return
        room = self.rooms.get(channel.removeprefix(f"{self.prefix}:room:"))
        if room is None or len(data) < 1 + _ID_BYTES or data[1:1 + _ID_BYTES] == self.instance:
            return
        kind, body = data[:1], data[1 + _ID_BYTES:]
        if kind == UPDATE and len(body) >= _UPDATE_HEAD.size:
            first, count = _UPDATE_HEAD.unpack_from(body)
            room.receive_update(first, count, body[_UPDATE_HEAD.size:])
        elif kind == AWARENESS:
            room.receive_awareness(body)
        else:
            log.warning("cluster: ignoring an unknown message on %s", channel)

    async def _member_change(self, data: bytes) -> None:
        try:
            change = json.loads(data)
            if change["from"] == self.instance.hex():
                return
            role = Role(change["role"]) if change["role"] else None
            project_id, user = str(change["project"]), str(change["user"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cluster: ignoring a malformed member change: %s", exc)
            return
        for callback in self._member_callbacks:
            try:
                await callback(project_id, user, role)
            except Exception:
                log.exception("cluster: member change callback failed")
