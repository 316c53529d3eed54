"""What a connector hands on: time-series points, identities for the catalogue, gaps it
found, and how far a back-fill got."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

EntityKind = Literal["artist", "track", "release", "playlist", "video", "venue"]
ENTITY_KINDS: tuple[str, ...] = ("artist", "track", "release", "playlist", "video", "venue")
Grain = Literal["daily", "hourly"]
#: Dimensions of a point as sorted (name, value) pairs: (("country", "DE"),).
Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Entity:
    """What a back-fill is for: the account's artist, channel or user on that platform."""

    kind: str
    id: str


@dataclass(frozen=True, slots=True)
class Point:
    """One value of one metric of one entity at one time (UTC; midnight for daily grain)."""

    source: str
    entity_kind: str
    entity_id: str                  # the platform's own id
    metric: str                     # "streams", "followers", "views", ...
    at: datetime
    value: int | float
    dimensions: Dimensions = ()

    @property
    def series(self) -> tuple[str, str, str, Dimensions]:
        """The series this point belongs to (entity kind and id, metric, dimensions)."""
        return (self.entity_kind, self.entity_id, self.metric, self.dimensions)


@dataclass(frozen=True, slots=True)
class Identity:
    """What a source says an entity is, for the catalogue to resolve across platforms."""

    source: str
    entity_kind: str
    entity_id: str
    name: str
    isrc: str | None = None
    upc: str | None = None
    duration_ms: int | None = None
    artist_name: str | None = None
    #: Other ids the source reports: (("musicbrainz", "mbid"), ("spotify", "id")).
    external_ids: tuple[tuple[str, str], ...] = ()
    #: The genres the source gives the entity (an artist's), as it words them.
    genres: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of missing buckets in a series: reported, never filled in."""

    source: str
    entity_kind: str
    entity_id: str
    metric: str
    dimensions: Dimensions
    first: datetime                 # first missing bucket
    last: datetime                  # last missing bucket (inclusive)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a back-fill got before it stopped."""

    pages: int
    points: int
    #: The last day whose window was fetched completely (None: not even the first).
    complete_through: date | None
    #: What was fetched before the stop (the caller may keep it: each point is valid).
    fetched: Fetched | None = None


@dataclass
class Fetched:
    """The result of a back-fill: points, identities, gaps and what it cost."""

    points: list[Point] = field(default_factory=list)
    identities: dict[tuple[str, str], Identity] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    pages: int = 0
    requests: int = 0

    def add_identity(self, identity: Identity) -> None:
        self.identities[(identity.entity_kind, identity.entity_id)] = identity


def buckets(start: date, end: date, grain: str) -> list[datetime]:
    """Every bucket from ``start`` to ``end`` (inclusive days) at ``grain``, in UTC."""
    from datetime import UTC

    step = timedelta(days=1) if grain == "daily" else timedelta(hours=1)
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    stop = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    out, at = [], first
    while at < stop:
        out.append(at)
        at += step
    return out


#: Series that have a point only on some days by nature: a track's position on a playlist
#: (only while it is on it), a playlist's followers (only while it holds one of ours),
#: the followers' demographics (a snapshot of today, taken when the account is read).
SPARSE_METRICS = frozenset({"playlist_position", "playlist_followers", "audience_followers"})


def find_gaps(source: str, points: Iterable[Point], start: date, end: date,
              grain: str) -> list[Gap]:
    """The missing buckets of every series that has points in [start, end] (not of the
    playlist series: a track off a playlist is no gap)."""
    expected = buckets(start, end, grain)
    seen: dict[tuple[str, str, str, Dimensions], set[datetime]] = {}
    for point in points:
        if point.metric not in SPARSE_METRICS:
            seen.setdefault(point.series, set()).add(point.at)
    gaps = []
    for (kind, entity_id, metric, dims), present in sorted(seen.items()):
        run: list[datetime] = []
        for at in [*expected, None]:
            if at is not None and at not in present:
                run.append(at)
                continue
            if run:
                gaps.append(Gap(source, kind, entity_id, metric, dims, run[0], run[-1]))
                run = []
    return gaps
