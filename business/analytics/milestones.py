"""Milestones found in one platform series: thresholds crossed and unusual growth.

Pure functions over a series (days and values, oldest first); :mod:`.milestone_book`
stores what they find, once.

- **Thresholds**: the round numbers (1k, 10k, 100k, 1M... :data:`ROUND_THRESHOLDS`) and
  the account's own. A threshold is *crossed* on the first day whose value reaches it
  after a reading below it; a series that starts above a threshold did not cross it while
  we watched (we do not know when), and neither did one that had already reached it
  before the days read (``reached_before``). For a running total (followers) that is the
  count reaching it; for a flow (streams a day), a day's count reaching it.
- **Unusual growth** (flows only): change points of ``log1p(value)`` found with
  `ruptures <https://centre-borelli.github.io/ruptures-docs/>`_ (kernel change-point
  detection, linear kernel: the least-squares cost, solved exactly by PELT in C) after
  removing the series' own trend (a Theil-Sen line), with a penalty scaled by the
  series' own day-to-day noise (a robust MAD estimate), so a steady trend and the weekly
  shape do not count. A segment whose mean level is at least
  ``min_ratio`` times the one before it, above the trend (and above ``min_level`` a day),
  is unusual growth from its first day: a viral spike, a playlist add, a release. Only
  consecutive days are read together (a gap is not growth: see ``contiguous``).
- **Within the hour** (hourly grain, or a daily source polled more often): the
  readings of :func:`hourly_levels` (a flow's count so far that day, a running total's
  reading) go through the same :func:`crossings`, so a threshold is found in the hour it
  is reached, under the same key as the day's crossing (the day's points, stored later,
  find it stored). Unusual growth waits for whole days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time

import numpy as np
import ruptures
import scipy.stats

#: Round-number thresholds every series is checked against.
ROUND_THRESHOLDS = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)
THRESHOLD = "threshold"
UNUSUAL_GROWTH = "unusual_growth"
KINDS = (THRESHOLD, UNUSUAL_GROWTH)
#: Fewer readings than this: no change-point detection (too little to tell noise apart).
MIN_POINTS = 14
#: Two unusual-growth findings of one series this close are the same event.
SAME_EVENT_DAYS = 7


@dataclass(frozen=True)
class Found:
    """A milestone of one series: ``key`` names it without its day (see the module)."""

    kind: str
    key: str
    day: date
    value: float
    threshold: float | None = None
    detail: dict = field(default_factory=dict)


def threshold_label(value: float) -> str:
    """``1000`` -> ``1k``, ``2500000`` -> ``2.5M``."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def crossings(days: Sequence[date], values: Sequence[float], thresholds: Iterable[float],
              reached_before: float | None = None) -> list[Found]:
    """The thresholds ``values`` cross (first crossing of each; see the module)."""
    out = []
    for threshold in sorted(set(thresholds)):
        if reached_before is not None and reached_before >= threshold:
            continue
        for i in range(1, len(values)):
            if values[i] >= threshold:
                if values[i - 1] < threshold and max(values[:i]) < threshold:
                    out.append(Found(THRESHOLD, f"{THRESHOLD}:{threshold:g}", days[i],
                                     float(values[i]), float(threshold),
                                     {"label": threshold_label(threshold),
                                      "previous": float(values[i - 1]),
                                      "previous_day": days[i - 1].isoformat()}))
                break
    return out


def hourly_levels(daily: dict[date, float], hourly: Sequence[tuple[datetime, float]],
                  running_total: bool) -> tuple[list[datetime], list[float], list[bool]]:
    """The readings of a series known by day and by hour, in time order: stamps, levels
    and whether each is an hourly one.

    A day with hourly figures reads, hour by hour, a flow's count so far that day (the
    hours summed) or a running total's reading; its daily figure, when there is one,
    comes last (the whole day). A day known only by its daily figure is one reading at
    its end.
    """
    hours: dict[date, list[tuple[datetime, float]]] = {}
    for at, value in sorted(hourly):
        hours.setdefault(at.astimezone(UTC).date(), []).append((at, float(value)))
    stamps: list[datetime] = []
    levels: list[float] = []
    by_hour: list[bool] = []
    for day in sorted({*daily, *hours}):
        so_far = 0.0
        for at, value in hours.get(day, ()):
            so_far = value if running_total else so_far + value
            stamps.append(at)
            levels.append(so_far)
            by_hour.append(True)
        if day in daily:
            stamps.append(datetime.combine(day, time(23, 59, 59), UTC))
            levels.append(float(daily[day]))
            by_hour.append(False)
    return stamps, levels, by_hour


