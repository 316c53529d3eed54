"""Saved custom dashboards: each person's own, or shared with the team, and their widgets'
figures.

A dashboard belongs to the account and to the person who made it (``owner``). It is seen
by its owner and, once shared (the ``analytics.share`` permission), by everyone who may
read the account's analytics; only its owner changes or deletes it. Anyone else's
unshared dashboard, and any dashboard of another account, answers as missing (404).

A widget's figures (:meth:`Dashboards.widget_data`) are a metric's daily series of its
entities (the widget's own, else the dashboard's filter), from the point store, split by
source or by entity, as rows ``[day, entity_id, entity_name, source, value]`` (``source``
``*`` where the split is by entity: the platforms summed).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from business.analytics.dashboard_schemas import DashboardIn, Filters, Widget
from business.analytics.store import PointStore

COLUMNS = ["day", "entity_id", "entity_name", "source", "value"]
ALL_SOURCES = "*"


class DashboardNotFound(LookupError):
    """No such dashboard that this person may see, or no such widget on it."""


class NotTheOwner(PermissionError):
    """A shared dashboard changed by someone other than its owner."""


class NothingToShow(ValueError):
    """A widget with no entities to show."""


def days_of(filters: Filters, today: date) -> tuple[date, date]:
    """The day range a dashboard's filters mean on ``today``."""
    if filters.start is not None and filters.end is not None:
        return filters.start, filters.end
    return today - timedelta(days=(filters.last_days or 28) - 1), today


class Dashboards:
    """The account's saved dashboards (always scoped by account and person)."""

    def __init__(self, db: Any, store: PointStore, clock: Any = None) -> None:
        self.db = db
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))

    def _out(self, row: dict[str, Any], person: str) -> dict[str, Any]:
        return {"dashboard_id": row["dashboard_id"], "owner": row["owner"],
                "name": row["name"], "shared": bool(row["shared"]),
                "mine": row["owner"] == person, "filters": json.loads(row["filters"]),
                "widgets": json.loads(row["widgets"]), "created_at": row["created_at"],
                "updated_at": row["updated_at"]}

    async def list(self, account_id: str, person: str) -> list[dict[str, Any]]:
        """The person's own dashboards and the team's shared ones, by name."""
        rows = await self.db.fetch(
            "SELECT * FROM analytics_dashboards WHERE account_id = ? AND (owner = ? OR "
            "shared = 1) ORDER BY name, dashboard_id", account_id, person)
        return [self._out(r, person) for r in rows]

    async def get(self, account_id: str, person: str, dashboard_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow(
            "SELECT * FROM analytics_dashboards WHERE account_id = ? AND dashboard_id = ? AND "
            "(owner = ? OR shared = 1)", account_id, dashboard_id, person)
        if row is None:
            raise DashboardNotFound(f"no dashboard {dashboard_id!r} here")
        return self._out(row, person)

    async def create(self, account_id: str, person: str, body: DashboardIn) -> dict[str, Any]:
        now = time.time()
        dashboard_id = uuid.uuid4().hex[:16]
        await self.db.execute(
            "INSERT INTO analytics_dashboards (account_id, dashboard_id, owner, name, shared, "
            "filters, widgets, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
            account_id, dashboard_id, person, body.name, _json(body.filters),
            _json(body.widgets), now, now)
        return await self.get(account_id, person, dashboard_id)

    async def _owned(self, account_id: str, person: str, dashboard_id: str) -> dict[str, Any]:
        found = await self.get(account_id, person, dashboard_id)
        if not found["mine"]:
            raise NotTheOwner(f"dashboard {dashboard_id!r} is {found['owner']}'s: only they "
                              "change it; save a copy of your own instead")
        return found

    async def update(self, account_id: str, person: str, dashboard_id: str,
                     body: DashboardIn) -> dict[str, Any]:
        await self._owned(account_id, person, dashboard_id)
        await self.db.execute(
            "UPDATE analytics_dashboards SET name = ?, filters = ?, widgets = ?, updated_at = ? "
            "WHERE account_id = ? AND dashboard_id = ?", body.name, _json(body.filters),
            _json(body.widgets), time.time(), account_id, dashboard_id)
        return await self.get(account_id, person, dashboard_id)

    async def share(self, account_id: str, person: str, dashboard_id: str,
                    shared: bool) -> dict[str, Any]:
        await self._owned(account_id, person, dashboard_id)
        await self.db.execute(
            "UPDATE analytics_dashboards SET shared = ?, updated_at = ? WHERE account_id = ? "
            "AND dashboard_id = ?", int(shared), time.time(), account_id, dashboard_id)
        return await self.get(account_id, person, dashboard_id)

    async def delete(self, account_id: str, person: str, dashboard_id: str) -> dict[str, Any]:
        found = await self._owned(account_id, person, dashboard_id)
        await self.db.execute("DELETE FROM analytics_dashboards WHERE account_id = ? AND "
                              "dashboard_id = ?", account_id, dashboard_id)
        return found

    async def widget_data(self, account_id: str, person: str, dashboard_id: str,
                          widget_id: str) -> dict[str, Any]:
        """One widget's figures (see the module)."""
        dashboard = await self.get(account_id, person, dashboard_id)
        widget = next((Widget.model_validate(w) for w in dashboard["widgets"]
                       if w["widget_id"] == widget_id), None)
        if widget is None:
            raise DashboardNotFound(f"dashboard {dashboard_id!r} has no widget {widget_id!r}")
        filters = Filters.model_validate(dashboard["filters"])
        start, end = days_of(filters, self.clock().astimezone(UTC).date())
        entities = widget.entities or filters.entities
        if not entities:
            raise NothingToShow(f"widget {widget_id!r} names no entities and the dashboard's "
                                "filter none: add catalogue entities to either")
        names = {r["entity_id"]: r["name"] for r in await self.db.fetch(
            "SELECT entity_id, name FROM analytics_entities WHERE account_id = ?", account_id)}
        wanted = set(filters.sources)
        rows: list[list[Any]] = []
        for entity in entities:
            if entity not in names:
                continue  # merged away, or not this account's: nothing to show
            found = await self.store.series(account_id, metric=widget.metric, entity_id=entity,
                                            start=start, end=end, by_source=True)
            found.pop("total")
            per_day: dict[int, float] = {}
            for source, points in sorted(found.items()):
                if wanted and source not in wanted:
                    continue
                for p in points:
                    if widget.split == "source":
                        rows.append([_iso(p.at), entity, names[entity], source, p.value])
                    else:
                        per_day[p.at] = per_day.get(p.at, 0.0) + p.value
            rows += [[_iso(at), entity, names[entity], ALL_SOURCES, value]
                     for at, value in sorted(per_day.items())]
        rows.sort(key=lambda r: (r[0], r[1], r[3]))
        return {"widget_id": widget.widget_id, "kind": widget.kind, "metric": widget.metric,
                "split": widget.split, "first_day": start.isoformat(),
                "last_day": end.isoformat(), "columns": COLUMNS, "rows": rows}


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def _json(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps([v.model_dump(mode="json", by_alias=True) for v in value])
    return json.dumps(value.model_dump(mode="json", by_alias=True))
