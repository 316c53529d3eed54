"""Playlist placements as points, for the sources that report them (Spotify, Apple Music,
Deezer): one shape for every source's answer.

- ``playlist_position``: a track's place on a playlist on a day (1 = the top), on the
  track, with the dimensions ``curator`` (``editorial``: made by the platform's editors;
  ``user``: by a listener or a brand) and ``playlist`` (its platform id). A track has a
  point only on the days it is on the playlist, so adds and removes are where its days
  start and stop (:mod:`business.analytics.playlists`).
- ``playlist_followers``: the playlist's followers (its reach) that day, on the playlist
  (entity kind ``playlist``), on the days it holds one of the artist's tracks.

The playlist's name goes to the catalogue (kind ``playlist``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from business.analytics.sources.base import point
from business.analytics.sources.records import Fetched, Identity
from business.analytics.sources.spec import SourceSpec

POSITION = "playlist_position"
FOLLOWERS = "playlist_followers"
EDITORIAL, USER = "editorial", "user"
CURATORS = (EDITORIAL, USER)


@dataclass(frozen=True)
class Placement:
    """A track on a playlist on one day, as any source reports it."""

    at: datetime
    track_id: str
    playlist_id: str
    playlist_name: str
    editorial: bool
    position: int
    followers: int


def keep(spec: SourceSpec, placements: list[Placement], out: Fetched) -> None:
    """``placements`` as points and playlist identities in ``out`` (followers once per
    playlist and day)."""
    counted = {(p.entity_id, p.at) for p in out.points if p.metric == FOLLOWERS}
    for item in placements:
        curator = EDITORIAL if item.editorial else USER
        out.points.append(point(spec, "track", item.track_id, POSITION, item.at, item.position,
                                (("curator", curator), ("playlist", item.playlist_id))))
        if (item.playlist_id, item.at) not in counted:
            counted.add((item.playlist_id, item.at))
            out.points.append(point(spec, "playlist", item.playlist_id, FOLLOWERS, item.at,
                                    item.followers))
        out.add_identity(Identity(spec.name, "playlist", item.playlist_id, item.playlist_name))
