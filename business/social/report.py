"""The results report: per published post (and each of its channels) the latest metrics,
short-link clicks, attributed pre-saves and sales, and ratios; totals; a CSV form.

Posts count in a window by when each channel published them. A metric the network does
not report stays ``None`` (and stays out of sums); a post's metric is the sum over its
channels. Ratios: ``click_through_rate`` = clicks / impressions, ``conversion_rate`` =
(pre-saves + sales) / clicks, ``revenue_per_click`` = revenue / clicks (per currency);
``None`` when the denominator is missing or 0.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from babel.numbers import get_currency_precision

from business.social.bulk import escape_cell
from business.social.errors import NotFoundError, SocialError
from business.social.networks.base import METRICS

#: The widest window a report covers: the 13 months metrics are kept.
MAX_WINDOW_S = 396 * 86400.0
_CHUNK = 500
CSV_COLUMNS = ("post_id", "channel_id", "network", "campaign", "published_at", "url",
               *METRICS, "link_clicks", "presaves", "sales", "revenue", "click_through_rate",
               "conversion_rate")


def _sum(values: Iterable[int | None]) -> int | None:
    found = [v for v in values if v is not None]
    return sum(found) if found else None


def _ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(part / whole, 6)


def _figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics summed over ``rows``, with clicks, conversions, revenue and ratios."""
    out: dict[str, Any] = {m: _sum(r["metrics"][m] for r in rows) for m in METRICS}
    clicks = sum(r["link_clicks"] for r in rows)
    presaves = sum(r["presaves"] for r in rows)
    sales = sum(r["sales"] for r in rows)
    revenue: dict[str, int] = defaultdict(int)
    for row in rows:
        for currency, cents in row["revenue_cents"].items():
            revenue[currency] += cents
    return {"metrics": out, "link_clicks": clicks, "presaves": presaves, "sales": sales,
            "revenue_cents": dict(revenue),
            "click_through_rate": _ratio(clicks, out["impressions"]),
            "conversion_rate": _ratio(presaves + sales, clicks),
            "revenue_per_click_cents": {c: _ratio(v, clicks) for c, v in revenue.items()}}


