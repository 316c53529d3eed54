"""Several server processes serving the same projects, relayed through Redis.

Every process keeps its own rooms on the shared store (PostgreSQL).  A durable
batch one process stores is announced on the project's Redis channel, and
each other process that has the project loaded applies it and relays it to
its own clients; presence (awareness) travels the same way, and so do member
changes (a revocation or a new role reaches the user's connections on every
process).  A process subscribes only to the channels of the projects it holds.

Redis only carries announcements; the store stays the truth.  A lost
announcement shows as a gap in the sequence numbers or is found by a periodic
check, and the room reads it from the store (:meth:`collab.room.Room.catch_up_soon`).
A lost revocation is found the same way: every ``revocation_check_seconds``,
and after Redis comes back, the users connected here are checked against the
store's revocations.  Messages:

Both go over sharded pub/sub (``SPUBLISH`` / ``SSUBSCRIBE``, Redis 7), on one
server or a Redis Cluster alike (:mod:`database.redis_pubsub`); each channel's
hash tag puts it on one cluster slot, so a project's traffic stays on the master
that owns it and a failover costs a re-subscription and a catch-up read.

- ``PREFIX:{room:PROJECT}``: ``b"U"`` + sender id (16 bytes) + first sequence
  number (8 bytes, big-endian) + count (4 bytes) + the merged Yjs update, or
  ``b"A"`` + sender id + the length (4 bytes, big-endian) of a JSON object
  ``{"<client id>": "<user>"}`` saying who introduced each client id there, that
  object, and a y-websocket awareness message (so no other user can take an id on
  another process while its owner's tab is quiet), or ``b"Q"`` + sender id: a
  process that has just subscribed asks the others for their own peers' presence, and
  announces its own (presence is not stored, so what was announced before either
  subscription landed is otherwise missed until each client renews it);
- ``PREFIX:{members}``: JSON ``{"from", "project", "user", "role"}`` (role null:
  revoked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Self

from redis.exceptions import RedisError

from database.redis_client import RedisClient, redacted, redis_client
from database.redis_pubsub import ShardedSubscriber

from .errors import CollabError, StoreError
from .room import Room
from .tokens import Role

log = logging.getLogger(__name__)

UPDATE, AWARENESS, QUERY = b"U", b"A", b"Q"
_UPDATE_HEAD = struct.Struct(">QI")
_OWNERS_HEAD = struct.Struct(">I")
_ID_BYTES = 16
#: Announcements waiting for Redis; past this, new ones are dropped (the store has them).
OUTBOX_LIMIT = 10_000

#: ``await callback(project_id, user, role)`` for a member change made on another process
#: (or a revocation found in the store): apply it to this process's connections.
MemberCallback = Callable[[str, str, Role | None], Awaitable[object]]


class RelayError(CollabError):
    """Redis could not be reached or refused the subscription."""


class RedisRelay:
    """This process's link to the other server processes (an async context manager).

    Parameters
    ----------
    url:
        ``redis://HOST:PORT/DB`` or ``redis+cluster://HOST:PORT,HOST:PORT``.
    prefix:
        Channel name prefix, so several deployments can share one Redis.
    poll_seconds:
        How often each loaded room checks the store for batches whose
        announcement never arrived.
    revocation_check_seconds:
        How often the users connected here are checked against the store's
        revocations (in case a member-change announcement was lost).
    """

    def __init__(self, url: str, *, prefix: str = "maxbooster", poll_seconds: float = 2.0,
                 revocation_check_seconds: float = 10.0) -> None:
        self.url = url
        self.prefix = prefix
        self.poll_seconds = poll_seconds
        self.revocation_check_seconds = revocation_check_seconds
        self.instance = uuid.uuid4().bytes
        self.rooms: dict[str, Room] = {}
        self._member_callbacks: list[MemberCallback] = []
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(OUTBOX_LIMIT)
        self._subscriptions: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        self._redis: RedisClient | None = None
        self._subscriber: ShardedSubscriber | None = None
        self._subscribing = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._dropped = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect, subscribe, and start the reader, publisher and poller tasks."""
        if self._redis is not None:
            raise CollabError("the Redis relay is already started")
        # Commands time out; the subscription connections idle, so they ping instead.
        try:
            self._redis = redis_client(self.url, socket_connect_timeout=5, socket_timeout=5)
            self._subscriber = ShardedSubscriber(self._redis, health_check_interval=15)
            await self._redis.ping()
            await self._subscriber.subscribe(self._members_channel)
        except (OSError, RedisError, ValueError) as exc:
            await self._close_clients()
            raise RelayError(f"cannot reach Redis at {redacted(self.url)}: {exc}") from None
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="relay reader"),
            asyncio.create_task(self._publish_loop(), name="relay publisher"),
            asyncio.create_task(self._subscription_loop(), name="relay subscriptions"),
            asyncio.create_task(self._poll_loop(), name="relay poller"),
        ]
        log.info("relay up (%s, instance %s)", redacted(self.url), self.instance.hex())

    async def stop(self) -> None:
        """Send what is queued, then disconnect (idempotent)."""
        if self._redis is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._outbox.join()
        await _cancel_all([*self._tasks, *self._background])
        self._tasks = []
        await self._close_clients()

    async def _close_clients(self) -> None:
        if self._subscriber is not None:
            with contextlib.suppress(Exception):
                await self._subscriber.aclose()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        self._redis = self._subscriber = None

    # -- rooms ---------------------------------------------------------------------------

    def attach(self, room: Room) -> None:
        """Link a freshly loaded room: subscribe, and read what was stored meanwhile."""
        room.link = self
        self.rooms[room.project_id] = room
        self._subscriptions.put_nowait((True, self._room_channel(room.project_id)))
        room.catch_up_soon()

    def detach(self, room: Room) -> None:
        """Forget an unloaded room and its channel."""
        if self.rooms.get(room.project_id) is room:
            del self.rooms[room.project_id]
            self._subscriptions.put_nowait((False, self._room_channel(room.project_id)))

    def publish_update(self, project_id: str, first_seq: int, count: int,
                       update: bytes) -> None:
        """Announce a durable batch to the other processes (never blocks)."""
        head = UPDATE + self.instance + _UPDATE_HEAD.pack(first_seq, count)
        self._send(self._room_channel(project_id), head + update)

    def publish_awareness(self, project_id: str, message: bytes,
                          owners: dict[int, str]) -> None:
        """Announce a local peer's presence message to the other processes, with the user
        who introduced each of its client ids here."""
        body = json.dumps({str(cid): user for cid, user in owners.items()}).encode()
        self._send(self._room_channel(project_id),
                   AWARENESS + self.instance + _OWNERS_HEAD.pack(len(body)) + body + message)

    # -- member changes ------------------------------------------------------------------

    def publish_member_change(self, project_id: str, user: str, role: Role | None) -> None:
        """Tell the other processes that ``user`` was revoked (None) or given ``role``."""
        body = json.dumps({"from": self.instance.hex(), "project": project_id, "user": user,
                           "role": role.value if role else None})
        self._send(self._members_channel, body.encode())

    def on_member_change(self, callback: MemberCallback) -> None:
        """Call ``callback`` for every member change another process announces."""
        self._member_callbacks.append(callback)

    # -- tasks ---------------------------------------------------------------------------

    @property
    def _members_channel(self) -> str:
        return f"{self.prefix}:{{members}}"

    def _room_channel(self, project_id: str) -> str:
        return f"{self.prefix}:{{room:{project_id}}}"

    def _project_of(self, channel: str) -> str | None:
        head = f"{self.prefix}:{{room:"
        if channel.startswith(head) and channel.endswith("}"):
            return channel[len(head):-1]
        return None

    def _send(self, channel: str, data: bytes) -> None:
        try:
            self._outbox.put_nowait((channel, data))
        except asyncio.QueueFull:  # Redis is stuck; the store and the checks cover it
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("relay: Redis is not keeping up; %d announcements dropped",
                            self._dropped)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish_loop(self) -> None:
        assert self._redis is not None
        while True:
            channel, data = await self._outbox.get()
            try:
                await self._redis.spublish(channel, data)
            except (OSError, RedisError) as exc:  # the rooms elsewhere read it from the store
                log.warning("relay: could not publish on %s: %s", channel, exc)
            finally:
                self._outbox.task_done()

    async def _subscription_loop(self) -> None:
        assert self._subscriber is not None
        while True:
            subscribe, channel = await self._subscriptions.get()
            try:
                async with self._subscribing:
                    if subscribe:
                        await self._subscriber.subscribe(channel)
                        self._announce_presence(channel)
                    else:
                        await self._subscriber.unsubscribe(channel)
            except (OSError, RedisError) as exc:  # re-subscribed on reconnection
                if subscribe:
                    self._subscriber.channels.add(channel)
                log.warning("relay: could not (un)subscribe %s: %s", channel, exc)

    async def _read_loop(self) -> None:
        subscriber = self._subscriber
        assert subscriber is not None
        delay = 0.1
        while True:
            try:
                channel, data = await subscriber.get()
                delay = 0.1
                self._dispatch(channel, data)
                continue
            except (OSError, RedisError) as exc:
                log.warning("relay: Redis subscription lost (%s); retrying in %.1f s",
                            exc, delay)
            while True:  # subscribe again (on a cluster: on the channels' new owners)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                try:
                    async with self._subscribing:
                        await subscriber.reconnect()
                    break
                except (OSError, RedisError) as exc:
                    log.warning("relay: cannot subscribe again yet (%s)", exc)
            # What was announced meanwhile is lost: read it from the store.
            for room in list(self.rooms.values()):
                room.catch_up_soon()
            self._spawn(self._check_revocations())

    async def _poll_loop(self) -> None:
        last_check = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_seconds)
            for room in list(self.rooms.values()):
                if room.peers:
                    room.catch_up_soon()
            if time.monotonic() - last_check >= self.revocation_check_seconds:
                last_check = time.monotonic()
                await self._check_revocations()

    async def _check_revocations(self) -> None:
        """Apply revocations (and role changes, which revoke older tokens) missed here."""
        for room in list(self.rooms.values()):
            if not room.peers:
                continue
            try:
                revoked = room.revoked_users(await room.store.revocations(room.project_id))
            except StoreError as exc:
                log.warning("relay: cannot check revocations of %s: %s", room.project_id, exc)
                continue
            for user in revoked:
                log.info("relay: %s was revoked on %s elsewhere; closing here",
                         user, room.project_id)
                await self._tell_members(room.project_id, user, None)

    def _announce_presence(self, channel: str) -> None:
        """Once subscribed to a room's channel: ask who is there, and say who is here
        (presence sent before either side's subscription landed is otherwise missed)."""
        self._send(channel, QUERY + self.instance)
        room = self.rooms.get(self._project_of(channel) or "")
        local = room.local_presence() if room is not None else None
        if local is not None and room is not None:
            self.publish_awareness(room.project_id, *local)

    def _dispatch(self, channel: str, data: bytes) -> None:
        if channel == self._members_channel:
            self._spawn(self._member_change(data))  # never holds up the rooms' traffic
            return
        room = self.rooms.get(self._project_of(channel) or "")
        if room is None or len(data) < 1 + _ID_BYTES or data[1:1 + _ID_BYTES] == self.instance:
            return
        kind, body = data[:1], data[1 + _ID_BYTES:]
        if kind == UPDATE and len(body) >= _UPDATE_HEAD.size:
            first, count = _UPDATE_HEAD.unpack_from(body)
            room.receive_update(first, count, body[_UPDATE_HEAD.size:])
        elif kind == AWARENESS:
            owners, message = _owners_and_message(body)
            if message is None:
                log.warning("relay: ignoring a malformed presence message on %s", channel)
            else:
                room.receive_awareness(message, owners)
        elif kind == QUERY:
            local = room.local_presence()
            if local is not None:
                self.publish_awareness(room.project_id, *local)
        else:
            log.warning("relay: ignoring an unknown message on %s", channel)

    async def _member_change(self, data: bytes) -> None:
        try:
            change = json.loads(data)
            if change["from"] == self.instance.hex():
                return
            role = Role(change["role"]) if change["role"] else None
            project_id, user = str(change["project"]), str(change["user"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("relay: ignoring a malformed member change: %s", exc)
            return
        await self._tell_members(project_id, user, role)

    async def _tell_members(self, project_id: str, user: str, role: Role | None) -> None:
        for callback in self._member_callbacks:
            try:
                await callback(project_id, user, role)
            except Exception:
                log.exception("relay: member change callback failed")


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them; a task whose await swallowed the cancellation
    (redis-py's (un)subscribe can) is cancelled again."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)


def _owners_and_message(body: bytes) -> tuple[dict[int, str], bytes | None]:
    """The owners and the awareness message of an ``A`` announcement's ``body``
    (``({}, None)`` when it is malformed)."""
    if len(body) < _OWNERS_HEAD.size:
        return {}, None
    (size,) = _OWNERS_HEAD.unpack_from(body)
    start = _OWNERS_HEAD.size
    try:
        found = json.loads(body[start:start + size])
        owners = {int(cid): user for cid, user in found.items() if isinstance(user, str)}
    except (ValueError, AttributeError, UnicodeDecodeError):
        return {}, None
    return owners, body[start + size:]
