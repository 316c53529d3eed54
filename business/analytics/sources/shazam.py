"""Shazam: daily Shazams per track and country.

Shazam has no public analytics API (ShazamKit recognises audio; it reports no counts).
Shazam counts reach artists through Apple Music for Artists, so the shape here is
*modelled* on that export: one row per day, track and country, behind an opaque
``cursor``, signed with an Apple developer token (Bearer) like the Apple Music API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Track(BaseModel):
    id: str
    title: str
    isrc: str


class Row(BaseModel):
    date: str
    country: str
    track: Track
    count: NonNegativeInt


class Page(BaseModel):
    results: list[Row]
    cursor: str | None = None


class ShazamConnector(Connector):
    spec = SourceSpec(
        name="shazam", title="Shazam (via Apple Music for Artists)", auth="api_key",
        pagination="cursor", rate_limit=RateLimit(20, 1), shape="modelled",
        api_host="https://api.music.apple.com",
        docs="https://developer.apple.com/shazamkit/", metrics=("shazams",),
        entity_kinds=("artist", "track"))
    Page = Page
    api_key_in = ("header", "Authorization", "Bearer {key}")
    page_size = 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/v1/shazam/artists/{entity.id}/daily",
                          {"start": start.isoformat(), "end": end.isoformat()})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.results

    def next_cursor(self, page: Page) -> str | None:
        return page.cursor

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        spec = self.spec
        for row in page.results:
            out.points.append(point(spec, "track", row.track.id, "shazams",
                                    parse_day(row.date), row.count,
                                    (("country", row.country),)))
            out.add_identity(Identity(spec.name, "track", row.track.id, row.track.title,
                                      isrc=row.track.isrc))
