"""The distribution plug-in: hook implementations that wire the module into the server.

Settings (``config.plugins["distribution"]``): ``stores`` (connector settings by
store name), ``sender_dpid``/``sender_name`` (our DDEX party), ``pipeline``
(:class:`~business.distribution.delivery.PipelineSettings` fields), ``outbox``
(:class:`~business.distribution.outbox.OutboxSettings` fields: retrying events
such as release day) and ``presave_check_s`` (how often the release-day check runs).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

import pluggy

from business.distribution.catalog import DEFAULT_SENDER, Catalog
from business.distribution.ddex import Party
from business.distribution.delivery import DeliveryPipeline, PipelineSettings, backoff_delay
from business.distribution.ledger import Royalties
from business.distribution.outbox import Outbox, OutboxSettings
from business.distribution.presave import PreSaves

PLUGIN_NAME = "distribution"
hookimpl = pluggy.HookimplMarker("maxbooster")
logger = logging.getLogger(__name__)

_KEY = "distribution"

MIGRATIONS = [
    (PLUGIN_NAME, 1, "releases, renders, delivery jobs", """
CREATE TABLE dist_releases (account_id TEXT NOT NULL, release_id TEXT NOT NULL,
  data TEXT NOT NULL, status TEXT NOT NULL, report TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, release_id));
CREATE TABLE dist_renders (account_id TEXT NOT NULL, project_id TEXT NOT NULL,
  path TEXT NOT NULL, metadata TEXT NOT NULL, rendered_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, project_id));
CREATE TABLE dist_jobs (account_id TEXT NOT NULL, job_id TEXT NOT NULL,
  release_id TEXT NOT NULL, store TEXT NOT NULL, action TEXT NOT NULL,
  revision INTEGER NOT NULL, message_id TEXT NOT NULL, state TEXT NOT NULL,
  attempts INTEGER NOT NULL, version INTEGER NOT NULL,
  next_attempt_at DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION NOT NULL,
  worker TEXT NOT NULL, last_error TEXT NOT NULL, queued_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL, delivered_at DOUBLE PRECISION,
  PRIMARY KEY (account_id, job_id), UNIQUE (account_id, release_id, store));
CREATE INDEX dist_jobs_due ON dist_jobs (state, next_attempt_at);
CREATE TABLE dist_job_events (account_id TEXT NOT NULL, job_id TEXT NOT NULL,
  seq INTEGER NOT NULL, state TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
  detail TEXT NOT NULL, PRIMARY KEY (account_id, job_id, seq))
"""),
    (PLUGIN_NAME, 2, "royalty splits, payees, statements, ledger", """
CREATE TABLE dist_payees (account_id TEXT NOT NULL, payee_id TEXT NOT NULL,
  name TEXT NOT NULL, joined INTEGER NOT NULL, joined_at DOUBLE PRECISION,
  PRIMARY KEY (account_id, payee_id));
CREATE TABLE dist_splits (account_id TEXT NOT NULL, isrc TEXT NOT NULL, data TEXT NOT NULL,
  revision INTEGER NOT NULL, recouped_cents BIGINT NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (account_id, isrc));
CREATE TABLE dist_split_history (account_id TEXT NOT NULL, isrc TEXT NOT NULL,
  revision INTEGER NOT NULL, changed_at DOUBLE PRECISION NOT NULL, changed_by TEXT NOT NULL,
  data TEXT NOT NULL, PRIMARY KEY (account_id, isrc, revision));
CREATE TABLE dist_statements (account_id TEXT NOT NULL, statement_id TEXT NOT NULL,
  checksum TEXT NOT NULL, source TEXT NOT NULL, imported_at DOUBLE PRECISION NOT NULL,
  line_count INTEGER NOT NULL, totals TEXT NOT NULL,
  PRIMARY KEY (account_id, statement_id), UNIQUE (account_id, checksum));
CREATE TABLE dist_ledger (account_id TEXT NOT NULL, entry_id TEXT NOT NULL,
  statement_id TEXT NOT NULL, isrc TEXT NOT NULL, payee_id TEXT NOT NULL,
  currency TEXT NOT NULL, amount_cents BIGINT NOT NULL, kind TEXT NOT NULL,
  status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, entry_id));
CREATE INDEX dist_ledger_statement ON dist_ledger (account_id, statement_id)
"""),
    (PLUGIN_NAME, 3, "pre-save campaigns", """
CREATE TABLE dist_presave_campaigns (account_id TEXT NOT NULL, campaign_id TEXT NOT NULL,
  release_id TEXT NOT NULL, slug TEXT NOT NULL, title TEXT NOT NULL, artist TEXT NOT NULL,
  release_date TEXT NOT NULL, services TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  fired_at DOUBLE PRECISION, PRIMARY KEY (account_id, campaign_id));
CREATE INDEX dist_presave_slug ON dist_presave_campaigns (slug);
CREATE TABLE dist_presaves (account_id TEXT NOT NULL, campaign_id TEXT NOT NULL,
  fan_key TEXT NOT NULL, service TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (account_id, campaign_id, fan_key, service))
"""),
    (PLUGIN_NAME, 4, "gate snapshots of queued releases", """
