"""How fresh each source's data is: fetched from the platform, then queryable here.

Every stored batch records its ``fetched_at`` (when the connector had the answer, or
when one of our own events was heard) and ``queryable_at`` (when the rows committed) in
``analytics_freshness``, and the lag goes to Prometheus (served at ``/metrics``):

- ``maxbooster_analytics_freshness_lag_seconds{source}``: histogram of the lag;
- ``maxbooster_analytics_last_queryable_timestamp_seconds{source}``: when the source's
  last batch became queryable (alert on ``time() - it``).

Labels carry the source only (a handful), never an account.
"""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

LAG = Histogram("maxbooster_analytics_freshness_lag_seconds",
                "Seconds from a source's data being fetched to it being queryable",
                ["source"], buckets=(0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600))
LAST_QUERYABLE = Gauge("maxbooster_analytics_last_queryable_timestamp_seconds",
                       "When a source's last batch of points became queryable (epoch s)",
                       ["source"])


def observe(source: str, fetched_at: float, queryable_at: float) -> None:
    """Export one batch's freshness."""
    LAG.labels(source=source).observe(max(0.0, queryable_at - fetched_at))
    LAST_QUERYABLE.labels(source=source).set(queryable_at)
