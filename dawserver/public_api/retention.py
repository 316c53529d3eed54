"""The purge of what the public API keeps only for a while (the core's worker
``public_api.retention``, every ``webhooks.purge_every_s``).

- ``api_idempotency``: every account's rows past ``expires_at`` (24 hours), not only
  those of accounts that claim another key;
- ``webhook_deliveries``: settled ones (delivered or failed) whose first attempt (since
  the last replay) is older than ``webhooks.keep_log_s`` (the 3-day retry window plus
  30 days by default), then every attempt whose delivery is gone. Pending deliveries
  are never purged.

Each statement is idempotent, so several server processes may purge at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from database import Database

from .webhooks.settings import WebhookSettings
from .webhooks.store import PENDING

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted, by table."""

    idempotency: int
    deliveries: int
    attempts: int


async def purge(db: Database, settings: WebhookSettings, now: float | None = None) -> Purged:
    """Delete expired idempotency rows and old settled deliveries with their attempts."""
    now = time.time() if now is None else now
    idempotency = await db.execute("DELETE FROM api_idempotency WHERE expires_at <= ?", now)
    deliveries = attempts = 0
    if settings.keep_log_s is not None:
        async with db.transaction() as tx:
            deliveries = await tx.execute(
                "DELETE FROM webhook_deliveries WHERE state <> ? AND "
                "COALESCE(first_attempt_at, created_at) <= ?", PENDING,
                now - settings.keep_log_s)
            attempts = await tx.execute(
                "DELETE FROM webhook_attempts WHERE NOT EXISTS (SELECT 1 FROM "
                "webhook_deliveries d WHERE d.account_id = webhook_attempts.account_id AND "
                "d.id = webhook_attempts.delivery_id)")
    return Purged(idempotency, deliveries, attempts)


async def run_purge(db: Database, settings: WebhookSettings) -> None:
    """Purge now and then every ``settings.purge_every_s`` until cancelled."""
    while True:
        try:
            found = await purge(db, settings)
            logger.debug("public API purge: %s", found)
        except Exception:
            logger.exception("public API purge failed; trying again in %.0f s",
                             settings.purge_every_s)
        await asyncio.sleep(settings.purge_every_s)