CREATE TABLE dist_snapshots (account_id TEXT NOT NULL, snapshot_id TEXT NOT NULL,
  release_id TEXT NOT NULL, data TEXT NOT NULL, files TEXT NOT NULL,
  checked_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (account_id, snapshot_id));
ALTER TABLE dist_jobs ADD COLUMN snapshot_id TEXT NOT NULL DEFAULT ''
"""),
    (PLUGIN_NAME, 5, "event outbox", """
CREATE TABLE dist_outbox (account_id TEXT NOT NULL, event_id TEXT NOT NULL,
  name TEXT NOT NULL, payload TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  attempts INTEGER NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL,
  lease_until DOUBLE PRECISION NOT NULL, delivered_at DOUBLE PRECISION,
  last_error TEXT NOT NULL, PRIMARY KEY (account_id, event_id));
CREATE INDEX dist_outbox_due ON dist_outbox (delivered_at, next_attempt_at)
"""),
    (PLUGIN_NAME, 6, "royalty audit log and per-account royalty lock", """
CREATE TABLE dist_audit (account_id TEXT NOT NULL, seq BIGINT NOT NULL,
  at DOUBLE PRECISION NOT NULL, changed_by TEXT NOT NULL, subject TEXT NOT NULL,
  event TEXT NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (account_id, seq));
CREATE TABLE dist_royalty_locks (account_id TEXT NOT NULL, version BIGINT NOT NULL,
  PRIMARY KEY (account_id))
"""),
    (PLUGIN_NAME, 7, "ledger index for money held per payee and track", """
CREATE INDEX dist_ledger_payee ON dist_ledger (account_id, payee_id, isrc)
"""),
]

#: Tables and their distribution key (every one is sharded by account).
DISTRIBUTED_TABLES = ["dist_releases", "dist_renders", "dist_jobs", "dist_job_events",
                      "dist_payees", "dist_splits", "dist_split_history", "dist_statements",
                      "dist_ledger", "dist_presave_campaigns", "dist_presaves",
                      "dist_snapshots", "dist_outbox", "dist_audit",
                      "dist_royalty_locks"]


@dataclass
class Services:
    """The distribution module's objects, shared by its routes and jobs."""

    catalog: Catalog
    royalties: Royalties
    pipeline: DeliveryPipeline
    presaves: PreSaves


def services(context: Any) -> Services:
    """The started module of a plug-in context."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the distribution plug-in has not started yet")
    return found


def build_services(context: Any) -> Services:
    """Create the module's objects from the context's database and settings."""
    settings = context.settings_for(PLUGIN_NAME)
    db = context.database()
    connectors = [c for batch in context.manager.hook.distribution_stores(context=context)
                  for c in batch]
    sender = Party(settings.get("sender_dpid", DEFAULT_SENDER.dpid),
                   settings.get("sender_name", DEFAULT_SENDER.name))
    catalog = Catalog(db, {c.name: c.party for c in connectors}, sender)
    pipeline = DeliveryPipeline(db, connectors, catalog.package,
                                settings=PipelineSettings(**settings.get("pipeline", {})))
    outbox = Outbox(db, OutboxSettings(**settings.get("outbox", {})))
    return Services(catalog, Royalties(db), pipeline, PreSaves(db, outbox))


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": "1.0",
            "description": "Releases, compliance gate, DDEX delivery, royalties, pre-saves"}


@hookimpl
def migrations() -> list[tuple[str, int, str, Any]]:
    return MIGRATIONS


@hookimpl
def permissions() -> list[tuple[str, str]]:
    from business.distribution.routes import PERMISSIONS

    return PERMISSIONS


@hookimpl
def routes(context: Any) -> list[tuple]:
    from business.distribution.routes import ROUTES

    return ROUTES


@hookimpl
async def startup(context: Any) -> None:
    db = context.database()
    for table in DISTRIBUTED_TABLES:
        try:
            await db.distribute(table, "account_id")
        except Exception as exc:  # already distributed on a restart
            logger.debug("distribute %s: %s", table, exc)
    context.state[_KEY] = build_services(context)


#: Longest wait of the release-day check after it failed several times in a row.
RELEASE_DAY_BACKOFF_CAP_S = 600.0


async def _deliveries(context: Any) -> None:
    await services(context).pipeline.run()


async def _release_days(context: Any) -> None:
    """Fire due release-day events every ``presave_check_s``; survive errors with backoff."""
    period = float(context.settings_for(PLUGIN_NAME).get("presave_check_s", 60))
    cap = max(period, RELEASE_DAY_BACKOFF_CAP_S)
    rng = random.Random()
    errors = 0
    while True:
        try:
            await services(context).presaves.fire_due(context.announce)
        except Exception:
            errors += 1
            delay = backoff_delay(errors, period, cap, rng)
            logger.exception("release-day check failed (%d in a row); trying again in %.2f s",
                             errors, delay)
        else:
            errors, delay = 0, period
        await asyncio.sleep(delay)


@hookimpl
def background_jobs(context: Any) -> list[tuple[str, Any]]:
    return [("distribution.deliveries", _deliveries),
            ("distribution.release_days", _release_days)]


@hookimpl
async def project_rendered(context: Any, account_id: str, project_id: str, path: str,
                           metadata: dict[str, Any]) -> None:
    await services(context).catalog.record_render(account_id, project_id, path, metadata)
