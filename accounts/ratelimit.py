"""Per-API-key request limits, shared by every server process through Redis.

A thin layer over the `limits <https://limits.readthedocs.io>`_ library: a plan names a
:class:`limits.RateLimitItem` (:data:`PLANS`: free 100 requests per second, paid 1000),
the storage is chosen by URL (:meth:`RateLimiter.from_url`), and each request's
:class:`Decision` carries the IETF ``RateLimit-Policy`` / ``RateLimit`` header fields
(draft-ietf-httpapi-ratelimit-headers, structured-field form) and ``Retry-After``.

Strategy
--------
The *moving window* (``limits``' ``moving-window``) keeps one timestamp per accepted
request and refuses a request while ``limit`` of them fall in the last second, so no
one-second interval, wherever it starts, holds more than the plan allows, and
``Retry-After`` is exactly when the oldest request leaves the window.  A hit may count
several requests at once (``cost``), all or none; on Redis a refusal's ``Retry-After``
is then when a retry fits (``retry_cost``).  The *sliding
window counter* keeps two counters per key instead of up to ``limit`` timestamps, but
assumes the previous window's requests were spread evenly, so a key that bursts near
a window boundary gets more than its plan in the second that straddles it.

``benchmarks/bench_ratelimit.py`` measured both (2-core machine, Redis on loopback):

=====================================  ==============  =======================
per hit, p50 / p99                     moving window   sliding window counter
=====================================  ==============  =======================
in process (``memory://``)             8.5 / 21 us     12.7 / 26 us
over Redis, ``limits`` alone           0.44 / 0.68 ms  0.39 / 0.64 ms
over Redis, :data:`HIT_AND_COUNT`      0.10 / 0.18 ms  (not used)
free key offered 300/s, worst second   100             114 to 160 [#]_
=====================================  ==============  =======================

.. [#] depending on where the run starts in a window: 160 when 0.6 s into it.

(The :data:`HIT_AND_COUNT` row is from a later, less loaded run, in which a bare PING
took 66 us.  Over HTTP, a hit adds 1.3x what a handler that only PINGs Redis adds, and
0.03 ms in process: see the benchmark and :meth:`RateLimiter.from_url`.)

The costs are alike, and only the moving window keeps every second within 5 % of the
plan, so it is the default.  Over Redis the round trips dominate: ``limits`` takes two
per request (one to count the hit, one to read the window for the headers), and one
round trip of redis-py's asyncio client costs some 0.1 ms here.  So on Redis the moving
window's hit is one Lua script of our own (:data:`HIT_AND_COUNT`) that does both in one
round trip, on the very list ``limits`` keeps (same key, same entries), so ``limits``
still clears, reads and, in process, counts.  It is called by its SHA and answers one
integer, which spares redis-py's ``Script`` wrapper and its parsing of an array (some
40 us a hit together); ``benchmarks/bench_ratelimit.py`` measures it against a bare
round trip and a bare HTTP handler.  What it costs instead is memory, up to ``limit``
timestamps per busy key (some 20 kB for a paid key in Redis).

Clocks
------
The script stamps each request with Redis's own clock (``TIME``, Redis 5 or later), not
the server's, so servers sharing a Redis need not keep their clocks in step: a server
whose clock is behind cannot make the others' requests look expired and let more
through, and every server's ``Retry-After`` is counted from the same instant.  As every
entry comes from one clock, the list is in time order, so the script drops the expired
entries from its old end and counts what is left.  (In a Redis Cluster each key's clock
is its node's.)  The sliding window counter runs on Redis's key expiry times, so on its
clock too; in process (``memory://``) there is one clock anyway.

Keys
----
Each limit is one Redis key, ``<key_prefix>:LIMITER/<key>/<amount>/1/second``, so it
lives on one Redis Cluster slot; the sliding window counter's two keys are hash-tagged
by ``limits`` itself (``{...}``), so ``key_prefix`` must not contain braces.  Pass an
API key's id (or hash), never its secret.

Failures
--------
A Redis error propagates from :meth:`RateLimiter.hit` (as ``limits.errors.StorageError``):
whether to fail open or closed is the caller's policy.  On a single Redis, hits beyond
the pool's connections wait for one (:func:`database.redis_client.blocking_pool`)
rather than fail: redis-py's own pool fails the 101st hit in flight at once.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import STRATEGIES
from limits.aio.strategies import RateLimiter as Counting
from limits.errors import StorageError
from limits.storage import MemoryStorage as ProcessMemoryStorage
from limits.strategies import STRATEGIES as PROCESS_STRATEGIES
from limits.strategies import RateLimiter as ProcessCounting
from prometheus_client import Counter
from redis.exceptions import NoScriptError

from database.redis_client import blocking_pool

#: Limits per plan name: what one API key may send.
PLANS: Mapping[str, RateLimitItem] = MappingProxyType({
    "free": parse("100/second"),
    "paid": parse("1000/second"),
})

#: Requests refused for being over their plan's limit (served at ``/metrics``), by plan.
REJECTIONS = Counter("ratelimit_rejections", "Requests refused (429) by an API rate limit",
                     ["plan"])

Strategy = Literal["moving-window", "sliding-window-counter"]

#: Requests a plan may allow per window on Redis, and what packs the count into the reply.
COUNT_SPAN = 1 << 20
#: The longest window on Redis: the reply, a Lua number, stays an exact integer (< 2**53).
MAX_WINDOW_S = (1 << 32) // 1000

#: A moving-window hit and the window's state in one Redis round trip, on Redis's clock.
#: KEYS[1] is the list ``limits``' moving window keeps (newest timestamp first); ARGV:
#: limit, window seconds, cost (how many requests this hit counts), and what a retry of
#: a refused hit will need to fit (at least the cost).  Every entry is stamped with
#: Redis's ``TIME``, so the list is in time order whichever server pushed it: the
#: entries that left the window are popped from its old end, what remains is the count,
#: and the hit is admitted, as ``cost`` entries, while they fit under ``limit`` (as
#: ``limits``' own acquire script decides it).  Answers one integer (one array of three
#: costs redis-py's parser some 20 us more): ``(ms until the window frees one, or if
#: refused until a retry fits, * COUNT_SPAN + entries in the window) * 2 + (1 if
#: admitted else 0)``; :func:`unpack_hit` reads it.
HIT_AND_COUNT = f"""
local limit, expiry = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost, need = tonumber(ARGV[3]), tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local start = now - expiry
local oldest = redis.call('lindex', KEYS[1], -1)
while oldest and tonumber(oldest) < start do
    redis.call('rpop', KEYS[1])
    oldest = redis.call('lindex', KEYS[1], -1)
