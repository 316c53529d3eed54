"""Automation lanes inside a track's (or bus's) map of the project document.

Layout (``docs/document-schema.md``)::

    tracks[id].automation  Map  gain_db | pan | mute -> Map(mode, points: Map(point id ->
                                                           Map(frame, value, curve)))
                                "<param>@"           -> mode (str)
                                "<param>@<point id>" -> Map(frame, value, curve)
    buses[id].automation   Map  the flat entries only

The track fader's lane maps are created with the track, so two peers adding the first
points of a lane at once both land in the same ``points`` map. Every other lane (a send,
an effect parameter, an object coordinate, a bus fader: :mod:`dsp_core.automation_targets`)
is created lazily and *flat*: its mode and each point are entries of the owner's
``automation`` map, keyed by the parameter, ``@`` and the point id, so concurrent first
points never collide (no lane map to create twice) and a concurrent move and delete of one
point resolves per field. Tracks written before automation existed, and buses created by
a client that made no ``automation`` map, get it on the first automation edit.
"""

from __future__ import annotations

import math
from typing import Any

from pycrdt import Map

from dsp_core.automation_targets import RESERVED, lane_range
from dsp_core.effects import HOSTED_KINDS, PARAMS, EffectSpec
from dsp_core.errors import ProjectError
from dsp_core.immersive import ImmersiveRoute
from dsp_core.session import (
    AUTOMATION_MODES,
    AUTOMATION_PARAMS,
    AutomationLane,
    AutomationPoint,
    Bus,
    Send,
    Track,
    validate_point,
)

from .errors import SchemaError

DEFAULT_MODE = "read"


def new_lanes(lanes: dict[str, AutomationLane] | None = None, track: bool = True) -> Map:
    """The ``automation`` map of a new track (one lane map per fader parameter) or bus,
    holding ``lanes`` (the other parameters' in the flat layout)."""
    lanes = lanes or {}
    entries: dict[str, Any] = {}
    if track:
        entries.update({param: _lane_map(lanes.get(param)) for param in AUTOMATION_PARAMS})
    for param, lane in lanes.items():
        if not (track and param in AUTOMATION_PARAMS):
            entries[f"{param}{RESERVED}"] = lane.mode
            for i, point in enumerate(lane.points):
                entries[f"{param}{RESERVED}{point.id or f'pt{i}'}"] = point_map(point)
    return Map(entries)


def is_flat(param: str, track: bool) -> bool:
    """Whether ``param``'s lane is stored flat (everything but a track's fader lanes)."""
    return not (track and param in AUTOMATION_PARAMS)


def _lane_map(lane: AutomationLane | None) -> Map:
    lane = lane or AutomationLane(mode=DEFAULT_MODE)
    return Map({"mode": lane.mode, "points": Map({
        p.id or f"pt{i}": point_map(p) for i, p in enumerate(lane.points)
    })})


def point_map(point: AutomationPoint) -> Map:
    """A breakpoint as stored in the document."""
    return Map({"frame": point.frame, "value": float(point.value), "curve": point.curve})


def check_param(param: str, owner: Track | Bus | None = None) -> tuple[float, float]:
    """The range of ``param`` on ``owner`` (the track fader's without one), or
    :class:`SchemaError` for a parameter that cannot be automated there."""
    if owner is None:
        if param not in AUTOMATION_PARAMS:
            raise SchemaError(f"parameter {param!r} cannot be automated; "
                              f"automatable: {', '.join(AUTOMATION_PARAMS)}")
        return AUTOMATION_PARAMS[param]
    try:
        return lane_range(owner, param)
    except ProjectError as exc:
        raise SchemaError(str(exc)) from exc


def check_mode(mode: str) -> None:
    """Raise :class:`SchemaError` for an unknown lane mode."""
    if mode not in AUTOMATION_MODES:
        raise SchemaError(f"automation mode {mode!r} is not one of {', '.join(AUTOMATION_MODES)}")


def check_point(param: str, frame: Any, value: Any, curve: Any,
                owner: Track | Bus | None = None) -> AutomationPoint:
    """A validated breakpoint, or :class:`SchemaError` saying what is wrong (``owner``
    gives the range of parameters other than the track fader's)."""
    low, high = check_param(param, owner)
    if isinstance(frame, float) and frame.is_integer():
        frame = int(frame)
    point = AutomationPoint(frame=frame, value=value, curve=curve)
    try:
        validate_point(param, point, f"{param} point", low, high)
    except ProjectError as exc:
        raise SchemaError(str(exc)) from exc
    return point


def lane_map(owner: Map, param: str, track: bool = True) -> Map | FlatLane:
    """The lane of ``param`` in a track's or bus's map (its ``automation`` map created
    for owners older than automation); callers check ``param`` against the owner first."""
    automation = owner.get("automation")
    if automation is None:
        owner["automation"] = new_lanes(track=track)
        automation = owner["automation"]
    if is_flat(param, track):
        return FlatLane(automation, param)
    lane = automation.get(param)
    if lane is None:
        automation[param] = _lane_map(None)
        lane = automation[param]
    return lane


