"""Sharded pub/sub on one Redis server or a Redis Cluster, the same way.

Publishers call ``client.spublish(channel, data)`` (both clients have it).  A
:class:`ShardedSubscriber` holds ``SSUBSCRIBE``\\ s: on a cluster a shard
channel lives on the master that owns its hash slot, so the subscriber keeps one
connection per master that has channels of it, and reads them all at once (one
task per connection, one queue).  On one server there is one connection.

After a failover the channels' owner changes: :meth:`ShardedSubscriber.get`
raises the connection's error, and :meth:`ShardedSubscriber.reconnect` reads the
cluster's slots again and subscribes every channel on its new owner.  Whatever
was published meanwhile is lost (pub/sub keeps nothing): callers read the truth
from their store after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from .redis_client import RedisClient


class SlotMoved(RedisConnectionError):
    """The server ended a shard subscription we hold: its slot has a new owner."""


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


_NODE_OPTIONS = ("username", "password", "ssl", "socket_connect_timeout")


class ShardedSubscriber:
    """``SSUBSCRIBE`` on the shard channels of one client (an async context manager)."""

    def __init__(self, client: RedisClient, *, health_check_interval: float = 15.0) -> None:
        self.client = client
        self.health_check_interval = health_check_interval
        #: The channels subscribed, whatever their node.
        self.channels: set[str] = set()
        self._pubsubs: dict[str, aioredis.client.PubSub] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._node_clients: list[aioredis.Redis] = []
        self._messages: asyncio.Queue[tuple[str, bytes] | BaseException] = asyncio.Queue()

    async def __aenter__(self) -> ShardedSubscriber:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def subscribe(self, *channels: str) -> None:
        """Subscribe ``channels`` on the nodes that own them."""
        for channel in channels:
            name, pubsub = await self._pubsub_of(channel)
            self.channels.add(channel)
            await pubsub.ssubscribe(channel)
            if name not in self._readers:  # one reader per connection, until it breaks
                self._readers[name] = asyncio.create_task(self._read(pubsub),
                                                          name=f"sharded pub/sub {name}")

    async def unsubscribe(self, *channels: str) -> None:
        """Drop ``channels`` (unknown ones are ignored)."""
        for channel in channels:
            if channel not in self.channels:
                continue
            self.channels.discard(channel)
            name, pubsub = await self._pubsub_of(channel)
            await pubsub.sunsubscribe(channel)

    async def get(self) -> tuple[str, bytes]:
        """The next ``(channel, data)`` of a channel still subscribed; raises a
        connection's error once it broke.  (Redis may send a dropped channel's messages
        until it has read the ``SUNSUBSCRIBE``: they are left out.)"""
        while True:
            item = await self._messages.get()
            if isinstance(item, BaseException):
                raise item
            if item[0] in self.channels:
                return item

    async def reconnect(self) -> None:
        """Read the slots again and subscribe every channel on its owner now."""
        channels = set(self.channels)
        await self._close_connections()
        if isinstance(self.client, RedisCluster):
            await self.client.nodes_manager.initialize()  # who owns which slot now
        self.channels = set()
        try:
            await self.subscribe(*sorted(channels))
        except BaseException:
            # Still unreachable: keep every channel (not just those subscribed before
            # the failure) so the next attempt subscribes them all.
            self.channels |= channels
            raise

    async def aclose(self) -> None:
        """Close every subscription connection (idempotent)."""
        await self._close_connections()
        self.channels = set()

    # -- connections -----------------------------------------------------------------

    async def _pubsub_of(self, channel: str) -> tuple[str, aioredis.client.PubSub]:
        if not isinstance(self.client, RedisCluster):
            name = "single"
            if name not in self._pubsubs:
                pool = self.client.connection_pool
                # its own connection, without the command timeout: a subscription idles
                options = {key: value for key, value in pool.connection_kwargs.items()
                           if key != "socket_timeout"}
                node_client = aioredis.Redis(connection_pool=aioredis.ConnectionPool(
                    connection_class=pool.connection_class,
                    **{**options, "health_check_interval": self.health_check_interval}))
                self._node_clients.append(node_client)
                self._pubsubs[name] = node_client.pubsub(ignore_subscribe_messages=False)
            return name, self._pubsubs[name]
        await self.client.initialize()  # reads the slots once (no-op afterwards)
        node = self.client.get_node_from_key(channel)
        if node.name not in self._pubsubs:
            options = {key: node.connection_kwargs[key] for key in _NODE_OPTIONS
                       if key in node.connection_kwargs}
            node_client = aioredis.Redis(host=node.host, port=int(node.port),
                                         health_check_interval=self.health_check_interval,
                                         **options)
            self._node_clients.append(node_client)
            self._pubsubs[node.name] = node_client.pubsub(ignore_subscribe_messages=False)
        return node.name, self._pubsubs[node.name]

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        try:
            while True:  # also while it holds no channel: one may come (subscribe)
                message: dict[str, Any] | None = await pubsub.get_message(
                    timeout=self.health_check_interval)
                if message is None:
                    continue
                kind, channel = _text(message["type"]), _text(message["channel"])
                if kind == "smessage":
                    self._messages.put_nowait((channel, message["data"]))
                elif kind == "sunsubscribe" and channel in self.channels:
                    # the server dropped it: its slot moved (a failover, a resharding)
                    raise SlotMoved(f"shard channel {channel!r} moved to another node")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the node went away or gave the slot up: reconnect
            self._messages.put_nowait(exc)

    async def _close_connections(self) -> None:
        readers, self._readers = list(self._readers.values()), {}
        for task in readers:
            task.cancel()
        for task in readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        pubsubs, self._pubsubs = list(self._pubsubs.values()), {}
        for pubsub in pubsubs:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        clients, self._node_clients = self._node_clients, []
        for node_client in clients:
            with contextlib.suppress(Exception):
                await node_client.aclose()
        kept = []
        while not self._messages.empty():  # the old connections' errors go, messages stay
            item = self._messages.get_nowait()
            if not isinstance(item, BaseException):
                kept.append(item)
        for item in kept:
            self._messages.put_nowait(item)

__all__ = ["ShardedSubscriber", "SlotMoved"]
