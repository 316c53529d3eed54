"""Automation lanes inside a track's map of the project document.

Layout (``docs/document-schema.md``)::

    tracks[id].automation  Map  param -> Map(mode, points: Map(point id -> Map(frame,
                                                                 value, curve)))

Every automatable parameter's lane map is created with the track, so two peers
adding the first points of a lane at once both land in the same ``points`` map
(points are keyed by id: concurrent inserts never collide, a concurrent move and
delete of one point resolves per field).  Tracks written before automation
existed get their lane maps on the first automation edit.
"""

from __future__ import annotations

import math
from typing import Any

from pycrdt import Map

from dsp_core.errors import ProjectError
from dsp_core.session import (
    AUTOMATION_MODES,
    AUTOMATION_PARAMS,
    AutomationLane,
    AutomationPoint,
    validate_point,
)

from .errors import SchemaError

DEFAULT_MODE = "read"


def new_lanes(lanes: dict[str, AutomationLane] | None = None) -> Map:
    """The ``automation`` map of a new track: one lane per automatable parameter."""
    lanes = lanes or {}
    return Map({param: _lane_map(lanes.get(param)) for param in AUTOMATION_PARAMS})


def _lane_map(lane: AutomationLane | None) -> Map:
    lane = lane or AutomationLane(mode=DEFAULT_MODE)
    return Map({"mode": lane.mode, "points": Map({
        p.id or f"pt{i}": point_map(p) for i, p in enumerate(lane.points)
    })})


def point_map(point: AutomationPoint) -> Map:
    """A breakpoint as stored in the document."""
    return Map({"frame": point.frame, "value": float(point.value), "curve": point.curve})


def check_param(param: str) -> None:
    """Raise :class:`SchemaError` for a parameter that cannot be automated."""
    if param not in AUTOMATION_PARAMS:
        raise SchemaError(f"parameter {param!r} cannot be automated; "
                          f"automatable: {', '.join(AUTOMATION_PARAMS)}")


def check_mode(mode: str) -> None:
    """Raise :class:`SchemaError` for an unknown lane mode."""
    if mode not in AUTOMATION_MODES:
        raise SchemaError(f"automation mode {mode!r} is not one of {', '.join(AUTOMATION_MODES)}")


def check_point(param: str, frame: Any, value: Any, curve: Any) -> AutomationPoint:
    """A validated breakpoint, or :class:`SchemaError` saying what is wrong."""
    check_param(param)
    if isinstance(frame, float) and frame.is_integer():
        frame = int(frame)
    point = AutomationPoint(frame=frame, value=value, curve=curve)
    try:
        validate_point(param, point, f"{param} point")
    except ProjectError as exc:
        raise SchemaError(str(exc)) from exc
    return point


def lane_map(track: Map, param: str) -> Map:
    """The lane map of ``param`` in a track map (created for tracks older than automation)."""
    check_param(param)
    automation = track.get("automation")
    if automation is None:
        track["automation"] = new_lanes()
        automation = track["automation"]
    lane = automation.get(param)
    if lane is None:
        automation[param] = _lane_map(None)
        lane = automation[param]
    return lane


def lanes_from_json(data: Any) -> dict[str, AutomationLane]:
    """A track's lanes from the document's plain data; points a peer wrote out of range are
    left out (the rest of the mix keeps playing), so are unknown parameters."""
    lanes: dict[str, AutomationLane] = {}
    for param, lane in (data or {}).items():
        if param not in AUTOMATION_PARAMS or not isinstance(lane, dict):
            continue
        points = []
        for point_id, raw in (lane.get("points") or {}).items():
            try:
                point = check_point(param, _frame(raw.get("frame")), raw.get("value"),
                                    raw.get("curve", "linear"))
            except (SchemaError, AttributeError):
                continue
            point.id = str(point_id)
            points.append(point)
        mode = lane.get("mode", DEFAULT_MODE)
        lanes[param] = AutomationLane(mode=mode if mode in AUTOMATION_MODES else "off",
                                      points=sorted(points, key=lambda p: (p.frame, p.id)))
    return lanes


def _frame(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
