"""Amazon Music: daily plays and listeners per track of an artist.

Amazon Music publishes no analytics API: its Web API (a closed beta) answers catalogue
data, and the per-day plays and listeners that Amazon Music for Artists shows come with no
documented report or partner format. The answer shape here is *modelled* on those figures
(one row per day and track, keyed by the track's ASIN with its ISRC), in the style of
Amazon's JSON APIs (``items``, an opaque ``nextToken`` paging parameter, ``maxResults``)
behind the documented Login with Amazon sign-in (a refresh token at
``api.amazon.com/auth/o2/token``). A throttled request gets Amazon API Gateway's bare 429
(``{"message": "Too Many Requests"}``, no ``Retry-After``), so the connector backs off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec

METRICS = ("plays", "listeners")


class Row(BaseModel):
    date: str
    asin: str
    title: str
    isrc: str | None = None
    durationSeconds: NonNegativeInt
    plays: NonNegativeInt
    listeners: NonNegativeInt


class Page(BaseModel):
    items: list[Row]
    nextToken: str | None = None


class AmazonMusicConnector(Connector):
    spec = SourceSpec(
        name="amazon_music", title="Amazon Music for Artists", auth="refresh_token",
        pagination="cursor", rate_limit=RateLimit(10, 1), shape="modelled",
        api_host="https://api.music.amazon.dev",
        token_url="https://api.amazon.com/auth/o2/token",
        docs="https://developer.amazon.com/docs/login-with-amazon/authorization-code-grant.html",
        metrics=METRICS, entity_kinds=("artist", "track"))
    Page = Page
    cursor_param, limit_param, page_size = "nextToken", "maxResults", 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/v1/artists/{entity.id}/insights/tracks/daily",
                          {"startDate": start.isoformat(), "endDate": end.isoformat()})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.items

    def next_cursor(self, page: Page) -> str | None:
        return page.nextToken

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for row in page.items:
            at = parse_day(row.date)
            for metric in METRICS:
                out.points.append(point(self.spec, "track", row.asin, metric, at,
                                        getattr(row, metric)))
            out.add_identity(Identity(self.name, "track", row.asin, row.title, isrc=row.isrc,
                                      duration_ms=row.durationSeconds * 1000))
