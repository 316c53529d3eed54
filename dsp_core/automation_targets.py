"""What an automation lane may drive, and each target's range.

A lane is keyed by a parameter name (``docs/document-schema.md#automation``):

``gain_db``, ``pan``, ``mute``
    a track's fader (read by the C engine frame by frame), or a bus's or the master's
    ``gain_db`` and ``pan`` (buses have no mute);
``send:<bus id>``
    the level in dB of a track's send to that aux bus;
``fx:<effect id>:<param>``
    a parameter of an effect in the owner's chain: a built-in effect's declared parameter
    (its range from :data:`dsp_core.effects.PARAMS`) or an ``lv2`` effect's control port
    by symbol (its range from the plug-in's description);
``object:azimuth`` / ``object:elevation`` / ``object:distance``
    an immersive object's position (``docs/immersive.md``).

Everything but the track fader is applied once per smoothing tick (``DAW_TICK`` frames
on the timeline grid) through the parameter's usual smoothing: see
:mod:`dsp_core.param_automation`.
"""

from __future__ import annotations

from typing import Any

from .effects import CHOICES, HOSTED_KINDS, PARAMS, EffectSpec
from .errors import ProjectError

#: The track fader's lanes (the C engine's ``daw_automation``) and their ranges.
FADER_PARAMS: dict[str, tuple[float, float]] = {"gain_db": (-144.0, 24.0),
                                                "pan": (-1.0, 1.0), "mute": (0.0, 1.0)}
#: A bus's or the master's fader lanes.
BUS_FADER_PARAMS: dict[str, tuple[float, float]] = {"gain_db": (-144.0, 24.0),
                                                    "pan": (-1.0, 1.0)}
SEND_RANGE = (-144.0, 24.0)
OBJECT_PARAMS: dict[str, tuple[float, float]] = {"azimuth": (-180.0, 180.0),
                                                 "elevation": (-90.0, 90.0),
                                                 "distance": (0.0, 1.0)}
#: Effect parameters that set the plan (delay compensation) and so cannot move in time.
FIXED_PARAMS = frozenset({("lookahead_limiter", "lookahead_ms")})
#: Characters a lane key may not hold (the document's flat lane layout uses them).
RESERVED = "@"


def lane_range(owner: Any, param: str) -> tuple[float, float]:
    """The range of ``param`` on ``owner`` (a :class:`~dsp_core.session.Track` or
    :class:`~dsp_core.session.Bus`), or :class:`ProjectError` saying what can be automated.
    """
    is_track = hasattr(owner, "sends")
    if not isinstance(param, str) or not param or RESERVED in param:
        raise ProjectError(f"automation parameter {param!r} is not a lane name; use gain_db, "
                           "pan, mute, send:<bus>, fx:<effect id>:<param> or object:<axis>")
    faders = FADER_PARAMS if is_track else BUS_FADER_PARAMS
    if param in faders:
        return faders[param]
    kind, colon, rest = param.partition(":")
    if not colon:
        kind = ""
    if kind == "send" and is_track:
        if not any(send.bus == rest for send in owner.sends):
            raise ProjectError(f"automation {param!r}: the track has no send to bus {rest!r}; "
                               "add the send first")
        return SEND_RANGE
    if kind == "fx":
        effect_id, _, name = rest.partition(":")
        return _effect_range(owner.effects, effect_id, name, param)
    if kind == "object" and is_track:
        if rest not in OBJECT_PARAMS:
            raise ProjectError(f"automation {param!r}: an object moves in "
                               f"{', '.join('object:' + a for a in OBJECT_PARAMS)}")
        route = owner.immersive
        if route is None or route.kind != "object":
            raise ProjectError(f"automation {param!r}: the track is not an immersive object; "
                               "route it as an object first (docs/immersive.md)")
        return OBJECT_PARAMS[rest]
    allowed = "gain_db, pan, mute, send:<bus>, fx:<effect id>:<param>, object:<axis>" \
        if is_track else "gain_db, pan, fx:<effect id>:<param>"
    raise ProjectError(f"automation parameter {param!r} cannot be automated here; "
                       f"automatable: {allowed}")


def _effect_range(effects: list[EffectSpec], effect_id: str, name: str,
                  param: str) -> tuple[float, float]:
    spec = next((e for e in effects if e.id and e.id == effect_id), None)
    if spec is None:
        raise ProjectError(f"automation {param!r}: no effect with id {effect_id!r} in the "
                           "chain; give the effect an id or pick one that is there")
    if spec.kind in HOSTED_KINDS:
        return _port_range(spec, name, param)
    declared = {p.name: p for p in PARAMS.get(spec.kind, ())}
    fixed = CHOICES.keys() | FIXED_PARAMS
    if name not in declared or (spec.kind, name) in fixed:
        numeric = [n for n in declared if (spec.kind, n) not in fixed]
        raise ProjectError(f"automation {param!r}: {spec.kind} has no automatable parameter "
                           f"{name!r}; automatable: {', '.join(numeric)}")
    return declared[name].low, declared[name].high


def _port_range(spec: EffectSpec, symbol: str, param: str) -> tuple[float, float]:
    from .lv2_catalog import plugin  # liblilv is needed only for lv2 effects

    info = plugin(str(spec.params.get("uri", "")))
    for port in info.controls:
        if port.symbol == symbol:
            if port.minimum is None or port.maximum is None or port.per_sample_rate:
                raise ProjectError(f"automation {param!r}: port {symbol!r} declares no fixed "
                                   "range, so it cannot be automated")
            return float(port.minimum), float(port.maximum)
    raise ProjectError(f"automation {param!r}: {info.name} has no control port {symbol!r}; "
                       f"ports: {', '.join(p.symbol for p in info.controls)}")
