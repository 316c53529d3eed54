"""Results: metrics of published posts, read from their networks on a schedule and kept
13 months.

Every ``check_s`` the worker ``social.results_scheduler`` (:meth:`Collector.round`)
purges what is past the retention, then queues one ``social.collect_metrics`` job per
active channel that has a published post due for a reading (under an idempotency key
per channel and hour, so a channel has at most one job an hour). A post is due once
``recent_every_s`` (an hour) passed since its last reading while it is younger than
``recent_days`` (30), once ``old_every_s`` (a day) passed after that, and never once
it is older than the retention (13 months).

A job (:meth:`Collector.collect`) reads the channel's due posts one by one through the
connector's ``metrics`` (paced by a :class:`~business.social.pacing.Pacer` of its own:
metric reads never take publishing slots), and stores each reading with the post's next
due time in batches. A network that answers 429 or 5xx stops the job after what was
read is stored (``Retry`` after the network's wait): the rest stay due and are read
by the retry. An expired token is refreshed once; a grant the network refuses for good
flags the channel ``needs_reconnect`` (:class:`~business.social.channels.Channels`) and
the scheduler skips it until it is connected again. A post the network refuses to show
(deleted there) is recorded with the reason and tried again a day later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from business.social.channels import Channels
from business.social.errors import ConflictError, NetworkError, SocialError, TokenExpired
from business.social.models import ACTIVE
from business.social.networks.base import METRICS
from business.social.pacing import Pacer
from dawserver.plugin_api import JobContext, QueueSettings, Retry

logger = logging.getLogger(__name__)

#: The job that reads one channel's due posts.
COLLECT = "social.collect_metrics"
DAY_S = 86400.0
#: The longest burst-limit wait a collect job sleeps through (longer: ``Retry``).
PACE_SLEEP_S = 5.0
#: 13 months (13 × 30.44 days), rounded up to whole days.
RETENTION_DAYS = 396

_SNAPSHOT = ("INSERT INTO social_metric_snapshots (account_id, post_id, channel_id, taken_at, "
             f"network, {', '.join(METRICS)}) VALUES (?, ?, ?, ?, ?, "
             f"{', '.join('?' for _ in METRICS)}) "
             "ON CONFLICT (account_id, post_id, channel_id, taken_at) DO NOTHING")
_SCHEDULE = ("INSERT INTO social_metric_schedule (account_id, post_id, channel_id, next_at, "
             "last_at, last_error, failures) VALUES (?, ?, ?, ?, ?, ?, ?) "
             "ON CONFLICT (account_id, post_id, channel_id) DO UPDATE SET "
             "next_at = excluded.next_at, last_at = excluded.last_at, "
             "last_error = excluded.last_error, failures = excluded.failures")
_DUE = ("FROM social_post_targets t JOIN social_posts p ON p.account_id = t.account_id "
        "AND p.post_id = t.post_id LEFT JOIN social_metric_schedule s "
        "ON s.account_id = t.account_id AND s.post_id = t.post_id "
        "AND s.channel_id = t.channel_id "
        "WHERE t.state = 'published' AND t.remote_id <> '' AND p.deleted = 0 "
        "AND t.published_at IS NOT NULL AND t.published_at >= ? "
        "AND (s.next_at IS NULL OR s.next_at <= ?)")


@dataclass(frozen=True)
class ResultsSettings:
    """``config.plugins["social"]["results"]``: schedule, retention, pacing, links."""

    check_s: float = 60.0
    recent_every_s: float = 3600.0
    old_every_s: float = DAY_S
    recent_days: float = 30.0
    retention_days: float = RETENTION_DAYS
    channel_limit: str = "60/minute"
    network_limit: str = "20/second"
    pacing_storage: str = "memory://"
    batch: int = 200
    write_every: int = 50
    short_links: bool = False
    click_window_s: float = 3600.0
    #: Unknown short-link codes one address may ask for a minute before 429.
    link_misses_per_minute: int = 30

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> ResultsSettings:
        """Settings from the plug-in's ``results`` mapping; unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SocialError(f"unknown results settings {unknown}; use {sorted(known)}")
        return cls(**raw)

    @property
    def retention_s(self) -> float:
        return self.retention_days * DAY_S

    def queue_settings(self) -> QueueSettings:
        """The ``social.collect_metrics`` queue: many patient attempts (each 429 is one)."""
        return QueueSettings(max_attempts=30, backoff_base=5.0, backoff_cap=1800.0,
                             lease_s=120.0, concurrency=4)

    def pacer(self) -> Pacer:
        """Burst limits of metric reads (apart from publishing's)."""
        return Pacer(channel=self.channel_limit, network=self.network_limit,
                     storage_url=self.pacing_storage, key_prefix="social-metrics")

    def next_reading(self, published_at: float, now: float) -> float:
        """When a post published at ``published_at`` is read again after ``now``."""
        recent = now - published_at < self.recent_days * DAY_S
        return now + (self.recent_every_s if recent else self.old_every_s)


