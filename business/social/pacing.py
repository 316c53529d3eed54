"""Pacing: how fast dispatch may publish, per channel and per network, and the networks'
publishing quotas.

Two rules keep a backlog (after an outage, after a worker was down) from bursting onto
a network:

- **Burst limits** are moving windows of the `limits <https://limits.readthedocs.io>`_
  library: ``channel`` limits apply to each channel, ``network`` limits to all channels
  of one network together (e.g. ``"3/second;30/minute"``). A publish attempt takes one
  hit of each; when one is full, :meth:`Pacer.take` answers how long until it frees and
  takes nothing. The storage is ``memory://`` (each server process paces on its own)
  or a Redis URL (every process shares the windows).
- **Publishing quotas** the networks report (:meth:`Connector.quota`: Instagram's and
  Threads' rolling 24 h limits, YouTube's daily units) are read per channel at most
  every ``quota_check_s`` and counted down locally in between; a channel whose quota is
  spent waits until it frees (``resets_at``). X and Bluesky report only the last call's
  rate-limit headers, which the connector shares among channels, so they are not read
  here; their 429s carry ``Retry-After``, which dispatch honours. A network's answer
  that a quota is spent (``QuotaExhausted``: also TikTok's daily cap, X's usage cap)
  holds all of the channel's posts until it frees (:meth:`Pacer.spent`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter as SyncMovingWindow

from business.social.networks.base import Quota

#: Networks whose ``quota()`` is a publishing quota of the channel (or the app) worth
#: checking before each post.
QUOTA_NETWORKS = frozenset({"instagram", "threads", "youtube"})
#: Units one YouTube upload costs (videos.insert), the rest of the networks count posts.
COST = {"youtube": 1600}

_SCHEMES = {"memory": "async+memory", "redis": "async+redis", "rediss": "async+rediss",
            "redis+cluster": "async+redis+cluster"}


def _limits(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text)) if text else ()


@dataclass(frozen=True)
class PaceRules:
    """The burst limits of one network: per channel, and for all its channels together."""

    channel: tuple[RateLimitItem, ...]
    network: tuple[RateLimitItem, ...]


class Pacer:
    """Burst limits per channel and network, and the networks' quotas per channel."""

    def __init__(self, *, channel: str = "6/minute", network: str = "50/second",
                 per_network: Mapping[str, Mapping[str, str]] | None = None,
                 storage_url: str = "memory://", key_prefix: str = "social-pace",
                 quota_check_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        scheme, sep, rest = storage_url.partition("://")
        if scheme not in _SCHEMES or not sep:
            raise ValueError(f"pacing storage {storage_url!r} is not memory:// or a Redis "
                             "URL (redis://host:6379)")
        self._local: SyncMovingWindow | None = None
        if scheme == "memory":
            # limits' async memory backend hops to a thread once per key on every expiry
            # pass (a thousand channels: a thousand hops, many times a second); the
            # synchronous one never blocks, so it is called directly
            self.storage = storage_from_string("memory://")
            self._local = SyncMovingWindow(self.storage)
        else:
            # redis-py (installed and used by the server), not limits' default coredis
            self.storage = storage_from_string(f"{_SCHEMES[scheme]}://{rest}",
                                               key_prefix=key_prefix, implementation="redispy")
            self.limiter = MovingWindowRateLimiter(self.storage)
        self.default = PaceRules(_limits(channel), _limits(network))
        self.rules = {name: PaceRules(_limits(rules.get("channel", channel)),
                                      _limits(rules.get("network", network)))
                      for name, rules in (per_network or {}).items()}
        self.quota_check_s = quota_check_s
        self.clock = clock
        self._quotas: dict[tuple[str, str], tuple[Quota, float]] = {}
        self._quota_locks: dict[tuple[str, str], asyncio.Lock] = {}

    def rules_for(self, network: str) -> PaceRules:
        """The burst limits ``network`` is held to."""
        return self.rules.get(network, self.default)

    # -- burst limits ------------------------------------------------------------------

    async def take(self, network: str, channel_key: str) -> float:
        """Take one publish slot of the channel and of its network: 0.0, or the seconds
        until the fullest window frees a slot (then nothing was taken)."""
        rules = self.rules_for(network)
        checks = [(item, ("channel", channel_key)) for item in rules.channel]
        checks += [(item, ("network", network)) for item in rules.network]
        wait = await self._wait(checks)
        if wait > 0:
            return wait
        for item, ids in checks:
            if not await self._hit(item, ids):
                # another task took the slot meanwhile; hits already taken stay taken
                # (a moving window cannot give one back), which only paces more slowly
                return max(await self._wait(checks), 0.01)
        return 0.0

    async def _wait(self, checks: list[tuple[RateLimitItem, tuple[str, str]]]) -> float:
        now, wait = self.clock(), 0.0
        for item, ids in checks:
            if not await self._test(item, ids):
                stats = await self._stats(item, ids)
                wait = max(wait, stats.reset_time - now, 0.01)
        return wait

    async def _hit(self, item: RateLimitItem, ids: tuple[str, str]) -> bool:
        if self._local is not None:
            return self._local.hit(item, *ids)
        return await self.limiter.hit(item, *ids)

    async def _test(self, item: RateLimitItem, ids: tuple[str, str]) -> bool:
        if self._local is not None:
            return self._local.test(item, *ids)
        return await self.limiter.test(item, *ids)

    async def _stats(self, item: RateLimitItem, ids: tuple[str, str]) -> Any:
        if self._local is not None:
            return self._local.get_window_stats(item, *ids)
        return await self.limiter.get_window_stats(item, *ids)

    # -- quotas ------------------------------------------------------------------------

    async def quota_wait(self, network: str, channel_key: str, connector: Any, token: str
                         ) -> tuple[float, Quota | None]:
        """Reserve one post of the channel's quota: (0.0, quota), or (seconds until it
        frees, quota) when it is spent. Networks outside :data:`QUOTA_NETWORKS` report no
        quota: (0, None), unless the network answered that it is spent (:meth:`spent`):
        then the wait it set, so that no other post of the channel is sent into it."""
        key = (network, channel_key)
        if network not in QUOTA_NETWORKS:
            return self._spent_wait(key)
        async with self._quota_locks.setdefault(key, asyncio.Lock()):
            return await self._quota_wait(key, connector, token)

    async def _quota_wait(self, key: tuple[str, str], connector: Any, token: str
                          ) -> tuple[float, Quota | None]:
        network = key[0]
        now = self.clock()
        cached = self._quotas.get(key)
        if cached is None or now - cached[1] >= self.quota_check_s or (
                cached[0].left <= 0 and cached[0].resets_at <= now):
            quota = await connector.quota(token)
            if quota is None:
                return 0.0, None
            cached = (quota, now)
        quota, read_at = cached
        cost = COST.get(network, 1)
        if quota.left < cost:
            self._quotas[key] = cached
            return max(quota.resets_at - now, 1.0), quota
        self._quotas[key] = (Quota(quota.used + cost, quota.limit, quota.resets_at), read_at)
        return 0.0, quota

    def _spent_wait(self, key: tuple[str, str]) -> tuple[float, Quota | None]:
        """The wait :meth:`spent` set for a network that reports no quota: (seconds
        until it frees, quota), or (0, None) once it freed or when none was set."""
        cached = self._quotas.get(key)
        now = self.clock()
        if cached is None or cached[0].left > 0 or cached[0].resets_at <= now:
            self._quotas.pop(key, None)
            return 0.0, None
        return cached[0].resets_at - now, cached[0]

    def give_back(self, network: str, channel_key: str) -> None:
        """Return a reserved post of the quota (the attempt did not publish); networks
        outside :data:`QUOTA_NETWORKS` reserve nothing."""
        if network not in QUOTA_NETWORKS:
            return
        cached = self._quotas.get((network, channel_key))
        if cached is not None:
            quota, read_at = cached
            used = max(0, quota.used - COST.get(network, 1))
            self._quotas[(network, channel_key)] = (Quota(used, quota.limit, quota.resets_at),
                                                    read_at)

    def spent(self, network: str, channel_key: str, retry_after: float | None) -> None:
        """The network said the quota is spent: wait ``retry_after`` (or a day)."""
        frees = self.clock() + (retry_after if retry_after and math.isfinite(retry_after)
                                else 86_400.0)
        cached = self._quotas.get((network, channel_key))
        limit = cached[0].limit if cached else 1
        self._quotas[(network, channel_key)] = (Quota(limit, limit, frees), self.clock())
