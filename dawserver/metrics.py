"""Prometheus metrics of the server itself (served with every other at ``/metrics``).

Labels stay bounded: a request is labelled by its route's template
(``/projects/{project_id}``), never by its path, and by its status class (``2xx``).
The other packages keep their own metrics beside their code: ``collab.metrics``,
``jobs.metrics`` (queue depth, read at scrape time), ``accounts.ratelimit``.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: Seconds from a request's arrival to its answer, by route template, method, status class.
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "Seconds to answer an HTTP request",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
#: Audio seconds rendered per wall-clock second (above 1: faster than real time), by kind:
#: ``bounce`` (a whole project to a file) or ``render`` (a window for the HTTP API).
RENDER_REALTIME_FACTOR = Histogram(
    "render_realtime_factor", "Seconds of audio rendered per second of wall-clock time",
    ["kind"], buckets=(0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
#: Seconds the live mix took to make one frame (apply changes, render, encode): the
#: audio SLO's indicator (docs/slo.md: under 50 ms for 99.9 % of frames).
AUDIO_FRAME_SECONDS = Histogram(
    "audio_frame_processing_seconds", "Seconds the live mix took to make one audio frame",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1))
#: Objects (audio, peaks) of forgotten assets deleted from object storage by the periodic
#: collection (:mod:`dawserver.asset_collection`), by data region.
ASSET_OBJECTS_COLLECTED = Counter(
    "asset_objects_collected", "Objects of forgotten assets deleted from object storage",
    ["region"])
