"""Spotify: daily streams, listeners and saves per track of an artist.

Spotify has no public analytics API: the Web API answers catalogue data and a popularity
score only, and Spotify for Artists' per-day figures reach labels and distributors as
exports. The answer shape here is *modelled* on that timeline export, served as a Web API
paging object (``items``, ``limit``, ``offset``, ``total``, ``next``) behind the Web API's
documented sign-in (client credentials at ``accounts.spotify.com/api/token``) and rate
limiting (a rolling 30-second window; HTTP 429 with ``Retry-After``). Track identities
(ISRC, duration) are the Web API track object's ``external_ids.isrc`` and ``duration_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, Schedule, SourceSpec


class ExternalIds(BaseModel):
    isrc: str | None = None


class Track(BaseModel):
    id: str
    name: str
    duration_ms: NonNegativeInt
    external_ids: ExternalIds


class Row(BaseModel):
    date: str
    track: Track
    streams: NonNegativeInt
    listeners: NonNegativeInt
    saves: NonNegativeInt


class Page(BaseModel):
    items: list[Row]
    limit: NonNegativeInt
    offset: NonNegativeInt
    total: NonNegativeInt
    next: str | None


class SpotifyConnector(Connector):
    spec = SourceSpec(
        name="spotify", title="Spotify for Artists", auth="oauth_client_credentials",
        pagination="offset", rate_limit=RateLimit(180, 30), shape="modelled",
        api_host="https://api.spotify.com", token_url="https://accounts.spotify.com/api/token",
        docs="https://developer.spotify.com/documentation/web-api/concepts/rate-limits",
        metrics=("streams", "listeners", "saves"), entity_kinds=("artist", "track"),
        schedule=Schedule(every=timedelta(days=1), lookback=timedelta(days=2)))
    Page = Page

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/v1/artists/{entity.id}/stats/daily",
                          {"start_date": start.isoformat(), "end_date": end.isoformat()})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.items

    def total(self, page: Page) -> int:
        return page.total

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        spec = self.spec
        for row in page.items:
            at, track = parse_day(row.date), row.track
            out.points.append(point(spec, "track", track.id, "streams", at, row.streams))
            out.points.append(point(spec, "track", track.id, "listeners", at, row.listeners))
            out.points.append(point(spec, "track", track.id, "saves", at, row.saves))
            out.add_identity(Identity(spec.name, "track", track.id, track.name,
                                      isrc=track.external_ids.isrc,
                                      duration_ms=track.duration_ms))
