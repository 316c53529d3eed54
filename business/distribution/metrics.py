"""Prometheus metrics of deliveries (served at ``/metrics``; docs/slo.md, distribution).

- ``distribution_delivery_seconds``: from a delivery being queued to the store taking
  it, observed when it is delivered; buckets at 1, 2, 3, 5 and 7 days hold the 2–5 day
  delivery target (the SLO: delivered within 5 days);
- ``distribution_deliveries_total{outcome}``: deliveries that ended, ``delivered`` or
  ``dead`` (given up on).

Labels carry the outcome only, never an account or a store's release.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DAY = 86400.0
#: Seconds from queued to delivered.
DELIVERY_SECONDS = Histogram(
    "distribution_delivery_seconds", "Seconds from a delivery being queued to delivered",
    buckets=(60, 3600, DAY, 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY))
#: Deliveries that ended, by outcome.
DELIVERIES = Counter("distribution_deliveries", "Deliveries that ended", ["outcome"])


def ended(state: str, queued_at: float | None, now: float) -> None:
    """Count a delivery that reached ``state`` (``delivered`` or ``dead``) at ``now``."""
    if state not in ("delivered", "dead"):
        return
    DELIVERIES.labels(outcome=state).inc()
    if state == "delivered" and queued_at is not None:
        DELIVERY_SECONDS.observe(max(0.0, now - float(queued_at)))
