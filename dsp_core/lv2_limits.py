"""How many ``lv2`` effects (each one a worker process) a chain (a track's, an aux bus's or
the master's) and a session may hold.

Every engine of a room (the project engine, the live mix, each bounce) starts one
worker per ``lv2`` effect, so these caps bound the processes one editor can start.
A project file or an edit over a cap is refused; a live document read past a cap
plays the extra plug-ins bypassed (:func:`over_limit`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .errors import ProjectError

#: ``lv2`` effects one chain (a track's, a bus's, the master's) may hold.
MAX_LV2_PER_TRACK = 4
#: ``lv2`` effects a whole session (every track and bus) may hold.
MAX_LV2_PER_SESSION = 16
HOSTED_KIND = "lv2"


def count(effects: Iterable[Any]) -> int:
    """The ``lv2`` effects among ``effects`` (anything with a ``kind``)."""
    return sum(1 for e in effects if _kind(e) == HOSTED_KIND)


def check(owners: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Raise :class:`ProjectError` when a chain or the session holds too many ``lv2``
    effects; ``owners`` is (where, its effects) for every track and bus, ``where`` as
    ``"track 'id'"`` or ``"bus 'id'"``."""
    total = 0
    for owner, effects in owners:
        hosted = count(effects)
        if hosted > MAX_LV2_PER_TRACK:
            raise ProjectError(
                f"{owner} holds {hosted} lv2 plug-ins; at most {MAX_LV2_PER_TRACK} "
                "per track or bus: remove some, or bounce the track and continue on the "
                "bounce")
        total += hosted
    if total > MAX_LV2_PER_SESSION:
        raise ProjectError(
            f"the project holds {total} lv2 plug-ins; at most {MAX_LV2_PER_SESSION} per "
            "project: remove some, or bounce tracks to audio and remove theirs")


def over_limit(track_count: int, session_count: int) -> str | None:
    """Why one more ``lv2`` effect does not fit, given how many the track and the session
    already hold (None when it fits)."""
    if track_count >= MAX_LV2_PER_TRACK:
        return f"more than {MAX_LV2_PER_TRACK} lv2 plug-ins in one chain"
    if session_count >= MAX_LV2_PER_SESSION:
        return f"more than {MAX_LV2_PER_SESSION} lv2 plug-ins in the project"
    return None


def _kind(effect: Any) -> str:
    return str(effect.get("kind")) if isinstance(effect, dict) else str(effect.kind)
