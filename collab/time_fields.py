"""A clip's time keys in the document: crossfade, stretch, pitch, warp, follow tempo.

Stored on ``clips[id]`` beside the other clip fields, written only when not the default
(so a document without them reads as before): ``crossfade`` (frames, 0 = the whole
overlap), ``stretch`` (output / source length), ``semitones``, ``warp`` (an array of
``[source frame, timeline frame]`` pairs), ``follow_tempo`` and ``source_bpm``.
A value a peer wrote badly plays as the default (unstretched), never stops the engine.
"""

from __future__ import annotations

import math
from typing import Any

from dsp_core.session import Clip
from dsp_core.stretch import StretchError, StretchSpec

from .errors import SchemaError

TIME_CLIP_FIELDS = ("crossfade", "stretch", "semitones", "warp", "follow_tempo", "source_bpm")
_DEFAULTS: dict[str, Any] = {"crossfade": 0, "stretch": 1.0, "semitones": 0.0, "warp": (),
                             "follow_tempo": False, "source_bpm": 0.0}


def clip_time_json(clip: Clip) -> dict[str, Any]:
    """The clip's time keys that differ from their defaults, as document values."""
    out: dict[str, Any] = {}
    for name in TIME_CLIP_FIELDS:
        value = getattr(clip, name)
        if value != _DEFAULTS[name]:
            out[name] = [list(m) for m in value] if name == "warp" else value
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_time_fields(data: dict[str, Any]) -> dict[str, Any]:
    """``Clip`` keyword arguments from a clip's plain data; raises :class:`SchemaError`."""
    out: dict[str, Any] = {}
    for name in TIME_CLIP_FIELDS:
        if name not in data or data[name] is None:
            continue
        value = data[name]
        if name == "follow_tempo":
            if not isinstance(value, bool):
                raise SchemaError(f"clip follow_tempo must be true or false, got {value!r}")
            out[name] = value
        elif name == "warp":
            try:
                out[name] = tuple((int(x), int(y)) for x, y in value)
            except (TypeError, ValueError, OverflowError):  # Overflow: an Infinity
                raise SchemaError("clip warp must be [[source frame, timeline frame], ...], "
                                  f"got {value!r}") from None
        elif name == "crossfade":
            if _number(value) is None or value < 0 or int(value) != value:
                raise SchemaError(f"clip crossfade must be a whole number of frames >= 0, "
                                  f"got {value!r}")
            out[name] = int(value)
        else:
            number = _number(value)
            if number is None:
                raise SchemaError(f"clip {name} must be a number, got {value!r}")
            out[name] = number
    try:
        StretchSpec(out.get("stretch", 1.0), out.get("semitones", 0.0),
                    out.get("warp", ())).validate("clip")
    except StretchError as exc:
        raise SchemaError(str(exc)) from None
    if out.get("follow_tempo") and not out.get("source_bpm", 0) > 0:
        raise SchemaError("clip follow_tempo needs the source's tempo: set source_bpm")
    return out


def clip_time_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Like :func:`parse_time_fields`, but a bad value plays as the defaults."""
    try:
        return parse_time_fields(data)
    except SchemaError:
        return {}
