"""YouTube: a channel's daily views, watch time, likes and subscribers gained.

Documented: the YouTube Analytics API v2 ``reports.query``
(``GET /v2/reports?ids=channel==MINE&startDate&endDate&metrics&dimensions=day``), which
answers a result table: ``columnHeaders`` (name, columnType, dataType) and ``rows`` of
values in that order; paged by ``startIndex`` (from 1) and ``maxResults``. Sign-in is
Google OAuth with the channel owner's refresh token, withdrawn by ``POST
https://oauth2.googleapis.com/revoke`` (``token=``) when the grant is forgotten.
Quota: the Google Cloud project's daily units reset at midnight Pacific time (the
Data API's default is 10,000); a spent quota answers 403 ``quotaExceeded``, a
throttle 403 ``rateLimitExceeded`` or 429.
The schema check names a missing column (``columnHeaders.views``) and a negative value
(``rows.3.views``).

**Audience** (after each window, one day at a time, for the days the window had views):
the documented demographics report (``dimensions=ageGroup,gender``,
``metrics=viewerPercentage``: the share of the day's viewers in each age group and
gender, percentages that sum to 100) turned into views by the day's ``views``, as
``audience_demographic_views`` with the dimensions ``age`` and ``gender``; and the
geographic report (``dimensions=country``, ``metrics=views``) as ``audience_views`` by
``country``. Neither report takes a ``day`` dimension, hence a request per day. A
breakdown whose percentages do not sum to 100 (within :data:`PERCENT_TOLERANCE`), an
unknown age group or gender, or a missing column raises ``SchemaChanged`` naming it; the
views read before it are kept in the error's progress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar

from pydantic import BaseModel

from business.analytics.errors import (
    QuotaExhausted,
    RateLimited,
    SchemaChanged,
    SourceError,
    TokenRevoked,
)
from business.analytics.sources.base import (
    Call,
    Connector,
    parse_day,
    point,
    retry_after_from,
)
from business.analytics.sources.records import Entity, Fetched
from business.analytics.sources.spec import RateLimit, SourceSpec

METRICS = ("views", "estimatedMinutesWatched", "likes", "subscribersGained")
AUDIENCE_METRICS = ("audience_views", "audience_demographic_views")
#: The API's ``ageGroup`` values and the age bands stored for them.
AGE_GROUPS = {"age13-17": "13-17", "age18-24": "18-24", "age25-34": "25-34",
              "age35-44": "35-44", "age45-54": "45-54", "age55-64": "55-64",
              "age65-": "65+"}
GENDERS = ("female", "male", "user_specified")
#: ``viewerPercentage`` is rounded (one decimal): a day's rows sum to 100 within this.
PERCENT_TOLERANCE = 0.5


class ColumnHeader(BaseModel):
    name: str
    columnType: str
    dataType: str


class Page(BaseModel):
    kind: str
    columnHeaders: list[ColumnHeader]
    rows: list[list[str | int | float]] | None = None


class DemographicsPage(Page):
    """The ``ageGroup,gender`` report of one day."""

    required: ClassVar[tuple[str, ...]] = ("ageGroup", "gender", "viewerPercentage")


class GeographyPage(Page):
    """The ``country`` report of one day."""

    required: ClassVar[tuple[str, ...]] = ("country", "views")


class YouTubeConnector(Connector):
    spec = SourceSpec(
        name="youtube", title="YouTube Analytics", auth="refresh_token", pagination="offset",
        rate_limit=RateLimit(100, 100, units=10_000, quota_reset_tz="America/Los_Angeles"),
        api_host="https://youtubeanalytics.googleapis.com",
        token_url="https://oauth2.googleapis.com/token",
        docs="https://developers.google.com/youtube/analytics/reference/reports/query",
        metrics=METRICS + AUDIENCE_METRICS, entity_kinds=("artist",))
    Page = Page
    offset_param, limit_param, first_position, page_size = "startIndex", "maxResults", 1, 30
    #: Google's token revocation (RFC 7009 shape): withdraws the whole grant.
    revoke_url = "https://oauth2.googleapis.com/revoke"

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged("/v2/reports", {
            "ids": f"channel=={entity.id}", "startDate": start.isoformat(),
            "endDate": end.isoformat(), "metrics": ",".join(METRICS), "dimensions": "day",
            "sort": "day"})

    def rows(self, page: Page) -> Sequence[list[Any]]:
        return page.rows or []

    def check(self, page: Page) -> None:
        names = [header.name for header in page.columnHeaders]
        for name in getattr(page, "required", ("day", *METRICS)):
            if name not in names:
                raise SchemaChanged(f"columnHeaders.{name}", f"the column is missing; the "
                                    f"answer has {names}", source=self.name)
        metrics = [(i, h.name) for i, h in enumerate(page.columnHeaders)
                   if h.columnType == "METRIC"]
        for i, row in enumerate(page.rows or []):
            if len(row) != len(names):
                raise SchemaChanged(f"rows.{i}", f"{len(row)} values for {len(names)} "
                                    "columns", source=self.name)
            for column, name in metrics:
                value = row[column]
                if not isinstance(value, int | float) or value < 0:
                    raise SchemaChanged(f"rows.{i}.{name}", f"expected a count >= 0, got "
                                        f"{value!r}", source=self.name)
        if isinstance(page, DemographicsPage):
            self.check_demographics(page, names)

    def check_demographics(self, page: DemographicsPage, names: list[str]) -> None:
        """Known age groups and genders, percentages that sum to 100."""
        age, gender = names.index("ageGroup"), names.index("gender")
        share = names.index("viewerPercentage")
        for i, row in enumerate(page.rows or []):
            if row[age] not in AGE_GROUPS:
                raise SchemaChanged(f"rows.{i}.ageGroup", f"unknown age group {row[age]!r}; "
                                    f"known: {sorted(AGE_GROUPS)}", source=self.name)
            if row[gender] not in GENDERS:
                raise SchemaChanged(f"rows.{i}.gender", f"unknown gender {row[gender]!r}; "
                                    f"known: {list(GENDERS)}", source=self.name)
        total = sum(float(row[share]) for row in page.rows or [])
        if page.rows and abs(total - 100.0) > PERCENT_TOLERANCE:
            raise SchemaChanged("rows.viewerPercentage", f"the day's percentages sum to "
                                f"{total:g}, not 100 (within {PERCENT_TOLERANCE:g})",
                                source=self.name)

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        names = [header.name for header in page.columnHeaders]
        day = names.index("day")
        columns = [(names.index(metric), metric) for metric in METRICS]
        for row in page.rows or []:
            at = parse_day(str(row[day]))
            for column, metric in columns:
                out.points.append(point(self.spec, "artist", entity.id, metric, at,
                                        row[column]))

    async def after_window(self, entity: Entity, start: date, end: date,
                           out: Fetched) -> None:
        """The audience of each day of the window that had views (see the module)."""
        views = {p.at.date(): float(p.value) for p in out.points
                 if p.metric == "views" and p.entity_id == entity.id and not p.dimensions
                 and start <= p.at.date() <= end}
        for day in sorted(day for day, count in views.items() if count > 0):
            await self.audience(entity, day, views[day], out)  # two calls of the day's quota

    async def audience(self, entity: Entity, day: date, views: float, out: Fetched) -> None:
        """One day's demographics (as views) and countries."""
        at = parse_day(day.isoformat())
        base = {"ids": f"channel=={entity.id}", "startDate": day.isoformat(),
                "endDate": day.isoformat()}
        page = await self.get(Call("/v2/reports", {
            **base, "metrics": "viewerPercentage", "dimensions": "ageGroup,gender",
            "sort": "gender,ageGroup"}), out, DemographicsPage)
        out.pages += 1
        names = [header.name for header in page.columnHeaders]
        age, gender = names.index("ageGroup"), names.index("gender")
        share = names.index("viewerPercentage")
        for row in page.rows or []:
            out.points.append(point(self.spec, "artist", entity.id,
                                    "audience_demographic_views", at,
                                    views * float(row[share]) / 100,
                                    (("age", AGE_GROUPS[str(row[age])]),
                                     ("gender", str(row[gender])))))
        page = await self.get(Call("/v2/reports", {
            **base, "metrics": "views", "dimensions": "country", "sort": "-views",
            "maxResults": "250"}), out, GeographyPage)
        out.pages += 1
        names = [header.name for header in page.columnHeaders]
        country, count = names.index("country"), names.index("views")
        for row in page.rows or []:
            out.points.append(point(self.spec, "artist", entity.id, "audience_views", at,
                                    row[count], (("country", str(row[country])),)))

    def classify(self, status: int, body: Any, headers: Mapping[str, str]
                 ) -> SourceError | None:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return None
        reasons = {e.get("reason") for e in error.get("errors", []) if isinstance(e, dict)}
        message = str(error.get("message", ""))
        if reasons & {"quotaExceeded", "dailyLimitExceeded"}:
            return QuotaExhausted(message, resets_at=self.pacer.resets_at(self.now()),
                                  source=self.name, status=status)
        if reasons & {"rateLimitExceeded", "userRateLimitExceeded"} or status == 429:
            return RateLimited(message, retry_after=retry_after_from(headers),
                               source=self.name, status=status)
        if status == 401 or reasons & {"authError", "invalid_grant"}:
            return TokenRevoked(message, source=self.name, status=status)
        return None

    def now(self) -> datetime:
        return self.clock()
