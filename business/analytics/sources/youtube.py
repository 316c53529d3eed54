"""YouTube: a channel's daily views, watch time, likes and subscribers gained.

Documented: the YouTube Analytics API v2 ``reports.query``
(``GET /v2/reports?ids=channel==MINE&startDate&endDate&metrics&dimensions=day``), which
answers a result table: ``columnHeaders`` (name, columnType, dataType) and ``rows`` of
values in that order; paged by ``startIndex`` (from 1) and ``maxResults``. Sign-in is
Google OAuth with the channel owner's refresh token. Quota: the Google Cloud project's
daily units reset at midnight Pacific time (the Data API's default is 10,000); a spent
quota answers 403 ``quotaExceeded``, a throttle 403 ``rateLimitExceeded`` or 429.
The schema check names a missing column (``columnHeaders.views``) and a negative value
(``rows.3.views``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

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


class ColumnHeader(BaseModel):
    name: str
    columnType: str
    dataType: str


class Page(BaseModel):
    kind: str
    columnHeaders: list[ColumnHeader]
    rows: list[list[str | int | float]] | None = None


class YouTubeConnector(Connector):
    spec = SourceSpec(
        name="youtube", title="YouTube Analytics", auth="refresh_token", pagination="offset",
        rate_limit=RateLimit(100, 100, units=10_000, quota_reset_tz="America/Los_Angeles"),
        api_host="https://youtubeanalytics.googleapis.com",
        token_url="https://oauth2.googleapis.com/token",
        docs="https://developers.google.com/youtube/analytics/reference/reports/query",
        metrics=METRICS, entity_kinds=("artist",))
    Page = Page
    offset_param, limit_param, first_position, page_size = "startIndex", "maxResults", 1, 30

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged("/v2/reports", {
            "ids": f"channel=={entity.id}", "startDate": start.isoformat(),
            "endDate": end.isoformat(), "metrics": ",".join(METRICS), "dimensions": "day",
            "sort": "day"})

    def rows(self, page: Page) -> Sequence[list[Any]]:
        return page.rows or []

    def check(self, page: Page) -> None:
        names = [header.name for header in page.columnHeaders]
        for name in ("day", *METRICS):
            if name not in names:
                raise SchemaChanged(f"columnHeaders.{name}", f"the column is missing; the "
                                    f"answer has {names}", source=self.name)
        for i, row in enumerate(page.rows or []):
            if len(row) != len(names):
                raise SchemaChanged(f"rows.{i}", f"{len(row)} values for {len(names)} "
                                    "columns", source=self.name)
            for name, value in zip(names[1:], row[1:], strict=True):
                if not isinstance(value, int | float) or value < 0:
                    raise SchemaChanged(f"rows.{i}.{name}", f"expected a count >= 0, got "
                                        f"{value!r}", source=self.name)

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        names = [header.name for header in page.columnHeaders]
        day = names.index("day")
        columns = [(names.index(metric), metric) for metric in METRICS]
        for row in page.rows or []:
            at = parse_day(str(row[day]))
            for column, metric in columns:
                out.points.append(point(self.spec, "artist", entity.id, metric, at,
                                        row[column]))

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