class Report:
    """Reads results for one account."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def build(self, account_id: str, start: float, end: float, *, channel_id: str = "",
                    campaign: str = "") -> dict[str, Any]:
        """``{"start", "end", "posts": [...], "totals": {...}}`` for the posts published
        in ``[start, end)``."""
        if end <= start:
            raise SocialError("'to' must come after 'from'")
        if end - start > MAX_WINDOW_S:
            raise SocialError("ask for at most 396 days at a time (metrics are kept 13 "
                              "months)")
        if channel_id and await self.db.fetchval(
                "SELECT 1 FROM social_channels WHERE account_id = ? AND channel_id = ?",
                account_id, channel_id) is None:
            raise NotFoundError(f"there is no channel {channel_id!r}")
        where, args = "", [account_id, start, end]
        if channel_id:
            where += " AND t.channel_id = ?"
            args.append(channel_id)
        if campaign:
            where += " AND p.campaign = ?"
            args.append(campaign)
        targets = await self.db.fetch(
            "SELECT t.post_id, t.channel_id, t.url, t.published_at, p.campaign, p.text, "
            "c.network FROM social_post_targets t JOIN social_posts p "
            "ON p.account_id = t.account_id AND p.post_id = t.post_id "
            "JOIN social_channels c ON c.account_id = t.account_id "
            "AND c.channel_id = t.channel_id WHERE t.account_id = ? AND t.state = 'published' "
            f"AND p.deleted = 0 AND t.published_at >= ? AND t.published_at < ?{where} "
            "ORDER BY t.published_at, t.post_id, t.channel_id", *args)
        post_ids = sorted({t["post_id"] for t in targets})
        latest, clicks, conversions = await self._facts(account_id, post_ids)
        posts: dict[str, dict[str, Any]] = {}
        channel_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in targets:
            key = (t["post_id"], t["channel_id"])
            snapshot = latest.get(key)
            done = conversions.get(key, {})
            channel_rows[t["post_id"]].append({
                "channel_id": t["channel_id"], "network": t["network"], "url": t["url"],
                "published_at": t["published_at"],
                "metrics_at": snapshot["taken_at"] if snapshot else None,
                "metrics": {m: (snapshot[m] if snapshot else None) for m in METRICS},
                "link_clicks": clicks.get(key, 0), "presaves": done.get("presave", 0),
                "sales": done.get("sale", 0), "revenue_cents": done.get("revenue", {})})
            posts.setdefault(t["post_id"], {"post_id": t["post_id"],
                                            "campaign": t["campaign"], "text": t["text"],
                                            "published_at": t["published_at"]})
        out = []
        for post_id, post in posts.items():
            rows = channel_rows[post_id]
            unattributed = conversions.get((post_id, ""), {})  # a post, no channel
            if unattributed:
                rows = [*rows, {"metrics": dict.fromkeys(METRICS), "link_clicks": 0,
                                "presaves": unattributed.get("presave", 0),
                                "sales": unattributed.get("sale", 0),
                                "revenue_cents": unattributed.get("revenue", {})}]
            out.append({**post, **_figures(rows), "channels": channel_rows[post_id]})
        every = [{"metrics": p["metrics"], "link_clicks": p["link_clicks"],
                  "presaves": p["presaves"], "sales": p["sales"],
                  "revenue_cents": p["revenue_cents"]} for p in out]
        return {"start": start, "end": end, "posts": out,
                "totals": {"posts": len(out), **_figures(every)}}

    async def _facts(self, account_id: str, post_ids: list[str]) -> tuple[
            dict[tuple[str, str], Any], dict[tuple[str, str], int],
            dict[tuple[str, str], dict[str, Any]]]:
        latest: dict[tuple[str, str], Any] = {}
        clicks: dict[tuple[str, str], int] = {}
        conversions: dict[tuple[str, str], dict[str, Any]] = {}
        for at in range(0, len(post_ids), _CHUNK):
            chunk = post_ids[at:at + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for row in await self.db.fetch(
                    f"SELECT s.post_id, s.channel_id, s.taken_at, {', '.join(METRICS)} "
                    "FROM social_metric_snapshots s JOIN (SELECT post_id, channel_id, "
                    "MAX(taken_at) AS taken_at FROM social_metric_snapshots WHERE "
                    f"account_id = ? AND post_id IN ({marks}) GROUP BY post_id, channel_id) m "
                    "ON m.post_id = s.post_id AND m.channel_id = s.channel_id "
                    "AND m.taken_at = s.taken_at WHERE s.account_id = ?",
                    account_id, *chunk, account_id):
                latest[(row["post_id"], row["channel_id"])] = row
            for row in await self.db.fetch(
                    "SELECT post_id, channel_id, COUNT(*) AS n FROM social_link_clicks "
                    f"WHERE account_id = ? AND post_id IN ({marks}) "
                    "GROUP BY post_id, channel_id", account_id, *chunk):
                clicks[(row["post_id"], row["channel_id"])] = int(row["n"])
            for row in await self.db.fetch(
                    "SELECT post_id, channel_id, kind, currency, COUNT(*) AS n, "
                    "SUM(amount_cents) AS cents FROM social_attributions WHERE account_id = ? "
                    f"AND post_id IN ({marks}) GROUP BY post_id, channel_id, kind, currency",
                    account_id, *chunk):
                entry = conversions.setdefault((row["post_id"], row["channel_id"]),
                                               {"revenue": {}})
                entry[row["kind"]] = entry.get(row["kind"], 0) + int(row["n"])
                if row["kind"] == "sale" and row["currency"]:
                    revenue = entry["revenue"]
                    revenue[row["currency"]] = revenue.get(row["currency"], 0) + int(
                        row["cents"] or 0)
        return latest, clicks, conversions

    async def history(self, account_id: str, post_id: str) -> list[dict[str, Any]]:
        """Every stored reading of the post's channels, oldest first (for charts);
        :class:`NotFoundError` for a post the account does not have."""
        if await self.db.fetchval(
                "SELECT 1 FROM social_posts WHERE account_id = ? AND post_id = ? AND "
                "deleted = 0", account_id, post_id) is None:
            raise NotFoundError(f"there is no post {post_id!r}")
        rows = await self.db.fetch(
            f"SELECT channel_id, network, taken_at, {', '.join(METRICS)} "
            "FROM social_metric_snapshots WHERE account_id = ? AND post_id = ? "
            "ORDER BY taken_at, channel_id", account_id, post_id)
        return [{"channel_id": r["channel_id"], "network": r["network"],
                 "taken_at": r["taken_at"], "metrics": {m: r[m] for m in METRICS}}
                for r in rows]


def _money(revenue: dict[str, int]) -> str:
    """``USD 12.50; JPY 3000``: minor units in each currency's own decimals (Babel's
    ISO 4217 table; JPY and KRW have none)."""
    parts = []
    for currency, minor in sorted(revenue.items()):
        digits = get_currency_precision(currency.upper())
        parts.append(f"{currency} {minor / 10 ** digits:.{digits}f}")
    return "; ".join(parts)


def _cell(value: Any) -> str:
    return "" if value is None else escape_cell(str(value))


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV, one row per channel of a post and a totals row; every cell
    escaped against spreadsheet formula injection (:func:`~.bulk.escape_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for post in report["posts"]:
        for ch in post["channels"]:
            figures = _figures([ch])
            writer.writerow([_cell(v) for v in (
                post["post_id"], ch["channel_id"], ch["network"], post["campaign"],
                ch["published_at"], ch["url"], *(ch["metrics"][m] for m in METRICS),
                ch["link_clicks"], ch["presaves"], ch["sales"], _money(ch["revenue_cents"]),
                figures["click_through_rate"], figures["conversion_rate"])])
    totals = report["totals"]
    writer.writerow([_cell(v) for v in (
        "total", "", "", "", "", "", *(totals["metrics"][m] for m in METRICS),
        totals["link_clicks"], totals["presaves"], totals["sales"],
        _money(totals["revenue_cents"]), totals["click_through_rate"],
        totals["conversion_rate"])])
    return out.getvalue()
