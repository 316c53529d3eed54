"""Ingestion as jobs of the one job queue: one run fetches one connected source over its
day range in chunks and stores each chunk (points upserted, identities resolved by the
catalogue) before the next, so progress survives whatever stops the run.

What stops a run, and what happens then:

- the platform asks us to wait (``Retry-After``, a throttle longer than
  ``inline_wait_s``) or a quota is spent: the points fetched so far are stored and the job
  is rescheduled (:class:`Retry` after the wait, or at the quota's reset) instead of
  sleeping in a worker; the next attempt starts after ``complete_through``;
- the token is revoked: the points so far are stored, the source flagged
  ``needs_reconnect`` (its owners and admins mailed once, :mod:`.reconnect`) and the job ends
  (:class:`Permanent`), its progress kept;
- the answer changed shape: the source is flagged ``failing``; the job ends;
- a 5xx or a page cut short after the connector's own retries: the queue retries the
  job with its backoff.

Two workers running the same window cannot double-count: every point is upserted by its
whole key, and scheduled and back-fill runs are queued under an idempotency key per
account, source and window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

import aiohttp

from business.analytics.catalog import Catalog
from business.analytics.connections import (
    ACTIVE,
    FAILING,
    NEEDS_RECONNECT,
    Connection,
    Connections,
)
from business.analytics.errors import (
    DuplicatePage,
    NoHistory,
    QuotaExhausted,
    RateLimited,
    SchemaChanged,
    SourceError,
    TokenRevoked,
)
from business.analytics.genres import Genres
from business.analytics.runs import DONE, FAILED, RUNNING, STOPPED, WAITING, Run, Runs
from business.analytics.sources import connector_for, spec_of
from business.analytics.sources.base import Connector
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.store import PointStore, epoch
from dawserver.plugin_api import JobContext, Permanent, Retry

log = logging.getLogger(__name__)


#: The shortest ``poll_every_s``: a source polled more often spends its quota for nothing.
MIN_POLL_S = 300


class WaitRequested(RateLimited):
    """The platform asked for a wait too long to sleep in a worker: reschedule the job."""


@dataclass
class IngestSettings:
    """How runs fetch: base URLs per source (a fake's in tests), chunk size, waits."""

    #: ``{source: {"base_url": ..., "page_size": ...}}``; no base URL: production.
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunk_days: int = 31
    #: Waits up to this many seconds are slept in place; longer ones reschedule the job.
    inline_wait_s: float = 1.0
    timeout_s: float = 30.0


class Ingestor:
    """Runs ingestion jobs (see the module docstring)."""

    def __init__(self, connections: Connections, runs: Runs, store: PointStore,
                 catalog: Catalog, session: aiohttp.ClientSession | None,
                 settings: IngestSettings | None = None,
                 clock: Callable[[], datetime] | None = None,
                 connector_options: dict[str, Any] | None = None) -> None:
        self.connections = connections
        self.runs = runs
        self.store = store
        self.catalog = catalog
        self.session = session
        self.settings = settings or IngestSettings()
        self.clock = clock or (lambda: datetime.now(UTC))
        #: Extra options for every connector (tests: ``rng=``, ``rate_limit=``).
        self.connector_options = dict(connector_options or {})
        #: ``await on_stored(account_id, points, grain)`` after each stored chunk (the
        #: milestones); set by the plug-in's services.
        self.on_stored: Callable[..., Any] | None = None
        #: ``await on_needs_reconnect(connection)`` once a dead token newly flagged the
        #: source ``needs_reconnect`` (the reconnect notice); set by the plug-in's services.
        self.on_needs_reconnect: Callable[[Connection], Awaitable[Any]] | None = None

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    def connector(self, connection: Connection) -> Connector:
        """A connector for a connected source, its credentials opened, waits bounded."""
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession()
        options = dict(self.settings.sources.get(connection.source, {}))
        base_url = options.pop("base_url", None)
        options.pop("poll_every_s", None)
        inline = self.settings.inline_wait_s

        async def sleep(seconds: float) -> None:
            if seconds <= inline:
                await asyncio.sleep(seconds)
                return
            raise WaitRequested(f"the platform asked to wait {seconds:.1f} s; the job is "
                                "rescheduled", retry_after=seconds, source=connection.source)

        return connector_for(connection.source, base_url,
                             self.connections.credentials(connection), self.session,
                             sleep=sleep, clock=self.clock, timeout_s=self.settings.timeout_s,
                             **{**options, **self.connector_options})

    def every(self, source: str) -> float:
        """Seconds between scheduled runs of ``source``: its schedule, or the setting
        ``sources.<name>.poll_every_s`` (a daily source polled more often, so today's
        figure and its milestones come within the hour; at least :data:`MIN_POLL_S`)."""
        every = spec_of(source).schedule.every.total_seconds()
        asked = self.settings.sources.get(source, {}).get("poll_every_s")
        if asked is None:
            return every
        if isinstance(asked, bool) or not isinstance(asked, int | float) or not (
                MIN_POLL_S <= asked <= every):
            raise ValueError(f"analytics sources.{source}.poll_every_s is {asked!r}: give "
                             f"seconds from {MIN_POLL_S} to the source's own {every:g}")
        return float(asked)

    def window(self, connection: Connection) -> tuple[date, date]:
        """The days a scheduled run of this source asks for (its lookback, or today)."""
        spec = spec_of(connection.source)
        today = self.today()
        if not spec.history:
            return today, today
        return today - spec.schedule.lookback, today

    async def run(self, account_id: str, run_id: str, job: JobContext | None = None) -> dict:
        """Run (or resume) one ingestion run; its summary."""
        run = await self.runs.get(account_id, run_id)
        connection = await self.connections.get(account_id, run.source_id)
        if connection.state != ACTIVE:
            await self.runs.update(account_id, run_id, state=STOPPED,
                                   error=f"the source is {connection.state}")
            raise Permanent(f"source {connection.source_id} is {connection.state}: "
                            f"{connection.last_error or 'reconnect it'}")
        first = date.fromisoformat(run.first_day)
        last = date.fromisoformat(run.last_day)
        if run.complete_through is not None:
            first = max(first, date.fromisoformat(run.complete_through) + timedelta(days=1))
        await self.runs.update(account_id, run_id, state=RUNNING, error="")
        connector = self.connector(connection)
        entity = Entity(connection.entity_kind, connection.entity_id)
        chunk = self.settings.chunk_days if connector.spec.history else 1
        start = first
        while start <= last:
            if job is not None:
                job.check()
            end = min(last, start + timedelta(days=chunk - 1))
            try:
                fetched = await connector.fetch(entity, start, end)
            except SourceError as exc:
                await self._stopped(connection, run, exc, connector)
            await self._keep(connection, run_id, fetched, end)
            if job is not None:
                fraction = ((end - date.fromisoformat(run.first_day)).days + 1) / (
                    (last - date.fromisoformat(run.first_day)).days + 1)
                job.progress(fraction, f"stored through {end.isoformat()}")
            start = end + timedelta(days=1)
        await self._save_rotated(connection, connector)
        await self.runs.update(account_id, run_id, state=DONE)
        done = await self.runs.get(account_id, run_id)
        return {"run_id": run_id, "points": done.points, "complete_through":
                done.complete_through, "gaps": done.gaps}

    async def _keep(self, connection: Connection, run_id: str, fetched: Fetched,
                    through: date | None, cut_short: bool = False) -> None:
        """Store a chunk: identities into the catalogue, points upserted, progress. A chunk
        ``cut_short`` counts only its points up to ``through``: the next attempt fetches
        the days after again and counts them then."""
        account_id = connection.account_id
        identities = list(fetched.identities.values())
        named = {(i.entity_kind, i.entity_id) for i in identities}
        seen = {(p.entity_kind, p.entity_id) for p in fetched.points}
        for kind, platform_id in sorted(seen - named):
            name = connection.entity_name if (kind, platform_id) == (
                connection.entity_kind, connection.entity_id) else ""
            identities.append(Identity(connection.source, kind, platform_id, name))
        if identities:
            matches = await self.catalog.resolve(account_id, identities)
            await Genres(self.catalog).reported(account_id, identities, matches)
        if fetched.points:
            grain = spec_of(connection.source).schedule.grain
            await self.store.upsert(account_id, fetched.points, grain=grain,
                                    fetched_at=time.time())
            if self.on_stored is not None:
                await self.on_stored(account_id, fetched.points, grain)
        counted = len(fetched.points)
        if cut_short:
            counted = 0 if through is None else sum(
                1 for p in fetched.points
                if datetime.fromtimestamp(epoch(p.at), UTC).date() <= through)
        changes: dict[str, Any] = {"points": counted, "pages": fetched.pages,
                                   "gaps": len(fetched.gaps)}
        if through is not None:
            changes["complete_through"] = through.isoformat()
        await self.runs.update(account_id, run_id, **changes)

    async def _stopped(self, connection: Connection, run: Run, exc: SourceError,
                       connector: Connector) -> NoReturn:
        """Keep what a stopped fetch got, then steer the job by the error (always raises)."""
        progress = exc.progress
        if progress is not None and progress.fetched is not None:
            await self._keep(connection, run.run_id, progress.fetched,
                             progress.complete_through, cut_short=_resumed(exc))
        await self._save_rotated(connection, connector)
        account_id, run_id = connection.account_id, run.run_id
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            await self.runs.update(account_id, run_id, state=WAITING, error=str(exc))
            raise Retry(f"{connection.source} asked to wait {exc.retry_after:.0f} s; "
                        "rescheduled", after=exc.retry_after)
        if isinstance(exc, QuotaExhausted):
            wait = max(1.0, (exc.resets_at - self.clock()).total_seconds())
            await self.runs.update(account_id, run_id, state=WAITING, error=str(exc))
            raise Retry(f"{connection.source}'s quota is spent until "
                        f"{exc.resets_at.isoformat()}; rescheduled", after=wait)
        if isinstance(exc, TokenRevoked):
            turned = await self.connections.flag(account_id, connection.source_id,
                                                 NEEDS_RECONNECT, str(exc))
            if turned and self.on_needs_reconnect is not None:
                await self.on_needs_reconnect(connection)
            await self.runs.update(account_id, run_id, state=STOPPED, error=str(exc))
            raise Permanent(f"{connection.source}: the credentials stopped working; "
                            "reconnect the source (progress kept)")
        if isinstance(exc, SchemaChanged):
            await self.connections.flag(account_id, connection.source_id, FAILING, str(exc))
            await self.runs.update(account_id, run_id, state=FAILED, error=str(exc))
            raise Permanent(str(exc))
        if isinstance(exc, DuplicatePage | NoHistory) or not exc.retryable:
            await self.runs.update(account_id, run_id, state=FAILED, error=str(exc))
            raise Permanent(str(exc))
        await self.runs.update(account_id, run_id, state=WAITING, error=str(exc))
        raise exc

    async def _save_rotated(self, connection: Connection, connector: Connector) -> None:
        """A refresh token the platform rotated during the run replaces the stored one."""
        before = self.connections.credentials(connection)
        if connector.credentials.refresh_token != before.refresh_token:
            await self.connections.save_credentials(connection, connector.credentials)


def _resumed(exc: SourceError) -> bool:
    """Whether a run stopped by ``exc`` runs again from its ``complete_through`` (a wait,
    a spent quota, a retryable failure), rather than ending (see ``Ingestor._stopped``)."""
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return True
    if isinstance(exc, QuotaExhausted):
        return True
    if isinstance(exc, TokenRevoked | SchemaChanged | DuplicatePage | NoHistory):
        return False
    return exc.retryable
