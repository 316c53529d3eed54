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
``Retry-After`` is exactly when the oldest request leaves the window.  The *sliding
window counter* keeps two counters per key instead of up to ``limit`` timestamps, but
assumes the previous window's requests were spread evenly, so a key that bursts near
a window boundary gets more than its plan in the second that straddles it.

``benchmarks/bench_ratelimit.py`` measured both (2-core machine, Redis on loopback):

=====================================  ==============  =======================
per hit, p50 / p99                     moving window   sliding window counter
=====================================  ==============  =======================
in process (``memory://``)             8.5 / 21 us     12.7 / 26 us
over Redis, ``limits`` alone           0.44 / 0.68 ms  0.39 / 0.64 ms
free key offered 300/s, worst second   100             114 to 160 [#]_
=====================================  ==============  =======================

.. [#] depending on where the run starts in a window: 160 when 0.6 s into it.

The costs are alike, and only the moving window keeps every second within 5 % of the
plan, so it is the default.  Over Redis the round trips dominate: ``limits`` takes two
per request (one to count the hit, one to read the window for the headers), and one
round trip of redis-py's asyncio client costs some 0.15 ms here.  So on Redis the
moving window's hit is one Lua script of our own (:data:`HIT_AND_COUNT`) that does both
in one round trip, on the very list ``limits`` keeps (same key, same entries), so
``limits`` still clears, reads and, in process, counts; see ``benchmarks/bench_ratelimit.py``
for its cost against a bare round trip.  What it costs instead
is memory, up to ``limit`` timestamps per busy key (some 20 kB for a paid key in Redis),
and the timestamps come from each server's clock, so servers sharing a Redis must keep
their clocks in step (NTP); the sliding window counter runs on Redis's clock.

Keys
----
Each limit is one Redis key, ``<key_prefix>:LIMITER/<key>/<amount>/1/second``, so it
lives on one Redis Cluster slot; the sliding window counter's two keys are hash-tagged
by ``limits`` itself (``{...}``), so ``key_prefix`` must not contain braces.  Pass an
API key's id (or hash), never its secret.

Failures
--------
A Redis error propagates from :meth:`RateLimiter.hit` (as ``limits.errors.StorageError``):
whether to fail open or closed is the caller's policy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import STRATEGIES
from limits.errors import StorageError
from prometheus_client import Counter

#: Limits per plan name: what one API key may send.
PLANS: Mapping[str, RateLimitItem] = MappingProxyType({
    "free": parse("100/second"),
    "paid": parse("1000/second"),
})

#: Requests refused for being over their plan's limit (served at ``/metrics``), by plan.
REJECTIONS = Counter("ratelimit_rejections", "Requests refused (429) by an API rate limit",
                     ["plan"])

Strategy = Literal["moving-window", "sliding-window-counter"]

#: A moving-window hit and the window's state in one Redis round trip.  KEYS[1] is the
#: list ``limits``' moving window keeps (newest timestamp first, at most ``limit`` long);
#: ARGV: now, limit, window seconds.  Admits the hit as ``limits``' own acquire script
#: does (refused while the ``limit``-th newest entry is still in the window), then finds
#: the oldest entry still in the window by binary search, as its window script does.
#: Answers {1 if admitted else 0, entries in the window, the oldest one's timestamp}.
HIT_AND_COUNT = """
local now, limit, expiry = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = now - expiry
local admitted = 0
local nth = redis.call('lindex', KEYS[1], limit - 1)
if not (nth and tonumber(nth) >= start) then
    redis.call('lpush', KEYS[1], ARGV[1])
    redis.call('ltrim', KEYS[1], 0, limit - 1)
    redis.call('expire', KEYS[1], expiry)
    admitted = 1
end
local low, high, oldest = 0, redis.call('llen', KEYS[1]) - 1, -1
while low <= high do
    local mid = math.floor((low + high) / 2)
    if tonumber(redis.call('lindex', KEYS[1], mid)) >= start then
        oldest, low = mid, mid + 1
    else
        high = mid - 1
    end
end
if oldest < 0 then
    return {admitted, 0, ARGV[1]}
end
return {admitted, oldest + 1, redis.call('lindex', KEYS[1], oldest)}
"""

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
        Seconds until the window frees a request again.
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
    storage : limits.aio.storage.Storage
        Where the counts live; two limiters on one Redis share every key's budget.
    plans : Mapping[str, RateLimitItem]
        Plan name to limit (default :data:`PLANS`).
    strategy : {"moving-window", "sliding-window-counter"}
        How requests are counted (module docstring: why moving window is the default).
    """

    def __init__(self, storage: Storage, plans: Mapping[str, RateLimitItem] = PLANS,
                 strategy: Strategy = "moving-window") -> None:
        if strategy not in ("moving-window", "sliding-window-counter"):
            raise ValueError(f"unknown rate-limit strategy {strategy!r}: use 'moving-window' "
                             "or 'sliding-window-counter'")
        self.storage = storage
        self.plans = plans
        self.strategy = strategy
        self._limiter = STRATEGIES[strategy](storage)
        self._script = None
        if strategy == "moving-window" and isinstance(storage, RedisStorage):
            self._script = storage.bridge.get_connection().register_script(HIT_AND_COUNT)

    @classmethod
    def from_url(cls, url: str | None = None, *, plans: Mapping[str, RateLimitItem] = PLANS,
                 strategy: Strategy = "moving-window", key_prefix: str = "ratelimit",
                 timeout: float = 1.0) -> RateLimiter:
        """A limiter on the storage ``url`` names.

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
        storage: Storage
        if scheme == "memory":
            storage = MemoryStorage(target)
        else:
            kind = RedisClusterStorage if scheme == "redis+cluster" else RedisStorage
            storage = kind(target, wrap_exceptions=True, implementation="redispy",
                           key_prefix=key_prefix, socket_timeout=timeout,
                           socket_connect_timeout=timeout)
        return cls(storage, plans, strategy)

    def plan(self, name: str) -> RateLimitItem:
        """The limit of plan ``name``; ValueError naming the known plans if there is none."""
        try:
            return self.plans[name]
        except KeyError:
            raise ValueError(f"unknown rate-limit plan {name!r}: use one of "
                             f"{', '.join(sorted(self.plans))}") from None

    async def hit(self, key: str, plan: str) -> Decision:
        """Count one request of ``key`` on ``plan`` if its budget allows, and say so."""
        item = self.plan(plan)
        if self._script is not None:
            allowed, remaining, reset_time = await self._hit_in_one_trip(item, key)
        else:
            allowed = await self._limiter.hit(item, key)
            stats = await self._limiter.get_window_stats(item, key)
            remaining, reset_time = stats.remaining, stats.reset_time
        reset_after = max(0.0, reset_time - time.time())
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

    async def _hit_in_one_trip(self, item: RateLimitItem, key: str) -> tuple[bool, int, float]:
        """(admitted, requests left, when the window frees one) by :data:`HIT_AND_COUNT`."""
        assert isinstance(self.storage, RedisStorage) and self._script is not None
        redis_key = self.storage.bridge.prefixed_key(item.key_for(key))
        expiry = item.get_expiry()
        try:
            admitted, count, oldest = await self._script(
                keys=[redis_key], args=[repr(time.time()), item.amount, expiry])
        except self.storage.base_exceptions as error:
            raise StorageError(error) from error
        return bool(admitted), item.amount - int(count), float(oldest) + expiry

    async def clear(self, key: str, plan: str) -> None:
        """Forget ``key``'s requests on ``plan`` (its full budget is back)."""
        await self._limiter.clear(self.plan(plan), key)

    async def close(self) -> None:
        """Close the storage's connections (Redis) or its expiry task (memory)."""
        storage = self.storage
        if isinstance(storage, RedisStorage):
            await storage.bridge.storage.aclose()
        elif isinstance(storage, MemoryStorage):
            await storage.reset()
            if storage.timer is not None:
                storage.timer.cancel()

    async def __aenter__(self) -> RateLimiter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
