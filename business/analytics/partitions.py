"""Monthly range partitions of ``analytics_points`` on PostgreSQL.

The migration makes the partitioned parent only (so both dialects have the same tables
after the migrations); :class:`Partitions` makes ``analytics_points_YYYYMM`` partitions:
``ensure_ahead`` from the plug-in's maintenance step (this month and the next few) and
``ensure_for`` before a write into months without one (a back-fill of last year). On
Citus, a partition of a distributed table is distributed with it. SQLite keeps one
plain table and every call here does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from dawserver.plugin_api import PluginError

log = logging.getLogger(__name__)

PARENT = "analytics_points"


def month_of(epoch_s: int) -> tuple[int, int]:
    """(year, month) of an epoch second, UTC."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.year, moment.month


def month_bounds(year: int, month: int) -> tuple[int, int]:
    """The epoch seconds a month's partition holds: [first, next month's first)."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def partition_name(year: int, month: int) -> str:
    return f"{PARENT}_{year:04d}{month:02d}"


class Partitions:
    """Makes the monthly partitions a write needs (PostgreSQL only)."""

    def __init__(self, db: object) -> None:
        self.db = db
        self.active = getattr(db, "dialect", "sqlite") == "postgresql"
        self._known: set[tuple[int, int]] = set()

    async def existing(self) -> list[str]:
        """The partitions of ``analytics_points`` in the current schema."""
        if not self.active:
            return []
        rows = await self.db.fetch(  # type: ignore[attr-defined]
            "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n "
            "ON n.oid = p.relnamespace WHERE p.relname = ? AND n.nspname = current_schema() "
            "ORDER BY c.relname", PARENT)
        return [row["name"] for row in rows]

    async def ensure_for(self, epochs: Iterable[int]) -> list[str]:
        """Make the partitions of every month ``epochs`` fall in; the names made now."""
        if not self.active:
            return []
        made = []
        for year, month in sorted({month_of(e) for e in epochs} - self._known):
            if await self._make(year, month):
                made.append(partition_name(year, month))
            self._known.add((year, month))
        return made

    async def ensure_ahead(self, now: datetime, months: int = 3) -> list[str]:
        """The maintenance step: this month's partition and the next ``months``."""
        year, month, wanted = now.year, now.month, []
        for _ in range(months + 1):
            wanted.append(month_bounds(year, month)[0])
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return await self.ensure_for(wanted)

    async def _make(self, year: int, month: int) -> bool:
        low, high = month_bounds(year, month)
        name = partition_name(year, month)
        if name in await self.existing():
            return False
        try:
            await self.db.execute(  # type: ignore[attr-defined]
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} "
                f"FOR VALUES FROM ({low}) TO ({high})")
        except Exception as exc:  # another process made it between the check and here
            if name in await self.existing():
                return False
            raise PluginError(f"cannot make partition {name} of {PARENT}: {exc}") from exc
        log.info("made partition %s", name)
        return True
