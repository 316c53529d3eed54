"""Seeded, deterministic, realistic series for the fakes: a growth trend, weekly
seasonality (a Friday release-day peak, a quiet Monday), one viral spike and noise.

Every value is a pure function of (seed, source, entity, metric, day, dimensions), so the
same seed gives the same numbers in any order and any process (hashes by BLAKE2b, not
Python's salted ``hash``). Metrics in :data:`LEVELS` are running totals or audience sizes
(followers, play counts to date, ranks): they grow smoothly and step up after the spike;
the others are daily flows (streams, views) and carry the weekly shape and the spike.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

#: Day 0 of every series.
EPOCH = date(2024, 1, 1)
#: Weekly shape, Monday first: Friday (release day) peaks.
WEEKLY = (0.86, 0.90, 0.94, 0.98, 1.18, 1.10, 1.04)
LEVELS = frozenset({"followers_count", "follower_count", "rank", "playcount", "listeners_total",
                    "playback_count", "likes_count", "reposts_count", "comment_count",
                    "rating_votes", "in_collection", "in_wantlist", "plays", "favorites",
                    "reposts", "followers", "page_follows", "view_count", "pageviews"})


@dataclass(frozen=True)
class Shape:
    """The hidden parameters of one series."""

    scale: float        # the level on day 0
    growth: float       # per day
    spike_day: int      # days after EPOCH
    spike: float        # extra on the spike day, in multiples of scale
    noise: float        # relative standard deviation


def _digest(*parts: object) -> int:
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


@lru_cache(maxsize=65536)
def shape(seed: int, source: str, entity: str, metric: str, dims: tuple = ()) -> Shape:
    """The parameters of one series (cached; a pure function of its arguments)."""
    rng = random.Random(_digest(seed, source, entity, metric, dims))
    return Shape(scale=rng.uniform(200, 20_000), growth=rng.uniform(0.001, 0.008),
                 spike_day=rng.randrange(30, 150), spike=rng.uniform(2.0, 6.0),
                 noise=rng.uniform(0.02, 0.08))


@dataclass(frozen=True)
class Series:
    """The seeded truth every fake serves and every test compares against."""

    seed: int = 0

    def value(self, source: str, entity: str, metric: str, day: date,
              dims: tuple = ()) -> int:
        """The value of one series on ``day`` (a non-negative integer)."""
        s = shape(self.seed, source, entity, metric, dims)
        t = (day - EPOCH).days
        trend = s.scale * math.exp(s.growth * t)
        jitter = random.Random(_digest(self.seed, source, entity, metric, dims, t)).gauss(
            0.0, s.noise)
        if metric in LEVELS:
            step = s.spike * s.scale * 0.3 / (1.0 + math.exp(-(t - s.spike_day) / 2.0))
            return max(0, round(trend + step + s.scale * jitter * 0.1))
        spike = s.spike * s.scale * math.exp(-(((t - s.spike_day) / 2.5) ** 2))
        return max(0, round(trend * WEEKLY[day.weekday()] * (1.0 + jitter) + spike))
