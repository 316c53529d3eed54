"""The distribution plug-in: hook implementations that wire the module into the server.

Settings (``config.plugins["distribution"]``): ``stores`` (connector settings by
store name), ``sender_dpid``/``sender_name`` (our DDEX party), ``pipeline``
(:class:`~business.distribution.delivery.PipelineSettings` fields), ``outbox``
(:class:`~business.distribution.outbox.OutboxSettings` fields: retrying events
such as release day) and ``presave_check_s`` (how often the release-day check runs).
"""

from __future__ import annotations

import logging
from typing import Any

from business.distribution import hookspecs as distribution_hookspecs
from business.distribution.permissions import PERMISSIONS
from business.distribution.presave import RELEASE_DAY
from business.distribution.routes import ROUTES
from business.distribution.schemas import ReleaseDay
from business.distribution.services import (
    PLUGIN_NAME,
    run_deliveries,
    run_release_days,
    services,
    start_services,
)
from dawserver.plugin_api import (
    Event,
    Migration,
    Permission,
    PluginContext,
    Route,
    Worker,
    hookimpl,
)

logger = logging.getLogger(__name__)

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


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": "1.0",
            "description": "Releases, compliance gate, DDEX delivery, royalties, pre-saves"}


@hookimpl
def hookspecs() -> list[Any]:
    return [distribution_hookspecs]


@hookimpl
def migrations() -> list[Migration]:
    return [Migration(*migration) for migration in MIGRATIONS]


@hookimpl
def permissions() -> list[Permission]:
    return PERMISSIONS


@hookimpl
def routes(context: PluginContext) -> list[Route]:
    return ROUTES


@hookimpl
def events() -> list[Event]:
    return [Event(RELEASE_DAY, ReleaseDay, "a pre-save campaign's release date has come")]


@hookimpl
async def startup(context: PluginContext) -> None:
    db = context.database()
    for table in DISTRIBUTED_TABLES:
        try:
            await db.distribute(table, "account_id")
        except Exception as exc:  # already distributed on a restart
            logger.debug("distribute %s: %s", table, exc)
    start_services(context)


@hookimpl
def workers(context: PluginContext) -> list[Worker]:
    return [Worker("distribution.deliveries", run_deliveries),
            Worker("distribution.release_days", run_release_days)]


@hookimpl
async def project_rendered(context: PluginContext, account_id: str, project_id: str, path: str,
                           metadata: dict[str, Any]) -> None:
    await services(context).catalog.record_render(account_id, project_id, path, metadata)
