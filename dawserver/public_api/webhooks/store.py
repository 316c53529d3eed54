"""Webhook subscriptions, their deliveries and each delivery's attempts, in the database.

Tables ``webhook_subscriptions``, ``webhook_deliveries`` and ``webhook_attempts``
(migration ``public_api/2``); ``account_id`` leads every key, and every read names
the account, so one account never sees another's rows. Signing secrets are stored
sealed (:mod:`.sealing`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from database import Database, Row, Session

from .sealing import PLAIN_PREFIX, SealingError, SecretBox

log = logging.getLogger(__name__)
#: Why a subscription whose sealed secret cannot be opened was disabled.
UNREADABLE_SECRET = ("its signing secret cannot be opened with this server's key (was the "
                     "server's secret.key replaced?): delete the webhook and create it again")

#: Deliveries: waiting for an attempt, delivered (a 2xx), failed (gave up or disabled).
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Subscription:
    """One endpoint of an account and the events it hears."""

    account_id: str
    id: str
    url: str
    events: list[str]
    description: str
    secret: str
    enabled: bool
    disabled_reason: str
    failing_since: float | None
    consecutive_failures: int
    created_by: str
    created_at: float
    updated_at: float
    test_mode: bool = False

    @classmethod
    def from_row(cls, row: Row, box: SecretBox) -> Subscription:
        data = dict(row)
        return cls(**{**data, "events": json.loads(data["events"]),
                      "enabled": bool(data["enabled"]), "secret": box.open(data["secret"]),
                      "test_mode": bool(data["test_mode"])})


@dataclass(frozen=True)
class Delivery:
    """One event for one subscription: the exact body every attempt sends."""

    account_id: str
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    body: str
    state: str
    attempts: int
    last_status: int | None
    first_attempt_at: float | None
    next_attempt_at: float | None
    created_at: float
    replays: int

    @classmethod
    def from_row(cls, row: Row) -> Delivery:
        return cls(**dict(row))


@dataclass(frozen=True)
class Attempt:
    """One try at a delivery: when, the answer's status (None: no answer), how long."""

    attempt: int
    at: float
    status: int | None
    latency_ms: float
    response: str
    error: str


def delivery_id(event_id: str, subscription_id: str) -> str:
    """The delivery's id, which is its ``Webhook-Id``: the same for the same event and
    subscription however often it is queued or sent."""
    digest = hashlib.sha256(f"{event_id}/{subscription_id}".encode()).hexdigest()[:26]
    return f"msg_{digest}"


