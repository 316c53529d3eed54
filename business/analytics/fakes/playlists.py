"""Seeded playlist placements for the fakes that give playlists (Spotify, Apple Music,
Deezer): which of the artist's tracks sit on which playlist on a day, at which position,
and each playlist's followers.

Every answer is a pure function of (seed, source, playlist, track, day), as the series are:
a track joins a playlist on a seeded day, may leave it on a later one, and climbs a place a
week; a playlist's followers grow like a running total (:class:`~.series.Series`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from business.analytics.fakes.series import EPOCH, Series, _digest

#: (name, editorial) of the seeded playlists of every source.
PLAYLISTS = (("New Music Friday", True), ("Chill Evening", False), ("Indie Pulse", True),
             ("Running Mix 2024", False), ("Late Night Drive", False))


@dataclass(frozen=True)
class Stay:
    """A track's time on a playlist: joined, left (None: still there), first position."""

    joined: date
    left: date | None
    position: int

    def position_on(self, day: date) -> int | None:
        """The track's position on ``day`` (None: not on the playlist that day)."""
        if day < self.joined or (self.left is not None and day >= self.left):
            return None
        return max(1, self.position - (day - self.joined).days // 7)


@dataclass(frozen=True)
class FakePlaylist:
    id: str
    name: str
    editorial: bool


class Placements:
    """The seeded playlists of one fake source and the artist's tracks on them."""

    def __init__(self, seed: int, source: str, prefix: str) -> None:
        self.seed, self.source = seed, source
        self.series = Series(seed)
        self.playlists = [FakePlaylist(f"{prefix}{seed:02d}{i:04d}", name, editorial)
                          for i, (name, editorial) in enumerate(PLAYLISTS)]

    def stay(self, playlist: str, track: str) -> Stay | None:
        return _stay(self.seed, self.source, playlist, track)

    def on(self, day: date, tracks: list[str]) -> list[tuple[FakePlaylist, str, int]]:
        """(playlist, track, position) of every track on a playlist on ``day``."""
        out = []
        for playlist in self.playlists:
            for track in tracks:
                stay = self.stay(playlist.id, track)
                position = stay.position_on(day) if stay is not None else None
                if position is not None:
                    out.append((playlist, track, position))
        return out

    def followers(self, playlist: str, day: date) -> int:
        return self.series.value(self.source, playlist, "followers", day)


@lru_cache(maxsize=8192)
def _stay(seed: int, source: str, playlist: str, track: str) -> Stay | None:
    rng = random.Random(_digest(seed, source, "playlist", playlist, track))
    if rng.random() < 0.45:
        return None
    joined = EPOCH + timedelta(days=rng.randrange(10, 160))
    left = joined + timedelta(days=rng.randrange(15, 90)) if rng.random() < 0.5 else None
    return Stay(joined, left, rng.randrange(5, 60))


def playlist_truth(placements: Placements, tracks: list[str], days: list[date]
                   ) -> dict[tuple, int]:
    """What a complete back-fill of the playlists must hold, as ``FakeSource.truth`` keys:
    each track's position per playlist and day (the ``curator`` and ``playlist``
    dimensions), and each playlist's followers on the days it holds one of ``tracks``."""
    out: dict[tuple, int] = {}
    for day in days:
        for playlist, track, position in placements.on(day, tracks):
            curator = "editorial" if playlist.editorial else "user"
            out[("track", track, "playlist_position", day,
                 (("curator", curator), ("playlist", playlist.id)))] = position
            out[("playlist", playlist.id, "playlist_followers", day, ())] = \
                placements.followers(playlist.id, day)
    return out
