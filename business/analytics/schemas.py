"""Request and answer models of the analytics routes, and the ingestion job's payload."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, model_validator

from business.analytics.store import GRAINS, GROWTH_DAYS
from dawserver.plugin_api import Model, Query

#: The earliest day a query may name: growth reads back twice its longest window from
#: ``to`` (and a range's default start four weeks), and the calendar starts on 0001-01-01.
EARLIEST_DAY = date.min + timedelta(days=2 * max(GROWTH_DAYS))


def check_range(start: date | None, end: date | None) -> None:
    """Refuse (a ValueError, which answers 422) a ``from`` or ``to`` before
    :data:`EARLIEST_DAY`, so that reading back from it stays on the calendar."""
    for name, day in (("from", start), ("to", end)):
        if day is not None and day < EARLIEST_DAY:
            raise ValueError(f"'{name}' ({day}) is too early: analytics reads up to "
                             f"{2 * max(GROWTH_DAYS)} days back from a range, so name a day "
                             f"from {EARLIEST_DAY} on")


def check_span(start: date | None, end: date | None) -> None:
    """:func:`check_range`, and refuse (422) a ``to`` before ``from`` or a range of more
    than three years, so that no read route runs an unbounded query."""
    check_range(start, end)
    if start and end and end < start:
        raise ValueError(f"'to' ({end}) is before 'from' ({start}); swap them")
    if start and end and (end - start).days > 3 * 366:
        raise ValueError("ask for at most three years at a time")


class IngestPayload(BaseModel):
    """An ``analytics.ingest`` job: which run of which connected source."""

    source_id: str
    run_id: str


class SourceIn(Model):
    """Connect a source for one of the account's entities on that platform."""

    source: str = Field(min_length=1, max_length=40, examples=["spotify"])
    entity_kind: str = Field("artist", max_length=20)
    entity_id: str = Field(min_length=1, max_length=200)
    entity_name: str = Field("", max_length=300)
    client_id: str = Field("", max_length=500)
    client_secret: str = Field("", max_length=2000)
    api_key: str = Field("", max_length=2000)
    refresh_token: str = Field("", max_length=4000)


class SourceOut(Model):
    """A connected source (never its credentials)."""

    source_id: str
    source: str
    entity_kind: str
    entity_id: str
    entity_name: str
    state: str
    last_error: str
    connected_by: str
    next_run_at: float
    last_run_at: float | None
    created_at: float
    updated_at: float


class BackfillIn(Model):
    """Back-fill a connected source for a day range (inclusive)."""

    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> BackfillIn:
        if self.end < self.start:
            raise ValueError(f"'to' ({self.end}) is before 'from' ({self.start}); swap them")
        if (self.end - self.start).days > 3 * 366:
            raise ValueError("back-fill at most three years at a time")
        check_range(self.start, self.end)
        # a day still to come has no history to fetch (tomorrow in UTC is today somewhere)
        latest = datetime.now(UTC).date() + timedelta(days=1)
        if self.end > latest:
            raise ValueError(f"'to' ({self.end}) is in the future: back-fill days up to "
                             f"{latest}; later days are read daily on the schedule")
        return self


class RunOut(Model):
    """An ingestion run and its job's progress."""

    run_id: str
    source_id: str
    kind: str
    first_day: str
    last_day: str
    complete_through: str | None
    points: int
    pages: int
    gaps: int
    state: str
    job_id: str
    error: str
    created_at: float
    updated_at: float
    progress: float
    job_state: str
    job_note: str


class SeriesQuery(Query):
    """Which series: a catalogue entity (or one platform id), a metric, a grain, a range."""

    entity: str = Field("", max_length=64, description="a catalogue entity id")
    source: str = Field("", max_length=40, description="with platform_id: one platform's id")
    platform_kind: str = Field("artist", max_length=20)
    platform_id: str = Field("", max_length=200)
    metric: str = Field(min_length=1, max_length=60)
    grain: str = Field("daily", pattern="^(" + "|".join(GRAINS) + ")$")
    start: date | None = Field(None, alias="from")
    end: date | None = Field(None, alias="to")
    by_source: bool = False

    @model_validator(mode="after")
    def _on_calendar(self) -> SeriesQuery:
        check_span(self.start, self.end)
        return self


class SeriesOut(Model):
    """A series (and per source), with growth over 7, 28 and 90 days to its last day."""

    metric: str
    grain: str
    total: list[list[float]]
    sources: dict[str, list[list[float]]]
    growth: dict[str, dict[str, float | None]]


class CatalogQuery(Query):
    kind: str | None = Field(None, pattern="^(artist|recording|release|playlist|venue)$")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class LinkOut(Model):
    source: str
    platform_kind: str
    platform_id: str
    method: str
    confidence: float
    manual: bool
    name: str
    isrc: str


class EntityOut(Model):
    entity_id: str
    kind: str
    name: str
    artist_name: str
    isrc: str
    upc: str
    duration_ms: int | None
    merged_into: str
    links: list[LinkOut]


class MergeIn(Model):
    """Fold these entities into the one in the path."""

    others: list[str] = Field(min_length=1, max_length=100)


class LinkRef(Model):
    source: str = Field(min_length=1, max_length=40)
    platform_kind: str = Field(min_length=1, max_length=20)
    platform_id: str = Field(min_length=1, max_length=200)


class SplitIn(Model):
    """Move these platform ids of the entity in the path to a new entity."""

    links: list[LinkRef] = Field(min_length=1, max_length=100)
    name: str | None = Field(None, max_length=300)


class AuditOut(Model):
    audit_id: str
    action: str
    actor: str
    entity_id: str
    detail: dict[str, Any]
    at: float


class FreshnessOut(Model):
    source: str
    fetched_at: float
    queryable_at: float
    points: int
    lag_s: float


class SqlIn(Model):
    """A read-only query over the account's ``points`` and ``links`` (DuckDB SQL)."""

    sql: str = Field(min_length=1, max_length=20_000)
    max_rows: int = Field(1000, ge=1, le=10_000)


class SqlOut(Model):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class KpiQuery(Query):
    """One catalogue entity's KPIs over a day range (default: the last 28 days)."""

    entity: str = Field(min_length=1, max_length=64, description="a catalogue entity id")
    start: date | None = Field(None, alias="from")
    end: date | None = Field(None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> KpiQuery:
        check_span(self.start, self.end)
        return self


class KpiOut(Model):
    """A KPI summed across the platforms that report it."""

    title: str
    running_total: bool
    value: float | None
    days: int
    growth: dict[str, dict[str, float | None]]
    sources: dict[str, list[list[float]]]


class KpisOut(Model):
    entity_id: str
    first_day: str
    last_day: str
    kpis: dict[str, KpiOut]


class PlatformMetricOut(Model):
    name: str
    kpi: str | None


class PlatformOut(Model):
    """A source that can be connected, and the credentials it asks for."""

    source: str
    title: str
    auth: str
    credentials: list[str]
    history: bool
    entity_kinds: list[str]
    metrics: list[PlatformMetricOut]
