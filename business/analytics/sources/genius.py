"""Genius: page views of an artist's songs on Genius, today.

Documented: the Genius API ``GET /artists/{id}/songs?sort=popularity&per_page&page``,
answering ``{"meta": {"status"}, "response": {"songs": [...], "next_page"}}``; each
song carries ``stats`` with ``pageviews`` (running totals to date; Genius leaves the
number out for songs with few views, and those give no point). ``next_page`` is null on
the last page. Sign-in: a client access token as a Bearer header (an API key). Genius
documents no rate limit; a 429 is backed off. Counts are current values (a daily
snapshot; no back-fill).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, point, utc_day
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Stats(BaseModel):
    unreviewed_annotations: NonNegativeInt = 0
    hot: bool = False
    pageviews: NonNegativeInt | None = None


class Artist(BaseModel):
    id: int
    name: str


class Song(BaseModel):
    id: int
    title: str
    primary_artist: Artist
    stats: Stats


class Response(BaseModel):
    songs: list[Song]
    next_page: int | None = None


class Meta(BaseModel):
    status: int


class Page(BaseModel):
    meta: Meta
    response: Response


class GeniusConnector(Connector):
    spec = SourceSpec(
        name="genius", title="Genius", auth="api_key", pagination="page",
        rate_limit=RateLimit(5, 1), api_host="https://api.genius.com",
        docs="https://docs.genius.com/#artists-h2", metrics=("pageviews",),
        entity_kinds=("track",), history=False)
    Page = Page
    api_key_in = ("header", "Authorization", "Bearer {key}")
    limit_param, first_position, page_size = "per_page", 1, 50

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/artists/{entity.id}/songs", {"sort": "popularity"})

    def rows(self, page: Page) -> Sequence[Song]:
        return page.response.songs

    def total(self, page: Page) -> int:
        # the framework stops once the page asked reaches this number: null next_page
        # gives 0 (stop now), next_page n lets it ask page n
        return page.response.next_page or 0

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for song in page.response.songs:
            key = str(song.id)
            if song.stats.pageviews is not None:
                out.points.append(point(self.spec, "track", key, "pageviews", at,
                                        song.stats.pageviews))
            out.add_identity(Identity(self.name, "track", key, song.title,
                                      artist_name=song.primary_artist.name))
