"""A transactional outbox: events written with the change they announce, sent until heard.

An event row is inserted in the same transaction as the state change it announces
(so neither exists without the other), then :meth:`Outbox.deliver` hands it to the
hooks until a call succeeds: a failing hook is retried with backoff, and a worker
that dies mid-call leaves a lease that expires. Delivery is at least once; every
payload carries its ``event_id`` so a hook that may see an event twice can ignore
the repeat (exactly once in effect).
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dawserver.plugin_api import backoff_delay

logger = logging.getLogger(__name__)

Announce = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class OutboxSettings:
    """Retry knobs (seconds)."""

    lease_s: float = 60.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0


class Outbox:
    """Pending events of one database and their delivery to the hooks."""

    def __init__(self, db: Any, settings: OutboxSettings | None = None,
                 rng: random.Random | None = None) -> None:
        self.db = db
        self.settings = settings or OutboxSettings()
        self._rng = rng or random.Random()

    @staticmethod
    async def add(tx: Any, account_id: str, name: str, payload: dict[str, Any]) -> str:
        """Record an event inside the caller's transaction ``tx``; its id."""
        event_id = uuid.uuid4().hex
        now = time.time()
        await tx.execute(
            "INSERT INTO dist_outbox (account_id, event_id, name, payload, created_at, "
            "attempts, next_attempt_at, lease_until, delivered_at, last_error) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, 0, NULL, '')",
            account_id, event_id, name, json.dumps(payload), now, now)
        return event_id

    async def deliver(self, announce: Announce) -> list[str]:
        """Announce every due event once more; the ids of those heard now."""
        now = time.time()
        due = await self.db.fetch(
            "SELECT account_id, event_id, name, payload, attempts FROM dist_outbox "
            "WHERE delivered_at IS NULL AND next_attempt_at <= ? AND lease_until < ? "
            "ORDER BY created_at", now, now)
        heard = []
        for row in due:
            claimed = await self.db.execute(
                "UPDATE dist_outbox SET lease_until = ?, attempts = attempts + 1 "
                "WHERE account_id = ? AND event_id = ? AND attempts = ? "
                "AND delivered_at IS NULL AND lease_until < ?",
                now + self.settings.lease_s, row["account_id"], row["event_id"],
                row["attempts"], now)
            if claimed and await self._send(row, announce):
                heard.append(row["event_id"])
        return heard

    async def _send(self, row: dict[str, Any], announce: Announce) -> bool:
        """Announce the claimed event ``row``; record the outcome; whether it was heard."""
        key = (row["account_id"], row["event_id"])
        attempt = row["attempts"] + 1
        try:
            await announce(row["name"], {**json.loads(row["payload"]),
                                         "event_id": row["event_id"]})
        except Exception as exc:  # a hook failed: try again later
            delay = backoff_delay(attempt, self.settings.backoff_base,
                                  self.settings.backoff_cap, self._rng)
            logger.warning("event %s %s: a hook failed (attempt %d), retrying in %.1f s: %r",
                           row["name"], row["event_id"], attempt, delay, exc)
            await self.db.execute(
                "UPDATE dist_outbox SET lease_until = 0, next_attempt_at = ?, last_error = ? "
                "WHERE account_id = ? AND event_id = ?",
                time.time() + delay, f"{type(exc).__name__}: {exc}"[:1000], *key)
            return False
        await self.db.execute(
            "UPDATE dist_outbox SET delivered_at = ?, lease_until = 0, last_error = '' "
            "WHERE account_id = ? AND event_id = ?", time.time(), *key)
        return True

    async def pending(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Events not heard yet (with their attempts and last error)."""
        where, args = ("AND account_id = ?", (account_id,)) if account_id else ("", ())
        return await self.db.fetch(
            f"SELECT account_id, event_id, name, attempts, last_error FROM dist_outbox "
            f"WHERE delivered_at IS NULL {where} ORDER BY created_at", *args)
