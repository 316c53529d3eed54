"""Pandora: daily streams, thumbs up and station adds per track of an artist.

Pandora has no public analytics API. Its Artist Marketing Platform (AMP) shows artists
per-track streams, thumbs up and artist-station adds, and downloads them as reports; the
answer shape here is *modelled* on that track performance report, one row per day and
track, served as JSON pages (``rows``, ``page``, ``totalPages``) and signed with a
partner API key in an ``X-Api-Key`` header. A throttled request gets 429 with
``Retry-After``; errors carry ``{"errorCode", "message"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec

METRICS = ("streams", "thumbs_up", "station_adds")


class Row(BaseModel):
    date: str
    track_id: str
    track_title: str
    isrc: str | None = None
    streams: NonNegativeInt
    thumbs_up: NonNegativeInt
    station_adds: NonNegativeInt


class Page(BaseModel):
    report: str
    rows: list[Row]
    page: NonNegativeInt
    totalPages: NonNegativeInt


class PandoraConnector(Connector):
    spec = SourceSpec(
        name="pandora", title="Pandora AMP", auth="api_key", pagination="page",
        rate_limit=RateLimit(10, 1), shape="modelled", api_host="https://amp.pandora.com",
        docs="https://help.pandora.com/s/article/Artist-Marketing-Platform-AMP",
        metrics=METRICS, entity_kinds=("artist", "track"))
    Page = Page
    api_key_in = ("header", "X-Api-Key", "{key}")
    page_param, limit_param, first_position, page_size = "page", "pageSize", 1, 200

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/api/v1/artists/{entity.id}/reports/track-performance",
                          {"from": start.isoformat(), "to": end.isoformat(),
                           "granularity": "day"})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.rows

    def total(self, page: Page) -> int:
        return page.totalPages

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for row in page.rows:
            at = parse_day(row.date)
            for metric in METRICS:
                out.points.append(point(self.spec, "track", row.track_id, metric, at,
                                        getattr(row, metric)))
            out.add_identity(Identity(self.name, "track", row.track_id, row.track_title,
                                      isrc=row.isrc))
