"""The analytics module's running objects, shared by its routes, its job and its worker.

Built in the plug-in's ``startup`` hook from its settings (``config.plugins["analytics"]``):

- ``sources``: ``{name: {"base_url": ..., "page_size": ..., "poll_every_s": ...}}`` per
  source (a fake's URL in tests; none: the platform's production API; ``poll_every_s``:
  scheduled runs more often than the source's schedule, see :meth:`.Ingestor.every`);
- ``credential_keys``: Fernet keys sealing source credentials, newest first (default:
  one derived from the server's secret);
- ``schedule_check_s`` (60): how often the scheduler looks for due sources;
- ``chunk_days`` (31), ``inline_wait_s`` (1.0): see :mod:`.ingest`;
- ``partitions_ahead`` (3): monthly partitions kept made ahead on PostgreSQL;
- ``milestones``: detection settings (:class:`.milestone_book.Settings`);
- ``revoke_timeout_s`` (30): how long one call to a platform's revocation endpoint may
  take before it counts as failed and is retried (:mod:`.revocation`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import aiohttp

from business.analytics.alerts import Alerts
from business.analytics.catalog import Catalog
from business.analytics.connections import Connection, Connections
from business.analytics.credentials import KEY_PURPOSE, CredentialBox
from business.analytics.dashboards import Dashboards
from business.analytics.digest import send_digests
from business.analytics.events import BadEvent, consume
from business.analytics.ingest import Ingestor, IngestSettings
from business.analytics.milestone_book import MilestoneBook
from business.analytics.milestone_book import Settings as MilestoneSettings
from business.analytics.playlists import PlaylistTracker
from business.analytics.reconnect import TOKEN_REVOKED_REASON, ReconnectNotices
from business.analytics.revocation import ConnectorFactory, RevokePayload, Revoker
from business.analytics.runs import INGEST_JOB, Runs
from business.analytics.sources import connector_for
from business.analytics.sources.base import Connector, Credentials
from business.analytics.store import PointStore
from dawserver.plugin_api import JobContext, PluginContext, backoff_delay

PLUGIN_NAME = "analytics"
logger = logging.getLogger(__name__)
_KEY = "analytics"


@dataclass
class Services:
    """The module's objects."""

    store: PointStore
    catalog: Catalog
    connections: Connections
    runs: Runs
    ingestor: Ingestor
    milestones: MilestoneBook
    alerts: Alerts
    playlists: PlaylistTracker
    dashboards: Dashboards
    partitions_ahead: int = 3
    #: Mails owners once when a source of theirs needs reconnecting (:mod:`.reconnect`).
    notices: ReconnectNotices | None = None
    #: Withdraws forgotten grants at their platforms (:mod:`.revocation`).
    revoker: Revoker | None = None

    async def close(self) -> None:
        session = self.ingestor.session
        if session is not None and not session.closed:
            await session.close()


def services(context: PluginContext) -> Services:
    """The started module of a plug-in context."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the analytics plug-in has not started yet")
    return found


def credential_box(context: PluginContext) -> CredentialBox:
    keys = context.settings_for(PLUGIN_NAME).get("credential_keys")
    if keys:
        return CredentialBox(list(keys))
    return CredentialBox.from_secret(context.derive_key(KEY_PURPOSE))


def build_services(context: PluginContext) -> Services:
    settings = context.settings_for(PLUGIN_NAME)
    db = context.database()
    store, catalog = PointStore(db), Catalog(db)
    box = credential_box(context)
    connections = Connections(db, box, queue=context.background.queue)
    runs = Runs(db)
    ingest = IngestSettings(sources=dict(settings.get("sources") or {}),
                            chunk_days=int(settings.get("chunk_days", 31)),
                            inline_wait_s=float(settings.get("inline_wait_s", 1.0)))
    ingestor = Ingestor(connections, runs, store, catalog, None, ingest)
    for name, options in ingest.sources.items():
        if "poll_every_s" in options:
            ingestor.every(name)  # a bad setting stops the start, saying which
    milestones = MilestoneBook(db, store,
                               settings=MilestoneSettings.from_dict(settings.get("milestones")),
                               publish=context.publish)
    config = context.config
    base_url = getattr(config, "base_url", "") if config is not None else ""
    alerts = Alerts(db, context.send_mail, context.owner_emails, role_in=context.role_in,
                    base_url=base_url)
    notices = ReconnectNotices(context.send_mail, context.admin_emails, base_url=base_url)
    module = Services(store, catalog, connections, runs, ingestor, milestones, alerts,
                      PlaylistTracker(db), Dashboards(db, store),
                      int(settings.get("partitions_ahead", 3)), notices)

    async def on_needs_reconnect(connection: Connection) -> None:
        await notices.notify_safely(connection.account_id, connection.public(),
                                    TOKEN_REVOKED_REASON, connections.clock())

    ingestor.on_needs_reconnect = on_needs_reconnect
    module.revoker = Revoker(box, revoke_connector(
        ingestor, float(settings.get("revoke_timeout_s", 30.0))), notices,
        connections.grant_in_use)

    async def on_stored(account_id: str, points: Any, grain: str) -> None:
        await found_milestones(context, module, account_id, points, grain)

    ingestor.on_stored = on_stored
    return module


def revoke_connector(ingestor: Ingestor, timeout_s: float) -> ConnectorFactory:
    """Connectors for revocations: the sources' settings (``base_url``...) and session of
    the ingestion's, calls bounded by ``timeout_s``."""
    def make(source: str, credentials: Credentials) -> Connector:
        if ingestor.session is None or ingestor.session.closed:
            ingestor.session = aiohttp.ClientSession()
        options = dict(ingestor.settings.sources.get(source, {}))
        base_url = options.pop("base_url", None)
        options.pop("poll_every_s", None)
        return connector_for(source, base_url, credentials, ingestor.session,
                             **{**options, "timeout_s": timeout_s})

    return make


