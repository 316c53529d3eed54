"""Best times to post on a channel, from its own history, or general defaults.

Each published post of the channel (published at least ``settle_s`` ago, within
``history_days``) counts with its engagement: likes + comments + shares + clicks of its
latest metrics reading (a metric the network does not report counts 0). Posts go into
the 168 cells of a week (weekday × hour, in the channel's time zone). The cells are
smoothed: a cell also takes half of each neighbouring hour's posts (the week wraps), and
every cell is pulled toward the channel's median post by ``prior`` posts' worth of it, so
a single lucky post does not make a best time (the median, not the mean, so that lucky
post does not lift every cell either). A cell is suggested only when posts went out in
that very hour and at least ``min_cell`` posts' worth of weight sit in it. With fewer
than ``min_posts`` posts with results the channel's history says too little: the answer
is the network's general defaults (:data:`DEFAULTS`), and says so.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from business.social.calendar import WEEKDAYS
from business.social.errors import NotFoundError
from business.social.store import SocialStore
from business.social.times import iso, zone

HOURS = 168
#: Smoothing kernel over neighbouring hours of the week: offset -> weight.
KERNEL = {-1: 0.5, 0: 1.0, 1: 0.5}
#: Starting points used where a channel has too little history: our own choice of
#: weekday late mornings and early evenings (not measured on anyone's audience; the
#: networks publish no such figures), one list per network.
DEFAULTS: dict[str, tuple[tuple[str, int], ...]] = {
    "x": (("tue", 9), ("wed", 12), ("thu", 9), ("fri", 12)),
    "instagram": (("mon", 11), ("wed", 19), ("thu", 12), ("fri", 19)),
    "facebook": (("tue", 10), ("wed", 13), ("thu", 10), ("sat", 11)),
    "tiktok": (("tue", 19), ("thu", 19), ("fri", 20), ("sat", 18)),
    "youtube": (("thu", 17), ("fri", 17), ("sat", 12), ("sun", 12)),
    "linkedin": (("tue", 9), ("wed", 9), ("thu", 10), ("tue", 12)),
    "threads": (("mon", 12), ("wed", 12), ("thu", 19), ("sat", 11)),
    "bluesky": (("tue", 12), ("wed", 18), ("thu", 12), ("sun", 18)),
}


@dataclass(frozen=True)
class BestTimeSettings:
    """How much history counts, and how much of it is enough."""

    min_posts: int = 12          # posts with results before the history is used
    min_cell: float = 2.0        # posts' worth of weight a suggested cell needs
    prior: float = 2.0           # posts' worth of the channel's mean in every cell
    settle_s: float = 86_400.0   # a post younger than this is still gathering engagement
    history_days: int = 180


def engagement(row: Any) -> int:
    """Likes + comments + shares + clicks of one reading (missing metrics count 0)."""
    return sum(int(row[m] or 0) for m in ("likes", "comments", "shares", "clicks"))


def smooth(totals: list[float], counts: list[float], prior: float, centre: float
           ) -> tuple[list[float], list[float]]:
    """Per cell: (smoothed mean engagement, posts' worth of weight) over the week, each
    cell pulled toward ``centre`` by ``prior`` posts' worth."""
    scores, weights = [], []
    for cell in range(HOURS):
        total = sum(w * totals[(cell + k) % HOURS] for k, w in KERNEL.items())
        count = sum(w * counts[(cell + k) % HOURS] for k, w in KERNEL.items())
        scores.append((total + prior * centre) / (count + prior))
        weights.append(count)
    return scores, weights


def _label(cell: int) -> tuple[str, str]:
    return WEEKDAYS[cell // 24], f"{cell % 24:02d}:00"


def next_at(cell: int, tz: dt.tzinfo, now: float) -> float:
    """The next start of weekday × hour ``cell`` after ``now``, in ``tz``; a week on
    where the clocks skip that hour (a spring-forward night), so the time is the one
    its label says."""
    today = dt.datetime.fromtimestamp(now, tz)
    for offset in range(15):
        date = today.date() + dt.timedelta(days=offset)
        if date.weekday() != cell // 24:
            continue
        when = dt.datetime.combine(date, dt.time(cell % 24), tzinfo=tz).timestamp()
        if when > now and dt.datetime.fromtimestamp(when, tz).hour == cell % 24:
            return when
    return now + 7 * 86_400.0  # unreachable: the weekday's hour exists within 15 days


class BestTimes:
    """Suggests publish times for one channel of an account."""

    def __init__(self, store: SocialStore, settings: BestTimeSettings | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings or BestTimeSettings()
        self.clock = clock

    async def history(self, account_id: str, channel_id: str, now: float
                      ) -> list[tuple[float, int]]:
        """(published_at, engagement) of each settled published post with a reading."""
        s = self.settings
        rows = await self.store.db.fetch(
            "SELECT t.published_at, s.likes, s.comments, s.shares, s.clicks "
            "FROM social_post_targets t JOIN social_metric_snapshots s "
            "ON s.account_id = t.account_id AND s.post_id = t.post_id "
            "AND s.channel_id = t.channel_id JOIN (SELECT post_id, MAX(taken_at) AS taken_at "
            "FROM social_metric_snapshots WHERE account_id = ? AND channel_id = ? "
            "GROUP BY post_id) m ON m.post_id = s.post_id AND m.taken_at = s.taken_at "
            "WHERE t.account_id = ? AND t.channel_id = ? AND t.state = 'published' "
            "AND t.published_at >= ? AND t.published_at <= ?",
            account_id, channel_id, account_id, channel_id,
            now - s.history_days * 86_400.0, now - s.settle_s)
        return [(float(r["published_at"]), engagement(r)) for r in rows]

    async def suggest(self, account_id: str, channel_id: str, count: int = 3
                      ) -> dict[str, Any]:
        """The channel's best ``count`` weekday × hour cells, each with its reason and
        next occurrence; :class:`NotFoundError` for a channel the account does not have."""
        channel = await self.store.channel(account_id, channel_id)
        if channel is None:
            raise NotFoundError(f"there is no channel {channel_id!r}")
        now, s = self.clock(), self.settings
        tz = zone(channel.time_zone)
        posts = await self.history(account_id, channel_id, now)
        answer: dict[str, Any] = {"channel_id": channel_id, "network": channel.network,
                                  "time_zone": channel.time_zone, "sample": len(posts),
                                  "min_sample": s.min_posts}
        if len(posts) < s.min_posts:
            return {**answer, "source": "defaults",
                    "reason": f"{len(posts)} of this channel's posts have results, fewer than "
                              f"the {s.min_posts} needed to learn from; these are general "
                              f"starting points for {channel.network}, not measured on "
                              "your audience",
                    "suggestions": self._defaults(channel.network, channel.time_zone, now, count)}
        totals, counts = [0.0] * HOURS, [0.0] * HOURS
        for published_at, value in posts:
            local = dt.datetime.fromtimestamp(published_at, tz)
            cell = local.weekday() * 24 + local.hour
            totals[cell] += value
            counts[cell] += 1
        median = statistics.median(value for _, value in posts)
        scores, weights = smooth(totals, counts, s.prior, median)
        ranked = sorted((c for c in range(HOURS) if counts[c] and weights[c] >= s.min_cell),
                        key=lambda c: (-scores[c], -weights[c], c))
        chosen: list[int] = []
        for cell in ranked:
            if all(min((cell - c) % HOURS, (c - cell) % HOURS) > 1 for c in chosen):
                chosen.append(cell)
            if len(chosen) == count:
                break
        suggestions = []
        for cell in chosen:
            weekday, at = _label(cell)
            near = sum(counts[(cell + k) % HOURS] for k in KERNEL)
            ratio = scores[cell] / median if median else 0.0
            when = next_at(cell, tz, now)
            suggestions.append({
                "weekday": weekday, "time": at, "score": round(scores[cell], 2),
                "posts": int(near), "next_at": iso(when, channel.time_zone),
                "next_at_epoch": when,
                "reason": f"{int(near)} posts within an hour of {weekday.title()} {at} "
                          f"drew {scores[cell]:.0f} engagements each (smoothed), "
                          f"{ratio:.1f}× this channel's median post ({median:.0f})"})
        reason = (f"from {len(posts)} published posts with results in the last "
                  f"{s.history_days} days (likes, comments, shares and clicks per post)")
        if not suggestions:
            return {**answer, "source": "defaults",
                    "reason": f"{len(posts)} posts with results, but no hour of the week "
                              f"has {s.min_cell:g} of them; general starting points for "
                              f"{channel.network} instead",
                    "suggestions": self._defaults(channel.network, channel.time_zone, now, count)}
        return {**answer, "source": "history", "reason": reason, "suggestions": suggestions}

    def _defaults(self, network: str, time_zone: str, now: float, count: int
                  ) -> list[dict[str, Any]]:
        tz, found = zone(time_zone), []
        for weekday, hour in DEFAULTS.get(network, DEFAULTS["x"])[:count]:
            cell = WEEKDAYS.index(weekday) * 24 + hour
            when = next_at(cell, tz, now)
            found.append({"weekday": weekday, "time": f"{hour:02d}:00", "score": None,
                          "posts": 0, "next_at": iso(when, time_zone), "next_at_epoch": when,
                          "reason": f"a general starting point for {network}"})
        return found
