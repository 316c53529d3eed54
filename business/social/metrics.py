"""Prometheus metrics of dispatch (the server exposes them at ``/metrics``).

The liveness of the dispatcher is :data:`OLDEST_DUE`: the age of the oldest target whose
publish time has come and that is not published yet. The sweeper sets it every round
from the database; a dispatcher that stopped consuming shows as a number that grows.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Seconds since the publish time of the oldest due target not yet published or failed.
OLDEST_DUE = Gauge("social_dispatch_oldest_due_seconds",
                   "Age of the oldest social post target that is due and not yet sent")
#: Targets due and not yet published or failed.
DUE = Gauge("social_dispatch_due_targets", "Social post targets due and not yet sent")
#: Publish time to the network's acceptance, per network.
LAG = Histogram("social_dispatch_lag_seconds",
                "Seconds from a post's publish time to the network accepting it",
                ["network"], buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900,
                                      3600, 21600, 86400))
#: Targets that ended, by network and outcome (published, failed).
OUTCOMES = Counter("social_dispatch_outcomes", "Social post targets that ended",
                   ["network", "outcome"])
#: Attempts put off, by why (paced, quota, retry).
DEFERRED = Counter("social_dispatch_deferred",
                   "Publish attempts put off for a burst limit, a quota or a retry",
                   ["network", "reason"])
#: Targets the sweeper armed again (their job was missing, ended or its worker died).
REARMED = Counter("social_dispatch_rearmed", "Targets the dispatch sweeper queued again")
