"""Apple Music: daily plays and listeners per song of an artist.

Apple Music for Artists has no public API; the Apple Music API (catalogue) is public and
signs requests with a developer token (a JWT made from a MusicKit key, sent as a Bearer
token: the ``api_key`` here, made outside the connector). The per-day figures are
*modelled* on the Apple Music for Artists export, served in the Apple Music API's JSON:API
envelope (``data`` resources with ``attributes``, a relative ``next`` link). Song
identities follow the catalogue song object (``isrc``, ``durationInMillis``). Apple does
not publish its limits; it answers 429 when exceeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Song(BaseModel):
    id: str
    name: str
    isrc: str
    durationInMillis: NonNegativeInt
    artistName: str


class Attributes(BaseModel):
    date: str
    plays: NonNegativeInt
    listeners: NonNegativeInt
    song: Song


class Resource(BaseModel):
    id: str
    type: str
    attributes: Attributes


class Page(BaseModel):
    data: list[Resource]
    next: str | None = None


class AppleMusicConnector(Connector):
    spec = SourceSpec(
        name="apple_music", title="Apple Music for Artists", auth="api_key",
        pagination="cursor", rate_limit=RateLimit(20, 1), shape="modelled",
        api_host="https://api.music.apple.com",
        docs="https://developer.apple.com/documentation/applemusicapi",
        metrics=("plays", "listeners"), entity_kinds=("artist", "track"))
    Page = Page
    api_key_in = ("header", "Authorization", "Bearer {key}")

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/v1/analytics/artists/{entity.id}/songs/daily",
                          {"start": start.isoformat(), "end": end.isoformat()})

    def rows(self, page: Page) -> Sequence[Resource]:
        return page.data

    def next_cursor(self, page: Page) -> str | None:
        return page.next

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        spec = self.spec
        for resource in page.data:
            attrs, song = resource.attributes, resource.attributes.song
            at = parse_day(attrs.date)
            out.points.append(point(spec, "track", song.id, "plays", at, attrs.plays))
            out.points.append(point(spec, "track", song.id, "listeners", at, attrs.listeners))
            out.add_identity(Identity(spec.name, "track", song.id, song.name, isrc=song.isrc,
                                      duration_ms=song.durationInMillis,
                                      artist_name=song.artistName))
