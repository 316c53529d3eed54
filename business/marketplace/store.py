"""MarketStore: the marketplace's rows in the plug-in context's one database.

Plain reads and writes; the rules live in :mod:`.catalogue`, :mod:`.checkout`,
:mod:`.fulfilment` and :mod:`.delivery`. Every query of a seller's rows names the
seller's account first, so another account's ids find nothing; the buyer's reads name
``buyer_account``. Writes that race (reservations, the exclusive sale, download counts)
are conditional ``UPDATE`` s whose row count says who won.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from typing import Any, NamedTuple

from business.marketplace.models import (
    ON_SALE,
    Beat,
    BeatFile,
    Licence,
    Order,
    Tier,
)

Row = dict[str, Any]

ORDER_COLUMNS = ("account_id, order_id, beat_id, tier, buyer_account, amount, currency, "
                 "exclusive, status, stripe_account, session_id, payment_intent, note, "
                 "created_at, paid_at, refunded_at, transfer_group, sandbox")
LICENCE_COLUMNS = ("account_id, licence_id, order_id, beat_id, tier, buyer_account, title, "
                   "files, rights, exclusive_beat, downloads, download_limit, status, "
                   "granted_at")
#: What a licence is read with: its columns and whether its order is a sandbox sale.
LICENCE_READ = (f"{LICENCE_COLUMNS}, (SELECT o.sandbox FROM mkt_orders o WHERE "
                "o.account_id = mkt_licences.account_id AND o.order_id = "
                "mkt_licences.order_id) AS sandbox")


class Counted(NamedTuple):
    """What :meth:`MarketStore.count_download` charged one request of a link: bytes, and
    the request's number on the link (each new request of it gets the next)."""

    charged: int
    request: int


#: One download link, by (account, licence, file, expiry).
LINK_WHERE = "account_id = ? AND licence_id = ? AND file_id = ? AND expires = ?"


async def _locked_link(tx: Any, key: tuple[str, str, str, int]) -> Row | None:
    """The download link ``key``, its row locked until ``tx`` ends, so the same link's
    counts and credits queue (None: no such link)."""
    await tx.execute(f"UPDATE mkt_download_links SET served = served WHERE {LINK_WHERE}",
                     *key)
    return await tx.fetchrow(f"SELECT served, counted, resend_from, resend_to, resend_for, "
                             f"requests FROM mkt_download_links WHERE {LINK_WHERE}", *key)


def new_id(prefix: str) -> str:
    """A fresh random id such as ``beat_3f9a...``."""
    return f"{prefix}_{secrets.token_hex(8)}"


def _files(text: str) -> list[BeatFile]:
    return [BeatFile(**f) for f in json.loads(text)]


def tier_from(row: Row) -> Tier:
    return Tier(row["tier"], row["name"], int(row["price"]), row["currency"],
                tuple(json.loads(row["files"])), json.loads(row["rights"]),
                bool(row["exclusive"]), int(row["download_limit"]), bool(row["active"]))


def beat_from(row: Row, tiers: list[Tier]) -> Beat:
    return Beat(row["account_id"], row["beat_id"], row["title"], int(row["bpm"]),
                row["musical_key"], row["genre"], row["mood"], json.loads(row["tags"]),
                row["currency"], row["status"], float(row["created_at"]),
                _files(row["files"]), tiers, row["reserved_order"], row["reserved_until"],
                dict(row).get("preview_sha256"))


def order_from(row: Row) -> Order:
    return Order(row["account_id"], row["order_id"], row["beat_id"], row["tier"],
                 row["buyer_account"], int(row["amount"]), row["currency"],
                 bool(row["exclusive"]), row["status"], row["stripe_account"],
                 row["session_id"], row["payment_intent"], row["note"],
                 float(row["created_at"]), row["paid_at"], row["refunded_at"],
                 row["transfer_group"], bool(row["sandbox"]))