end
local count = redis.call('llen', KEYS[1])
local stamp = string.format('%d.%06d', clock[1], clock[2])
local admitted, frees = 0, oldest
if count + cost <= limit then
    local stamps = {{}}
    for i = 1, cost do
        stamps[i] = stamp
    end
    for i = 1, cost, 5000 do  -- unpack's stack holds some 8000 values
        redis.call('lpush', KEYS[1], unpack(stamps, i, math.min(i + 4999, cost)))
    end
    redis.call('expire', KEYS[1], expiry)
    frees = oldest or stamp
    count, admitted = count + cost, 1
else
    -- refused: until the oldest entries leave that make room for the retry
    local leave = math.min(count, count + need - limit)
    frees = leave > 0 and redis.call('lindex', KEYS[1], -leave) or stamp
end
local reset_ms = math.max(0, math.ceil((tonumber(frees) + expiry - now) * 1000))
return (reset_ms * {COUNT_SPAN} + count) * 2 + admitted
"""
HIT_AND_COUNT_SHA = hashlib.sha1(HIT_AND_COUNT.encode()).hexdigest()


def unpack_hit(reply: int) -> tuple[bool, int, float]:
    """(admitted, entries in the window, seconds until it frees one or, refused, until a
    retry fits) of a :data:`HIT_AND_COUNT` reply."""
    rest, admitted = divmod(int(reply), 2)
    reset_ms, count = divmod(rest, COUNT_SPAN)
    return bool(admitted), count, reset_ms / 1000


#: A single Redis's URL schemes here, and as redis-py writes them.
_REDIS_PY_SCHEMES = {"redis": "redis", "rediss": "rediss", "redis+unix": "unix"}
#: Storage URL schemes :meth:`RateLimiter.from_url` accepts, and the scheme ``limits`` knows.
_SCHEMES = {
    "memory": "async+memory",
    "redis": "async+redis",
    "rediss": "async+rediss",
    "redis+unix": "async+redis+unix",
    "redis+cluster": "async+redis+cluster",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one request against its key's limit.

    Attributes
    ----------
    allowed : bool
        Whether the request may proceed (it has been counted if so).
    limit : int
        Requests allowed per window by the plan.
    remaining : int
        Requests still allowed in the current window.
    reset_after : float
        Seconds until the window frees a request again (on Redis, for a refused hit,
        until a retry of it fits).
    retry_after : float | None
        Seconds to wait before retrying when refused, else None.
    policy : str
        The plan's name, which is the policy name in the headers.
    window : int
        Window length in seconds.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float | None
    policy: str
    window: int = 1

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` fields, and ``Retry-After`` when refused."""
        name = self.policy.replace("\\", "\\\\").replace('"', '\\"')
        fields = {
            "RateLimit-Policy": f'"{name}";q={self.limit};w={self.window}',
            "RateLimit": f'"{name}";r={self.remaining};t={math.ceil(self.reset_after)}',
        }
        if self.retry_after is not None:
            fields["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return fields


class RateLimiter:
    """Counts each key's requests against its plan in one ``limits`` storage.

    Parameters
    ----------
    storage : limits.aio.storage.Storage | limits.storage.MemoryStorage
        Where the counts live; two limiters on one Redis share every key's budget.
        ``limits``' synchronous memory storage counts in place (see :meth:`from_url`).
    plans : Mapping[str, RateLimitItem]
        Plan name to limit (default :data:`PLANS`).
    strategy : {"moving-window", "sliding-window-counter"}
        How requests are counted (module docstring: why moving window is the default).
    """

    def __init__(self, storage: Storage | ProcessMemoryStorage,
                 plans: Mapping[str, RateLimitItem] = PLANS,
                 strategy: Strategy = "moving-window") -> None:
        if strategy not in ("moving-window", "sliding-window-counter"):
            raise ValueError(f"unknown rate-limit strategy {strategy!r}: use 'moving-window' "
                             "or 'sliding-window-counter'")
        self.storage = storage
        self.plans = plans
        self.strategy = strategy
        self._limiter: Counting | None = None
        self._in_process: ProcessCounting | None = None
        if isinstance(storage, ProcessMemoryStorage):
            self._in_process = PROCESS_STRATEGIES[strategy](storage)
        else:
            self._limiter = STRATEGIES[strategy](storage)
        self._one_trip = strategy == "moving-window" and isinstance(storage, RedisStorage)
        self._client = None
        if self._one_trip:
            assert isinstance(storage, RedisStorage)
            self._client = storage.bridge.get_connection()
            for name, item in plans.items():
                if item.amount >= COUNT_SPAN or item.get_expiry() > MAX_WINDOW_S:
                    raise ValueError(f"rate-limit plan {name!r} ({item}) is too large for "
                                     f"Redis: at most {COUNT_SPAN - 1} requests per window "
                                     f"of at most {MAX_WINDOW_S} s")

    @classmethod
    def from_url(cls, url: str | None = None, *, plans: Mapping[str, RateLimitItem] = PLANS,
                 strategy: Strategy = "moving-window", key_prefix: str = "ratelimit",
                 timeout: float = 1.0) -> RateLimiter:
        """A limiter on the storage ``url`` names.

        In process (``memory://``) the counts are kept by ``limits``' synchronous memory
        storage, called in place: its asynchronous one starts a sweep of every key after
        each request, each key's a hop to a thread, which added some 0.25 ms to every
        request of a server (``benchmarks/bench_ratelimit.py``); the synchronous one
        sweeps from a timer thread at most every 10 ms.

        Parameters
        ----------
        url : str | None
            ``None`` or ``memory://`` (this process only), ``redis://host:port/db``
            (also ``rediss://``, ``redis+unix:///path``), or
            ``redis+cluster://host:port,host:port`` (a Redis Cluster).
        key_prefix : str
            Prefix of every Redis key (no braces: see the module docstring).
        timeout : float
            Seconds a Redis connection or command may take before it fails.
        """
        url = url or "memory://"
        scheme, sep, rest = url.partition("://")
        scheme = scheme.removeprefix("async+")
        if not sep or scheme not in _SCHEMES:
            raise ValueError(f"unknown rate-limit storage URL {url!r}: use memory://, "
                             "redis://host:port/db or redis+cluster://host:port,host:port")
        if "{" in key_prefix or "}" in key_prefix:
            raise ValueError(f"rate-limit key prefix {key_prefix!r} has braces: they would "
                             "put every key on one Redis Cluster slot; leave them out")
        target = f"{_SCHEMES[scheme]}://{rest}"
        storage: Storage | ProcessMemoryStorage
        sockets = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if scheme == "memory":
            storage = ProcessMemoryStorage("memory://")
        elif scheme == "redis+cluster":
            storage = RedisClusterStorage(target, wrap_exceptions=True,
                                          implementation="redispy", key_prefix=key_prefix,
                                          **sockets)
        else:  # requests beyond the pool wait for a connection (database.redis_client)
            pool = blocking_pool(f"{_REDIS_PY_SCHEMES[scheme]}://{rest}", **sockets)
            storage = RedisStorage(target, wrap_exceptions=True, implementation="redispy",
                                   key_prefix=key_prefix, connection_pool=pool)
        return cls(storage, plans, strategy)

    def plan(self, name: str) -> RateLimitItem:
        """The limit of plan ``name``; ValueError naming the known plans if there is none."""
        try:
            return self.plans[name]
        except KeyError:
            raise ValueError(f"unknown rate-limit plan {name!r}: use one of "
                             f"{', '.join(sorted(self.plans))}") from None

    async def hit(self, key: str, plan: str, cost: int = 1, *,
                  retry_cost: int | None = None) -> Decision:
        """Count ``cost`` requests of ``key`` on ``plan`` if its budget allows them all
        (none are counted otherwise), and say so.

        ``retry_cost`` is what a retry of a refused hit will need (``cost`` if None; more
        where the caller counted part of it already, as a GraphQL request its own hit),
        so that with the moving window (in process or on Redis) a refusal's
        ``retry_after`` is when that fits; at most the plan's limit.  A ``cost`` over the
        limit could never be admitted: ValueError.
        """
        item = self.plan(plan)
        if not 1 <= cost <= item.amount:
            raise ValueError(f"a rate-limit hit costs from one request to the plan's "
                             f"{item.amount}, not {cost}")
        need = min(max(cost, retry_cost or cost), item.amount)
        if self._one_trip:
            allowed, remaining, reset_after = await self._hit_in_one_trip(item, key, cost,
                                                                          need)
        elif self._in_process is not None:  # memory only: nothing to wait for
            allowed = self._in_process.hit(item, key, cost=cost)
            stats = self._in_process.get_window_stats(item, key)
            remaining, reset_after = stats.remaining, stats.reset_time - time.time()
            if not allowed and need > 1 and self.strategy == "moving-window":
                reset_after = self._fits_in_process(item, key, need)
        else:
            assert self._limiter is not None
            allowed = await self._limiter.hit(item, key, cost=cost)
            stats = await self._limiter.get_window_stats(item, key)
            remaining, reset_after = stats.remaining, stats.reset_time - time.time()
        reset_after = max(0.0, reset_after)
        if not allowed:
            REJECTIONS.labels(plan=plan).inc()
        return Decision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(0, remaining),
            reset_after=reset_after,
            retry_after=None if allowed else reset_after,
            policy=plan,
            window=item.get_expiry(),
        )

    def _fits_in_process(self, item: RateLimitItem, key: str, need: int) -> float:
        """Seconds until ``need`` requests fit ``key``'s moving window in process: when
        its ``amount - need + 1``-th newest request leaves it (``limits``' memory storage
        keeps a key's requests newest first, as ``acquire_entry`` reads them)."""
        assert isinstance(self.storage, ProcessMemoryStorage)
        requests = self.storage.events.get(item.key_for(key), [])
        if len(requests) <= item.amount - need:
            return 0.0
        return requests[item.amount - need].atime + item.get_expiry() - time.time()

    async def _hit_in_one_trip(self, item: RateLimitItem, key: str, cost: int, need: int
                               ) -> tuple[bool, int, float]:
        """(admitted, requests left, seconds until the window frees one, or if refused
        until ``need`` fit) by :data:`HIT_AND_COUNT`, called by its SHA (redis-py's
        ``Script`` wrapper costs some 20 us a call) and loaded again where Redis lacks it
        (restarted, failed over)."""
        storage, client = self.storage, self._client
        assert isinstance(storage, RedisStorage) and client is not None
        redis_key = storage.bridge.prefixed_key(item.key_for(key))
        trip = (1, redis_key, item.amount, item.get_expiry(), cost, need)
        try:
            try:
                reply = await client.evalsha(HIT_AND_COUNT_SHA, *trip)
            except NoScriptError:
                await client.script_load(HIT_AND_COUNT)
                reply = await client.evalsha(HIT_AND_COUNT_SHA, *trip)
        except storage.base_exceptions as error:
            raise StorageError(error) from error
        admitted, count, reset_after = unpack_hit(reply)
        return admitted, item.amount - count, reset_after

    async def clear(self, key: str, plan: str) -> None:
        """Forget ``key``'s requests on ``plan`` (its full budget is back)."""
        if self._in_process is not None:
            self._in_process.clear(self.plan(plan), key)
        else:
            assert self._limiter is not None
            await self._limiter.clear(self.plan(plan), key)

    async def close(self) -> None:
        """Close the storage's connections (Redis) or its expiry timer or task (memory)."""
        storage = self.storage
        if isinstance(storage, RedisStorage):
            client = storage.bridge.storage
            await client.aclose()
            if not isinstance(storage, RedisClusterStorage):  # its pool is ours to close
                await client.connection_pool.disconnect()
        elif isinstance(storage, ProcessMemoryStorage):
            storage.reset()
            storage.timer.cancel()
        elif isinstance(storage, MemoryStorage):
            await storage.reset()
            if storage.timer is not None:
                storage.timer.cancel()

    async def __aenter__(self) -> RateLimiter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
