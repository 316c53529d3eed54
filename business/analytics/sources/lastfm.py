"""Last.fm: play counts and listeners of an artist's top tracks, today.

Documented: the Last.fm API ``artist.getTopTracks`` (``GET /2.0/?method=...&mbid=...
&api_key=...&format=json&page&limit``), answering ``toptracks.track`` with counts as
strings and ``toptracks.@attr`` (``page``, ``totalPages``, ``total``). Counts are totals
to date (a daily snapshot; no back-fill). Errors carry ``{"error": code, "message"}``:
29 rate limit exceeded, 26 suspended key, 10 invalid key, 11 and 16 temporarily
unavailable. The terms ask for at most 5 requests a second averaged over 5 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

from business.analytics.errors import RateLimited, ServerError, SourceError, TokenRevoked
from business.analytics.sources.base import Call, Connector, point, utc_day
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Artist(BaseModel):
    name: str
    mbid: str = ""


class Track(BaseModel):
    name: str
    playcount: NonNegativeInt       # "1234" in the JSON; validated as a count
    listeners: NonNegativeInt
    mbid: str = ""
    artist: Artist


class Attr(BaseModel):
    page: NonNegativeInt
    totalPages: NonNegativeInt
    total: NonNegativeInt


class TopTracks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    track: list[Track]
    attr: Attr = Field(alias="@attr")


class Page(BaseModel):
    toptracks: TopTracks


class LastFmConnector(Connector):
    spec = SourceSpec(
        name="lastfm", title="Last.fm", auth="api_key", pagination="page",
        rate_limit=RateLimit(1500, 300), api_host="https://ws.audioscrobbler.com",
        docs="https://www.last.fm/api/show/artist.getTopTracks",
        metrics=("playcount", "listeners"), entity_kinds=("track",), history=False)
    Page = Page
    first_position = 1

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged("/2.0/", {"method": "artist.gettoptracks", "mbid": entity.id,
                                    "format": "json"})

    def rows(self, page: Page) -> Sequence[Track]:
        return page.toptracks.track

    def total(self, page: Page) -> int:
        return page.toptracks.attr.totalPages

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for track in page.toptracks.track:
            key = track.mbid or f"{track.artist.name}/{track.name}"
            out.points.append(point(self.spec, "track", key, "playcount", at, track.playcount))
            out.points.append(point(self.spec, "track", key, "listeners", at, track.listeners))
            ids = (("musicbrainz", track.mbid),) if track.mbid else ()
            out.add_identity(Identity(self.name, "track", key, track.name,
                                      artist_name=track.artist.name, external_ids=ids))

    def classify(self, status: int, body: Any, headers: Mapping[str, str]
                 ) -> SourceError | None:
        code = body.get("error") if isinstance(body, dict) else None
        if not isinstance(code, int):
            return None
        text = f"error {code}: {body.get('message', '')}"
        if code == 29:
            return RateLimited(text, retry_after=None, source=self.name, status=status)
        if code in (10, 26):
            return TokenRevoked(text, source=self.name, status=status)
        if code in (11, 16):
            return ServerError(text, source=self.name, status=status)
        return SourceError(text, source=self.name, status=status)
