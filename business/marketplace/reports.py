"""A seller's sales reports and customer CSV, read from the paid orders.

:func:`sales` sums the seller's **paid** orders (refunded and refunding ones, and sandbox
sales made with test-mode API keys, left out) in ``[since, until)`` by beat, licence
tier, the buyer's billing country (``"??"`` when Stripe gave none) and UTC day, each
figure per currency in minor units; a paid order refunded in part counts what the seller
kept (:data:`NET_AMOUNT`). :func:`customers_csv` writes one row per buyer who bought from
the seller (paid orders, no sandbox sale): the buyer's account, country, orders, amount
spent (net of partial refunds) per currency and, **only where the buyer agreed**
(:mod:`.customers`), name and email. Every cell is formula-safe (:func:`safe_cell`).
"""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from business.marketplace.errors import NotFoundHere
from business.marketplace.models import PAID

#: Characters that make a spreadsheet read a cell as a formula (OWASP's CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
#: Columns of the customer CSV.
CSV_COLUMNS = ("customer", "name", "email", "country", "orders", "spent", "currency",
               "first_purchase", "last_purchase")
#: What an order of ``mkt_orders o`` brought in: its amount less what was refunded of it
#: (a paid order's partial refund; :meth:`.MarketStore.refund_growth`).
NET_AMOUNT = "o.amount - o.refunded_amount AS amount"


def safe_cell(value: Any) -> str:
    """``value`` as a CSV cell that no spreadsheet evaluates: one starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a line break gets a leading ``'``."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _group(rows: list[Any], key: Any) -> list[dict[str, Any]]:
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        entry = sums[(key(row), row["currency"])]
        entry[0] += int(row["amount"])
        entry[1] += 1
    return [{"key": k, "currency": c, "revenue": v[0], "sales": v[1]}
            for (k, c), v in sorted(sums.items(), key=lambda kv: (-kv[1][0], kv[0]))]


async def _paid(db: Any, seller: str, since: float, until: float,
                beat_id: str | None = None) -> list[Any]:
    sql = (f"SELECT o.order_id, o.beat_id, o.tier, {NET_AMOUNT}, o.currency, o.paid_at, "
           "b.title, c.country FROM mkt_orders o LEFT JOIN mkt_beats b ON "
           "b.account_id = o.account_id AND b.beat_id = o.beat_id LEFT JOIN mkt_customers c "
           "ON c.account_id = o.account_id AND c.order_id = o.order_id "
           "WHERE o.account_id = ? AND o.status = ? AND o.sandbox = 0 AND o.paid_at >= ? "
           "AND o.paid_at < ?")
    args: list[Any] = [seller, PAID, since, until]
    if beat_id is not None:
        sql += " AND o.beat_id = ?"
        args.append(beat_id)
    return await db.fetch(sql + " ORDER BY o.paid_at, o.order_id", *args)


async def sales(db: Any, seller: str, *, since: float | None = None,
                until: float | None = None, beat_id: str | None = None) -> dict[str, Any]:
    """The seller's sales report (see the module); ``beat_id``: one beat's, and
    :class:`NotFoundHere` when the seller has no such beat."""
    until = time.time() + 1 if until is None else until
    since = until - 30 * 86400 if since is None else since
    if beat_id is not None and await db.fetchval(
            "SELECT 1 FROM mkt_beats WHERE account_id = ? AND beat_id = ?",
            seller, beat_id) is None:
        raise NotFoundHere(f"no beat {beat_id!r} of yours")
    rows = await _paid(db, seller, since, until, beat_id)
    titles = {r["beat_id"]: r["title"] or r["beat_id"] for r in rows}
    by_beat = _group(rows, lambda r: r["beat_id"])
    for entry in by_beat:
        entry["title"] = titles[entry["key"]]
    return {"since": since, "until": until, "beat_id": beat_id,
            "total": _group(rows, lambda r: "all"), "by_beat": by_beat,
            "by_tier": _group(rows, lambda r: r["tier"]),
            "by_country": _group(rows, lambda r: r["country"] or "??"),
            "by_day": sorted(_group(rows, lambda r: _day(float(r["paid_at"]))),
                             key=lambda e: (e["key"], e["currency"]))}


async def customers_csv(db: Any, seller: str) -> str:
    """The seller's customers as CSV text (see the module), formula-safe."""
    rows = await db.fetch(
        f"SELECT o.buyer_account, {NET_AMOUNT}, o.currency, o.paid_at, c.country, c.name, "
        "c.email, c.consent FROM mkt_orders o LEFT JOIN mkt_customers c ON "
        "c.account_id = o.account_id AND c.order_id = o.order_id WHERE o.account_id = ? "
        "AND o.status = ? AND o.sandbox = 0 ORDER BY o.buyer_account, o.paid_at, o.order_id",
        seller, PAID)
    people: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["buyer_account"], row["currency"])
        person = people.setdefault(key, {
            "customer": row["buyer_account"], "name": "", "email": "", "country": "",
            "orders": 0, "spent": 0, "currency": row["currency"],
            "first_purchase": _day(float(row["paid_at"])), "last_purchase": ""})
        person["orders"] += 1
        person["spent"] += int(row["amount"])
        person["last_purchase"] = _day(float(row["paid_at"]))
        person["country"] = row["country"] or person["country"]
        if row["consent"]:  # the latest agreement names them
            person["name"], person["email"] = row["name"] or "", row["email"] or ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for person in people.values():
        writer.writerow([safe_cell(person[c]) for c in CSV_COLUMNS])
    return out.getvalue()
