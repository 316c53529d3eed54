"""The analytics plug-in: hook implementations that wire the module into the server.

Settings (``config.plugins["analytics"]``): see :mod:`business.analytics.services`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from business.analytics.audience_routes import AUDIENCE_ROUTES
from business.analytics.dashboard_routes import DASHBOARD_ROUTES
from business.analytics.genre_routes import GENRE_ROUTES
from business.analytics.milestone_book import MILESTONE_EVENT, MilestoneEvent
from business.analytics.milestone_routes import MILESTONE_ROUTES
from business.analytics.permissions import PERMISSIONS
from business.analytics.playlist_routes import PLAYLIST_ROUTES
from business.analytics.privacy import erase_account, export_account
from business.analytics.revocation import REVOKE_JOB, REVOKE_SETTINGS, RevokePayload
from business.analytics.routes import ROUTES
from business.analytics.runs import INGEST_JOB
from business.analytics.schemas import IngestPayload
from business.analytics.services import (
    PLUGIN_NAME,
    run_ingest,
    run_revoke,
    run_scheduler,
    services,
    start_services,
    store_event,
)
from business.analytics.v1_routes import ROUTES as V1_ROUTES
from dawserver.plugin_api import (
    Event,
    Job,
    Migration,
    Page,
    Permission,
    PluginContext,
    Pseudonymiser,
    QueueSettings,
    Route,
    Worker,
    hookimpl,
    load_migrations,
)

#: The module's tables (``analytics_*``, each keyed by ``account_id`` first).
MIGRATIONS = load_migrations(PLUGIN_NAME, Path(__file__).with_name("migrations"))
#: The dashboard page's built bundle (web/src/analytics/, bundled by web/build.mjs).
STATIC_DIR = Path(__file__).with_name("static")


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": "1.0",
            "description": "Analytics: connected sources, one catalogue, time series"}


@hookimpl
def migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def permissions() -> list[Permission]:
    return PERMISSIONS


@hookimpl
def routes(context: PluginContext) -> list[Route]:
    return [*ROUTES, *MILESTONE_ROUTES, *PLAYLIST_ROUTES, *DASHBOARD_ROUTES,
            *AUDIENCE_ROUTES, *GENRE_ROUTES]


@hookimpl
def public_routes(context: PluginContext) -> list[Route]:
    return V1_ROUTES


@hookimpl
def events() -> list[Event]:
    return [Event(MILESTONE_EVENT, MilestoneEvent,
                  "a milestone found in an analytics series: a threshold crossed (1k, 10k "
                  "followers...) or unusual growth (a viral spike)")]


@hookimpl
def pages(context: PluginContext) -> list[Page]:
    return [Page(path="/analytics", title="Analytics", static_dir=STATIC_DIR,
                 html="dashboard.html")]


@hookimpl
def jobs() -> list[Job]:
    # Waits the platform asks for reschedule the job (each counts as an attempt), so
    # the attempts are generous; a lease outlives one chunk of a back-fill.
    return [Job(INGEST_JOB, IngestPayload, run_ingest,
                "fetch one connected source over a day range and store its points",
                QueueSettings(max_attempts=30, backoff_base=30.0, backoff_cap=3600.0,
                              lease_s=120.0, concurrency=2)),
            Job(REVOKE_JOB, RevokePayload, run_revoke,
                "withdraw a forgotten grant (disconnected, or its granter erased) at the "
                "source's platform", REVOKE_SETTINGS)]


@hookimpl
async def startup(context: PluginContext) -> None:
    await start_services(context)


@hookimpl
async def account_export(context: PluginContext, account_id: str) -> dict[str, Any]:
    addresses = await context.owner_emails(account_id) if context.owner_emails else []
    return await export_account(context.database(), account_id, addresses)


@hookimpl
async def account_erased(context: PluginContext, account_id: str, pseudonym: str,
                         names: list[str]) -> None:
    await erase_account(context.database(), context.background.queue, INGEST_JOB,
                        Pseudonymiser(account_id, tuple(names), pseudonym),
                        notices=services(context).notices)


@hookimpl
def workers(context: PluginContext) -> list[Worker]:
    return [Worker("analytics.scheduler", run_scheduler)]


@hookimpl
async def business_event(context: PluginContext, name: str, payload: dict[str, Any]) -> None:
    await store_event(context, name, payload)
