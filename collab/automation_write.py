"""Writing automation from a moved control: touch, latch and write as engineers know them.

A :class:`LaneWriter` follows one lane during one play pass. It is fed the control's
events ``(frame, value, held)`` (frames on the session timeline, ``held`` while the user
holds the fader) and answers a :class:`LaneEdit`: the breakpoints the pass has written
so far (thinned: a point within ``tolerance`` of the line through its neighbours is
left out) and the frame ranges it overwrites.  The browser page (through
``POST /projects/{id}/automation/write``) and the desktop client both write through it.

Modes (the lane's ``mode`` when the pass begins):

- ``off`` and ``read``: nothing is written.
- ``touch``: while the control is held its values are written; on release the lane
  glides back (``RETURN_SECONDS``) to what it was.
- ``latch``: like touch, but after release the last value is kept until stop.
- ``write``: from the play start to stop the lane is the control's value (the track's
  static value until the first move).

Merging: a pass's points have ids ``<pass id>.<frame>.<a|b|c>`` (anchor, value,
return), so applying the same edit twice changes nothing and a later, longer edit of
the pass replaces only what thinning changed.  Applying an edit removes the points of
other writers and of earlier drawing that lie in its ranges, nothing else: two people
writing different stretches of one lane at once both keep theirs; where two passes
overlap, the one that applies last owns the overlap.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp_core.session import (
    AUTOMATION_MODES,
    MAX_AUTOMATION_FRAME,
    AutomationPoint,
)

from . import automation as lanes
from .errors import SchemaError

#: Default thinning tolerance per parameter (dB, pan units, mute steps exactly).
TOLERANCE: dict[str, float] = {"gain_db": 0.2, "pan": 0.01, "mute": 0.0}
#: Thinning tolerance of every other parameter, as a fraction of its range.
TOLERANCE_FRACTION = 0.002
#: How long the lane takes to glide back to its own values after a touch or a stop.
RETURN_SECONDS = 0.25
#: Modes that write.
WRITING_MODES = ("touch", "latch", "write")
_PASS_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The most control events one pass takes (about 8 minutes of a fader held at 100 events
#: a second); past it the pass is refused with :class:`PassTooLong`.
MAX_PASS_EVENTS = 50000
#: Samples of a written stretch thinned once and kept: a growing pass thins only its tail.
CHUNK = 1024


class PassTooLong(SchemaError):
    """A pass took more than :data:`MAX_PASS_EVENTS` events."""


def check_pass_id(pass_id: str) -> str:
    """A pass id as used in point ids (letters, digits, ``-``, ``_``; 1..64), or SchemaError."""
    if not isinstance(pass_id, str) or not _PASS_ID.match(pass_id):
        raise SchemaError(f"pass id {pass_id!r} must be 1 to 64 letters, digits, '-' or '_'")
    return pass_id


def lane_value(points: Sequence[AutomationPoint], frame: int, static: float) -> float:
    """The value of a lane (points in time order) at ``frame``, as the engine plays it;
    ``static`` when the lane has no point."""
    if not points:
        return float(static)
    if frame < points[0].frame:
        return float(points[0].value)
    before = points[0]
    for point in points:
        if point.frame > frame:
            if before.curve == "hold" or point.frame == before.frame:
                return float(before.value)
            span = point.frame - before.frame
            return float(before.value + (point.value - before.value) * (frame - before.frame)
                         / span)
        before = point
    return float(before.value)


def _curve_at(points: Sequence[AutomationPoint], frame: int) -> str:
    curve = "linear"
    for point in points:
        if point.frame > frame:
            break
        curve = point.curve
    return curve


def _greedy(frames: np.ndarray, values: np.ndarray, lo: int, hi: int, tolerance: float,
            keep: np.ndarray) -> None:
    """Mark in ``keep`` the samples of ``lo..hi`` a single pass keeps: each stretch is
    extended while one line from its first sample passes within ``tolerance`` of every
    sample inside it (a cone of slopes narrowed sample by sample; linear time)."""
    anchor, low, high = lo, -math.inf, math.inf
    for i in range(lo + 1, hi + 1):
        df = frames[i] - frames[anchor]
        slope = (values[i] - values[anchor]) / df if df > 0 else math.nan
        if i > anchor + 1 and not low <= slope <= high:
            anchor, low, high = i - 1, -math.inf, math.inf
            keep[anchor] = True
            df = frames[i] - frames[anchor]
        if df > 0:
            low = max(low, (values[i] - tolerance - values[anchor]) / df)
            high = min(high, (values[i] + tolerance - values[anchor]) / df)
        else:  # a repeated frame: nothing is dropped across it
            low, high = math.inf, -math.inf


#: Stretches this short are split in plain Python (numpy's per-call cost dominates).
_SMALL = 48


def _split_small(samples: Sequence[tuple[int, float]], lo: int, hi: int,
                 tolerance: float) -> int:
    """Where :func:`thin` splits ``lo..hi`` (the worst sample, ties nearest the middle),
    or -1 when every sample inside is within ``tolerance``."""
    (f0, v0), (f1, v1) = samples[lo], samples[hi]
    middle = (lo + hi) / 2
    worst, at = -1.0, -1
    for i in range(lo + 1, hi):
        f, v = samples[i]
        error = abs(v - (v0 if f1 == f0 else v0 + (v1 - v0) * (f - f0) / (f1 - f0)))
        if error > worst or (error == worst and abs(i - middle) < abs(at - middle)):
            worst, at = error, i
    return at if worst > tolerance else -1


def thin(samples: Sequence[tuple[int, float]], tolerance: float, hold: bool = False
         ) -> list[tuple[int, float]]:
    """``samples`` (frame order) without the points a line through their kept neighbours
    reproduces within ``tolerance``; with ``hold`` only repeated values go.  The first
    and last samples are always kept.

    Ramer-Douglas-Peucker on the value (vectorised; a tie splits nearest the middle), so
    corners stay where they are.  Past a depth of ``2 log2 n`` a stretch is finished by
    :func:`_greedy` instead, which bounds the work by ``O(n log n)`` on any input (a
    sawtooth of 20,000 samples took minutes the plain way: benchmarks/bench_thin.py)."""
    if len(samples) <= 2:
        return list(samples)
    if hold:
        kept = [samples[0]]
        for sample in samples[1:-1]:
            if abs(sample[1] - kept[-1][1]) > tolerance:
                kept.append(sample)
        if samples[-1][1] != kept[-1][1] or len(kept) == 1:
            kept.append(samples[-1])
        return kept
    count = len(samples)
    frames = np.fromiter((s[0] for s in samples), dtype=np.float64, count=count)
    values = np.fromiter((s[1] for s in samples), dtype=np.float64, count=count)
    keep = np.zeros(count, dtype=bool)
    keep[0] = keep[-1] = True
    limit = 2 * count.bit_length() + 4
    stack = [(0, count - 1, 0)]
    while stack:
        lo, hi, depth = stack.pop()
        if hi - lo < 2:
            continue
        if depth >= limit:
            _greedy(frames, values, lo, hi, tolerance, keep)
            continue
        if hi - lo <= _SMALL:
            at = _split_small(samples, lo, hi, tolerance)
            if at >= 0:
                keep[at] = True
                stack.extend([(lo, at, depth + 1), (at, hi, depth + 1)])
            continue
        f0, v0, f1, v1 = frames[lo], values[lo], frames[hi], values[hi]
        inner_f, inner_v = frames[lo + 1:hi], values[lo + 1:hi]
        line = np.full_like(inner_v, v0) if f1 == f0 else v0 + (v1 - v0) * (inner_f - f0) / (
            f1 - f0)
        error = np.abs(inner_v - line)
        worst = error.max()
        if not worst > tolerance:
            continue
        ties = np.flatnonzero(error == worst)
        middle = (hi - lo) / 2 - 1
        at = lo + 1 + int(ties[np.argmin(np.abs(ties - middle))])
        keep[at] = True
        stack.extend([(lo, at, depth + 1), (at, hi, depth + 1)])
    return [s for s, k in zip(samples, keep.tolist(), strict=True) if k]


@dataclass
class LaneEdit:
    """What a pass has written: its points (ids start with ``pass_id.``) and the frame
    ranges (inclusive) in which it replaces every other point."""

    pass_id: str
    erase: list[tuple[int, int]] = field(default_factory=list)
    points: dict[str, AutomationPoint] = field(default_factory=dict)
    #: Ids the pass's settled stretches wrote (:meth:`LaneWriter.edit` ``first``): in the
    #: lane already and the peers' to move or delete, unless a later stretch writes them.
    settled: frozenset[str] = frozenset()

    def owns(self, point_id: str) -> bool:
        """Whether ``point_id`` is this edit's to write or delete: the pass's, and not
        left to peers by a settled stretch."""
        return point_id.startswith(f"{self.pass_id}.") and (
            point_id in self.points or point_id not in self.settled)

    def changes(self, current: Mapping[str, Mapping[str, Any]]
                ) -> tuple[dict[str, AutomationPoint], list[str]]:
        """(points to set, point ids to delete) that bring a lane's ``current`` points
        (id -> ``{frame, value, curve}``) to this edit."""
        delete = []
        for point_id, raw in current.items():
            if self.owns(point_id):
                if point_id not in self.points:
                    delete.append(point_id)
            elif any(lo <= _number(raw.get("frame")) <= hi for lo, hi in self.erase):
                delete.append(point_id)
        upsert = {}
        for point_id, point in self.points.items():
            raw = current.get(point_id)
            if raw is None or (raw.get("frame"), raw.get("value"), raw.get("curve")) != (
                    point.frame, point.value, point.curve):
                upsert[point_id] = point
        return upsert, delete


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def apply_edit(document: Any, track_id: str, param: str, edit: LaneEdit) -> int:
    """Bring the lane ``param`` of ``track_id`` in a :class:`collab.schema.ProjectDocument`
    to ``edit`` in one transaction; the number of points set or deleted."""
    owner = document.automation_owner(track_id)
    lanes.check_param(param, owner)
    for point in edit.points.values():  # every check before the first write
        lanes.check_point(param, point.frame, point.value, point.curve, owner)
    with document.transaction():
        points = document.automation_lane(track_id, param)["points"]
        upsert, delete = edit.changes(points.to_py())
        for point_id in delete:
            del points[point_id]
        for point_id, point in upsert.items():
            points[point_id] = lanes.point_map(point)
    return len(upsert) + len(delete)


@dataclass
class _Segment:
    """A contiguous written stretch: samples (frame, value) and, once closed, its end."""

    samples: list[tuple[int, float]]
    end: int | None = None
    #: The thinned samples of ``samples[:done + 1]`` (whole :data:`CHUNK` s, never redone).
    kept: list[tuple[int, float]] = field(default_factory=list)
    done: int = 0
    #: The points of a closed stretch (they no longer change).
    closed: dict[str, AutomationPoint] | None = None

    @property
    def start(self) -> int:
        return self.samples[0][0]


class LaneWriter:
    """Turns one control's events during one play pass into a :class:`LaneEdit`.

    Parameters
    ----------
    param
        ``gain_db``, ``pan`` or ``mute``.
    mode
        The lane's mode when the pass begins (``off``/``read`` write nothing).
    lane
        The lane's points when the pass begins (the values touch returns to).
    static
        The track's static value of ``param`` (the lane's value when it has no point,
        and what ``write`` writes before the first move).
    start
        The frame the pass (playback) started at.
    sample_rate
        Session frames per second (for the return glide).
    pass_id
        Unique per pass and writer (:func:`check_pass_id`).
    tolerance
        Thinning tolerance; :data:`TOLERANCE` of ``param`` by default.
    """

    def __init__(self, param: str, mode: str, lane: Iterable[AutomationPoint], *,
                 static: float, start: int, sample_rate: int, pass_id: str,
                 tolerance: float | None = None,
                 value_range: tuple[float, float] | None = None) -> None:
        self.range = lanes.check_param(param) if value_range is None else value_range
        lanes.check_mode(mode)
        self.param, self.mode = param, mode
        self.lane = sorted(lane, key=lambda p: (p.frame, p.id))
        self.static = self._clean(static)
        self.start = max(0, int(start))
        self.pass_id = check_pass_id(pass_id)
        self.tolerance = (TOLERANCE.get(param, (self.range[1] - self.range[0])
                                        * TOLERANCE_FRACTION)
                          if tolerance is None else float(tolerance))
        self.hold = param == "mute"
        self.glide = 0 if self.hold else max(1, round(RETURN_SECONDS * sample_rate))
        self.segments: list[_Segment] = []
        self.held = False
        self.stopped_at: int | None = None
        self.events = 0
        if mode == "write":
            self.segments.append(_Segment([(self.start, self.static)]))

    @property
    def writes(self) -> bool:
        """Whether this pass writes at all (its mode is touch, latch or write)."""
        return self.mode in WRITING_MODES

    def _open(self) -> _Segment | None:
        return self.segments[-1] if self.segments and self.segments[-1].end is None else None

    def _clean(self, value: float) -> float:
        low, high = self.range
        value = float(value)
        if value != value:  # NaN
            raise SchemaError(f"{self.param} value must be a number, got {value!r}")
        value = min(high, max(low, value))
        return float(round(value)) if self.param == "mute" else value

    def feed(self, frame: int, value: float, held: bool) -> None:
        """One control event: at ``frame`` the control shows ``value``; ``held`` while the
        user holds it (``False`` on release, or for a single click or key press)."""
        if not self.writes or self.stopped_at is not None:
            return
        frame, value = max(0, int(frame)), self._clean(value)
        if frame > MAX_AUTOMATION_FRAME:
            raise SchemaError(f"event frame {frame} is past the last frame a lane holds "
                              f"({MAX_AUTOMATION_FRAME})")
        self.events += 1
        if self.events > MAX_PASS_EVENTS:
            raise PassTooLong(f"a pass takes at most {MAX_PASS_EVENTS} events; stop it and "
                              "start a new pass (a new pass_id) to go on writing")
        segment = self._open()
        if segment is not None and frame < segment.samples[-1][0]:
            self._close(segment, segment.samples[-1][0])  # the playhead went back (loop)
            segment = None
        if segment is None:
            if self.mode == "write" or held or not self.held:
                segment = _Segment([(frame, value)])
                self.segments.append(segment)
            else:
                return
        self._add(segment, frame, value)
        if not held and self.mode == "touch":
            self._close(segment, frame)
        self.held = held

    @staticmethod
    def _add(segment: _Segment, frame: int, value: float) -> None:
        if segment.samples[-1][0] == frame:
            segment.samples[-1] = (frame, value)
        else:
            segment.samples.append((frame, value))

    @staticmethod
    def _close(segment: _Segment, frame: int) -> None:
        segment.end = max(frame, segment.samples[-1][0])

    def stop(self, frame: int, first: int = 0) -> LaneEdit:
        """Playback stopped at ``frame``: close what is still written; the final edit
        (of the stretches from ``first`` on, as :meth:`edit`)."""
        segment = self._open()
        if segment is not None:
            self._close(segment, max(segment.start, int(frame)))
        self.stopped_at = int(frame)
        return self.edit(int(frame), first)

    @property
    def last_frame(self) -> int:
        """The frame of the last event written (the pass's start before any)."""
        return self.segments[-1].samples[-1][0] if self.segments else self.start

    @property
    def closed(self) -> int:
        """How many stretches are closed (all but an open last one)."""
        return sum(1 for segment in self.segments if segment.end is not None)

    def edit(self, now: int, first: int = 0) -> LaneEdit:
        """Everything written so far, an open stretch written up to ``now``.

        ``first``: the stretches before it are settled (closed, and written to the lane
        by an earlier edit); they are left as peers have left them since: their ranges
        are not erased again, nor their points restored (:attr:`LaneEdit.settled`),
        though a later stretch over them still replaces what lies under it."""
        edit = LaneEdit(self.pass_id, settled=frozenset(
            point_id for segment in self.segments[:first]
            for point_id in self._points(segment, now)))
        covered: list[tuple[int, int]] = []  # what later stretches write: sorted, disjoint
        kept: list[list[tuple[str, AutomationPoint]]] = []
        for segment in reversed(self.segments[first:]):
            kept.append([(point_id, point) for point_id, point in
                         self._points(segment, now).items()
                         if not _inside(covered, point.frame)])
            _cover(covered, segment.start, segment.end if segment.end is not None else now)
        for part in reversed(kept):
            edit.points.update(part)
        for segment in self.segments[first:]:
            end = segment.end if segment.end is not None else max(now, segment.samples[-1][0])
            edit.erase.append((segment.start, end + (self.glide if segment.end is not None
                                                     else 0)))
        return edit

    def _curve_at(self, frame: int) -> str:
        return "hold" if self.hold else _curve_at(self.lane, frame)

    def _thinned(self, segment: _Segment, end: int) -> list[tuple[int, float]]:
        """The stretch thinned: whole chunks once (the last sample may still change, so
        chunks end before it), then the tail up to ``end`` on every call."""
        samples = segment.samples
        while segment.done + CHUNK < len(samples) - 1:
            part = thin(samples[segment.done:segment.done + CHUNK + 1], self.tolerance,
                        self.hold)
            segment.kept.extend(part[1:] if segment.kept else part)
            segment.done += CHUNK
        tail = samples[segment.done:]
        if tail[-1][0] < end:
            tail.append((end, tail[-1][1]))
        tail = thin(tail, self.tolerance, self.hold)
        return segment.kept + tail[1:] if segment.kept else tail

    def _points(self, segment: _Segment, now: int) -> dict[str, AutomationPoint]:
        if segment.closed is not None:
            return segment.closed
        curve = "hold" if self.hold else "linear"
        start = segment.start
        out = {self._id(start, "a"): AutomationPoint(
            start, lane_value(self.lane, start, self.static), self._curve_at(start))}
        end = segment.end if segment.end is not None else max(now, segment.samples[-1][0])
        for frame, value in self._thinned(segment, end):
            out[self._id(frame, "b")] = AutomationPoint(frame, value, curve)
        if segment.end is not None:
            back = min(end + self.glide, MAX_AUTOMATION_FRAME)
            out[self._id(back, "c")] = AutomationPoint(
                back, lane_value(self.lane, back, self.static), self._curve_at(back))
        for point_id, point in out.items():
            point.id = point_id
        if segment.end is not None:
            segment.closed = out
        return out

    def _id(self, frame: int, kind: str) -> str:
        return f"{self.pass_id}.{frame}.{kind}"


def _inside(covered: list[tuple[int, int]], frame: int) -> bool:
    at = bisect.bisect_right(covered, (frame, math.inf)) - 1
    return at >= 0 and covered[at][1] >= frame


def _cover(covered: list[tuple[int, int]], lo: int, hi: int) -> None:
    """Add ``lo..hi`` to the sorted, disjoint ranges ``covered`` (merging)."""
    if hi < lo:
        return
    at = bisect.bisect_left(covered, (lo, -math.inf))
    if at > 0 and covered[at - 1][1] >= lo:
        at -= 1
        lo = covered[at][0]
    last = at
    while last < len(covered) and covered[last][0] <= hi:
        hi = max(hi, covered[last][1])
        last += 1
    covered[at:last] = [(lo, hi)]


def lane_mode(document: Any, track_id: str, param: str) -> str:
    """The mode of the lane ``param`` of ``track_id`` in a
    :class:`collab.schema.ProjectDocument` now (the default for a lane not there)."""
    owner = document.automation_owner(track_id)
    lane = lanes.lanes_from_json(document.automation_data(track_id), owner).get(param)
    return lane.mode if lane else lanes.DEFAULT_MODE


def writer_for(document: Any, track_id: str, param: str, *, start: int, pass_id: str,
               mode: str | None = None) -> LaneWriter:
    """A :class:`LaneWriter` for a lane of a :class:`collab.schema.ProjectDocument` as it
    is now (its mode, points and the track's static value)."""
    owner = document.automation_owner(track_id)
    value_range = lanes.check_param(param, owner)
    lane = lanes.lanes_from_json(document.automation_data(track_id), owner).get(param)
    mode = mode or (lane.mode if lane else lanes.DEFAULT_MODE)
    if mode not in AUTOMATION_MODES:
        lanes.check_mode(mode)
    static = document.automation_static(track_id, param)
    return LaneWriter(param, mode, lane.points if lane else [], static=static, start=start,
                      sample_rate=document.sample_rate, pass_id=pass_id,
                      value_range=value_range)