@dataclass(frozen=True)
class Reading:
    """One reading of one channel of a post (None: the network does not report it)."""

    account_id: str
    post_id: str
    channel_id: str
    network: str
    taken_at: float
    values: Mapping[str, int | None]
    next_at: float
    error: str = ""
    failures: int = 0

    def snapshot_row(self) -> tuple[Any, ...]:
        return (self.account_id, self.post_id, self.channel_id, self.taken_at, self.network,
                *(self.values.get(name) for name in METRICS))

    def schedule_row(self) -> tuple[Any, ...]:
        return (self.account_id, self.post_id, self.channel_id, self.next_at, self.taken_at,
                self.error, self.failures)


async def store_readings(db: Any, readings: Sequence[Reading]) -> None:
    """Store readings (snapshots of the successful ones, every one's next due time) in
    one transaction."""
    if not readings:
        return
    async with db.transaction() as tx:
        snapshots = [r.snapshot_row() for r in readings if not r.error]
        if snapshots:
            await tx.executemany(_SNAPSHOT, snapshots)
        await tx.executemany(_SCHEDULE, [r.schedule_row() for r in readings])


@dataclass(frozen=True)
class Round:
    """What one scheduler round did."""

    purged: int
    queued: int


class Collector:
    """Schedules metric reads and runs them, one job per channel."""

    def __init__(self, db: Any, channels: Channels, queue: Any,
                 settings: ResultsSettings | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.channels = channels
        self.queue = queue
        self.settings = settings or ResultsSettings()
        self.pacer = self.settings.pacer()
        self.clock = clock

    # -- the scheduler -------------------------------------------------------------------

    async def round(self) -> Round:
        """Purge what is past the retention; queue a job per channel with due posts."""
        purged = await self.purge()
        now = self.clock()
        bucket = int(now // self.settings.recent_every_s)
        rows = await self.db.fetch(
            "SELECT t.account_id, t.channel_id, COUNT(*) AS due "
            f"{_DUE} AND EXISTS (SELECT 1 FROM social_channels c WHERE "
            "c.account_id = t.account_id AND c.channel_id = t.channel_id AND c.state = ?) "
            "GROUP BY t.account_id, t.channel_id",
            now - self.settings.retention_s, now, ACTIVE)
        for row in rows:
            await self.queue.enqueue(COLLECT, {"channel_id": row["channel_id"]},
                                     account_id=row["account_id"],
                                     idempotency_key=f"{row['channel_id']}:{bucket}")
        return Round(purged, len(rows))

    async def purge(self) -> int:
        """Delete snapshots, clicks and schedules older than the retention; how many
        snapshots went."""
        cutoff = self.clock() - self.settings.retention_s
        async with self.db.transaction() as tx:
            purged = await tx.execute(
                "DELETE FROM social_metric_snapshots WHERE taken_at < ?", cutoff)
            await tx.execute("DELETE FROM social_link_clicks WHERE clicked_at < ?", cutoff)
            await tx.execute("DELETE FROM social_metric_schedule WHERE last_at < ? AND "
                             "next_at < ?", cutoff, cutoff)
        return int(purged or 0)

    # -- one channel ---------------------------------------------------------------------

    async def handle(self, job: JobContext) -> dict[str, Any]:
        """The ``social.collect_metrics`` job of one channel."""
        return await self.collect(job.job.account_id, job.payload["channel_id"])

    async def collect(self, account_id: str, channel_id: str) -> dict[str, Any]:
        """Read the channel's due posts; stores each reading. Raises ``Retry`` when the
        network asks to wait (what was read is stored first)."""
        channel = await self.channels.store.channel(account_id, channel_id)
        if channel is None or channel.state != ACTIVE:
            return {"outcome": "skipped", "why": "channel missing or needs reconnecting"}
        connector = self.channels.connectors.get(channel.network)
        if connector is None:
            return {"outcome": "skipped", "why": f"network {channel.network!r} not configured"}
        now = self.clock()
        due = await self.db.fetch(
            "SELECT t.post_id, t.remote_id, t.published_at, "
            f"COALESCE(s.failures, 0) AS failures {_DUE} AND t.account_id = ? "
            "AND t.channel_id = ? ORDER BY t.published_at DESC LIMIT ?",
            now - self.settings.retention_s, now, account_id, channel_id,
            self.settings.batch)
        try:
            token = await self.channels.access_token(account_id, channel_id)
        except ConflictError as exc:  # flagged by the refresh: skipped from now on
            return {"outcome": "skipped", "why": str(exc)}
        except (NetworkError, SocialError) as exc:
            raise Retry(f"token refresh failed: {exc}", after=60.0) from None
        readings: list[Reading] = []
        read = 0
        try:
            for row in due:
                await self._paced(channel.network, f"{account_id}/{channel_id}")
                token, reading = await self._read(channel, connector, token, row)
                if reading is None:
                    return {"outcome": "needs_reconnect", "read": read}
                readings.append(reading)
                read += 1
                if len(readings) >= self.settings.write_every:
                    await store_readings(self.db, readings)
                    readings = []
        finally:
            await store_readings(self.db, readings)
        return {"outcome": "collected", "read": read}

    async def _paced(self, network: str, key: str) -> None:
        """Take a read slot: a short wait is slept (the job keeps its lease), a long one
        ends the job with ``Retry`` (what was read is stored first)."""
        while (wait := await self.pacer.take(network, key)) > 0:
            if wait > PACE_SLEEP_S:
                raise Retry(f"paced: {network} metric reads", after=wait)
            await asyncio.sleep(wait)

    async def _read(self, channel: Any, connector: Any, token: str, row: Any
                    ) -> tuple[str, Reading | None]:
        """One post's reading; ``(token, None)`` when the channel's grant is gone.
        Retryable failures raise ``Retry``."""
        for refreshed in (False, True):
            try:
                values = await connector.metrics(token, row["remote_id"])
            except TokenExpired:
                if refreshed:
                    return token, None
                try:
                    channel_now = await self.channels.refresh(
                        channel.account_id, channel.channel_id, force=True)
                    if channel_now.state != ACTIVE:
                        return token, None
                    token = await self.channels.access_token(channel.account_id,
                                                             channel.channel_id)
                except ConflictError:  # no refresh token: it must be connected again
                    return token, None
                except (NetworkError, SocialError) as exc:
                    raise Retry(f"token refresh failed: {exc}", after=60.0) from None
                continue
            except NetworkError as exc:
                if exc.retryable:
                    raise Retry(f"{channel.network}: {exc.reason}",
                                after=exc.retry_after or 30.0) from None
                now = self.clock()
                return token, Reading(channel.account_id, row["post_id"], channel.channel_id,
                                      channel.network, now, {}, now + self.settings.old_every_s,
                                      exc.reason[:500], int(row["failures"]) + 1)
            now = self.clock()
            kept = {name: values.get(name) for name in METRICS}
            return token, Reading(channel.account_id, row["post_id"], channel.channel_id,
                                  channel.network, now, kept,
                                  self.settings.next_reading(float(row["published_at"]), now))
        raise AssertionError("unreachable")
