"""Immersive routes from the desktop client's control lines (docs/immersive.md).

With ``--controls``, besides fader moves, standard input takes, one per line:

- ``TRACK object AZIMUTH [ELEVATION [DISTANCE]]``: make the track an object there, or move
  the object it is (only the coordinates given, each its own document key, as the page's
  pad does);
- ``TRACK bed LABEL [LABEL]``: feed 7.1.4 bed channels (one label per track channel,
  e.g. ``t2 bed U+045 U-045``);
- ``TRACK none``: clear the route (the track feeds the front pair).

Each line is one document write through :class:`collab.schema.ProjectDocument`
(``set_immersive`` / ``move_object``), so every peer and the server's renders see it.
"""

from __future__ import annotations

from collab.errors import SchemaError
from dsp_core.immersive import ImmersiveRoute

from .controls import ControlError

KINDS = ("object", "bed", "none")
COORDINATES = ("azimuth", "elevation", "distance")
FORMS = ("'TRACK object AZIMUTH [ELEVATION [DISTANCE]]', 'TRACK bed LABEL [LABEL]' or "
         "'TRACK none', e.g. 't1 object 30 15'")


def is_route_line(line: str) -> bool:
    """Whether a control line sets an immersive route (its second word is a kind)."""
    words = line.split()
    return len(words) >= 2 and words[1] in KINDS


def apply_route_line(document, line: str) -> None:  # noqa: ANN001 - a ProjectDocument
    """Apply one route line to ``document``; :class:`ControlError` says what was wrong."""
    words = line.split()
    if len(words) < 2 or words[1] not in KINDS:
        raise ControlError(f"control line {line.strip()!r}: expected {FORMS}")
    track, kind, rest = words[0], words[1], words[2:]
    try:
        if kind == "none" and not rest:
            document.set_immersive(track, None)
        elif kind == "bed" and 1 <= len(rest) <= 2:
            document.set_immersive(track, ImmersiveRoute("bed", channels=tuple(rest)))
        elif kind == "object" and 1 <= len(rest) <= 3:
            position = dict(zip(COORDINATES, (_number(line, w) for w in rest), strict=False))
            current = document.immersive(track)
            if current is not None and current.kind == "object":
                document.move_object(track, **position)
            else:
                document.set_immersive(track, ImmersiveRoute("object", **position))
        else:
            raise ControlError(f"control line {line.strip()!r}: expected {FORMS}")
    except SchemaError as exc:
        raise ControlError(f"control line {line.strip()!r}: {exc}") from None


def _number(line: str, word: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise ControlError(f"control line {line.strip()!r}: {word!r} is not a number; "
                           f"expected {FORMS}") from None