def licence_from(row: Row) -> Licence:
    return Licence(row["account_id"], row["licence_id"], row["order_id"], row["beat_id"],
                   row["tier"], row["buyer_account"], row["title"], _files(row["files"]),
                   json.loads(row["rights"]), row["exclusive_beat"] is not None,
                   int(row["downloads"]), int(row["download_limit"]), row["status"],
                   float(row["granted_at"]), bool(row["sandbox"]))


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The parts of a cursor; ValueError for one we did not make."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cursor {cursor[:40]!r} is not one this server gave") from exc
    if not isinstance(parts, list) or len(parts) != 3:
        raise ValueError(f"cursor {cursor[:40]!r} is not one this server gave")
    return parts


class MarketStore:
    """Reads and writes of the marketplace's tables."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def _on(self, tx: Any) -> Any:
        return self.db if tx is None else tx

    # -- sellers -----------------------------------------------------------------------------

    async def stripe_account(self, account_id: str, *, tx: Any = None) -> str | None:
        return await self._on(tx).fetchval(
            "SELECT stripe_account FROM mkt_sellers WHERE account_id = ?", account_id)

    async def save_seller(self, account_id: str, stripe_account: str, now: float) -> str:
        """Record the seller's connected account (the first one stays); the one kept."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO mkt_sellers (account_id, stripe_account, created_at) "
                "VALUES (?, ?, ?) ON CONFLICT (account_id) DO NOTHING",
                account_id, stripe_account, now)
            return await tx.fetchval(
                "SELECT stripe_account FROM mkt_sellers WHERE account_id = ?", account_id)

    # -- beats and tiers ---------------------------------------------------------------------

    async def insert_beat(self, beat: Beat) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO mkt_beats (account_id, beat_id, title, bpm, musical_key, genre, "
                "mood, tags, files, currency, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                beat.account_id, beat.beat_id, beat.title, beat.bpm, beat.key, beat.genre,
                beat.mood, json.dumps(beat.tags), json.dumps([f.to_json() for f in beat.files]),
                beat.currency, beat.status, beat.created_at)
            await tx.executemany(
                "INSERT INTO mkt_tiers (account_id, beat_id, tier, name, price, currency, "
                "files, rights, exclusive, download_limit, active) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(beat.account_id, beat.beat_id, t.tier, t.name, t.price, t.currency,
                  json.dumps(list(t.files)), json.dumps(t.rights), int(t.exclusive),
                  t.download_limit, int(t.active)) for t in beat.tiers])

    async def update_tier(self, account_id: str, beat_id: str, tier: Tier) -> None:
        await self.db.execute(
            "UPDATE mkt_tiers SET price = ?, active = ?, download_limit = ?, name = ? "
            "WHERE account_id = ? AND beat_id = ? AND tier = ?",
            tier.price, int(tier.active), tier.download_limit, tier.name, account_id,
            beat_id, tier.tier)

    async def _tiers(self, keys: list[tuple[str, str]], tx: Any = None
                     ) -> dict[tuple[str, str], list[Tier]]:
        found: dict[tuple[str, str], list[Tier]] = {k: [] for k in keys}
        for account_id in sorted({a for a, _ in keys}):
            beats = [b for a, b in keys if a == account_id]
            marks = ", ".join("?" for _ in beats)
            rows = await self._on(tx).fetch(
                f"SELECT * FROM mkt_tiers WHERE account_id = ? AND beat_id IN ({marks}) "
                "ORDER BY price, tier", account_id, *beats)
            for row in rows:
                found[(account_id, row["beat_id"])].append(tier_from(row))
        return found

    async def beat(self, account_id: str, beat_id: str, *, tx: Any = None) -> Beat | None:
        row = await self._on(tx).fetchrow(
            "SELECT * FROM mkt_beats WHERE account_id = ? AND beat_id = ?", account_id, beat_id)
        if row is None:
            return None
        tiers = await self._tiers([(account_id, beat_id)], tx)
        return beat_from(row, tiers[(account_id, beat_id)])

    async def _with_tiers(self, rows: list[Row]) -> list[Beat]:
        tiers = await self._tiers([(r["account_id"], r["beat_id"]) for r in rows])
        return [beat_from(r, tiers[(r["account_id"], r["beat_id"])]) for r in rows]

    async def beats_of(self, account_id: str) -> list[Beat]:
        rows = await self.db.fetch(
            "SELECT * FROM mkt_beats WHERE account_id = ? ORDER BY created_at DESC, beat_id",
            account_id)
        return await self._with_tiers(rows)

    async def listing(self, where: list[str], args: list[Any], limit: int) -> list[Beat]:
        """Beats on sale matching ``where`` (SQL over ``b``, the beat), newest first."""
        clauses = " AND ".join(["b.status = ?", *where])
        rows = await self.db.fetch(
            f"SELECT b.* FROM mkt_beats b WHERE {clauses} "
            "ORDER BY b.created_at DESC, b.account_id DESC, b.beat_id DESC LIMIT ?",
            ON_SALE, *args, limit)
        return await self._with_tiers(rows)

    # -- reservations and sales --------------------------------------------------------------

    async def reserve(self, tx: Any, account_id: str, beat_id: str, order_id: str,
                      now: float, until: float) -> bool:
        """Hold the beat for an exclusive checkout (none other live); whether it was."""
        return bool(await tx.execute(
            "UPDATE mkt_beats SET reserved_order = ?, reserved_until = ? "
            "WHERE account_id = ? AND beat_id = ? AND status = ? "
            "AND (reserved_order IS NULL OR reserved_until <= ?)",
            order_id, until, account_id, beat_id, ON_SALE, now))

    async def hold_until(self, tx: Any, account_id: str, beat_id: str, order_id: str,
                         until: float) -> None:
        """Keep the beat held for ``order_id`` until ``until``, if it still is."""
        await tx.execute(
            "UPDATE mkt_beats SET reserved_until = ? "
            "WHERE account_id = ? AND beat_id = ? AND reserved_order = ?",
            until, account_id, beat_id, order_id)

    async def release(self, tx: Any, account_id: str, beat_id: str, order_id: str) -> None:
        await tx.execute(
            "UPDATE mkt_beats SET reserved_order = NULL, reserved_until = NULL "
            "WHERE account_id = ? AND beat_id = ? AND reserved_order = ?",
            account_id, beat_id, order_id)

    async def sell_exclusive(self, tx: Any, account_id: str, beat_id: str, order_id: str,
                             now: float) -> bool:
        """Take the beat off sale for ``order_id``: only while on sale and held for it (or
        held by nobody live); whether it was."""
        return bool(await tx.execute(
            "UPDATE mkt_beats SET status = 'sold_exclusive', sold_order = ?, "
            "reserved_order = NULL, reserved_until = NULL "
            "WHERE account_id = ? AND beat_id = ? AND status = ? "
            "AND (reserved_order IS NULL OR reserved_order = ? OR reserved_until <= ?)",
            order_id, account_id, beat_id, ON_SALE, order_id, now))

    async def sell_lease(self, tx: Any, account_id: str, beat_id: str) -> bool:
        """Count a lease sold while the beat is on sale (the row lock orders it against
        an exclusive sale); whether it was on sale."""
        return bool(await tx.execute(
            "UPDATE mkt_beats SET leases_sold = leases_sold + 1 "
            "WHERE account_id = ? AND beat_id = ? AND status = ?",
            account_id, beat_id, ON_SALE))

    # -- orders ------------------------------------------------------------------------------

    async def insert_order(self, tx: Any, order: Order) -> None:
        await tx.execute(
            f"INSERT INTO mkt_orders ({ORDER_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            order.account_id, order.order_id, order.beat_id, order.tier, order.buyer_account,
            order.amount, order.currency, int(order.exclusive), order.status,
            order.stripe_account, order.session_id, order.payment_intent, order.note,
            order.created_at, order.paid_at, order.refunded_at, order.transfer_group,
            int(order.sandbox))

    async def order(self, account_id: str, order_id: str, *, tx: Any = None) -> Order | None:
        row = await self._on(tx).fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM mkt_orders WHERE account_id = ? AND order_id = ?",
            account_id, order_id)
        return None if row is None else order_from(row)

    async def orders_of(self, account_id: str) -> list[Order]:
        """The orders of the seller ``account_id``'s beats, oldest first."""
        rows = await self.db.fetch(
            f"SELECT {ORDER_COLUMNS} FROM mkt_orders WHERE account_id = ? "
            "ORDER BY created_at, order_id", account_id)
        return [order_from(r) for r in rows]

    async def orders_page(self, account_id: str, *, limit: int, status: str | None = None,
                          sandbox: bool | None = None,
                          after: tuple[float, str] | None = None) -> list[Order]:
        """At most ``limit`` of the seller's orders, oldest first (ties by id), after the
        position ``after`` (``(created_at, order_id)`` of the last one seen), in
        ``status`` and of the mode ``sandbox`` when given: a page seeks on the seller's
        index instead of reading every order."""
        where, args = ["account_id = ?"], [account_id]
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if sandbox is not None:
            where.append("sandbox = ?")
            args.append(int(sandbox))
        if after is not None:
            where.append("(created_at > ? OR (created_at = ? AND order_id > ?))")
            args += [after[0], after[0], after[1]]
        rows = await self.db.fetch(
            f"SELECT {ORDER_COLUMNS} FROM mkt_orders WHERE {' AND '.join(where)} "
            f"ORDER BY created_at, order_id LIMIT {int(limit)}", *args)
        return [order_from(r) for r in rows]

    async def buyer_order(self, buyer: str, order_id: str) -> Order | None:
        row = await self.db.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM mkt_orders WHERE buyer_account = ? "
            "AND order_id = ?", buyer, order_id)
        return None if row is None else order_from(row)

    async def set_order(self, tx: Any, account_id: str, order_id: str, *,
                        expect: tuple[str, ...] | None = None,
                        due: tuple[float, float] | None = None, **values: Any) -> bool:
        """Set columns of an order (only from the ``expect`` states, and with ``due``,
        ``(expiry_s, moment)``, only if it expires by ``moment``: its ``expires_at``, or
        ``created_at + expiry_s``, as the row is when the write runs); whether it changed."""
        sets = ", ".join(f"{k} = ?" for k in values)
        sql = f"UPDATE mkt_orders SET {sets} WHERE account_id = ? AND order_id = ?"
        args = [*values.values(), account_id, order_id]
        if expect:
            sql += f" AND status IN ({', '.join('?' for _ in expect)})"
            args += list(expect)
        if due is not None:
            sql += " AND COALESCE(expires_at, created_at + ?) <= ?"
            args += [float(due[0]), due[1]]
        return bool(await self._on(tx).execute(sql, *args))

    # -- licences ----------------------------------------------------------------------------

    async def insert_licence(self, tx: Any, licence: Licence, *, sandbox: bool = False
                             ) -> None:
        """Insert a granted licence; an exclusive one holds its beat exclusively, unless
        it is a ``sandbox`` one (a sandbox sale's: it holds no real exclusivity)."""
        held = None
        if licence.exclusive:
            held = f"sandbox:{licence.licence_id}" if sandbox else licence.beat_id
        await tx.execute(
            f"INSERT INTO mkt_licences ({LICENCE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            licence.account_id, licence.licence_id, licence.order_id, licence.beat_id,
            licence.tier, licence.buyer_account, licence.title,
            json.dumps([f.to_json() for f in licence.files]), json.dumps(licence.rights),
            held, licence.downloads,
            licence.download_limit, licence.status, licence.granted_at)

    async def licence(self, licence_id: str, *, tx: Any = None) -> Licence | None:
        row = await self._on(tx).fetchrow(
            f"SELECT {LICENCE_READ} FROM mkt_licences WHERE licence_id = ?", licence_id)
        return None if row is None else licence_from(row)

    async def licences_of_buyer(self, buyer: str) -> list[Licence]:
        rows = await self.db.fetch(
            f"SELECT {LICENCE_READ} FROM mkt_licences WHERE buyer_account = ? "
            "ORDER BY granted_at DESC, licence_id", buyer)
        return [licence_from(r) for r in rows]

    async def licence_ids_of_orders(self, account_id: str, order_ids: Sequence[str]
                                    ) -> dict[str, str]:
        """The licence each of the seller's ``order_ids`` granted, by order id, in one
        query. A licence names its order (one per order: unique by seller and order), so
        a sandbox order's is the sandbox licence granted with it."""
        if not order_ids:
            return {}
        marks = ", ".join("?" * len(order_ids))
        rows = await self.db.fetch(
            "SELECT order_id, licence_id FROM mkt_licences WHERE account_id = ? "
            f"AND order_id IN ({marks})", account_id, *order_ids)
        return {r["order_id"]: r["licence_id"] for r in rows}

    async def licences_of_beat(self, account_id: str, beat_id: str) -> list[Licence]:
        rows = await self.db.fetch(
            f"SELECT {LICENCE_READ} FROM mkt_licences WHERE account_id = ? "
            "AND beat_id = ? ORDER BY granted_at", account_id, beat_id)
        return [licence_from(r) for r in rows]

    async def refund_growth(self, tx: Any, account_id: str, order_id: str,
                            total: int) -> int | None:
        """In a refund's transaction: raise the order's ``refunded_amount`` to ``total``
        (what Stripe shows refunded of it) and return what it grew by (0 when the books
        show that much already), or None when another refund raised it meanwhile (the
        caller retries)."""
        booked = int(await tx.fetchval(
            "SELECT refunded_amount FROM mkt_orders WHERE account_id = ? AND order_id = ?",
            account_id, order_id) or 0)
        if total <= booked:
            return 0
        if not await tx.execute(
                "UPDATE mkt_orders SET refunded_amount = ? WHERE account_id = ? AND "
                "order_id = ? AND refunded_amount = ?", total, account_id, order_id, booked):
            return None
        return total - booked

    async def revoke_licence(self, tx: Any, account_id: str, order_id: str) -> None:
        await tx.execute(
            "UPDATE mkt_licences SET status = 'refunded' WHERE account_id = ? AND order_id = ?",
            account_id, order_id)

    async def count_download(self, account_id: str, licence_id: str, file_id: str,
                             expires: int, now: float, *, served: int, size: int,
                             first: int = 0) -> Counted | None:
        """Count what one request of the link that expires at ``expires`` serves of an
        active licence's file (``served`` of its ``size`` bytes, from byte ``first``): a
        link counts one download under the licence's limit when first used, and one more
        for each further file's worth of bytes it serves. So the ranges a player or a
        download manager asks for, and a resumed download, count nothing more while they
        add up to one file, and asking again for the whole file counts again, however it
        is asked (``Range: bytes=0-`` too). Bytes that an answer cut short sent last
        (:meth:`credit_download`) are free to the first request that asks for them again.
        The bytes charged to the link and the request's number on it (None: the limit is
        used up, or the licence is no longer active; then nothing is counted and the link
        is left as it was)."""
        key = (account_id, licence_id, file_id, expires)
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM mkt_download_links WHERE account_id = ? AND "
                             "expires < ?", account_id, int(now))
            await tx.execute(
                "INSERT INTO mkt_download_links (account_id, licence_id, file_id, expires, "
                "served, counted) VALUES (?, ?, ?, ?, 0, 0) ON CONFLICT DO NOTHING", *key)
            link = await _locked_link(tx, key)
            resent = max(0, min(first + served, int(link["resend_to"]))
                         - max(first, int(link["resend_from"])))
            charged = served - resent
            total = int(link["served"]) + charged
            owed = -(-total // size) if size > 0 else 1  # an empty file: once a link
            more = owed - int(link["counted"])
            if more > 0 and not await tx.execute(
                    "UPDATE mkt_licences SET downloads = downloads + ? WHERE account_id = ? "
                    "AND licence_id = ? AND status = 'active' AND downloads + ? <= "
                    "download_limit", more, account_id, licence_id, more):
                # refused: the link is left as it was
                await tx.execute(f"DELETE FROM mkt_download_links WHERE {LINK_WHERE} AND "
                                 "counted = 0", *key)
                return None
            if more <= 0 and not await tx.fetchval(
                    "SELECT 1 FROM mkt_licences WHERE account_id = ? AND licence_id = ? "
                    "AND status = 'active'", account_id, licence_id):
                return None
            tail = ((0, 0, 0) if resent else (int(link["resend_from"]),
                                               int(link["resend_to"]),
                                               int(link["resend_for"])))
            request = int(link["requests"]) + 1
            await tx.execute(f"UPDATE mkt_download_links SET served = ?, counted = ?, "
                             f"resend_from = ?, resend_to = ?, resend_for = ?, requests = ? "
                             f"WHERE {LINK_WHERE}", total, max(owed, int(link["counted"])), *tail,
                             request, *key)
            return Counted(charged, request)

    async def credit_download(self, account_id: str, licence_id: str, file_id: str,
                              expires: int, *, request: int, size: int, unsent: int,
                              sent: tuple[int, int],
                              resend: tuple[int, int] | None = None) -> None:
        """Once request number ``request`` of a link to a file of ``size`` bytes is
        answered (it sent bytes ``sent``: from, to), give back to what the link has
        served the ``unsent`` bytes it was charged for but did not send. For an answer cut
        short, keep the bytes it sent last (``resend``: from, to), which may never have
        reached the buyer: free to the next request that asks for them, or, when a later
        request began before this answer ended (a resume that came before the drop was
        noticed, already charged them), for that request, whose own end credits those of
        them it sent again. Downloads the link counted beyond what it has then served (at
        least one) are given back to the licence."""
        key = (account_id, licence_id, file_id, expires)
        if unsent <= 0 and resend is None and await self.db.fetchval(
                f"SELECT resend_for FROM mkt_download_links WHERE {LINK_WHERE}", *key) != request:
            return  # sent in full, and no cut answer's bytes wait for this request
        async with self.db.transaction() as tx:
            link = await _locked_link(tx, key)
            if link is None:
                return
            served = int(link["served"]) - max(0, unsent)
            window = (int(link["resend_from"]), int(link["resend_to"]), int(link["resend_for"]))
            if window[2] == request:  # a cut answer's bytes this request may have sent again
                again = max(0, min(window[1], sent[1]) - max(window[0], sent[0]))
                served -= again  # credited once; else they stay free for the next request
                window = (0, 0, 0) if again else (window[0], window[1], 0)
            if resend is not None:  # cut: a later request that began meanwhile gets them
                later = int(link["requests"])
                window = (*resend, later if later != request else 0)
            served = max(0, served)
            owed = max(1, -(-served // size)) if size > 0 else 1
            counted = int(link["counted"])
            if counted > owed and await tx.execute(
                    "UPDATE mkt_licences SET downloads = downloads - ? WHERE account_id = ? "
                    "AND licence_id = ? AND downloads >= ?", counted - owed, account_id,
                    licence_id, counted - owed):
                counted = owed
            await tx.execute(f"UPDATE mkt_download_links SET served = ?, counted = ?, "
                             f"resend_from = ?, resend_to = ?, resend_for = ? WHERE {LINK_WHERE}",
                             served, counted, *window, *key)

    async def purge_download_links(self, now: float) -> int:
        """Forget every expired download link (of every account); how many."""
        return await self.db.execute("DELETE FROM mkt_download_links WHERE expires < ?",
                                     int(now))

    # -- the webhook inbox -------------------------------------------------------------------

    async def record_event(self, tx: Any, account_id: str, event_id: str, kind: str,
                           outcome: str, now: float) -> bool:
        """Record an event as handled in ``tx``; False if it was before (a duplicate)."""
        return bool(await tx.execute(
            "INSERT INTO mkt_webhook_events (account_id, event_id, type, outcome, received_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, event_id) DO NOTHING",
            account_id, event_id, kind, outcome, now))

    async def event_outcome(self, account_id: str, event_id: str) -> str | None:
        return await self.db.fetchval(
            "SELECT outcome FROM mkt_webhook_events WHERE account_id = ? AND event_id = ?",
            account_id, event_id)
