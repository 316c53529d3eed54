"""The account's time-series points: upserted, queried, and their growth.

A point is keyed by ``(account_id, source, entity_kind, entity_id, metric, grain,
dimensions, at)``; writing it again overwrites its value (``ON CONFLICT ... DO UPDATE``),
so fetching a window twice, or two workers fetching the same one, never counts twice.
``at`` is epoch seconds UTC (midnight for daily grain), ``dimensions`` the sorted pairs
as JSON (``''``: the total). Series are read per catalogue entity (every platform id
linked to it, summed across sources) or per platform id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from business.analytics.freshness import observe
from business.analytics.partitions import Partitions
from business.analytics.sources.records import Dimensions, Point

GRAINS = ("daily", "hourly")
GROWTH_DAYS = (7, 28, 90)
#: Metrics that are running totals (followers to date): growth compares two readings;
#: the others are flows (streams per day): growth compares two periods' sums.
RUNNING_TOTALS = frozenset({
    "followers", "followers_count", "follower_count", "subscribers", "listeners_total",
    "playcount", "listeners", "playback", "likes_total", "in_collection", "in_wantlist",
    "rank", "rating_votes", "favorites", "presaves", "page_follows", "view_count",
    "pageviews", "playlist_followers"})
BATCH = 500
_COLUMNS = ("account_id, source, entity_kind, entity_id, metric, grain, dimensions, at, "
            "value, fetched_at, stored_at")
#: A series' totals: its total row, or where a source reports only breakdowns (Shazam
#: by country), its breakdown rows (:func:`one_breakdown` keeps one dimension's).
_TOTALS = ("(p.dimensions = '' OR NOT EXISTS (SELECT 1 FROM analytics_points t WHERE "
           "t.account_id = p.account_id AND t.source = p.source AND t.entity_kind = "
           "p.entity_kind AND t.entity_id = p.entity_id AND t.metric = p.metric AND "
           "t.grain = p.grain AND t.dimensions = '' AND t.at = p.at))")
_ROW = ("p.source AS source, p.entity_kind AS entity_kind, p.entity_id AS entity_id, "
        "p.dimensions AS dimensions, p.at AS at, p.value AS value")
UPSERT = (f"INSERT INTO analytics_points ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (account_id, source, entity_kind, entity_id, metric, grain, dimensions, "
          "at) DO UPDATE SET value = excluded.value, fetched_at = excluded.fetched_at, "
          "stored_at = excluded.stored_at")


def encode_dimensions(dimensions: Dimensions) -> str:
    """Sorted pairs as compact JSON; ``''`` for none (the total)."""
    if not dimensions:
        return ""
    return json.dumps(sorted([list(pair) for pair in dimensions]), separators=(",", ":"))


def decode_dimensions(text: str) -> Dimensions:
    return tuple((str(k), str(v)) for k, v in json.loads(text)) if text else ()


def epoch(moment: datetime | date) -> int:
    """Epoch seconds of a UTC moment (a date: its midnight)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def one_breakdown(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of series totals (``source``, ``entity_kind``, ``entity_id``, ``at``,
    ``dimensions``): a total row as it is; where a platform id has only breakdown rows at
    a time, those of its first dimension by name only, since each breakdown adds up to the
    same figure (Spotify's listeners by age, city, country and gender)."""
    names: dict[str, tuple[str, ...]] = {}
    first: dict[tuple[Any, ...], tuple[str, ...]] = {}
    for row in rows:
        if row["dimensions"]:
            text = row["dimensions"]
            if text not in names:
                names[text] = tuple(name for name, _ in decode_dimensions(text))
            key = (row["source"], row["entity_kind"], row["entity_id"], row["at"])
            first[key] = min(first.get(key, names[text]), names[text])
    return [row for row in rows if not row["dimensions"] or names[row["dimensions"]]
            == first[(row["source"], row["entity_kind"], row["entity_id"], row["at"])]]


@dataclass(frozen=True)
class Stored:
    """What one upsert did: rows written, and when they were fetched and queryable."""

    points: int
    fetched_at: float
    queryable_at: float


@dataclass(frozen=True)
class SeriesPoint:
    at: int
    value: float


class PointStore:
    """Points of every account in the shared database (always scoped by account)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.partitions = Partitions(db)

    async def upsert(self, account_id: str, points: Sequence[Point], *, grain: str = "daily",
                     fetched_at: float | None = None, source: str | None = None) -> Stored:
        """Write ``points`` of ``account_id`` (overwriting the same keys); freshness is
        recorded per source and exported."""
        if grain not in GRAINS:
            raise ValueError(f"grain {grain!r} is not one of {GRAINS}")
        fetched_at = time.time() if fetched_at is None else fetched_at
        for p in points:
            if p.value < 0:
                raise ValueError(f"{p.source} {p.entity_id} {p.metric}: a negative count "
                                 f"({p.value}) is not stored")
        rows = [(account_id, p.source, p.entity_kind, p.entity_id, p.metric, grain,
                 encode_dimensions(p.dimensions), epoch(p.at), float(p.value), fetched_at,
                 0.0) for p in points]
        await self.partitions.ensure_for(r[7] for r in rows)
        sources = {r[1] for r in rows} or ({source} if source else set())
        stored_at = time.time()
        async with self.db.transaction() as tx:
            for first in range(0, len(rows), BATCH):
                chunk = [(*r[:10], stored_at) for r in rows[first:first + BATCH]]
                await tx.executemany(UPSERT, chunk)
            for name in sources:
                await tx.execute(
                    "INSERT INTO analytics_freshness (account_id, source, fetched_at, "
                    "queryable_at, points) VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, "
                    "source) DO UPDATE SET fetched_at = excluded.fetched_at, queryable_at = "
                    "excluded.queryable_at, points = excluded.points", account_id, name,
                    fetched_at, stored_at, sum(1 for r in rows if r[1] == name))
        queryable_at = time.time()
        for name in sources:
            observe(name, fetched_at, queryable_at)
        return Stored(len(rows), fetched_at, queryable_at)

    async def freshness(self, account_id: str) -> list[dict[str, Any]]:
        """Per source: when its last batch was fetched and when it became queryable."""
        rows = await self.db.fetch(
            "SELECT source, fetched_at, queryable_at, points FROM analytics_freshness "
            "WHERE account_id = ? ORDER BY source", account_id)
        return [{**r, "lag_s": max(0.0, r["queryable_at"] - r["fetched_at"])} for r in rows]

    async def count(self, account_id: str, source: str | None = None) -> int:
        """How many points ``account_id`` holds (of ``source``)."""
        if source is None:
            return int(await self.db.fetchval(
                "SELECT COUNT(*) FROM analytics_points WHERE account_id = ?", account_id))
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM analytics_points WHERE account_id = ? AND source = ?",
            account_id, source))

    async def rows(self, account_id: str, *, source: str | None = None,
                   metric: str | None = None) -> list[dict[str, Any]]:
        """The account's raw points (tests, exports), ordered by key."""
        where, args = ["account_id = ?"], [account_id]
        for column, value in (("source", source), ("metric", metric)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        return await self.db.fetch(
            f"SELECT {_COLUMNS} FROM analytics_points WHERE {' AND '.join(where)} ORDER BY "
            "source, entity_kind, entity_id, metric, grain, dimensions, at", *args)

    async def series(self, account_id: str, *, metric: str, grain: str = "daily",
                     entity_id: str | None = None,
                     platform: tuple[str, str, str] | None = None,
                     start: datetime | date | None = None, end: datetime | date | None = None,
                     by_source: bool = False) -> dict[str, list[SeriesPoint]]:
        """One metric's series of a catalogue entity (``entity_id``: every platform id
        linked to it, summed per time) or of one ``platform`` id (source, kind, id);
        totals (a source's total rows, or where it gives only breakdowns, the sum of one
        of them: :func:`one_breakdown`). ``{"total": [...]}``, plus one per source."""
        if (entity_id is None) == (platform is None):
            raise ValueError("name either a catalogue entity or a platform id")
        low = epoch(start) if start is not None else 0
        high = epoch(end) if end is not None else 2**62
        if isinstance(end, date) and not isinstance(end, datetime):
            high += 86399
        args: list[Any] = [account_id, metric, grain, low, high]
        if entity_id is not None:
            # links first (SQLite keeps a CROSS JOIN's order): an entity's few platform
            # ids, then each one's points by the primary key (``+p.at``: not by the
            # account's time index, which would read every series of the account)
            sql = (f"SELECT {_ROW} FROM analytics_links l CROSS JOIN analytics_points p "
                   "WHERE l.account_id = "
                   "p.account_id AND l.source = p.source AND l.platform_kind = p.entity_kind "
                   "AND l.platform_id = p.entity_id AND p.account_id = ? AND p.metric = ? "
                   f"AND p.grain = ? AND {_TOTALS} AND +p.at >= ? AND +p.at <= ? "
                   "AND l.entity_id = ? ORDER BY p.at")
            args.append(entity_id)
        else:
            sql = (f"SELECT {_ROW} FROM analytics_points p WHERE p.account_id = ? AND "
                   "p.metric = ? AND "
                   f"p.grain = ? AND {_TOTALS} AND +p.at >= ? AND +p.at <= ? AND p.source = ? "
                   "AND p.entity_kind = ? AND p.entity_id = ? ORDER BY p.at")
            args.extend(platform)  # type: ignore[arg-type]
        rows = one_breakdown(await self.db.fetch(sql, *args))
        total: dict[int, float] = {}
        per_source: dict[str, dict[int, float]] = {}
        for row in rows:
            at, value = int(row["at"]), float(row["value"])
            total[at] = total.get(at, 0.0) + value
            mine = per_source.setdefault(row["source"], {})
            mine[at] = mine.get(at, 0.0) + value
        out = {"total": [SeriesPoint(at, v) for at, v in sorted(total.items())]}
        if by_source:
            out.update({source: [SeriesPoint(at, v) for at, v in sorted(values.items())]
                        for source, values in per_source.items()})
        return out


def growth(metric: str, points: Sequence[SeriesPoint], until: date,
           windows: Iterable[int] = GROWTH_DAYS) -> dict[str, dict[str, float | None]]:
    """Growth over each window ending on ``until`` (inclusive), per the metric's nature.

    A running total compares its reading on ``until`` with the one ``n`` days before; a
    flow compares the sum of the last ``n`` days with the ``n`` days before them.
    ``change`` is the relative change (None when the earlier figure is 0 or missing).
    Points finer than a day (hourly grain) are taken per UTC day: a flow's hours summed,
    a running total's last reading of the day.
    """
    by_day: dict[date, float] = {}
    for p in sorted(points, key=lambda p: p.at):
        day = datetime.fromtimestamp(p.at, UTC).date()
        if metric in RUNNING_TOTALS:
            by_day[day] = p.value
        else:
            by_day[day] = by_day.get(day, 0.0) + p.value
    out: dict[str, dict[str, float | None]] = {}
    for n in windows:
        if metric in RUNNING_TOTALS:
            current = by_day.get(until)
            previous = by_day.get(until - timedelta(days=n))
        else:
            days = [until - timedelta(days=i) for i in range(n)]
            before = [until - timedelta(days=n + i) for i in range(n)]
            current = sum(by_day.get(d, 0.0) for d in days) if any(d in by_day for d in days) \
                else None
            previous = sum(by_day.get(d, 0.0) for d in before) \
                if any(d in by_day for d in before) else None
        change = None
        if current is not None and previous:
            change = (current - previous) / previous
        out[f"{n}d"] = {"current": current, "previous": previous, "change": change}
    return out
