"""Bounds on visitor carts: how fast one client may start them, and how long they live.

Anyone may start a visitor cart (``POST /store/{handle}/cart`` without the cookie), so
a client that drops the cookie on every post would write rows without end. Two bounds:

- :class:`NewCartLimiter`: one client address (an IPv4 address, or the /64 network of
  an IPv6 one, which a host rotates within freely) may start ``per_minute`` visitor carts
  a minute (this server's count, a moving window); past it the form answers 429 with
  ``Retry-After``. Posts that carry a valid cookie are not counted.
- :func:`purge_stale`: visitor carts whose newest line is older than ``max_age_s`` are
  deleted (the checkout sweeper runs it); the cookie itself lives as long by default.
"""

from __future__ import annotations

import time
from typing import Any

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from dawserver.plugin_api import limited_client

#: Visitor cart owners start with this (``visitor:<id>``).
VISITOR_PREFIX = "visitor:"


class TooManyNewCarts(Exception):
    """A client started too many visitor carts this minute; ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NewCartLimiter:
    """How many visitor carts one client may start a minute."""

    def __init__(self, per_minute: int = 20) -> None:
        if per_minute < 1:
            raise ValueError("visitor_carts_per_minute must be at least 1")
        self.item = RateLimitItemPerMinute(per_minute)
        self._window = MovingWindowRateLimiter(MemoryStorage())

    async def start(self, address: str) -> None:
        """Count one new visitor cart of ``address``; :class:`TooManyNewCarts` past the
        limit (nothing counted then)."""
        client = limited_client(address)
        if not await self._window.hit(self.item, client):
            stats = await self._window.get_window_stats(self.item, client)
            raise TooManyNewCarts("too many new carts from this address: keep the cart "
                                  "cookie, or wait a minute",
                                  max(1, int(stats.reset_time - time.time()) + 1))


async def purge_stale(db: Any, max_age_s: float, now: float | None = None) -> int:
    """Delete the visitor carts (every store's) whose newest line was added more than
    ``max_age_s`` ago; how many lines went."""
    cutoff = (time.time() if now is None else now) - max_age_s
    stale = await db.fetch(
        "SELECT account_id, owner FROM mkt_cart_items WHERE owner LIKE ? "
        "GROUP BY account_id, owner HAVING MAX(added_at) < ?", f"{VISITOR_PREFIX}%", cutoff)
    gone = 0
    for row in stale:
        async with db.transaction() as tx:
            gone += int(await tx.fetchval(
                "SELECT COUNT(*) FROM mkt_cart_items WHERE account_id = ? AND owner = ? "
                "AND added_at < ?", row["account_id"], row["owner"], cutoff) or 0)
            await tx.execute("DELETE FROM mkt_cart_items WHERE account_id = ? AND owner = ? "
                             "AND added_at < ?", row["account_id"], row["owner"], cutoff)
    return gone
