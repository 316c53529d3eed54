"""Deezer: the rank (Deezer's popularity score) of an artist's top tracks, today.

Documented: the public Deezer API (``GET /artist/{id}/top``, no sign-in for public data),
paged by ``index`` and ``limit`` with ``total`` and a ``next`` link. It answers current
values only, so this source takes a daily snapshot and cannot back-fill. Errors come back
as HTTP 200 with ``{"error": {"type", "message", "code"}}``: code 4 is the quota (50
requests per 5 seconds), 300 an invalid token, 700 "service busy", 800 "no data".

Playlists (snapshot too, ``GET /artist/{id}/playlists``): Deezer playlist objects
(``id``, ``title``, ``fans``, ``creator``) with the artist's tracks on each and their
positions (modelled: the public API gives a playlist's whole tracklist). Deezer marks no
playlist editorial; its editors publish under profiles named "... Editor" (or "Deezer"),
so those are counted editorial (a heuristic, said so in docs/analytics.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, Field, NonNegativeInt

from business.analytics.errors import (
    RateLimited,
    SchemaChanged,
    ServerError,
    SourceError,
    TokenRevoked,
)
from business.analytics.sources import playlists
from business.analytics.sources.base import Call, Connector, point, utc_day
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Artist(BaseModel):
    id: int
    name: str


class Track(BaseModel):
    id: int
    title: str
    duration: NonNegativeInt        # seconds
    rank: NonNegativeInt
    artist: Artist


class Error(BaseModel):
    type: str
    message: str
    code: int


class Page(BaseModel):
    data: list[Track] | None = None
    total: NonNegativeInt | None = None
    next: str | None = None
    error: Error | None = None


class Creator(BaseModel):
    id: int
    name: str


class PlacedTrack(BaseModel):
    id: int
    position: int = Field(ge=1)


class PlacedTracks(BaseModel):
    data: list[PlacedTrack]


class Playlist(BaseModel):
    id: int
    title: str
    fans: NonNegativeInt
    creator: Creator
    tracks: PlacedTracks


class PlaylistPage(BaseModel):
    data: list[Playlist] | None = None
    total: NonNegativeInt | None = None
    next: str | None = None
    error: Error | None = None


#: Deezer's editorial profiles ("Deezer Pop Editor", "Deezer").
EDITOR = re.compile(r"^Deezer\b|\bEditors?$")


class DeezerConnector(Connector):
    spec = SourceSpec(
        name="deezer", title="Deezer", auth="none", pagination="offset",
        rate_limit=RateLimit(50, 5), api_host="https://api.deezer.com",
        docs="https://developers.deezer.com/api", metrics=("rank",),
        entity_kinds=("track",), history=False)
    Page = Page
    offset_param = "index"
    page_size = 25

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/artist/{entity.id}/top", {})

    def check(self, page: Page) -> None:
        if page.error is not None:
            error, text = page.error, f"code {page.error.code}: {page.error.message}"
            if error.code == 4:
                raise RateLimited(text, retry_after=5.0, source=self.name)
            if error.code == 700:
                raise ServerError(text, source=self.name)
            if error.code == 300:
                raise TokenRevoked(text, source=self.name)
            raise SourceError(text, source=self.name)
        if page.data is None:
            raise SchemaChanged("data", "the answer has neither data nor error",
                                source=self.name)

    def rows(self, page: Page) -> Sequence[Track]:
        return page.data or []

    def total(self, page: Page) -> int | None:
        return page.total

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for track in page.data or []:
            out.points.append(point(self.spec, "track", str(track.id), "rank", at, track.rank))
            out.add_identity(Identity(self.name, "track", str(track.id), track.title,
                                      duration_ms=track.duration * 1000,
                                      artist_name=track.artist.name))

    async def after_window(self, entity: Entity, start: date, end: date,
                           out: Fetched) -> None:
        """Today's playlist placements (every page)."""
        at = utc_day(self.today())
        call: Call | None = self.paged(f"/artist/{entity.id}/playlists", {})
        while call is not None:
            page: PlaylistPage = await self.get(call, out, PlaylistPage)
            out.pages += 1
            playlists.keep(self.spec, [playlists.Placement(
                at, str(track.id), str(item.id), item.title,
                EDITOR.search(item.creator.name) is not None, track.position, item.fans)
                for item in page.data or [] for track in item.tracks.data], out)
            call = Call(page.next, {}) if page.next and page.data else None
