"""Prometheus metrics of the collaboration layer (the server exposes them at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

#: Peer updates refused before anything stored them: ``format`` (stock yjs cannot read
#: them), ``parent`` (an item sits in a plain value), ``apply`` (yrs could not apply
#: them to the trial copy) or ``ahead`` (items skip clocks: dropped, and the sender is
#: asked for its history with a sync step 1 instead of being closed).
UPDATES_REFUSED = Counter("collab_updates_refused",
                          "Peer updates refused (4400) before they were stored", ["reason"])
#: Logged updates a room left out while loading, kept in the store's quarantine.
UPDATES_QUARANTINED = Counter("collab_updates_quarantined",
                              "Logged updates left out on load and put in quarantine")
#: Batches whose processing failed unexpectedly (the room went on serving).
FLUSH_FAILURES = Counter("collab_flush_failures",
                         "Batches of updates whose processing failed in a room's flusher")
