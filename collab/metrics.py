"""Prometheus metrics of the collaboration layer (the server exposes them at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Peer updates refused before anything stored them: ``format`` (stock yjs cannot read
#: them), ``parent`` (an item sits in a plain value), ``apply`` (yrs could not apply
#: them to the trial copy) or ``ahead`` (items skip clocks: dropped, and the sender is
#: asked for its history with a sync step 1 instead of being closed).
UPDATES_REFUSED = Counter("collab_updates_refused",
                          "Peer updates refused (4400) before they were stored", ["reason"])
#: Awareness entries a peer sent for a client id it does not own (another peer's, the
#: server's) that would have changed its state, dropped (echoes of what the room holds
#: are not counted). Stock clients send some too (timeouts, other tabs): nobody is closed.
AWARENESS_DROPPED = Counter("collab_awareness_dropped",
                            "Newer peer awareness entries for ids they do not own, dropped")
#: Logged updates a room left out while loading, kept in the store's quarantine.
UPDATES_QUARANTINED = Counter("collab_updates_quarantined",
                              "Logged updates left out on load and put in quarantine")
#: Batches whose processing failed unexpectedly (the room went on serving).
FLUSH_FAILURES = Counter("collab_flush_failures",
                         "Batches of updates whose processing failed in a room's flusher")
#: Documents (rooms) this process holds in memory now.
DOCUMENTS_LOADED = Gauge("collab_documents_loaded", "Project documents loaded in memory")
#: From the server receiving a peer's update to the update being stored and relayed
#: (pushed to every other peer's send queue and published to the other nodes).
EDIT_PROPAGATION = Histogram("collab_edit_propagation_seconds",
                             "Seconds from receiving a peer's update to relaying it",
                             buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5, 1, 2.5, 5))
