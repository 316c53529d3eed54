"""Automation of sends, effect parameters, LV2 control ports and bus/master faders.

The track fader's lanes run inside the C call frame by frame (``daw_automation``). Every
other lane (:mod:`dsp_core.automation_targets`) moves its parameter's *target* once per
smoothing tick: :class:`~dsp_core.engine.Engine` splits a block at the tick grid
(``DAW_TICK`` frames counted by ``frames_done``) while such a lane is read, sets each
target to the lane's value at the tick's first timeline frame, and the parameter's usual
smoothing carries it through the tick (gains glide linearly inside the tick, filter
coefficients are recomputed once per tick). Where the blocks fall does not matter, so a
render and a live mix give the same samples, and C and twin read the same targets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .automation_targets import FADER_PARAMS
from .errors import ProjectError
from .graph import balance_gains, send_levels, set_fader_target
from .session import AutomationLane, Bus, Session, Track, db_to_linear

if TYPE_CHECKING:
    from .graph import BusState, Graph, TrackState

log = logging.getLogger(__name__)


@dataclass
class ParamLane:
    """One read lane in render frames and the setter of its parameter's target."""

    frames: np.ndarray  # int64, ascending
    values: np.ndarray  # float64
    hold: np.ndarray  # bool: the value holds until the next point
    apply: Callable[[float], None]
    last: float | None = None

    def value_at(self, frame: int) -> float:
        """The envelope at ``frame``: the first value before the first point, the last after
        the last, a ramp or a step in between (two points at one frame step)."""
        i = int(np.searchsorted(self.frames, frame, side="right")) - 1
        if i < 0:
            return float(self.values[0])
        if i >= len(self.frames) - 1 or self.hold[i]:
            return float(self.values[i])
        f0, f1 = int(self.frames[i]), int(self.frames[i + 1])
        v0, v1 = float(self.values[i]), float(self.values[i + 1])
        return v0 + (v1 - v0) * (frame - f0) / (f1 - f0)


@dataclass
class ParamAutomation:
    """Every parameter lane of a graph; :meth:`apply_at` moves their targets."""

    lanes: list[ParamLane] = field(default_factory=list)

    def apply_at(self, frame: int) -> None:
        """Set each target to its lane's value at render frame ``frame`` (unchanged values
        are not written again)."""
        for lane in self.lanes:
            value = lane.value_at(frame)
            if value != lane.last:
                lane.apply(value)
                lane.last = value


def build_param_automation(session: Session, graph: Graph,
                           ratio: float) -> ParamAutomation | None:
    """The parameter lanes ``session`` reads, bound to ``graph``; None when there are none."""
    result = ParamAutomation()
    for track, state in zip(session.tracks, graph.tracks, strict=True):
        for param, lane in _reading(track.automation):
            setter = _track_setter(track, state, param)
            if setter is not None:
                result.lanes.append(param_lane(lane, ratio, setter))
    for bus, state in [*zip(session.buses, graph.buses, strict=True),
                       (session.master, graph.master)]:
        fader = _BusFader(bus, state)
        lag = _chain_lag(graph, state)
        for param, lane in _reading(bus.automation):
            elements = state.hosted.elements if state.hosted is not None else state.effects
            if param in FADER_PARAMS:
                setter, shift = fader.setter(param), 0
            else:
                setter, shift = _effect_setter(bus.effects, elements, param), lag
            if setter is not None:
                bound = param_lane(lane, ratio, setter)
                bound.frames += shift
                result.lanes.append(bound)
    return result if result.lanes else None


def _chain_lag(graph: Graph, state: BusState) -> int:
    """Frames an aux bus's chain hears its input later than the C engine's chain would:
    a bus whose chain runs after the call (:mod:`dsp_core.lv2_bus`) gets its input
    already delayed by its alignment, so its effects' lanes are read that much later to
    meet the same audio (0 for the master and for a bus whose chain runs in the call)."""
    if state.hosted is None or graph.schedule is None or state is graph.master:
        return 0
    index = next(b for b, bus in enumerate(graph.buses) if bus is state)
    return graph.schedule.bus_delays[index].delay


def _reading(lanes: dict[str, AutomationLane]) -> list[tuple[str, AutomationLane]]:
    return [(p, lanes[p]) for p in sorted(lanes) if lanes[p].reads]


def param_lane(lane: AutomationLane, ratio: float,
               setter: Callable[[float], None]) -> ParamLane:
    """``lane``'s points in render frames (session frames times ``ratio``), bound to
    ``setter``."""
    points = lane.sorted_points()
    return ParamLane(
        frames=np.array([int(round(q.frame * ratio)) for q in points], dtype=np.int64),
        values=np.array([q.value for q in points], dtype=np.float64),
        hold=np.array([q.curve == "hold" for q in points], dtype=bool),
        apply=setter,
    )


def _track_setter(track: Track, state: TrackState,
                  param: str) -> Callable[[float], None] | None:
    if param in FADER_PARAMS:  # the C engine reads these itself
        return None
    kind, _, rest = param.partition(":")
    if kind == "send":
        for send, send_state in zip(track.sends, state.sends, strict=True):
            if send.bus == rest:
                return lambda v, s=send, f=send_state.fader: set_fader_target(
                    f, *send_levels(track, v, s.pre_fader))
        return None
    if kind == "fx":
        elements = state.hosted.elements if state.hosted is not None else state.effects
        return _effect_setter(track.effects, elements, param)
    return None  # object coordinates: the immersive renderer reads those lanes


def _effect_setter(specs: list[Any], elements: list[Any],
                   param: str) -> Callable[[float], None] | None:
    effect_id, _, name = param.partition(":")[2].partition(":")
    for spec, element in zip(specs, elements, strict=True):
        if spec.id == effect_id:
            return lambda v: _set_one(element, name, v)
    return None


def _set_one(element: Any, name: str, value: float) -> None:
    """Move one parameter's target (an LV2 plug-in gets the new control value)."""
    try:
        if hasattr(element, "slots"):
            element.set_params({name: value})
        else:
            element.set_params({**element.params, name: value})
    except ProjectError as exc:  # a combination the effect refuses: keep the last value
        log.debug("automation of %s skipped at %g: %s", name, value, exc)


class _BusFader:
    """A bus's gain and pan, either of which a lane may drive."""

    def __init__(self, bus: Bus, state: BusState) -> None:
        self.gain_db, self.pan, self.fader = bus.gain_db, bus.pan, state.level

    def setter(self, param: str) -> Callable[[float], None]:
        def apply(value: float) -> None:
            setattr(self, param, value)
            set_fader_target(self.fader, *balance_gains(db_to_linear(self.gain_db), self.pan))
        return apply
