"""The one place a Redis client is made: a single server or a Redis Cluster, by URL.

``redis://HOST:PORT/DB`` (also ``rediss://``, ``unix://``) names one server;
``redis+cluster://HOST:PORT,HOST:PORT`` names a Redis Cluster by some of its
nodes (the client discovers the rest).  :func:`redis_client` returns a
:class:`redis.asyncio.Redis` or a :class:`redis.asyncio.cluster.RedisCluster`,
which answer the same commands, so callers never branch on the kind.  The same
URL goes to the ``limits`` library (rate limits, plug-ins' pacing), which reads
``redis+cluster://`` the same way.

On a cluster every command must touch one hash slot: keys used together share a
hash tag (``maxbooster:{s:HASH}``), and pub/sub is sharded (``SPUBLISH`` /
``SSUBSCRIBE``, :mod:`database.redis_pubsub`).  docs/scale-out.md lists every key.

A single server's client draws on a *blocking* pool of :data:`MAX_CONNECTIONS`: a
command beyond them waits up to :data:`CONNECTION_WAIT_S` for one to come free.
redis-py's own pool holds 100 and fails the 101st command in flight at once
(``MaxConnectionsError``), so a server busy with more than 100 requests at once would
fail some for no fault of Redis.  redis-py's cluster client has no blocking pool: it
keeps up to :data:`CLUSTER_MAX_CONNECTIONS` per node (redis-py's default is 100, the
``limits`` library's 1000) and fails beyond them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

#: The URL scheme that names a Redis Cluster.
CLUSTER_SCHEME = "redis+cluster"

#: Either client; both answer the same single-slot commands.
RedisClient = aioredis.Redis | RedisCluster
#: Connections a single server's client keeps at most, and how long a command waits for
#: one of them to come free before it fails.
MAX_CONNECTIONS = 100
CONNECTION_WAIT_S = 20.0
#: Connections a cluster client keeps at most to each node (it fails beyond them).
CLUSTER_MAX_CONNECTIONS = 1000


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``)."""
    return url.partition("://")[0].lower() == CLUSTER_SCHEME


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` startup nodes of a ``redis+cluster://`` URL.

    Raises ValueError saying how to write the URL when it is malformed.
    """
    if not is_cluster_url(url):
        raise ValueError(f"{url!r} is not a Redis Cluster URL: write "
                         "redis+cluster://HOST:PORT,HOST:PORT")
    rest = url.partition("://")[2]
    hosts = rest.rpartition("@")[2].partition("/")[0].partition("?")[0]
    path = rest.rpartition("@")[2].partition("/")[2].partition("?")[0]
    if path not in ("", "0"):
        raise ValueError(f"Redis Cluster URL {url!r} names database {path!r}: a cluster "
                         "has only database 0; leave the path out")
    nodes = []
    for part in filter(None, hosts.split(",")):
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"Redis Cluster node {part!r} in {url!r} is not HOST:PORT")
        nodes.append((host.strip("[]"), int(port)))
    if not nodes:
        raise ValueError(f"Redis Cluster URL {url!r} names no node: write "
                         "redis+cluster://HOST:PORT,HOST:PORT")
    return nodes


def redis_client(url: str, **options: Any) -> RedisClient:
    """A client of the Redis (or Redis Cluster) at ``url``.

    ``options`` are redis-py connection options (``decode_responses``,
    ``socket_timeout``, ...), valid for both kinds.
    """
    if not is_cluster_url(url):
        return aioredis.Redis.from_pool(blocking_pool(url, **options))
    credentials = url.partition("://")[2].rpartition("@")[0]
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    if ":" not in credentials and credentials:  # redis+cluster://PASSWORD@host:port
        username, password = "", credentials
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in
                                       cluster_nodes(url)],
                        username=unquote(username) or None,
                        password=unquote(password) or None,
                        max_connections=CLUSTER_MAX_CONNECTIONS, **options)


def blocking_pool(url: str, **options: Any) -> aioredis.BlockingConnectionPool:
    """A pool of connections to the single Redis at ``url`` (``redis://``, ``rediss://``,
    ``unix://``) in which a command waits for a free connection rather than fail (see
    the module)."""
    return aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=CONNECTION_WAIT_S, **options)


def redacted(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    scheme, sep, rest = url.partition("://")
    credentials, at, hosts = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0] if ":" in credentials else ""
    return f"{scheme}{sep}{user}:***@{hosts}"


__all__ = ["CLUSTER_SCHEME", "RedisClient", "cluster_nodes", "is_cluster_url", "redacted",
           "redis_client"]