async def found_milestones(context: PluginContext, module: Services, account_id: str,
                           points: Any, grain: str) -> list[dict[str, Any]]:
    """After a stored batch: find and keep its milestones (published in the same
    transaction), then mail the recent ones. A failure is logged, never fails the batch
    (its points are stored; the next run looks at the same days again)."""
    try:
        new = await module.milestones.detect(account_id, points, grain)
        if not new:
            return []
        context.background.bus.wake()
        mailed = await module.alerts.notify(account_id, new)
        ids = sorted({i for found in mailed.values() for i in found})
        if ids:
            await module.milestones.mark_alerted(account_id, ids)
        return new
    except Exception:
        logger.exception("analytics: finding milestones of account %s failed", account_id)
        return []


async def start_services(context: PluginContext) -> Services:
    """Build the module's objects, keep them in the context, make the partitions ahead."""
    module = build_services(context)
    context.state[_KEY] = module
    await module.store.partitions.ensure_ahead(datetime.now(UTC), module.partitions_ahead)
    return module


async def run_ingest(context: PluginContext, payload: Any, job: JobContext) -> dict:
    """The ``analytics.ingest`` job: one run of one connected source."""
    return await services(context).ingestor.run(job.job.account_id, payload.run_id, job)


async def run_revoke(context: PluginContext, payload: RevokePayload, job: JobContext
                     ) -> dict:
    """The ``analytics.revoke`` job: withdraw one forgotten grant at its platform."""
    revoker = services(context).revoker
    assert revoker is not None
    return await revoker.run(job.job.account_id, payload, job)


async def backfill(context: PluginContext, connection: Connection, start: date,
                   end: date) -> tuple[Any, bool]:
    """Queue a back-fill run of ``connection`` (idempotent per source and window)."""
    module = services(context)
    key = f"backfill/{connection.source_id}/{start.isoformat()}/{end.isoformat()}"
    return await module.runs.start(context, connection.account_id, connection.source_id,
                                   "backfill", start, end, key)


async def schedule_due(context: PluginContext, now: float | None = None) -> int:
    """Queue a scheduled run for every due source (one per source and time slot, however
    many nodes run this); how many were queued."""
    module = services(context)
    now = time.time() if now is None else now
    queued = 0
    for connection in await module.connections.due(now):
        every = module.ingestor.every(connection.source)
        slot = int(now // every)
        first, last = module.ingestor.window(connection)
        db = context.database()
        async with db.transaction() as tx:
            if not await module.connections.claim_slot(tx, connection, (slot + 1) * every):
                continue  # another node took this slot
            _, new = await module.runs.start(context, connection.account_id,
                                             connection.source_id, "scheduled", first, last,
                                             f"scheduled/{connection.source_id}/{slot}", tx=tx)
        queued += int(new)
    if queued:
        context.background.queue.wake(INGEST_JOB)
    return queued


async def run_scheduler(context: PluginContext) -> None:
    """The worker: queue due sources every ``schedule_check_s``; keep partitions ahead."""
    module = services(context)
    period = float(context.settings_for(PLUGIN_NAME).get("schedule_check_s", 60))
    errors = 0
    try:
        while True:
            try:
                await schedule_due(context)
                await send_digests(module.alerts, module.milestones)
                await module.store.partitions.ensure_ahead(datetime.now(UTC),
                                                           module.partitions_ahead)
            except Exception:
                errors += 1
                delay = backoff_delay(errors, period, max(period, 600.0))
                logger.exception("analytics scheduling failed (%d in a row); again in %.1f s",
                                 errors, delay)
            else:
                errors, delay = 0, period
            await asyncio.sleep(delay)
    finally:
        await module.close()


async def store_event(context: PluginContext, name: str, payload: dict[str, Any]) -> None:
    """Our own modules' events as points (:mod:`.events`: pre-saves on release day, store
    statements, social post metrics); other events are ignored.

    Heard at least once; a point's key makes a repeat overwrite, never add. A payload
    that does not fit its model is logged and dropped (the bus would retry it for ever).
    """
    try:
        consumed = consume(name, payload)
    except BadEvent as exc:
        logger.warning("analytics dropped an event: %s (event_id %s)", exc,
                       payload.get("event_id"))
        return
    if consumed is None:
        return
    module = services(context)
    if consumed.identities:
        await module.catalog.resolve(consumed.account_id, consumed.identities)
    await module.store.upsert(consumed.account_id, consumed.points, fetched_at=time.time())
    await found_milestones(context, module, consumed.account_id, consumed.points, "daily")