class FlatLane:
    """A flat lane seen like a lane map: ``lane["mode"]``, ``lane["points"]``."""

    def __init__(self, automation: Map, param: str) -> None:
        self.automation, self.prefix = automation, f"{param}{RESERVED}"

    def __getitem__(self, key: str) -> Any:
        if key == "points":
            return FlatPoints(self.automation, self.prefix)
        if key == "mode":
            return self.automation.get(self.prefix, DEFAULT_MODE)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key != "mode":
            raise KeyError(key)
        self.automation[self.prefix] = value

    def to_py(self) -> dict[str, Any]:
        """``{mode, points}`` as plain data."""
        return {"mode": self["mode"], "points": self["points"].to_py()}


class FlatPoints:
    """A flat lane's points seen like a ``points`` map (point id -> Map)."""

    def __init__(self, automation: Map, prefix: str) -> None:
        self.automation, self.prefix = automation, prefix

    def _ids(self) -> list[str]:
        n = len(self.prefix)
        return [k[n:] for k in self.automation if k.startswith(self.prefix)
                and len(k) > n]

    def get(self, point_id: str) -> Map | None:
        """The point's map, or None."""
        return self.automation.get(self.prefix + point_id) if point_id else None

    def __setitem__(self, point_id: str, point: Map) -> None:
        self.automation[self.prefix + point_id] = point

    def __delitem__(self, point_id: str) -> None:
        del self.automation[self.prefix + point_id]

    def __contains__(self, point_id: str) -> bool:
        return bool(point_id) and (self.prefix + point_id) in self.automation

    def to_py(self) -> dict[str, Any]:
        """point id -> {frame, value, curve}."""
        return {i: self.automation[self.prefix + i].to_py() for i in self._ids()}


def static_value(data: dict[str, Any], param: str, track: bool = True) -> float:
    """What ``param`` is without a lane, from a track's or bus's plain data (declared
    defaults where the data names none)."""
    kind, colon, rest = param.partition(":")
    if not colon:
        return float(data.get(param) or 0.0)
    if kind == "send":
        return float(((data.get("sends") or {}).get(rest) or {}).get("level_db", 0.0))
    if kind == "object":
        route = data.get("immersive") or {}
        return float(route.get(rest, 1.0 if rest == "distance" else 0.0))
    effect_id, _, name = rest.partition(":")
    for effect in data.get("effects") or []:
        if effect.get("id") == effect_id:
            value = (effect.get("params") or {}).get(name)
            if isinstance(value, int | float):
                return float(value)
            return _default(str(effect.get("kind", "")), effect.get("params") or {}, name)
    return 0.0


def _default(kind: str, params: dict[str, Any], name: str) -> float:
    if kind in HOSTED_KINDS:
        from dsp_core.lv2_catalog import plugin

        for port in plugin(str(params.get("uri", ""))).controls:
            if port.symbol == name:
                return port.start_value()
        return 0.0
    for declared in PARAMS.get(kind, ()):
        if declared.name == name:
            return declared.default
    return 0.0


def owner_from_json(data: Any, track: bool = True) -> Track | Bus:
    """What a lane's range depends on, from a track's or bus's plain data: its effects
    (id, kind, the lv2 URI), sends and immersive route."""
    data = data or {}
    effects = [EffectSpec(str(e.get("kind", "")), dict(e.get("params") or {}),
                          id=str(e.get("id", ""))) for e in data.get("effects") or []
               if isinstance(e, dict)]
    if not track:
        return Bus(id=str(data.get("id", "")), effects=effects)
    route = data.get("immersive")
    return Track(id=str(data.get("id", "")), effects=effects,
                 sends=[Send(str(bus)) for bus in (data.get("sends") or {})],
                 immersive=ImmersiveRoute(kind=str(route.get("kind", "")))
                 if isinstance(route, dict) else None)


def lanes_from_json(data: Any, owner: Track | Bus | None = None) -> dict[str, AutomationLane]:
    """An owner's lanes from the document's plain data; points a peer wrote out of range
    are left out (the rest of the mix keeps playing), so are lanes ``owner`` cannot have
    (without an owner, every lane but the track fader's)."""
    raw: dict[str, dict[str, Any]] = {}
    for key, entry in (data if isinstance(data, dict) else {}).items():
        if RESERVED in key:
            param, _, point_id = key.partition(RESERVED)
            lane = raw.setdefault(param, {"mode": DEFAULT_MODE, "points": {}})
            if point_id:
                lane["points"][point_id] = entry
            else:
                lane["mode"] = entry
        elif isinstance(entry, dict):
            raw[key] = entry
    lanes: dict[str, AutomationLane] = {}
    for param, lane in raw.items():
        try:
            low_high = check_param(param, owner)
        except SchemaError:
            continue
        points = []
        written = lane.get("points")
        for point_id, entry in (written if isinstance(written, dict) else {}).items():
            try:
                point = _checked(param, entry, low_high)
            except (SchemaError, AttributeError):
                continue
            point.id = str(point_id)
            points.append(point)
        mode = lane.get("mode", DEFAULT_MODE)
        lanes[param] = AutomationLane(mode=mode if isinstance(mode, str)
                                      and mode in AUTOMATION_MODES else "off",
                                      points=sorted(points, key=lambda p: (p.frame, p.id)))
    return lanes


def _checked(param: str, raw: Any, low_high: tuple[float, float]) -> AutomationPoint:
    point = AutomationPoint(frame=_frame(raw.get("frame")), value=raw.get("value"),
                            curve=raw.get("curve", "linear"))
    try:
        validate_point(param, point, f"{param} point", *low_high)
    except ProjectError as exc:
        raise SchemaError(str(exc)) from exc
    return point


def _frame(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
