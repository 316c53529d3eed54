"""Audience pages: where an entity's listeners are (country, city) and who they are (age,
gender), per platform, read from the stored points that carry those dimensions.

A source reports its audience as points with a dimension (``country``, ``city``, ``age``,
``gender``; a statement's ``territory`` counts as a country), so the audience flows through
ingestion, back-fills and the catalogue like any series. Shares are of the platform's own
total of that metric and breakdown: figures of different platforms or metrics (Shazam's
shazams, Boomplay's streams) are never summed together.

Flows (streams, shazams a day) are summed over the range's days; snapshots
(:data:`SNAPSHOTS`: followers as they are on the day read, such as Instagram's
``audience_followers``) are not: each breakdown value takes its latest reading in the
range per platform id, so 28 daily snapshots of 1,000 followers stay 1,000.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import pycountry

from business.analytics.store import RUNNING_TOTALS, decode_dimensions, epoch

#: Dimension name → the audience breakdown it feeds.
BREAKDOWNS = {"country": "countries", "territory": "countries", "city": "cities",
              "age": "ages", "gender": "genders"}
_LIKE = " OR ".join(f"p.dimensions LIKE '%\"{name}\"%'" for name in BREAKDOWNS)
#: Metrics read as snapshots (a reading is the whole figure, not a day's part).
SNAPSHOTS = RUNNING_TOTALS | {"audience_followers"}
#: A point of a snapshot metric counts only where it is its series' latest in the range.
_LATEST = ("(p.metric NOT IN ({metrics}) OR p.at = (SELECT MAX(q.at) FROM analytics_points "
           "q WHERE q.account_id = p.account_id AND q.source = p.source AND q.entity_kind = "
           "p.entity_kind AND q.entity_id = p.entity_id AND q.metric = p.metric AND q.grain "
           "= p.grain AND q.dimensions = p.dimensions AND q.at >= ? AND q.at <= ?))")


@dataclass(frozen=True)
class AudienceRow:
    """One figure of a breakdown: a country code, a city, an age band or a gender."""

    key: str
    value: float
    share: float
    #: A country's ISO 3166-1 numeric code (the ids of world-atlas' map) and name.
    numeric: str | None = None
    name: str | None = None


def country_row(code: str, value: float, share: float) -> AudienceRow:
    """An audience row of an ISO 3166-1 alpha-2 country code, named when ISO knows it."""
    country = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    if country is None:
        return AudienceRow(code, value, share)
    return AudienceRow(code, value, share, country.numeric, country.name)


class AudienceBook:
    """Reads the audience breakdowns of an account's points."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def audience(self, account_id: str, start: date, end: date,
                       entity_id: str | None = None) -> list[dict[str, Any]]:
        """Per (source, metric) with a breakdown in ``[start, end]``: ``{"source",
        "metric", "countries"|"cities"|"ages"|"genders": [{"key", "value", "share"}]}``,
        biggest first; of catalogue entity ``entity_id`` (its linked platform ids) or of the
        whole account. A flow's figures are summed over the range, a snapshot's
        (:data:`SNAPSHOTS`) are each platform id's latest reading in it."""
        low, high = epoch(start), epoch(end) + 86399
        snapshots = sorted(SNAPSHOTS)
        latest = _LATEST.format(metrics=", ".join("?" * len(snapshots)))
        args: list[Any] = [account_id, low, high, *snapshots, low, high]
        sql = ("SELECT p.source AS source, p.metric AS metric, p.dimensions AS dimensions, "
               "SUM(p.value) AS value FROM analytics_points p ")
        if entity_id is not None:
            sql += ("JOIN analytics_links l ON l.account_id = p.account_id AND l.source = "
                    "p.source AND l.platform_kind = p.entity_kind AND l.platform_id = "
                    "p.entity_id AND l.entity_id = ? ")
            args.insert(0, entity_id)
        sql += (f"WHERE p.account_id = ? AND p.grain = 'daily' AND p.at >= ? AND p.at <= ? "
                f"AND ({_LIKE}) AND {latest} GROUP BY p.source, p.metric, p.dimensions")
        sums: dict[tuple[str, str], dict[str, dict[str, float]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(float)))
        for row in await self.db.fetch(sql, *args):
            for name, value in decode_dimensions(row["dimensions"]):
                if name in BREAKDOWNS:
                    part = sums[(row["source"], row["metric"])][BREAKDOWNS[name]]
                    part[value] += float(row["value"])
        out = []
        for (source, metric), parts in sorted(sums.items()):
            entry: dict[str, Any] = {"source": source, "metric": metric}
            for part in ("countries", "cities", "ages", "genders"):
                figures = parts.get(part, {})
                total = sum(figures.values())
                make = country_row if part == "countries" else AudienceRow
                entry[part] = [
                    make(key, value, value / total if total else 0.0).__dict__
                    for key, value in sorted(figures.items(), key=lambda kv: (-kv[1], kv[0]))]
            out.append(entry)
        return out