def hourly_crossings(daily: dict[date, float], hourly: Sequence[tuple[datetime, float]],
                     thresholds: Iterable[float], running_total: bool) -> list[Found]:
    """The thresholds crossed by :func:`hourly_levels`' readings (first crossing of each,
    as :func:`crossings`), dated by day like a daily crossing and naming the ``hour``."""
    stamps, levels, by_hour = hourly_levels(daily, hourly, running_total)
    out = []
    for found in crossings(stamps, levels, thresholds):
        i = stamps.index(found.day)  # type: ignore[arg-type]
        detail = {**found.detail, "previous_day": stamps[i - 1].date().isoformat()}
        if by_hour[i]:
            detail["hour"] = stamps[i].isoformat()
        if by_hour[i - 1]:
            detail["previous_hour"] = stamps[i - 1].isoformat()
        out.append(replace(found, day=stamps[i].date(), detail=detail))
    return out


def whole_days(daily: dict[date, float], hourly: Sequence[tuple[datetime, float]],
               ) -> dict[date, float]:
    """A flow's daily figures with the days known only by hour summed, when all 24 of
    their hours are there (a day still under way is not a day's level)."""
    sums: dict[date, list[float]] = {}
    for at, value in hourly:
        sums.setdefault(at.astimezone(UTC).date(), []).append(float(value))
    out = dict(daily)
    for day, values in sums.items():
        if day not in out and len(values) == 24:
            out[day] = sum(values)
    return dict(sorted(out.items()))


def contiguous(days: Sequence[date], first: date, last: date) -> range:
    """The indexes of the run of consecutive ``days`` (sorted) that holds [first, last]'s
    days; empty when none of them is there."""
    inside = [i for i, d in enumerate(days) if first <= d <= last]
    if not inside:
        return range(0)
    low, high = inside[0], inside[-1]
    while low > 0 and (days[low] - days[low - 1]).days == 1:
        low -= 1
    while high + 1 < len(days) and (days[high + 1] - days[high]).days == 1:
        high += 1
    return range(low, high + 1)


def noise_scale(x: np.ndarray) -> float:
    """The series' day-to-day noise: a robust (MAD) standard deviation of its steps."""
    steps = np.diff(x)
    mad = float(np.median(np.abs(steps - np.median(steps))))
    return 1.4826 * mad / math.sqrt(2.0)


def unusual_growth(days: Sequence[date], values: Sequence[float], *, min_ratio: float = 1.5,
                   min_level: float = 10.0, sensitivity: float = 8.0) -> list[Found]:
    """Days where a flow's level jumps (see the module); the first day of each jump.

    ``sensitivity`` multiplies the penalty (higher: fewer change points).
    """
    if len(values) < MIN_POINTS:
        return []
    raw = np.log1p(np.asarray(values, dtype=np.float64))
    # a steady trend is not unusual: detrend with a robust (Theil-Sen) line, so a spike
    # or a step stands out from the series' own growth
    t = np.asarray([(d - days[0]).days for d in days], dtype=np.float64)
    slope, intercept = scipy.stats.theilslopes(raw, t)[:2]
    x = raw - (slope * t + intercept)
    sigma = max(noise_scale(x), 0.02)
    penalty = sensitivity * sigma * sigma * math.log(len(x))
    breaks = ruptures.KernelCPD(kernel="linear", min_size=2).fit(x.reshape(-1, 1)).predict(
        pen=penalty)
    bounds = [0, *breaks]
    means = [float(x[a:b].mean()) for a, b in zip(bounds, bounds[1:], strict=False)]
    out: list[Found] = []
    i = 1
    while i < len(means):
        rise = means[i] - means[i - 1]
        level = float(np.expm1(raw[bounds[i]:bounds[i + 1]].mean()))
        if rise < math.log(min_ratio) or level < min_level:
            i += 1
            continue
        # the event lasts while the level stays that far above the level before it
        last = i
        while last + 1 < len(means) and means[last + 1] - means[i - 1] >= math.log(min_ratio):
            last += 1
        start, stop = bounds[i], bounds[last + 1]
        top = max(means[i:last + 1])
        peak = start + int(np.argmax(raw[start:stop]))
        before = bounds[i - 1]
        if not out or (days[start] - out[-1].day).days > SAME_EVENT_DAYS:
            out.append(Found(UNUSUAL_GROWTH, f"{UNUSUAL_GROWTH}:{days[start].isoformat()}",
                             days[start], float(values[start]), None,
                             {"ratio": round(math.exp(top - means[i - 1]), 3),
                              "baseline": round(float(np.expm1(raw[before:start].mean())),
                                                1),
                              "level": round(float(np.expm1(raw[start:stop].mean())), 1),
                              "peak": float(values[peak]), "peak_day": days[peak].isoformat(),
                              "last_day": days[stop - 1].isoformat(),
                              "days": (days[stop - 1] - days[start]).days + 1}))
        i = last + 1
    return out
