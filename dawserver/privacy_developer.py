"""A person's developer data in their export: webhooks and API usage of their own account.

:func:`webhook_part` lists the webhook endpoints the account registered through the
public API (``/api/v1/webhooks``) with their delivery log as the store keeps it (each
delivery's body and every attempt: status, latency, the receiver's answer, the error);
never a signing secret. :func:`usage_part` lists the usage meter's rows of the
account's API keys: per key and UTC day, requests, errors, rate-limit refusals and
the latency histogram. Both read the person's own account only (an organisation's
webhooks and usage are the organisation's); :mod:`dawserver.privacy_export` writes
them as ``core/webhooks.json`` and ``core/api_usage.json``.
"""

from __future__ import annotations

from typing import Any

from accounts.service import AccountService

from .context import PluginContext
from .public_api.state import api_state
from .public_api.usage.histogram import BOUNDS_MS
from .public_api.webhooks.service import deliverer
from .public_api.webhooks.store import Subscription

#: Every day the meter may have kept (``YYYY-MM-DD`` sorts after it).
ALL_DAYS = ""


def _webhook(sub: Subscription) -> dict[str, Any]:
    """A subscription without its signing secret."""
    return {"id": sub.id, "url": sub.url, "events": list(sub.events),
            "description": sub.description, "enabled": sub.enabled,
            "disabled_reason": sub.disabled_reason, "failing_since": sub.failing_since,
            "consecutive_failures": sub.consecutive_failures, "created_by": sub.created_by,
            "created_at": sub.created_at, "updated_at": sub.updated_at,
            "test_mode": sub.test_mode}


async def webhook_part(context: PluginContext, account_id: str) -> list[dict[str, Any]]:
    """The account's webhooks, oldest first, each with its deliveries (newest first) and
    their attempts; no signing secret."""
    store = deliverer(context).store
    found = []
    for sub in await store.list(account_id):
        deliveries = []
        for delivery in await store.deliveries(account_id, sub.id):
            attempts = await store.attempts(account_id, delivery.id)
            deliveries.append({
                "id": delivery.id, "event_id": delivery.event_id,
                "event_type": delivery.event_type, "body": delivery.body,
                "state": delivery.state, "attempts": delivery.attempts,
                "last_status": delivery.last_status,
                "first_attempt_at": delivery.first_attempt_at,
                "next_attempt_at": delivery.next_attempt_at,
                "created_at": delivery.created_at, "replays": delivery.replays,
                "attempt_log": [{"attempt": a.attempt, "at": a.at, "status": a.status,
                                 "latency_ms": a.latency_ms, "response": a.response,
                                 "error": a.error} for a in attempts]})
        found.append({**_webhook(sub), "deliveries": deliveries})
    return found


async def usage_part(context: PluginContext, service: AccountService, account_id: str
                     ) -> list[dict[str, Any]]:
    """The usage of each of the account's API keys per UTC day, oldest first: requests,
    errors (4xx and 5xx), rate-limit refusals (429), summed latency and its histogram.

    The server process's unflushed counts are flushed first; another process's arrive
    within its flush period (ten seconds)."""
    usage = api_state(context).usage
    await usage.flush()
    keys = {key.key_id: key for key in await service.store.keys_of(account_id)}
    days = await usage.store.days(account_id, keys, ALL_DAYS)
    rows = []
    for (key_id, day), tally in sorted(days.items(), key=lambda item: (item[0][1],
                                                                      item[0][0])):
        key = keys[key_id]
        rows.append({
            "key": key_id, "key_name": key.name, "key_prefix": key.prefix, "day": day,
            "requests": tally.requests, "errors": tally.errors, "rejected": tally.rejected,
            "latency_ms_sum": tally.latency_ms_sum,
            "latency_ms_histogram": [
                {"up_to_ms": BOUNDS_MS[i] if i < len(BOUNDS_MS) else None, "count": count}
                for i, count in enumerate(tally.buckets) if count]})
    return rows
