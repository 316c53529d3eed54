"""``api_usage`` and ``api_usage_latency``: each API key's usage per UTC day.

Writes are additive upserts (``requests = requests + excluded.requests``), so every
server process flushes its own tallies into the same rows without reading them first
and without losing another's. Every read names the account.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from database import Database

from .histogram import BUCKETS, quantile


def day_of(at: float) -> str:
    """The UTC day of Unix time ``at``, ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(at, dt.UTC).date().isoformat()


@dataclass
class Tally:
    """What one key did on one day in one process since the last flush (or in all)."""

    requests: int = 0
    errors: int = 0
    rejected: int = 0
    latency_ms_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def merge(self, other: Tally) -> None:
        """Add ``other`` to this tally."""
        self.requests += other.requests
        self.errors += other.errors
        self.rejected += other.rejected
        self.latency_ms_sum += other.latency_ms_sum
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile of latency in milliseconds (None: no requests)."""
        return quantile(self.buckets, q)


#: (account id, key id, day) of a tally.
UsageKey = tuple[str, str, str]

_ADD = ("INSERT INTO api_usage (account_id, key_id, day, requests, errors, rejected, "
        "latency_ms_sum) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, key_id, day) "
        "DO UPDATE SET requests = api_usage.requests + excluded.requests, "
        "errors = api_usage.errors + excluded.errors, "
        "rejected = api_usage.rejected + excluded.rejected, "
        "latency_ms_sum = api_usage.latency_ms_sum + excluded.latency_ms_sum")
_ADD_BUCKET = ("INSERT INTO api_usage_latency (account_id, key_id, day, bucket, count) "
               "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, key_id, day, bucket) "
               "DO UPDATE SET count = api_usage_latency.count + excluded.count")


class UsageStore:
    """Reads and additive writes of the usage tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, tallies: Mapping[UsageKey, Tally]) -> None:
        """Add ``tallies`` to the stored days, in one transaction."""
        if not tallies:
            return
        totals = [(a, k, d, t.requests, t.errors, t.rejected, t.latency_ms_sum)
                  for (a, k, d), t in tallies.items()]
        buckets = [(a, k, d, index, count) for (a, k, d), t in tallies.items()
                   for index, count in enumerate(t.buckets) if count]
        async with self.db.transaction() as tx:
            await tx.executemany(_ADD, totals)
            if buckets:
                await tx.executemany(_ADD_BUCKET, buckets)

    async def days(self, account_id: str, key_ids: Iterable[str], since: str
                   ) -> dict[tuple[str, str], Tally]:
        """``{(key id, day): tally}`` of the account's keys ``key_ids`` from day ``since``."""
        wanted = set(key_ids)
        found: dict[tuple[str, str], Tally] = {}
        for row in await self.db.fetch(
                "SELECT key_id, day, requests, errors, rejected, latency_ms_sum FROM api_usage "
                "WHERE account_id = ? AND day >= ? ORDER BY day, key_id", account_id, since):
            if row["key_id"] in wanted:
                found[(row["key_id"], row["day"])] = Tally(
                    int(row["requests"]), int(row["errors"]), int(row["rejected"]),
                    float(row["latency_ms_sum"]))
        for row in await self.db.fetch(
                "SELECT key_id, day, bucket, count FROM api_usage_latency WHERE account_id = ? "
                "AND day >= ?", account_id, since):
            tally = found.get((row["key_id"], row["day"]))
            if tally is not None and 0 <= int(row["bucket"]) < BUCKETS:
                tally.buckets[int(row["bucket"])] += int(row["count"])
        return found

    async def forget_account(self, account_id: str) -> None:
        """Delete every usage row of ``account_id`` (an erased person)."""
        async with self.db.transaction() as tx:
            for table in ("api_usage", "api_usage_latency"):
                await tx.execute(f"DELETE FROM {table} WHERE account_id = ?",  # noqa: S608
                                 account_id)
