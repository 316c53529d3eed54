"""Release and track metadata, read from and written to plain JSON-able dicts."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from business.distribution.errors import MetadataError

#: Display roles of an artist on a release or track.
ARTIST_ROLES = ("primary", "featuring", "remixer", "producer")
#: Roles of a contributor to the musical work.
CONTRIBUTOR_ROLES = ("composer", "lyricist", "arranger", "producer")
RELEASE_TYPES = ("single", "ep", "album")
WORLDWIDE = "Worldwide"


def utc_today() -> dt.date:
    """Today's date in UTC: release dates are UTC days, as in the DDEX messages, whatever
    the server's local time zone."""
    return dt.datetime.now(dt.UTC).date()


@dataclass
class Artist:
    """An artist credited on a release or track."""

    name: str
    role: str = "primary"


@dataclass
class Contributor:
    """A person credited on the musical work (composer, lyricist...)."""

    name: str
    role: str


@dataclass
class Track:
    """One track: a rendered audio file and its metadata."""

    title: str
    audio_path: str
    isrc: str = ""
    version: str = ""
    artists: list[Artist] = field(default_factory=list)
    contributors: list[Contributor] = field(default_factory=list)
    iswc: str = ""
    explicit: bool = False
    language: str = ""
    project_id: str = ""

    def primary_artists(self) -> list[str]:
        """Names of the primary artists."""
        return [a.name for a in self.artists if a.role == "primary"]


@dataclass
class Release:
    """A release as delivered to stores."""

    release_id: str
    title: str
    artists: list[Artist]
    tracks: list[Track]
    upc: str = ""
    version: str = ""
    release_type: str = "single"
    label: str = ""
    genre: str = ""
    language: str = ""
    explicit: bool = False
    p_line: str = ""
    c_line: str = ""
    release_date: str = ""
    territories: list[str] = field(default_factory=lambda: [WORLDWIDE])
    artwork_path: str = ""

    def date(self) -> dt.date | None:
        """The release date, or None when missing or malformed."""
        try:
            return dt.date.fromisoformat(self.release_date)
        except (TypeError, ValueError):
            return None

    def primary_artists(self) -> list[str]:
        """Names of the primary artists."""
        return [a.name for a in self.artists if a.role == "primary"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (inverse of :func:`release_from_dict`)."""
        return asdict(self)


def _artists(raw: Any, where: str) -> list[Artist]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MetadataError(f"{where} must be a list of {{name, role}}, got {raw!r}")
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append(Artist(item))
        elif isinstance(item, dict) and "name" in item:
            out.append(Artist(str(item["name"]), str(item.get("role", "primary"))))
        else:
            raise MetadataError(f"{where} entry {item!r} needs a 'name'")
    return out


def _contributors(raw: Any, where: str) -> list[Contributor]:
    if not isinstance(raw, list | type(None)):
        raise MetadataError(f"{where} must be a list of {{name, role}}, got {raw!r}")
    out = []
    for item in raw or []:
        if not isinstance(item, dict) or "name" not in item or "role" not in item:
            raise MetadataError(f"{where} entry {item!r} needs a 'name' and a 'role'")
        out.append(Contributor(str(item["name"]), str(item["role"])))
    return out


def _known(cls: type, raw: dict[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise MetadataError(f"{where} has unknown fields {sorted(unknown)}; "
                            f"known: {sorted(names)}")
    return raw


def track_from_dict(raw: dict[str, Any], where: str = "track") -> Track:
    """A :class:`Track` from a dict; MetadataError for a wrong shape."""
    if not isinstance(raw, dict):
        raise MetadataError(f"{where} must be an object, got {raw!r}")
    data = dict(_known(Track, raw, where))
    data["artists"] = _artists(data.get("artists"), f"{where}.artists")
    data["contributors"] = _contributors(data.get("contributors"), f"{where}.contributors")
    data.setdefault("title", "")
    data.setdefault("audio_path", "")
    return Track(**data)


def release_from_dict(raw: dict[str, Any]) -> Release:
    """A :class:`Release` from a dict; MetadataError for a wrong shape."""
    if not isinstance(raw, dict):
        raise MetadataError(f"a release must be a JSON object, got {type(raw).__name__}")
    data = dict(_known(Release, raw, "release"))
    data["artists"] = _artists(data.get("artists"), "release.artists")
    tracks = data.get("tracks") or []
    if not isinstance(tracks, list):
        raise MetadataError("release.tracks must be a list")
    data["tracks"] = [track_from_dict(t, f"tracks[{i}]") for i, t in enumerate(tracks)]
    territories = data.get("territories")
    if territories is not None and not isinstance(territories, list):
        raise MetadataError("release.territories must be a list such as ['Worldwide']")
    data.setdefault("release_id", "")
    data.setdefault("title", "")
    return Release(**data)
