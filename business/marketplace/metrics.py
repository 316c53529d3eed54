"""Prometheus metrics of Stripe webhooks and split transfers (served at ``/metrics``;
docs/slo.md, marketplace).

- ``marketplace_webhook_events_total{outcome}``: deliveries by what became of them
  (:class:`~business.marketplace.webhooks.Outcome` values, or ``error`` when the
  handler raised): the payments SLO counts ``error`` and ``retry`` as bad;
- ``marketplace_webhook_lag_seconds``: from Stripe creating the event to us having
  processed it (the webhook processing lag of issue 19);
- ``marketplace_split_failures_total{stage}``: split lines whose transfer job gave up
  (``transfer``), and reversals that ended without taking everything back because their
  line's transfers had failed (``reversal``) or were never all made (``reversal_timeout``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from enum import StrEnum
from typing import TypeVar

from prometheus_client import Counter, Histogram

OutcomeT = TypeVar("OutcomeT", bound=StrEnum)

#: Webhook deliveries by outcome.
EVENTS = Counter("marketplace_webhook_events", "Stripe webhook deliveries by outcome",
                 ["outcome"])
#: Event creation (Stripe's clock) to processed (ours).
LAG = Histogram("marketplace_webhook_lag_seconds",
                "Seconds from Stripe creating an event to it being processed",
                buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400))

#: Split lines whose transfers failed for good, and reversals that could not finish.
SPLIT_FAILURES = Counter("marketplace_split_failures",
                         "Split transfer jobs that gave up and reversals left unfinished",
                         ["stage"])


async def counted(created: float, handling: Awaitable[OutcomeT]) -> OutcomeT:
    """Await ``handling`` (one delivery of an event Stripe created at ``created``) and
    count its outcome; an exception counts as ``error`` and goes on."""
    try:
        outcome = await handling
    except Exception:
        EVENTS.labels(outcome="error").inc()
        raise
    EVENTS.labels(outcome=outcome.value).inc()
    if outcome.value != "retry":
        LAG.observe(max(0.0, time.time() - created))
    return outcome
