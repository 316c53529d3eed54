"""TIDAL: daily streams per track of an artist.

TIDAL's developer API (``openapi.tidal.com/v2``, JSON:API) answers catalogue data only;
the per-day streams TIDAL reports to artists have no public endpoint. The answer shape
here is *modelled*: one ``trackStreams`` resource per day and track in the TIDAL API's
JSON:API envelope (``data``, the tracks under ``included`` with ``isrc`` and an ISO 8601
``duration``, a relative ``links.next`` carrying ``page[cursor]``), behind the documented
client-credentials sign-in at ``auth.tidal.com/v1/oauth2/token`` and the documented 429
with ``Retry-After``. Errors are JSON:API ``errors`` objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Ref(BaseModel):
    id: str
    type: str


class Related(BaseModel):
    data: Ref


class Relationships(BaseModel):
    track: Related


class StreamAttributes(BaseModel):
    date: str
    streams: NonNegativeInt


class Streams(BaseModel):
    id: str
    type: str
    attributes: StreamAttributes
    relationships: Relationships


class TrackAttributes(BaseModel):
    title: str
    isrc: str | None = None
    duration: timedelta        # ISO 8601 in the JSON, "PT3M25S"


class Track(BaseModel):
    id: str
    type: str
    attributes: TrackAttributes


class Links(BaseModel):
    next: str | None = None


class Page(BaseModel):
    data: list[Streams]
    included: list[Track] = []
    links: Links


class TidalConnector(Connector):
    spec = SourceSpec(
        name="tidal", title="TIDAL", auth="oauth_client_credentials", pagination="cursor",
        rate_limit=RateLimit(20, 1), shape="modelled", api_host="https://openapi.tidal.com",
        token_url="https://auth.tidal.com/v1/oauth2/token",
        docs="https://developer.tidal.com/documentation/api/api-overview",
        metrics=("streams",), entity_kinds=("artist", "track"))
    Page = Page
    cursor_param, limit_param = "page[cursor]", "page[size]"

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/v2/artists/{entity.id}/relationships/trackStreams",
                          {"filter[from]": start.isoformat(), "filter[to]": end.isoformat(),
                           "include": "track"})

    def rows(self, page: Page) -> Sequence[Streams]:
        return page.data

    def next_cursor(self, page: Page) -> str | None:
        return page.links.next

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for resource in page.data:
            track_id = resource.relationships.track.data.id
            out.points.append(point(self.spec, "track", track_id, "streams",
                                    parse_day(resource.attributes.date),
                                    resource.attributes.streams))
        for track in page.included:
            seconds = track.attributes.duration.total_seconds()
            out.add_identity(Identity(self.name, "track", track.id, track.attributes.title,
                                      isrc=track.attributes.isrc,
                                      duration_ms=round(seconds * 1000)))
