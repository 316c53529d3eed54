"""Crossfades between overlapping clips on one track (equal power).

Where a clip starts inside the clip before it and ends after it, the two crossfade over
the overlap: the earlier one falls as cos, the later one rises as sin, so the sum of
the squares of their gains is 1 at every frame of the fade (the engine's curves are in
``native/engine.c`` ``xfade_gain`` and its twin ``dsp_core.reference.xfade_gain``).
A clip's ``crossfade`` (frames, 0 = the whole overlap) makes the fade shorter: it then
takes the last ``crossfade`` frames of the overlap, and the later clip stays silent
before it. A clip lying wholly inside another is layered (summed), as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A clip's place on the timeline (any frame unit) and its explicit fade length."""

    position: int
    length: int
    crossfade: int = 0

    @property
    def end(self) -> int:
        """First frame after the clip."""
        return self.position + self.length


@dataclass(frozen=True)
class Crossfade:
    """A clip's crossfade: silent for ``in_at`` frames, rising over ``fade_in`` frames,
    falling over its last ``fade_out`` frames."""

    in_at: int = 0
    fade_in: int = 0
    fade_out: int = 0


def plan_crossfades(spans: Sequence[Span]) -> list[Crossfade]:
    """The crossfade of each span, in the order given (spans sorted by position)."""
    plans = [Crossfade() for _ in spans]
    for i in range(1, len(spans)):
        a, b = spans[i - 1], spans[i]
        overlap = a.end - b.position
        if overlap <= 0 or b.position <= a.position or b.end <= a.end:
            continue
        n = min(b.crossfade, overlap) if b.crossfade > 0 else overlap
        n = min(n, a.length - plans[i - 1].in_at - plans[i - 1].fade_in)
        if n <= 0:
            continue
        plans[i - 1] = Crossfade(plans[i - 1].in_at, plans[i - 1].fade_in, n)
        plans[i] = Crossfade(overlap - n, n, plans[i].fade_out)
    return plans


def equal_power_gains(n: int) -> tuple[list[float], list[float]]:
    """The falling and rising gains of an ``n``-frame crossfade (double precision)."""
    import math

    rise = [math.sin(math.pi / 2 * (j + 0.5) / n) for j in range(n)]
    return rise[::-1], rise
