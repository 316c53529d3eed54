"""Anghami: daily plays and likes per track of an artist.

Anghami publishes no analytics API; Anghami for Artists shows plays and likes per track
per day. The shape here is *modelled* on those figures as a JSON listing in the
``data`` / ``meta`` (``current_page``, ``last_page``) style, paged by ``page`` and
``per_page``, behind an OAuth 2 client-credentials token (``/oauth/token``, HTTP Basic).
A throttled request gets 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec

METRICS = ("plays", "likes")


class Song(BaseModel):
    id: str
    title: str
    isrc: str | None = None
    duration: NonNegativeInt      # seconds


class Row(BaseModel):
    day: str
    song: Song
    plays: NonNegativeInt
    likes: NonNegativeInt


class Meta(BaseModel):
    current_page: NonNegativeInt
    last_page: NonNegativeInt


class Page(BaseModel):
    data: list[Row]
    meta: Meta


class AnghamiConnector(Connector):
    spec = SourceSpec(
        name="anghami", title="Anghami for Artists", auth="oauth_client_credentials",
        pagination="page", rate_limit=RateLimit(30, 60), shape="modelled",
        api_host="https://artists.anghami.com",
        token_url="https://artists.anghami.com/oauth/token",
        docs="https://artists.anghami.com/", metrics=METRICS,
        entity_kinds=("artist", "track"))
    Page = Page
    limit_param, first_position, page_size = "per_page", 1, 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/api/v1/artists/{entity.id}/songs/daily",
                          {"from": start.isoformat(), "to": end.isoformat()})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.data

    def total(self, page: Page) -> int:
        return page.meta.last_page

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for row in page.data:
            at, song = parse_day(row.day), row.song
            for metric in METRICS:
                out.points.append(point(self.spec, "track", song.id, metric, at,
                                        getattr(row, metric)))
            out.add_identity(Identity(self.name, "track", song.id, song.title, isrc=song.isrc,
                                      duration_ms=song.duration * 1000))