class WebhookStore:
    """Reads and writes of the webhook tables over one database."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db, self.box = db, box

    # -- subscriptions -------------------------------------------------------------------

    async def create(self, account_id: str, *, url: str, events: list[str], description: str,
                     secret: str, created_by: str, test_mode: bool = False) -> Subscription:
        """A new enabled subscription (``test_mode``: it hears sandbox events only)."""
        now = time.time()
        sub = Subscription(account_id, f"wh_{secrets.token_hex(10)}", url, sorted(events),
                           description, secret, True, "", None, 0, created_by, now, now,
                           test_mode)
        await self.db.execute(
            "INSERT INTO webhook_subscriptions (account_id, id, url, events, description, "
            "secret, enabled, disabled_reason, failing_since, consecutive_failures, "
            "created_by, created_at, updated_at, test_mode) VALUES (?, ?, ?, ?, ?, ?, 1, '', "
            "NULL, 0, ?, ?, ?, ?)", account_id, sub.id, url, json.dumps(sub.events),
            description, self.box.seal(secret), created_by, now, now, int(test_mode))
        return sub

    async def seal_plain_secrets(self) -> int:
        """Seal every secret still stored in clear (rows from before sealing); how many."""
        rows = await self.db.fetch("SELECT account_id, id, secret FROM webhook_subscriptions "
                                   "WHERE secret LIKE ?", f"{PLAIN_PREFIX}%")
        sealed = 0
        for row in rows:
            sealed += await self.db.execute(
                "UPDATE webhook_subscriptions SET secret = ? WHERE account_id = ? AND id = ? "
                "AND secret = ?", self.box.seal(row["secret"]), row["account_id"], row["id"],
                row["secret"])
        return sealed

    async def get(self, account_id: str, sub_id: str, *, tx: Session | None = None
                  ) -> Subscription | None:
        """The subscription, if ``account_id`` has it."""
        row = await (tx or self.db).fetchrow(
            "SELECT * FROM webhook_subscriptions WHERE account_id = ? AND id = ?",
            account_id, sub_id)
        return None if row is None else Subscription.from_row(row, self.box)

    async def list(self, account_id: str) -> list[Subscription]:
        """The account's subscriptions, oldest first. One whose secret this server's key
        cannot open is listed disabled (and disabled in the table) with the reason, so
        it never blocks the account's other subscriptions."""
        rows = await self.db.fetch("SELECT * FROM webhook_subscriptions WHERE account_id = ? "
                                   "ORDER BY created_at, id", account_id)
        subs = []
        for row in rows:
            try:
                subs.append(Subscription.from_row(row, self.box))
            except SealingError:
                subs.append(await self._unreadable(row))
        return subs

    async def _unreadable(self, row: Row) -> Subscription:
        """Disable a subscription whose secret cannot be opened; it, without a secret."""
        log.warning("webhook %s of %s: its secret cannot be opened with this server's key; "
                    "disabled", row["id"], row["account_id"])
        await self.db.execute(
            "UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = ?, updated_at = ? "
            "WHERE account_id = ? AND id = ? AND enabled = 1", UNREADABLE_SECRET, time.time(),
            row["account_id"], row["id"])
        data = dict(row)
        return Subscription(**{**data, "events": json.loads(data["events"]), "secret": "",
                               "enabled": False, "disabled_reason": UNREADABLE_SECRET,
                               "test_mode": bool(data["test_mode"])})

    async def hearing(self, account_id: str, event_type: str, *, test_mode: bool = False
                      ) -> list[Subscription]:
        """The account's enabled subscriptions of the mode to ``event_type``."""
        return [s for s in await self.list(account_id)
                if s.enabled and event_type in s.events and s.test_mode == test_mode]

    async def update(self, account_id: str, sub_id: str, **changes: Any) -> Subscription | None:
        """Change ``url``, ``events``, ``description`` or ``enabled``; the result."""
        columns = {k: json.dumps(sorted(v)) if k == "events" else v
                   for k, v in changes.items() if v is not None}
        if columns.get("enabled"):  # re-enabled: a fresh start
            columns.update(enabled=1, disabled_reason="", failing_since=None,
                           consecutive_failures=0)
        columns["updated_at"] = time.time()
        sets = ", ".join(f"{name} = ?" for name in columns)
        await self.db.execute(f"UPDATE webhook_subscriptions SET {sets} "  # noqa: S608
                              "WHERE account_id = ? AND id = ?", *columns.values(),
                              account_id, sub_id)
        return await self.get(account_id, sub_id)

    async def delete(self, account_id: str, sub_id: str) -> bool:
        """Delete the subscription with its log; whether it was there."""
        async with self.db.transaction() as tx:
            gone = await tx.execute("DELETE FROM webhook_subscriptions WHERE account_id = ? "
                                    "AND id = ?", account_id, sub_id)
            await tx.execute("DELETE FROM webhook_attempts WHERE account_id = ? AND "
                             "subscription_id = ?", account_id, sub_id)
            await tx.execute("DELETE FROM webhook_deliveries WHERE account_id = ? AND "
                             "subscription_id = ?", account_id, sub_id)
        return gone > 0

    async def forget_account(self, account_id: str) -> int:
        """Delete every subscription of ``account_id`` with its log (an erased person);
        how many subscriptions."""
        async with self.db.transaction() as tx:
            gone = await tx.execute("DELETE FROM webhook_subscriptions WHERE account_id = ?",
                                    account_id)
            for table in ("webhook_attempts", "webhook_deliveries"):
                await tx.execute(f"DELETE FROM {table} WHERE account_id = ?",  # noqa: S608
                                 account_id)
        return gone

    async def outcome(self, sub: Subscription, ok: bool, now: float, *,
                      tx: Session) -> Subscription:
        """Count an attempt's outcome on its subscription (a success clears the streak)."""
        if ok:
            await tx.execute("UPDATE webhook_subscriptions SET consecutive_failures = 0, "
                             "failing_since = NULL WHERE account_id = ? AND id = ?",
                             sub.account_id, sub.id)
        else:
            await tx.execute(
                "UPDATE webhook_subscriptions SET consecutive_failures = "
                "consecutive_failures + 1, failing_since = COALESCE(failing_since, ?) "
                "WHERE account_id = ? AND id = ?", now, sub.account_id, sub.id)
        found = await self.get(sub.account_id, sub.id, tx=tx)
        return found or sub

    async def disable(self, sub: Subscription, reason: str, *, tx: Session) -> bool:
        """Disable an enabled subscription; whether this call did it."""
        return await tx.execute(
            "UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = ?, "
            "updated_at = ? WHERE account_id = ? AND id = ? AND enabled = 1", reason,
            time.time(), sub.account_id, sub.id) > 0

    # -- deliveries ----------------------------------------------------------------------

    async def add_delivery(self, sub: Subscription, event_id: str, event_type: str,
                           body: str, *, tx: Session) -> tuple[str, bool]:
        """The delivery of ``event_id`` to ``sub`` (made now, or already there): its id and
        whether it is new."""
        found_id = delivery_id(event_id, sub.id)
        added = await tx.execute(
            "INSERT INTO webhook_deliveries (account_id, id, subscription_id, event_id, "
            "event_type, body, state, attempts, last_status, first_attempt_at, next_attempt_at, "
            "created_at, replays) VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL, ?, 0) "
            "ON CONFLICT DO NOTHING", sub.account_id, found_id, sub.id, event_id,
            event_type, body, PENDING, time.time())
        return found_id, added > 0

    async def delivery(self, account_id: str, sub_id: str, delivery: str, *,
                       tx: Session | None = None) -> Delivery | None:
        """The delivery, if it is ``account_id``'s and ``sub_id``'s."""
        row = await (tx or self.db).fetchrow(
            "SELECT * FROM webhook_deliveries WHERE account_id = ? AND id = ? AND "
            "subscription_id = ?", account_id, delivery, sub_id)
        return None if row is None else Delivery.from_row(row)

    async def deliveries(self, account_id: str, sub_id: str, *, state: str | None = None,
                         after: tuple[float, str] | None = None,
                         limit: int | None = None) -> list[Delivery]:
        """The subscription's deliveries, newest first (ties by id), in ``state`` if
        given, after the position ``after`` (``(created_at, id)`` of the last one seen),
        at most ``limit``: a page seeks on the log's index instead of reading it all."""
        where, args = ["account_id = ?", "subscription_id = ?"], [account_id, sub_id]
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if after is not None:
            where.append("(created_at < ? OR (created_at = ? AND id > ?))")
            args += [after[0], after[0], after[1]]
        cap = "" if limit is None else f" LIMIT {int(limit)}"
        rows = await self.db.fetch(
            f"SELECT * FROM webhook_deliveries WHERE {' AND '.join(where)} "
            f"ORDER BY created_at DESC, id{cap}", *args)
        return [Delivery.from_row(r) for r in rows]

    async def attempts(self, account_id: str, delivery: str) -> list[Attempt]:
        """A delivery's attempts, first first."""
        rows = await self.db.fetch(
            "SELECT attempt, at, status, latency_ms, response, error FROM webhook_attempts "
            "WHERE account_id = ? AND delivery_id = ? ORDER BY attempt", account_id, delivery)
        return [Attempt(**dict(r)) for r in rows]

    async def attempts_since(self, found: Delivery, since: float) -> int:
        """How many attempts at ``found`` were made at or after ``since``."""
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM webhook_attempts WHERE account_id = ? AND delivery_id = ? "
            "AND at >= ?", found.account_id, found.id, since) or 0)

    async def record(self, found: Delivery, attempt: Attempt, state: str,
                     next_at: float | None, *, tx: Session) -> None:
        """Log ``attempt`` and move the delivery to ``state``."""
        await tx.execute(
            "INSERT INTO webhook_attempts (account_id, delivery_id, attempt, subscription_id, "
            "at, status, latency_ms, response, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING", found.account_id, found.id, attempt.attempt,
            found.subscription_id, attempt.at, attempt.status, attempt.latency_ms,
            attempt.response, attempt.error)
        await tx.execute(
            "UPDATE webhook_deliveries SET state = ?, attempts = ?, last_status = ?, "
            "next_attempt_at = ?, first_attempt_at = COALESCE(first_attempt_at, ?) "
            "WHERE account_id = ? AND id = ?", state, attempt.attempt, attempt.status, next_at,
            attempt.at, found.account_id, found.id)

    async def settle(self, found: Delivery, state: str, *, tx: Session) -> None:
        """Move a delivery to ``state`` without an attempt (its subscription is gone)."""
        await tx.execute("UPDATE webhook_deliveries SET state = ?, next_attempt_at = NULL "
                         "WHERE account_id = ? AND id = ?", state, found.account_id, found.id)

    async def replay(self, found: Delivery, *, tx: Session) -> int:
        """Start the delivery over (a fresh retry window); its replay number."""
        await tx.execute(
            "UPDATE webhook_deliveries SET state = ?, first_attempt_at = NULL, "
            "next_attempt_at = NULL, replays = replays + 1 WHERE account_id = ? AND id = ?",
            PENDING, found.account_id, found.id)
        return found.replays + 1
