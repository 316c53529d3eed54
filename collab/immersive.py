"""A track's immersive route (7.1.4 bed channels or an object's position) in the document.

Stored as ``tracks[id].immersive``: ``Map(kind, channels, azimuth, elevation, distance)``
(see ``docs/immersive.md``). Each coordinate is its own key, so one person moving an
object's azimuth while another moves its elevation merge into both moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from pycrdt import Map

from dsp_core.errors import ProjectError
from dsp_core.immersive import ImmersiveRoute, route_from_dict, route_to_dict, validate_route
from dsp_core.session import Track

from .errors import SchemaError

POSITION_FIELDS = ("azimuth", "elevation", "distance")


def route_map(route: ImmersiveRoute) -> Map:
    """A route as stored in a track's map."""
    return Map(route_to_dict(route))


def route_from_json(data: Any, channels: int) -> ImmersiveRoute | None:
    """A track's route from the document's plain data; a bad one a peer wrote renders as
    none (the track feeds the bed's front pair)."""
    if not isinstance(data, dict):
        return None
    data = {k: v for k, v in data.items() if v is not None}
    try:
        return route_from_dict(data, "immersive", channels)
    except ProjectError:
        return None


class ImmersiveEdits:
    """Immersive helpers of :class:`collab.schema.ProjectDocument` (one call = one update)."""

    _roots: dict[str, Map]

    def transaction(self, origin: Any = None) -> AbstractContextManager[Any]:  # pragma: no cover
        raise NotImplementedError

    def _track_map(self, track_id: str) -> Map:  # pragma: no cover
        raise NotImplementedError

    def set_immersive(self, track_id: str, route: ImmersiveRoute | None) -> None:
        """Route a track to bed channels or make it an object; ``None`` clears the route."""
        track = self._track_map(track_id)
        if route is not None:
            try:
                validate_route(route, int(track.get("channels", 1)), f"track {track_id!r}")
            except ProjectError as exc:
                raise SchemaError(str(exc)) from exc
        with self.transaction():
            if route is None:
                if "immersive" in track:
                    del track["immersive"]
            else:
                track["immersive"] = route_map(route)

    def move_object(self, track_id: str, **position: float) -> None:
        """Change an object's ``azimuth``, ``elevation`` and/or ``distance`` (only those
        given, each its own key)."""
        unknown = sorted(set(position) - set(POSITION_FIELDS))
        if unknown:
            raise SchemaError(f"unknown position field(s) {unknown}; use {POSITION_FIELDS}")
        track = self._track_map(track_id)
        current = self.immersive(track_id)
        if current is None or current.kind != "object":
            raise SchemaError(f"track {track_id!r} is not an object; set_immersive first")
        moved = route_to_dict(current) | {k: float(v) for k, v in position.items()}
        try:
            route_from_dict(moved, f"track {track_id!r}", int(track.get("channels", 1)))
        except ProjectError as exc:
            raise SchemaError(str(exc)) from exc
        with self.transaction():
            entry = track["immersive"]
            for key, value in position.items():
                entry[key] = float(value)

    def immersive(self, track_id: str) -> ImmersiveRoute | None:
        """The route of a track, or None."""
        data = self._track_map(track_id).to_py()
        return route_from_json(data.get("immersive"), int(data.get("channels", 1)))

    def _put_immersive(self, track: Track) -> None:
        """Write a track's route (inside the caller's transaction)."""
        if track.immersive is not None:
            self._track_map(track.id)["immersive"] = route_map(track.immersive)

    @staticmethod
    def _immersive_into(tracks: list[Track], rows: Iterator[dict[str, Any]]) -> None:
        """Give the session's tracks their routes from ``rows`` (the track maps)."""
        by_id = {t.id: t for t in tracks}
        for data in rows:
            track = by_id.get(str(data.get("id")))
            if track is not None:
                track.immersive = route_from_json(data.get("immersive"), track.channels)
