"""Boomplay: daily streams and downloads per track and country of an artist.

Boomplay publishes no analytics API; Boomplay for Artists shows streams and downloads
per track and country. The shape here is *modelled* on those figures in the envelope
Boomplay's partner services use: HTTP 200 with ``{"code", "msg", "data": {"list",
"total"}}``, paged by ``offset`` and ``limit``, an ``appid`` key in the query. A non-zero
``code`` is an error (modelled: 10001 invalid key, 10004 throttled, 10005 daily quota,
5xxxx server).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, CodeEnvelope, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec

METRICS = ("streams", "downloads")
INVALID_KEY, THROTTLED, QUOTA_SPENT = 10001, 10004, 10005


class Row(BaseModel):
    date: str
    country: str
    trackId: str
    trackName: str
    isrc: str | None = None
    streams: NonNegativeInt
    downloads: NonNegativeInt


class Data(BaseModel):
    list: list[Row]
    total: NonNegativeInt


class Page(BaseModel):
    code: int
    msg: str
    data: Data | None = None


class BoomplayConnector(CodeEnvelope, Connector):
    spec = SourceSpec(
        name="boomplay", title="Boomplay for Artists", auth="api_key", pagination="offset",
        rate_limit=RateLimit(5, 1, units=5_000), shape="modelled",
        api_host="https://open.boomplay.com", docs="https://artist.boomplay.com/",
        metrics=METRICS, entity_kinds=("artist", "track"))
    Page = Page
    api_key_in = ("query", "appid")
    throttled_codes, token_codes, quota_codes = (frozenset({THROTTLED}),
                                                 frozenset({INVALID_KEY}),
                                                 frozenset({QUOTA_SPENT}))
    message_field = "msg"
    page_size = 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged("/open/v1/artist/track/daily", {
            "artistId": entity.id, "startDate": start.isoformat(), "endDate": end.isoformat()})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.data.list if page.data else []

    def total(self, page: Page) -> int | None:
        return page.data.total if page.data else None

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for row in self.rows(page):
            at, dims = parse_day(row.date), (("country", row.country),)
            for metric in METRICS:
                out.points.append(point(self.spec, "track", row.trackId, metric, at,
                                        getattr(row, metric), dims))
            out.add_identity(Identity(self.name, "track", row.trackId, row.trackName,
                                      isrc=row.isrc))
