"""Cross-platform KPIs of one catalogue entity: followers, monthly listeners, streams and
views, each the sum over the platforms whose metric means that KPI, with its value over a
day range, its growth over 7, 28 and 90 days to the range's last day holding a reading (a
range ending today, before today's figures land, grows to yesterday), and one daily series
per platform (what the dashboard page charts).

A KPI only sums metrics of one nature: running totals (followers to date, listeners in the
last 28 days as the platform reports them) or flows (streams a day); a test checks it.
Figures a platform reports with another meaning (Last.fm's all-time listeners,
Audiomack's plays to date taken as a daily snapshot) are left out rather than mixed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from business.analytics.sources import SOURCES
from business.analytics.store import RUNNING_TOTALS, PointStore, SeriesPoint, epoch, growth

#: Days read before the range's first day so the 90-day growth to any day of the range
#: (its last day holding a reading) has its earlier period.
LOOKBACK_DAYS = 179


@dataclass(frozen=True)
class Kpi:
    """One KPI: its title, the metric names that mean it, and the sources left out."""

    name: str
    title: str
    metrics: tuple[str, ...]
    excluded_sources: frozenset[str] = frozenset()

    @property
    def running_total(self) -> bool:
        return self.metrics[0] in RUNNING_TOTALS

    def sources(self) -> dict[str, str]:
        """``{source: metric}``: the sources reporting this KPI, and under which name."""
        found: dict[str, str] = {}
        for name, cls in sorted(SOURCES.items()):
            if name in self.excluded_sources:
                continue
            for metric in cls.spec.metrics:
                if metric in self.metrics:
                    found[name] = metric
        return found


KPIS: tuple[Kpi, ...] = (
    Kpi("followers", "Followers",
        ("followers", "followers_count", "follower_count", "page_follows")),
    Kpi("listeners", "Monthly listeners", ("listeners",), frozenset({"lastfm"})),
    Kpi("streams", "Streams", ("streams", "plays"), frozenset({"audiomack"})),
    Kpi("views", "Views", ("views", "video_views")),
)
KPI_BY_NAME = {k.name: k for k in KPIS}


def _day(at: float) -> date:
    return datetime.fromtimestamp(at, UTC).date()


async def kpi_sources(store: PointStore, account_id: str, entity_id: str, kpi: Kpi,
                      start: date, end: date) -> dict[str, list[SeriesPoint]]:
    """``{source: points}``: each platform's daily series of ``kpi`` for catalogue entity
    ``entity_id`` over ``[start, end]`` (days, inclusive), under the metric that means it."""
    allowed = kpi.sources()
    per_source: dict[str, list[SeriesPoint]] = {}
    for metric in kpi.metrics:
        found = await store.series(account_id, metric=metric, entity_id=entity_id,
                                   start=start, end=end, by_source=True)
        found.pop("total")
        for source, points in found.items():
            if allowed.get(source) == metric:
                per_source[source] = points
    return per_source


def summed(per_source: dict[str, list[SeriesPoint]]) -> list[SeriesPoint]:
    """The platforms' series added up per time, in time order."""
    total: dict[int, float] = {}
    for points in per_source.values():
        for p in points:
            total[p.at] = total.get(p.at, 0.0) + p.value
    return [SeriesPoint(at, v) for at, v in sorted(total.items())]


def carried_forward(per_source: dict[str, list[SeriesPoint]]) -> dict[str, list[SeriesPoint]]:
    """Running totals made comparable across platforms: at every time any platform
    reported, each platform's latest reading on or before it (none before its first), so
    a platform that reports a day late still counts in the sum."""
    times = sorted({p.at for points in per_source.values() for p in points})
    out: dict[str, list[SeriesPoint]] = {}
    for source, points in per_source.items():
        readings = sorted(points, key=lambda p: p.at)
        filled, latest, i = [], None, 0
        for at in times:
            while i < len(readings) and readings[i].at <= at:
                latest, i = readings[i].value, i + 1
            if latest is not None:
                filled.append(SeriesPoint(at, latest))
        out[source] = filled
    return out


async def entity_kpis(store: PointStore, account_id: str, entity_id: str, start: date,
                      end: date, kpis: Sequence[Kpi] = KPIS) -> dict[str, Any]:
    """Every KPI of catalogue entity ``entity_id`` over ``[start, end]`` (days, inclusive):
    ``{kpi: {"title", "running_total", "value", "growth", "sources": {source: [[at, v]]},
    "days": n}}``; ``value`` is the reading on the last day holding one (a running total)
    or the sum over the range (a flow), None without points; ``growth`` is to that last
    day with a reading (``end`` without one). A running total's value and growth sum each
    platform's latest reading (:func:`carried_forward`). ``kpis``: only those (a
    benchmark's peer sizes read followers alone)."""
    first = start - timedelta(days=min(LOOKBACK_DAYS, (start - date.min).days))
    low, high = epoch(start), epoch(end) + 86399
    out: dict[str, Any] = {}
    for kpi in kpis:
        per_source = await kpi_sources(store, account_id, entity_id, kpi, first, end)
        series = summed(carried_forward(per_source) if kpi.running_total else per_source)
        in_range = [p for p in series if low <= p.at <= high]
        if not in_range:
            value = None
        elif kpi.running_total:
            value = in_range[-1].value
        else:
            value = sum(p.value for p in in_range)
        # growth to the last day holding a reading, as the value (sources land a day late)
        until = _day(in_range[-1].at) if in_range else end
        out[kpi.name] = {
            "title": kpi.title, "running_total": kpi.running_total, "value": value,
            "days": len(in_range),
            "growth": growth(kpi.metrics[0], series, until),
            "sources": {source: [[p.at, p.value] for p in points if low <= p.at <= high]
                        for source, points in sorted(per_source.items())}}
    return out


def platforms() -> list[dict[str, Any]]:
    """Every source that can be connected: its title, the credentials it asks for, whether
    it can be back-filled, its entity kinds and metrics (with the KPI each one feeds)."""
    fields = {"oauth_client_credentials": ["client_id", "client_secret"],
              "api_key": ["api_key"],
              "refresh_token": ["client_id", "client_secret", "refresh_token"],
              "none": []}
    feeds: dict[str, dict[str, str]] = {}
    for kpi in KPIS:
        for source, metric in kpi.sources().items():
            feeds.setdefault(source, {})[metric] = kpi.name
    out = []
    for name, cls in sorted(SOURCES.items()):
        spec = cls.spec
        out.append({"source": name, "title": spec.title, "auth": spec.auth,
                    "credentials": fields[spec.auth], "history": spec.history,
                    "entity_kinds": list(spec.entity_kinds),
                    "metrics": [{"name": m, "kpi": feeds.get(name, {}).get(m)}
                                for m in spec.metrics]})
    return out
