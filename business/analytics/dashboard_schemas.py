"""A saved dashboard's shape: filters and widgets (line, bar, table), as request and answer
models (the stored JSON is these models dumped)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from dawserver.plugin_api import Model, Query

WIDGET_KINDS = ("line", "bar", "table")


class Filters(Model):
    """What every widget of a dashboard shows: a day range (fixed, or the last N days to
    today), sources (none: all) and catalogue entities (none: each widget's own)."""

    start: date | None = Field(None, alias="from")
    end: date | None = Field(None, alias="to")
    last_days: int | None = Field(28, ge=1, le=3 * 366)
    sources: list[str] = Field(default_factory=list, max_length=40)
    entities: list[str] = Field(default_factory=list, max_length=50)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    @model_validator(mode="after")
    def _range(self) -> Filters:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both 'from' and 'to', or neither (then 'last_days')")
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"'to' ({self.end}) is before 'from' ({self.start}); swap them")
        if self.start and self.end and (self.end - self.start).days > 3 * 366:
            raise ValueError("a dashboard shows at most three years")
        return self


class Widget(Model):
    """One chart or table: a metric's daily series of some entities, split by source or by
    entity (line and bar: one line or bar set per split; table: one row per day and split)."""

    widget_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    title: str = Field("", max_length=200)
    kind: Literal["line", "bar", "table"]
    metric: str = Field(min_length=1, max_length=60, examples=["streams"])
    entities: list[str] = Field(default_factory=list, max_length=50)
    split: Literal["source", "entity"] = "source"


class DashboardIn(Model):
    """A dashboard to save (sharing is its own route: it needs the share permission)."""

    name: str = Field(min_length=1, max_length=200)
    filters: Filters = Field(default_factory=Filters)
    widgets: list[Widget] = Field(default_factory=list, max_length=24)

    @model_validator(mode="after")
    def _unique(self) -> DashboardIn:
        ids = [w.widget_id for w in self.widgets]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"widget ids must differ; given twice: {twice}")
        return self


class ShareIn(Model):
    shared: bool


class DashboardOut(Model):
    dashboard_id: str
    owner: str
    name: str
    shared: bool
    mine: bool
    filters: Filters
    widgets: list[Widget]
    created_at: float
    updated_at: float


class WidgetDataOut(Model):
    """A widget's figures as a table: ``columns`` and ``rows`` (day, entity, name,
    source, value), the range shown."""

    widget_id: str
    kind: str
    metric: str
    split: str
    first_day: str
    last_day: str
    columns: list[str]
    rows: list[list[str | float | None]]


class ExportQuery(Query):
    format: Literal["csv", "parquet"] = "csv"
