"""The account's milestones: found as series are stored, each kept once, and announced.

After every stored batch (an ingestion chunk, a consumed event) :meth:`MilestoneBook.detect`
reads each touched platform series (daily totals) and looks for milestones
(:mod:`.milestones`). A milestone is keyed by its series and its kind without its day
(``spotify/track/ID/streams/threshold:10000``), so:

- re-ingesting a window finds the same keys and stores nothing new;
- a back-fill that reveals an *earlier* first crossing moves the stored day back (the
  milestone stays one row and is not announced again);
- unusual growth within :data:`~.milestones.SAME_EVENT_DAYS` of one already stored for the
  series is the same event (windows read differently may place it a day apart).

Each new milestone is published as the ``analytics.milestone`` event in the transaction
that stores it (developer webhooks carry it); ``recent`` says whether its day (for
growth: its last elevated day) is within ``recent_days`` of today, so a two-year
back-fill does not alert anyone about old news.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from business.analytics import milestones as found_in
from business.analytics.sources.records import SPARSE_METRICS, Point
from business.analytics.store import RUNNING_TOTALS, PointStore

MILESTONE_EVENT = "analytics.milestone"

#: ``await publish(tx, name, payload, account_id=...)`` (``PluginContext.publish``).
Publish = Callable[..., Awaitable[Any]]


class MilestoneNotFound(LookupError):
    """No such milestone or threshold in this account."""


class MilestoneEvent(BaseModel):
    """The ``analytics.milestone`` event: a milestone found in a series."""

    account_id: str
    milestone_id: str
    kind: str
    source: str
    entity_kind: str
    platform_id: str
    entity_id: str
    entity_name: str
    metric: str
    day: date
    value: float
    threshold: float | None
    detail: dict[str, Any]
    recent: bool
    text: str


@dataclass
class Settings:
    """Detection settings (``config.plugins["analytics"]["milestones"]``)."""

    lookback_days: int = 120
    recent_days: int = 3
    min_ratio: float = 1.5
    min_level: float = 10.0
    sensitivity: float = 8.0

    @classmethod
    def from_dict(cls, found: dict[str, Any] | None) -> Settings:
        found = dict(found or {})
        unknown = set(found) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown milestone settings {sorted(unknown)}; known: "
                             f"{sorted(cls.__dataclass_fields__)}")
        return cls(**found)


def describe(row: dict[str, Any]) -> str:
    """One sentence for a person: what happened, where and when."""
    who = row["entity_name"] or row["platform_id"]
    metric = row["metric"].replace("_", " ")
    detail = row["detail"]
    if row["kind"] == found_in.THRESHOLD:
        per = " in a day" if row["metric"] not in RUNNING_TOTALS else ""
        return (f"{who} reached {detail.get('label', row['threshold'])} {metric}{per} on "
                f"{row['source']} ({row['day']}: {row['value']:,.0f})")
    return (f"Unusual growth of {who}'s {metric} on {row['source']} from {row['day']}: "
            f"{detail.get('ratio', 0):.1f}x the level before ({detail.get('baseline', 0):,.0f}"
            f" -> {detail.get('level', 0):,.0f} a day)")


def _row_out(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out.pop("milestone_key", None)
    out["detail"] = json.loads(out["detail"]) if isinstance(out["detail"], str) else \
        out["detail"]
    out["alerted"] = bool(out["alerted"])
    out["text"] = describe(out)
    return out


_SELECT = ("SELECT milestone_id, milestone_key, kind, source, entity_kind, platform_id, "
           "entity_id, entity_name, metric, day, value, threshold, detail, alerted, created_at "
           "FROM analytics_milestones")


#: Audience metrics (``audience_listeners``, ...) arrive as breakdowns by country, city,
#: age or gender that need not cover everyone (YouTube's top 250 countries): a breakdown
#: row is not read for milestones, only a total row is.
AUDIENCE_PREFIX = "audience_"


class MilestoneBook:
    """Milestones and thresholds of every account (always scoped by account)."""

    def __init__(self, db: Any, store: PointStore, *, settings: Settings | None = None,
                 publish: Publish | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.store = store
        self.settings = settings or Settings()
        self.publish = publish
        self.clock = clock or (lambda: datetime.now(UTC))

    # -- thresholds -------------------------------------------------------------------------

    async def thresholds(self, account_id: str) -> list[dict[str, Any]]:
        """The account's own thresholds, by metric and value."""
        return await self.db.fetch(
            "SELECT threshold_id, metric, value, entity_id, created_by, created_at FROM "
            "analytics_thresholds WHERE account_id = ? ORDER BY metric, value, entity_id",
            account_id)

    async def add_threshold(self, account_id: str, metric: str, value: float,
                            entity_id: str = "", by: str = "") -> dict[str, Any]:
        """Add a threshold (adding the same one again answers the stored one)."""
        threshold_id = uuid.uuid4().hex[:16]
        await self.db.execute(
            "INSERT INTO analytics_thresholds (account_id, threshold_id, metric, value, "
            "entity_id, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
            "(account_id, metric, value, entity_id) DO NOTHING", account_id, threshold_id,
            metric, float(value), entity_id, by, time.time())
        row = await self.db.fetchrow(
            "SELECT threshold_id, metric, value, entity_id, created_by, created_at FROM "
            "analytics_thresholds WHERE account_id = ? AND metric = ? AND value = ? AND "
            "entity_id = ?", account_id, metric, float(value), entity_id)
        return dict(row)

    async def remove_threshold(self, account_id: str, threshold_id: str) -> dict[str, Any]:
        """Remove a threshold; the removed one (milestones already found stay)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT threshold_id, metric, value, entity_id, created_by, created_at FROM "
                "analytics_thresholds WHERE account_id = ? AND threshold_id = ?", account_id,
                threshold_id)
            if row is None:
                raise MilestoneNotFound(f"no threshold {threshold_id!r} in this account")
            await tx.execute("DELETE FROM analytics_thresholds WHERE account_id = ? AND "
                             "threshold_id = ?", account_id, threshold_id)
        return dict(row)

    # -- milestones -------------------------------------------------------------------------

    async def list(self, account_id: str, *, kind: str | None = None,
                   entity_id: str | None = None, since: date | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
        """The account's milestones, newest day first."""
        where, args = ["account_id = ?"], [account_id]
        for column, value in (("kind", kind), ("entity_id", entity_id)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("day >= ?")
            args.append(since.isoformat())
        rows = await self.db.fetch(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY day DESC, created_at DESC, "
            f"milestone_id LIMIT {int(limit)}", *args)
        return [_row_out(r) for r in rows]

    async def get(self, account_id: str, milestone_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow(f"{_SELECT} WHERE account_id = ? AND milestone_id = ?",
                                     account_id, milestone_id)
        if row is None:
            raise MilestoneNotFound(f"no milestone {milestone_id!r} in this account")
        return _row_out(row)

    async def mark_alerted(self, account_id: str, milestone_ids: Sequence[str]) -> None:
        async with self.db.transaction() as tx:
            for milestone_id in milestone_ids:
                await tx.execute("UPDATE analytics_milestones SET alerted = 1 WHERE "
                                 "account_id = ? AND milestone_id = ?", account_id,
                                 milestone_id)

    async def detect(self, account_id: str, points: Sequence[Point],
                     grain: str = "daily") -> list[dict[str, Any]]:
        """Look for milestones in every series ``points`` touched (daily, or hourly: see
        :mod:`.milestones`, "within the hour"); the new ones."""
        if grain not in ("daily", "hourly") or not points:
            return []
        touched: dict[tuple[str, str, str, str], list[date]] = {}
        for p in points:
            if p.metric in SPARSE_METRICS:
                continue  # a place on a playlist is no count; playlists: see playlists.py
            if p.dimensions and p.metric.startswith(AUDIENCE_PREFIX):
                continue  # only a breakdown (listeners by country, ...): not a count to trust
            day = p.at.astimezone(UTC).date() if isinstance(p.at, datetime) else p.at
            touched.setdefault((p.source, p.entity_kind, p.entity_id, p.metric), []).append(day)
        thresholds = await self.thresholds(account_id)
        new: list[dict[str, Any]] = []
        for (source, kind, platform_id, metric), days in sorted(touched.items()):
            new += await self._detect_series(account_id, source, kind, platform_id, metric,
                                             min(days), max(days), thresholds, grain)
        return new

    async def _detect_series(self, account_id: str, source: str, kind: str, platform_id: str,
                             metric: str, first: date, last: date,
                             thresholds: list[dict[str, Any]],
                             grain: str = "daily") -> list[dict[str, Any]]:
        # the whole stored series: a batch older than what is stored (a back-fill) can
        # complete a crossing whose later side was stored first
        platform = (source, kind, platform_id)
        series = (await self.store.series(account_id, metric=metric,
                                          platform=platform))["total"]
        daily = {datetime.fromtimestamp(p.at, UTC).date(): p.value for p in series}
        hourly: list[tuple[datetime, float]] = []
        if grain == "hourly":
            hourly = [(datetime.fromtimestamp(p.at, UTC), p.value) for p in (
                await self.store.series(account_id, metric=metric, grain="hourly",
                                        platform=platform))["total"]]
        if not daily and not hourly:
            return []
        link = await self.db.fetchrow(
            "SELECT l.entity_id AS entity_id, e.name AS name FROM analytics_links l LEFT JOIN "
            "analytics_entities e ON e.account_id = l.account_id AND e.entity_id = "
            "l.entity_id WHERE l.account_id = ? AND l.source = ? AND l.platform_kind = ? AND "
            "l.platform_id = ?", account_id, source, kind, platform_id)
        entity_id = link["entity_id"] if link else ""
        entity_name = (link["name"] or "") if link else ""
        mine = [float(t["value"]) for t in thresholds
                if t["metric"] == metric and t["entity_id"] in ("", entity_id)]
        levels = (*found_in.ROUND_THRESHOLDS, *mine)
        running = metric in RUNNING_TOTALS
        if grain == "hourly":
            found = found_in.hourly_crossings(daily, hourly, levels, running)
            if not running:
                daily = found_in.whole_days(daily, hourly)
        else:
            found = found_in.crossings(list(daily), list(daily.values()), levels)
        days, values = list(daily), list(daily.values())
        if not running and days:
            low = first - timedelta(days=self.settings.lookback_days)
            high = last + timedelta(days=self.settings.lookback_days)
            window = [i for i in found_in.contiguous(days, first, last)
                      if low <= days[i] <= high]
            s = self.settings
            found += found_in.unusual_growth(
                [days[i] for i in window], [values[i] for i in window],
                min_ratio=s.min_ratio, min_level=s.min_level, sensitivity=s.sensitivity)
        if not found:
            return []
        series_key = f"{source}/{kind}/{platform_id}/{metric}"
        base = {"source": source, "entity_kind": kind, "platform_id": platform_id,
                "entity_id": entity_id, "entity_name": entity_name, "metric": metric}
        return await self._keep(account_id, series_key, base, found)

    async def _keep(self, account_id: str, series_key: str, base: dict[str, Any],
                    found: list[found_in.Found]) -> list[dict[str, Any]]:
        recent_from = self.clock().astimezone(UTC).date() - timedelta(
            days=self.settings.recent_days)
        new: list[dict[str, Any]] = []
        async with self.db.transaction() as tx:
            stored = {r["milestone_key"]: r for r in await tx.fetch(
                "SELECT milestone_key, milestone_id, kind, day FROM analytics_milestones "
                "WHERE account_id = ? AND source = ? AND entity_kind = ? AND platform_id = ? "
                "AND metric = ?", account_id, base["source"], base["entity_kind"],
                base["platform_id"], base["metric"])}
            growth_days = [date.fromisoformat(r["day"]) for r in stored.values()
                           if r["kind"] == found_in.UNUSUAL_GROWTH]
            for item in found:
                key = f"{series_key}/{item.key}"
                old = stored.get(key)
                if old is not None:
                    if item.kind == found_in.THRESHOLD and item.day < date.fromisoformat(
                            old["day"]):
                        await tx.execute(
                            "UPDATE analytics_milestones SET day = ?, value = ?, detail = ? "
                            "WHERE account_id = ? AND milestone_id = ?", item.day.isoformat(),
                            item.value, json.dumps(item.detail), account_id,
                            old["milestone_id"])
                    continue
                if item.kind == found_in.UNUSUAL_GROWTH and any(
                        abs((item.day - d).days) <= found_in.SAME_EVENT_DAYS
                        for d in growth_days):
                    continue
                row = {**base, "milestone_id": uuid.uuid4().hex[:20], "kind": item.kind,
                       "day": item.day.isoformat(), "value": item.value,
                       "threshold": item.threshold, "detail": item.detail, "alerted": 0,
                       "created_at": time.time()}
                await tx.execute(
                    "INSERT INTO analytics_milestones (account_id, milestone_id, milestone_key, "
                    "kind, source, entity_kind, platform_id, entity_id, entity_name, metric, "
                    "day, value, threshold, detail, alerted, created_at) VALUES (?, ?, ?, ?, ?, "
                    "?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)", account_id, row["milestone_id"], key,
                    item.kind, base["source"], base["entity_kind"], base["platform_id"],
                    base["entity_id"], base["entity_name"], base["metric"], row["day"],
                    item.value, item.threshold, json.dumps(item.detail), row["created_at"])
                stored[key] = {"milestone_id": row["milestone_id"], "kind": item.kind,
                               "day": row["day"]}
                if item.kind == found_in.UNUSUAL_GROWTH:
                    growth_days.append(item.day)
                out = _row_out(row)
                # growth is recent while its evidence is (its last elevated day)
                seen = date.fromisoformat(item.detail.get("last_day", row["day"]))
                out["recent"] = seen >= recent_from
                if self.publish is not None:
                    await self.publish(tx, MILESTONE_EVENT, MilestoneEvent(
                        account_id=account_id, **{k: out[k] for k in MilestoneEvent.model_fields
                                                  if k != "account_id"}),
                        account_id=account_id)
                new.append(out)
        return new
