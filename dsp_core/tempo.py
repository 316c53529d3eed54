"""The tempo map: tempo and meter changes, and frames <-> bars/beats.

Pure Python (no numpy) so that the engine, the command line and anything that only
needs the grid share one implementation; the page's grid (``web/src/tempo.js``) follows
the same rules (docs/engine.md#tempo-map).

A **beat** here is a quarter note counted from the start of the song (beat 0 at
frame 0). Tempo changes sit at a beat and hold until the next one, or, with ``ramp``,
glide linearly in tempo over the beats to the next one's tempo (as Pro Tools' and
Reaper's ramps do; beats <-> seconds stay exact: the integral of 60/bpm in closed
form). Meter changes sit at a bar (0-based) and hold until the next one. Both are keyed by ``id`` in
the document, so two people adding changes at once both keep theirs; two changes at
the same place are ordered by id (the larger id wins) so every peer reads the same map.
Without a change at beat 0 / bar 0 the song starts at :data:`DEFAULT_BPM` in 4/4.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from .errors import ProjectError

DEFAULT_BPM = 120.0
#: Largest gap (seconds) between a ramp's tempo curve and the straight warp segments
#: that follow-tempo clips are stretched along (Rubber Band's time map is piecewise linear).
RAMP_WARP_TOLERANCE = 0.0002
MIN_BPM, MAX_BPM = 10.0, 999.0
METER_DENOMINATORS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class TempoChange:
    """From quarter-note ``beat`` on, the song runs at ``bpm`` quarter notes a minute
    (with ``ramp``: glides linearly over the beats to the next change's tempo)."""

    beat: float
    bpm: float
    id: str = ""
    ramp: bool = False


@dataclass(frozen=True)
class MeterChange:
    """From ``bar`` (0-based) on, bars hold ``numerator`` notes of 1/``denominator``."""

    bar: int
    numerator: int = 4
    denominator: int = 4
    id: str = ""

    @property
    def bar_beats(self) -> float:
        """Quarter notes in one bar of this meter."""
        return self.numerator * 4.0 / self.denominator


@dataclass(frozen=True)
class BarBeat:
    """A musical position: 1-based ``bar`` and ``beat`` (in the meter's note value)
    and ``fraction`` of that beat (0 <= fraction < 1)."""

    bar: int
    beat: int
    fraction: float = 0.0

    def __str__(self) -> str:
        return f"{self.bar}.{self.beat}" + (f"+{self.fraction:.3f}" if self.fraction else "")


@dataclass(frozen=True)
class GridLine:
    """One line of the grid: a beat (``is_bar`` on the first beat of a bar)."""

    frame: int
    bar: int
    beat: int
    is_bar: bool


def _check_bpm(bpm: float, where: str) -> float:
    if not isinstance(bpm, int | float) or isinstance(bpm, bool) or not (
            math.isfinite(bpm) and MIN_BPM <= bpm <= MAX_BPM):
        raise ProjectError(f"{where}: tempo must be a number of BPM in "
                           f"[{MIN_BPM:g}, {MAX_BPM:g}], got {bpm!r}")
    return float(bpm)


@dataclass
class TempoMap:
    """Tempo and meter changes of a song; every conversion is a method of this map."""

    tempos: list[TempoChange] = field(default_factory=list)
    meters: list[MeterChange] = field(default_factory=list)

    def __post_init__(self) -> None:
        for t in self.tempos:
            _check_bpm(t.bpm, f"tempo change {t.id!r}")
            if not (math.isfinite(t.beat) and t.beat >= 0):
                raise ProjectError(f"tempo change {t.id!r}: beat must be >= 0, got {t.beat!r}")
        for m in self.meters:
            if not (isinstance(m.bar, int) and m.bar >= 0):
                raise ProjectError(f"meter change {m.id!r}: bar must be an integer >= 0, "
                                   f"got {m.bar!r}")
            if not (isinstance(m.numerator, int) and 1 <= m.numerator <= 64):
                raise ProjectError(f"meter change {m.id!r}: numerator must be 1..64, "
                                   f"got {m.numerator!r}")
            if m.denominator not in METER_DENOMINATORS:
                raise ProjectError(f"meter change {m.id!r}: denominator must be one of "
                                   f"{', '.join(map(str, METER_DENOMINATORS))}, "
                                   f"got {m.denominator!r}")
        tempos = sorted(self.tempos, key=lambda t: (t.beat, t.id))
        # the larger id wins a tie: keep the last change at each beat
        tempos = [t for i, t in enumerate(tempos)
                  if i + 1 == len(tempos) or tempos[i + 1].beat != t.beat]
        if not tempos or tempos[0].beat > 0:
            tempos.insert(0, TempoChange(0.0, tempos[0].bpm if tempos else DEFAULT_BPM))
        meters = sorted(self.meters, key=lambda m: (m.bar, m.id))
        meters = [m for i, m in enumerate(meters)
                  if i + 1 == len(meters) or meters[i + 1].bar != m.bar]
        if not meters or meters[0].bar > 0:
            first = meters[0] if meters else MeterChange(0)
            meters.insert(0, MeterChange(0, first.numerator, first.denominator))
        self._tempos = tempos
        self._meters = meters
        # seconds at each tempo change, the tempo's slope (BPM per beat) after it, and
        # quarter-note beat at each meter change
        self._tempo_beats = [t.beat for t in tempos]
        self._slopes = [(b.bpm - a.bpm) / (b.beat - a.beat) if a.ramp else 0.0
                        for a, b in zip(tempos, tempos[1:], strict=False)] + [0.0]
        self._tempo_seconds = [0.0]
        for i, (a, b) in enumerate(zip(tempos, tempos[1:], strict=False)):
            self._tempo_seconds.append(self._tempo_seconds[-1] +
                                       self._span_seconds(i, b.beat - a.beat))
        self._meter_bars = [m.bar for m in meters]
        self._meter_beats = [0.0]
        for a, b in zip(meters, meters[1:], strict=False):
            self._meter_beats.append(self._meter_beats[-1] + (b.bar - a.bar) * a.bar_beats)

    @classmethod
    def constant(cls, bpm: float, numerator: int = 4, denominator: int = 4) -> TempoMap:
        """A song at one tempo and meter."""
        return cls([TempoChange(0.0, bpm, "t0")], [MeterChange(0, numerator, denominator, "m0")])

    @property
    def is_constant(self) -> bool:
        """Whether the tempo never changes."""
        return len({t.bpm for t in self._tempos}) == 1

    def bpm_at_beat(self, beat: float) -> float:
        """The tempo at quarter-note ``beat`` (on a ramp: where the glide has got to)."""
        i = max(0, bisect.bisect_right(self._tempo_beats, beat) - 1)
        return self._tempos[i].bpm + self._slopes[i] * max(0.0, beat - self._tempo_beats[i])

    # ---------------------------------------------------------- beats <-> time
    def _span_seconds(self, i: int, beats: float) -> float:
        """Seconds that ``beats`` take from tempo change ``i``: the integral of 60/bpm,
        bpm(b) = bpm_i + k b, i.e. 60/k ln(1 + k b / bpm_i) (log1p keeps tiny k exact)."""
        k, bpm = self._slopes[i], self._tempos[i].bpm
        if k == 0.0 or beats <= 0.0:
            return beats * 60.0 / bpm
        return 60.0 / k * math.log1p(k * beats / bpm)

    def _span_beats(self, i: int, seconds: float) -> float:
        """Beats played in ``seconds`` from tempo change ``i`` (the inverse of
        :meth:`_span_seconds`: bpm_i / k (exp(k s / 60) - 1))."""
        k, bpm = self._slopes[i], self._tempos[i].bpm
        if k == 0.0 or seconds <= 0.0:
            return seconds * bpm / 60.0
        return bpm / k * math.expm1(k * seconds / 60.0)

    def beat_to_seconds(self, beat: float) -> float:
        """Seconds from the song's start to quarter-note ``beat`` (negative beats run at
        the first tempo)."""
        i = max(0, bisect.bisect_right(self._tempo_beats, beat) - 1)
        return self._tempo_seconds[i] + self._span_seconds(i, beat - self._tempo_beats[i])

    def seconds_to_beat(self, seconds: float) -> float:
        """Quarter-note beat at ``seconds`` from the song's start."""
        i = max(0, bisect.bisect_right(self._tempo_seconds, seconds) - 1)
        return self._tempo_beats[i] + self._span_beats(i, seconds - self._tempo_seconds[i])

    def beat_to_frame(self, beat: float, sample_rate: int) -> float:
        """Frame (not rounded) of quarter-note ``beat`` at ``sample_rate``."""
        return self.beat_to_seconds(beat) * sample_rate

    def frame_to_beat(self, frame: float, sample_rate: int) -> float:
        """Quarter-note beat at ``frame``."""
        return self.seconds_to_beat(frame / sample_rate)

    # ---------------------------------------------------------- bars <-> beats
    def bar_to_beat(self, bar: int | float) -> float:
        """Quarter-note beat where 0-based ``bar`` starts (fractions of a bar allowed)."""
        i = max(0, bisect.bisect_right(self._meter_bars, bar) - 1)
        m = self._meters[i]
        return self._meter_beats[i] + (bar - m.bar) * m.bar_beats

    def meter_at_bar(self, bar: int) -> MeterChange:
        """The meter of 0-based ``bar``."""
        return self._meters[max(0, bisect.bisect_right(self._meter_bars, bar) - 1)]

    def beat_to_bar_beat(self, beat: float) -> BarBeat:
        """1-based bar and beat (in the meter's note value) at quarter-note ``beat``."""
        i = max(0, bisect.bisect_right(self._meter_beats, beat) - 1)
        m = self._meters[i]
        in_meter = beat - self._meter_beats[i]
        bars = math.floor(in_meter / m.bar_beats + 1e-9)
        unit = 4.0 / m.denominator
        within = max(0.0, in_meter - bars * m.bar_beats) / unit
        whole = math.floor(within + 1e-9)
        fraction = within - whole
        if fraction < 1e-9:
            fraction = 0.0
        return BarBeat(m.bar + bars + 1, min(whole, m.numerator - 1) + 1, fraction)

    def bar_beat_to_beat(self, position: BarBeat) -> float:
        """Quarter-note beat of a 1-based bar/beat position."""
        m = self.meter_at_bar(position.bar - 1)
        unit = 4.0 / m.denominator
        return self.bar_to_beat(position.bar - 1) + (position.beat - 1 + position.fraction) * unit

    def frame_to_bar_beat(self, frame: float, sample_rate: int) -> BarBeat:
        """1-based bar and beat at ``frame``."""
        return self.beat_to_bar_beat(self.frame_to_beat(frame, sample_rate))

    def bar_beat_to_frame(self, position: BarBeat, sample_rate: int) -> int:
        """The frame (rounded) of a 1-based bar/beat position."""
        return round(self.beat_to_frame(self.bar_beat_to_beat(position), sample_rate))

    # ---------------------------------------------------------- the grid
    def grid(self, start: int, end: int, sample_rate: int) -> list[GridLine]:
        """Every beat (in the meter's note value) with a frame in ``[start, end)``."""
        lines: list[GridLine] = []
        position = self.frame_to_bar_beat(max(start, 0), sample_rate)
        bar, beat = position.bar, position.beat
        while True:
            frame = self.bar_beat_to_frame(BarBeat(bar, beat), sample_rate)
            if frame >= end:
                return lines
            if frame >= start:
                lines.append(GridLine(frame, bar, beat, beat == 1))
            beat += 1
            if beat > self.meter_at_bar(bar - 1).numerator:
                bar, beat = bar + 1, 1

    def warp_points(self, position: int, offset: int, source_frames: int, source_bpm: float,
                    sample_rate: int) -> list[tuple[int, int]]:
        """Warp markers that make a source at ``source_bpm`` follow this map.

        The clip plays source frame ``offset`` at timeline frame ``position`` and one
        source beat per map beat after it.  Returns ``(source frame, output frame)``
        pairs from ``(0, 0)`` to the source's end, output frames counted from where
        source frame 0 lands; one pair per tempo change the source crosses, and across a
        ramp enough pairs that the straight segments between them stay within
        :data:`RAMP_WARP_TOLERANCE` of the curve.
        """
        _check_bpm(source_bpm, "source_bpm")
        beat0 = self.frame_to_beat(position, sample_rate)
        per_frame = source_bpm / 60.0 / sample_rate  # source beats per source frame

        def out(x: float) -> float:
            return self.beat_to_frame(beat0 + (x - offset) * per_frame, sample_rate)

        origin = out(0)
        xs = {0, source_frames}
        for i in range(len(self._tempo_beats)):
            for step in self._ramp_steps(i):
                x = offset + (step - beat0) / per_frame
                if 0 < x < source_frames:
                    xs.add(round(x))
        return [(x, round(out(x) - origin)) for x in sorted(xs)]

    def _ramp_steps(self, i: int) -> list[float]:
        """Beats where warp pairs go for tempo change ``i``: its own beat, and across a
        ramp as many as keep a straight line within the tolerance of the time curve
        (chord error h^2/8 max|t''|, t'' = 60 k / bpm^2)."""
        beat = self._tempo_beats[i]
        k = self._slopes[i]
        if i == 0 and k == 0.0:
            return []
        if k == 0.0:
            return [beat]
        length = self._tempo_beats[i + 1] - beat
        slowest = min(self._tempos[i].bpm, self._tempos[i + 1].bpm)
        curve = 60.0 * abs(k) / slowest ** 2
        n = max(1, math.ceil(length * math.sqrt(curve / (8 * RAMP_WARP_TOLERANCE))))
        return [beat + length * j / n for j in range(n)]

    # ---------------------------------------------------------- plain data
    def to_dict(self) -> dict[str, list[dict[str, object]]]:
        """The map as the project file writes it (the changes as given, sorted)."""
        return {
            "tempos": [{"id": t.id, "beat": t.beat, "bpm": t.bpm} | ({"ramp": True} if t.ramp
                                                                      else {})
                       for t in sorted(self.tempos, key=lambda t: (t.beat, t.id))],
            "meters": [{"id": m.id, "bar": m.bar, "numerator": m.numerator,
                        "denominator": m.denominator}
                       for m in sorted(self.meters, key=lambda m: (m.bar, m.id))],
        }


def tempo_map_from_dict(value: object, path: str = "tempo") -> TempoMap:
    """Read ``{"tempos": [...], "meters": [...]}``; errors name the JSON path."""
    if not isinstance(value, dict):
        raise ProjectError(f"{path}: must be an object with 'tempos' and 'meters'")
    unknown = set(value) - {"tempos", "meters"}
    if unknown:
        raise ProjectError(f"{path}: unknown key(s) {', '.join(sorted(map(repr, unknown)))}; "
                           "allowed keys: tempos, meters")
    tempos, meters = [], []
    for i, raw in enumerate(_list(value.get("tempos", []), f"{path}.tempos")):
        where = f"{path}.tempos[{i}]"
        f = _object(raw, where, ("beat", "bpm"), ("id", "ramp"))
        beat = f["beat"]
        if not isinstance(beat, int | float) or isinstance(beat, bool) or not (
                math.isfinite(beat) and beat >= 0):
            raise ProjectError(f"{where}.beat: must be a number >= 0, got {beat!r}")
        ramp = f.get("ramp", False)
        if not isinstance(ramp, bool):
            raise ProjectError(f"{where}.ramp: must be true or false, got {ramp!r}")
        tempos.append(TempoChange(float(beat), _check_bpm(f["bpm"], f"{where}.bpm"),
                                  _text(f.get("id", ""), f"{where}.id"), ramp))
    for i, raw in enumerate(_list(value.get("meters", []), f"{path}.meters")):
        where = f"{path}.meters[{i}]"
        f = _object(raw, where, ("bar",), ("id", "numerator", "denominator"))
        meters.append(MeterChange(f["bar"], f.get("numerator", 4), f.get("denominator", 4),
                                  _text(f.get("id", ""), f"{where}.id")))
    try:
        return TempoMap(tempos, meters)
    except ProjectError as exc:
        raise ProjectError(f"{path}: {exc}") from None


def _list(value: object, path: str) -> list[object]:
    if not isinstance(value, list):
        raise ProjectError(f"{path}: must be an array")
    return value


def _object(value: object, path: str, required: tuple[str, ...],
            optional: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ProjectError(f"{path}: must be an object")
    unknown = [k for k in value if k not in required and k not in optional]
    if unknown:
        raise ProjectError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; "
                           f"allowed keys: {', '.join((*required, *optional))}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ProjectError(f"{path}: missing required key(s) {', '.join(map(repr, missing))}")
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ProjectError(f"{path}: must be a string")
    return value
