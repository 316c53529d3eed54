"""Audiomack: plays, favourites and reposts of an artist's uploads, today.

Audiomack's API signs requests with OAuth 1.0a and publishes no analytics endpoint; the
artist's uploads listing carries running totals. The shape here is *modelled* on that
listing (``results`` with ``stats``; ``paging`` with ``page`` and ``total_pages``) and the
consumer key is sent as ``oauth_consumer_key`` (OAuth 1.0a request signing is not built
yet). Counts are totals to date (a daily snapshot; no back-fill).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, point, utc_day
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec

METRICS = ("plays", "favorites", "reposts")


class Stats(BaseModel):
    plays: NonNegativeInt
    favorites: NonNegativeInt
    reposts: NonNegativeInt


class Upload(BaseModel):
    id: int
    title: str
    type: str
    isrc: str | None = None
    duration: NonNegativeInt | None = None     # seconds
    stats: Stats


class Paging(BaseModel):
    page: NonNegativeInt
    total_pages: NonNegativeInt


class Page(BaseModel):
    results: list[Upload]
    paging: Paging


class AudiomackConnector(Connector):
    spec = SourceSpec(
        name="audiomack", title="Audiomack", auth="api_key", pagination="page",
        rate_limit=RateLimit(60, 60), shape="modelled", api_host="https://api.audiomack.com",
        docs="https://www.audiomack.com/data-api/docs", metrics=METRICS,
        entity_kinds=("track",), history=False)
    Page = Page
    api_key_in = ("query", "oauth_consumer_key")
    first_position, page_size = 1, 20

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/v1/artist/{entity.id}/uploads", {})

    def rows(self, page: Page) -> Sequence[Upload]:
        return page.results

    def total(self, page: Page) -> int:
        return page.paging.total_pages

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for upload in page.results:
            key = str(upload.id)
            for metric in METRICS:
                out.points.append(point(self.spec, "track", key, metric, at,
                                        getattr(upload.stats, metric)))
            out.add_identity(Identity(self.name, "track", key, upload.title, isrc=upload.isrc,
                                      duration_ms=upload.duration * 1000
                                      if upload.duration is not None else None))
