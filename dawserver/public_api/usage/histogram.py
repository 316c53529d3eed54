"""The latency histogram of API usage: fixed buckets, and quantiles read from them.

Bucket ``i`` counts requests that took at most :data:`BOUNDS_MS` ``[i]`` milliseconds
(and more than the bound before it); the last bucket has no upper bound. A quantile is
interpolated linearly inside the bucket it falls in (as Prometheus'
``histogram_quantile`` does), so p50 and p99 are within one bucket's width of the truth.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

#: Upper bounds of the buckets, in milliseconds (the last bucket: anything slower).
BOUNDS_MS: tuple[float, ...] = (2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: How many buckets: one per bound, and one past the last.
BUCKETS = len(BOUNDS_MS) + 1


def bucket_of(latency_ms: float) -> int:
    """The bucket a request of ``latency_ms`` falls in."""
    return bisect.bisect_left(BOUNDS_MS, latency_ms)


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q``-quantile (0 < q <= 1) in milliseconds of a histogram; None when empty.

    Inside a bucket the requests are taken as spread evenly between its bounds; a
    quantile in the last (unbounded) bucket answers its lower bound.
    """
    if not 0 < q <= 1:
        raise ValueError(f"a quantile is in (0, 1], got {q!r}")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = 0.0 if index == 0 else BOUNDS_MS[index - 1]
            if index >= len(BOUNDS_MS):
                return lower
            return lower + (BOUNDS_MS[index] - lower) * (rank - seen) / count
        seen += count
    return BOUNDS_MS[-1]
