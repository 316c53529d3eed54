"""Apple Music: daily plays and listeners per song of an artist.

Apple Music for Artists has no public API; the Apple Music API (catalogue) is public and
signs requests with a developer token (a JWT made from a MusicKit key, sent as a Bearer
token: the ``api_key`` here, made outside the connector). The per-day figures are
*modelled* on the Apple Music for Artists export, served in the Apple Music API's JSON:API
envelope (``data`` resources with ``attributes``, a relative ``next`` link). Song
identities follow the catalogue song object (``isrc``, ``durationInMillis``). Apple does
not publish its limits; it answers 429 when exceeded.

Playlists (modelled the same way, ``/playlists/daily``): ``playlist-placements`` resources
(the day, the song's position, the playlist's followers) related to the song and to an
Apple Music API playlist resource (``name``, ``curatorName``, ``playlistType``); a
playlist is editorial when its ``playlistType`` is ``editorial``, as the API documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, Field, NonNegativeInt

from business.analytics.sources import playlists
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


class PlaylistAttributes(BaseModel):
    name: str
    curatorName: str = ""
    playlistType: str


class PlaylistResource(BaseModel):
    id: str
    type: str
    attributes: PlaylistAttributes


class PlaylistLinks(BaseModel):
    data: list[PlaylistResource] = Field(min_length=1, max_length=1)


class SongRef(BaseModel):
    id: str
    type: str


class SongLinks(BaseModel):
    data: list[SongRef] = Field(min_length=1, max_length=1)


class PlacementAttributes(BaseModel):
    date: str
    position: int = Field(ge=1)
    followers: NonNegativeInt


class PlacementRelationships(BaseModel):
    playlists: PlaylistLinks
    songs: SongLinks


class Placement(BaseModel):
    id: str
    type: str
    attributes: PlacementAttributes
    relationships: PlacementRelationships


class PlacementPage(BaseModel):
    data: list[Placement]
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

    async def after_window(self, entity: Entity, start: date, end: date,
                           out: Fetched) -> None:
        """The window's playlist placements (following ``next``)."""
        call: Call | None = self.paged(f"/v1/analytics/artists/{entity.id}/playlists/daily",
                                       {"start": start.isoformat(), "end": end.isoformat()})
        while call is not None:
            page: PlacementPage = await self.get(call, out, PlacementPage)
            out.pages += 1
            found = []
            for item in page.data:
                playlist = item.relationships.playlists.data[0]
                found.append(playlists.Placement(
                    parse_day(item.attributes.date), item.relationships.songs.data[0].id,
                    playlist.id, playlist.attributes.name,
                    playlist.attributes.playlistType == "editorial", item.attributes.position,
                    item.attributes.followers))
            playlists.keep(self.spec, found, out)
            call = Call(page.next, {}) if page.next and page.data else None
