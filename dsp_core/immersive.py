"""Immersive routing of a track (7.1.4 bed or positioned object) and loudspeaker layouts.

A track's :class:`ImmersiveRoute` says where it goes in an immersive mix:

- ``bed``: each of the track's channels feeds one channel of the 7.1.4 bed, named by its
  ITU-R BS.2051 label (``M+030`` is front left, ``U-135`` top rear right, ``LFE1``);
- ``object``: the track is a mono object at (azimuth, elevation, distance), ADM
  conventions: azimuth in degrees, positive to the left, 0 in front; elevation in
  degrees, positive up; distance normalised, 1 on the loudspeaker sphere.

A track without a route feeds the bed's front pair (``M+030``/``M-030``) with its stereo
mix, so an older project renders as before. The panner's gains are in
:mod:`dsp_core.immersive_panner`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ProjectError

ROUTE_KINDS = ("bed", "object")

#: The 7.1.4 bed (BS.2051 system J, 4+7+0) in channel order, with nominal positions.
BED_714: tuple[str, ...] = ("M+030", "M-030", "M+000", "LFE1", "M+090", "M-090", "M+135",
                            "M-135", "U+045", "U-045", "U+135", "U-135")

#: Loudspeaker layouts a render can target, in their BS.2051 channel order.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "7.1.4": BED_714,
    "5.1": ("M+030", "M-030", "M+000", "LFE1", "M+110", "M-110"),
    "stereo": ("M+030", "M-030"),
}

#: The ear / BS.2051 name of each layout (``ear-render -s NAME``).
BS2051_NAMES = {"7.1.4": "4+7+0", "5.1": "0+5+0", "stereo": "0+2+0"}

LFE = "LFE1"


def nominal_position(label: str) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of a BS.2051 label such as ``M+030`` or ``U-135``."""
    if label == LFE:
        return 45.0, -30.0
    layer = {"M": 0.0, "U": 30.0, "B": -30.0, "T": 90.0}.get(label[:1])
    try:
        azimuth = float(label[1:])
    except ValueError:
        azimuth = math.nan
    if layer is None or math.isnan(azimuth):
        raise ProjectError(f"{label!r} is not a loudspeaker label; use one of "
                           f"{', '.join(BED_714)}")
    return azimuth, layer


@dataclass(frozen=True)
class ImmersiveRoute:
    """Where a track goes in an immersive mix (see the module docstring)."""

    kind: str
    channels: tuple[str, ...] = ()
    azimuth: float = 0.0
    elevation: float = 0.0
    distance: float = 1.0


def validate_route(route: ImmersiveRoute, track_channels: int, where: str) -> None:
    """Raise :class:`ProjectError` saying what is wrong with ``route`` and how to fix it."""
    if route.kind not in ROUTE_KINDS:
        raise ProjectError(f"{where}: immersive kind {route.kind!r} must be 'bed' or 'object'")
    if route.kind == "bed":
        if len(route.channels) != track_channels:
            raise ProjectError(
                f"{where}: a {track_channels}-channel track feeds {track_channels} bed "
                f"channel(s), got {list(route.channels)}")
        for label in route.channels:
            if label not in BED_714:
                raise ProjectError(f"{where}: bed channel {label!r} is not one of "
                                   f"{', '.join(BED_714)}")
        if len(set(route.channels)) != len(route.channels):
            raise ProjectError(f"{where}: bed channels {list(route.channels)} repeat a channel")
        return
    if route.channels:
        raise ProjectError(f"{where}: an object has a position, not bed channels")
    for name, value, low, high in (("azimuth", route.azimuth, -180.0, 180.0),
                                   ("elevation", route.elevation, -90.0, 90.0),
                                   ("distance", route.distance, 0.0, 1.0)):
        if not isinstance(value, int | float) or not low <= value <= high:
            raise ProjectError(f"{where}: object {name} {value!r} must be a number in "
                               f"[{low:g}, {high:g}]")


def route_to_dict(route: ImmersiveRoute) -> dict[str, Any]:
    """The JSON form used by the project file and the document."""
    if route.kind == "bed":
        return {"kind": "bed", "channels": list(route.channels)}
    return {"kind": "object", "azimuth": route.azimuth, "elevation": route.elevation,
            "distance": route.distance}


def route_from_dict(value: object, where: str, track_channels: int) -> ImmersiveRoute:
    """Parse and validate the JSON form; errors name ``where`` and the bad value."""
    if not isinstance(value, dict):
        raise ProjectError(f"{where}: immersive must be an object such as "
                           f'{{"kind": "object", "azimuth": 30}}, got {value!r}')
    allowed = {"kind", "channels", "azimuth", "elevation", "distance"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ProjectError(f"{where}: unknown immersive field(s) {unknown}; "
                           f"allowed: {sorted(allowed)}")
    kind = value.get("kind")
    channels = value.get("channels", [])
    if not isinstance(channels, list | tuple) or not all(isinstance(c, str) for c in channels):
        raise ProjectError(f"{where}: immersive channels must be a list of labels, "
                           f"got {channels!r}")
    numbers = {}
    for name, default in (("azimuth", 0.0), ("elevation", 0.0), ("distance", 1.0)):
        raw = value.get(name, default)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or math.isnan(raw):
            raise ProjectError(f"{where}: immersive {name} must be a number, got {raw!r}")
        numbers[name] = float(raw)
    route = ImmersiveRoute(str(kind), tuple(channels), **numbers)
    validate_route(route, track_channels, where)
    return route
