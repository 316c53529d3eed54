"""Spotify: daily streams, listeners and saves per track of an artist.

Spotify has no public analytics API: the Web API answers catalogue data and a popularity
score only, and Spotify for Artists' per-day figures reach labels and distributors as
exports. The answer shape here is *modelled* on that timeline export, served as a Web API
paging object (``items``, ``limit``, ``offset``, ``total``, ``next``) behind the Web API's
documented sign-in (client credentials at ``accounts.spotify.com/api/token``) and rate
limiting (a rolling 30-second window; HTTP 429 with ``Retry-After``). Track identities
(ISRC, duration) are the Web API track object's ``external_ids.isrc`` and ``duration_ms``.

Playlists (also modelled on Spotify for Artists, as ``/stats/playlists`` beside the daily
timeline): per day, each playlist holding one of the artist's tracks and the track's
position, the playlist as a Web API playlist object (``id``, ``name``, ``owner``,
``followers.total``); editorial playlists are those owned by the ``spotify`` user, as on
the Web API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field, NonNegativeInt

from business.analytics.sources import playlists
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


class Owner(BaseModel):
    id: str
    display_name: str | None = None


class Followers(BaseModel):
    total: NonNegativeInt


class Playlist(BaseModel):
    id: str
    name: str
    owner: Owner
    followers: Followers


class TrackRef(BaseModel):
    id: str


class PlacementRow(BaseModel):
    date: str
    position: int = Field(ge=1)
    track: TrackRef
    playlist: Playlist


class PlaylistPage(BaseModel):
    items: list[PlacementRow]
    limit: NonNegativeInt
    offset: NonNegativeInt
    total: NonNegativeInt
    next: str | None


class AudienceRow(BaseModel):
    date: str
    dimension: Literal["country", "city", "age", "gender"]
    value: str
    listeners: NonNegativeInt


class AudiencePage(BaseModel):
    items: list[AudienceRow]
    limit: NonNegativeInt
    offset: NonNegativeInt
    total: NonNegativeInt
    next: str | None


#: The owner of Spotify's editorial playlists on the Web API.
EDITORIAL_OWNER = "spotify"


class SpotifyConnector(Connector):
    spec = SourceSpec(
        name="spotify", title="Spotify for Artists", auth="oauth_client_credentials",
        pagination="offset", rate_limit=RateLimit(180, 30), shape="modelled",
        api_host="https://api.spotify.com", token_url="https://accounts.spotify.com/api/token",
        docs="https://developer.spotify.com/documentation/web-api/concepts/rate-limits",
        metrics=("streams", "listeners", "saves", "audience_listeners"),
        entity_kinds=("artist", "track"),
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

    async def after_window(self, entity: Entity, start: date, end: date,
                           out: Fetched) -> None:
        """The window's playlist placements (every page of them)."""
        call: Call | None = self.paged(f"/v1/artists/{entity.id}/stats/playlists",
                                       {"start_date": start.isoformat(),
                                        "end_date": end.isoformat()})
        while call is not None:
            page: PlaylistPage = await self.get(call, out, PlaylistPage)
            out.pages += 1
            playlists.keep(self.spec, [playlists.Placement(
                parse_day(row.date), row.track.id, row.playlist.id, row.playlist.name,
                row.playlist.owner.id == EDITORIAL_OWNER, row.position,
                row.playlist.followers.total) for row in page.items], out)
            call = Call(page.next, {}) if page.next and page.items else None
        await self.audience(entity, start, end, out)

    async def audience(self, entity: Entity, start: date, end: date, out: Fetched) -> None:
        """The artist's listeners per day by country, city, age band and gender (Spotify
        for Artists' audience figures), as ``audience_listeners`` with that dimension: a
        metric of its own, so no KPI sums the four breakdowns."""
        call: Call | None = self.paged(f"/v1/artists/{entity.id}/stats/audience",
                                       {"start_date": start.isoformat(),
                                        "end_date": end.isoformat()})
        while call is not None:
            page: AudiencePage = await self.get(call, out, AudiencePage)
            out.pages += 1
            for row in page.items:
                out.points.append(point(self.spec, "artist", entity.id, "audience_listeners",
                                        parse_day(row.date), row.listeners,
                                        ((row.dimension, row.value),)))
            call = Call(page.next, {}) if page.next and page.items else None
