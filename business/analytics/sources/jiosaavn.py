"""JioSaavn: daily streams per track and Indian state of an artist.

JioSaavn publishes no analytics API; JioSaavn for Artists shows streams per track with
a breakdown by state. The shape here is *modelled* on those figures as JSON
(``results``, an opaque ``next_cursor``), signed with a partner key in an ``x-api-key``
header. A throttled request gets 429 with ``Retry-After``; errors are
``{"status": "failure", "error": {"code", "msg"}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Row(BaseModel):
    date: str
    state: str
    song_id: str
    song: str
    isrc: str | None = None
    streams: NonNegativeInt


class Page(BaseModel):
    status: str
    results: list[Row]
    next_cursor: str | None = None


class JioSaavnConnector(Connector):
    spec = SourceSpec(
        name="jiosaavn", title="JioSaavn for Artists", auth="api_key", pagination="cursor",
        rate_limit=RateLimit(10, 1), shape="modelled", api_host="https://artists.jiosaavn.com",
        docs="https://artists.jiosaavn.com/", metrics=("streams",),
        entity_kinds=("artist", "track"))
    Page = Page
    api_key_in = ("header", "x-api-key", "{key}")
    cursor_param, limit_param, page_size = "cursor", "n", 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/api/v2/artists/{entity.id}/streams",
                          {"start": start.isoformat(), "end": end.isoformat(),
                           "group_by": "song,state"})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.results

    def next_cursor(self, page: Page) -> str | None:
        return page.next_cursor

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for row in page.results:
            out.points.append(point(self.spec, "track", row.song_id, "streams",
                                    parse_day(row.date), row.streams, (("state", row.state),)))
            out.add_identity(Identity(self.name, "track", row.song_id, row.song,
                                      isrc=row.isrc))
