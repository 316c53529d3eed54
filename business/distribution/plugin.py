"""The distribution plug-in: hook implementations that wire the module into the server.

Settings (``config.plugins["distribution"]``): ``stores`` (connector settings by
store name), ``sender_dpid``/``sender_name`` (our DDEX party), ``pipeline``
(:class:`~business.distribution.delivery.PipelineSettings` fields: the delivery
job's attempts, backoff, lease and concurrency, and the status probe) and
``presave_check_s`` (how often the release-day check runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from business.distribution import hookspecs as distribution_hookspecs
from business.distribution.delivery import DEAD_EVENT, DELIVER, DELIVERED_EVENT, PipelineSettings
from business.distribution.permissions import PERMISSIONS
from business.distribution.presave import RELEASE_DAY, SAVED
from business.distribution.privacy import erase_account, erase_files, export_account
from business.distribution.routes import ROUTES
from business.distribution.schemas import (
    DeliveryFailed,
    DeliveryRun,
    PresaveSaved,
    ReleaseDay,
    ReleaseDelivered,
)
from business.distribution.services import (
    PLUGIN_NAME,
    deliver,
    delivery_died,
    run_release_days,
    services,
    start_services,
)
from business.distribution.v1_routes import ROUTES as V1_ROUTES
from dawserver.plugin_api import (
    Event,
    Job,
    Migration,
    Permission,
    PluginContext,
    Pseudonymiser,
    Route,
    Worker,
    hookimpl,
    load_migrations,
)

#: The module's tables (``dist_*``, each keyed by ``account_id`` first), as ``.sql`` files
#: in ``migrations/`` beside this module, applied by the server's one migration runner
#: (which also distributes them with Citus when it is there).
MIGRATIONS = load_migrations(PLUGIN_NAME, Path(__file__).with_name("migrations"))


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": "1.0",
            "description": "Releases, compliance gate, DDEX delivery, royalties, pre-saves"}


@hookimpl
def hookspecs() -> list[Any]:
    return [distribution_hookspecs]


@hookimpl
def migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def permissions() -> list[Permission]:
    return PERMISSIONS


@hookimpl
def routes(context: PluginContext) -> list[Route]:
    return ROUTES


@hookimpl
def public_routes(context: PluginContext) -> list[Route]:
    return V1_ROUTES


@hookimpl
def events() -> list[Event]:
    return [Event(RELEASE_DAY, ReleaseDay, "a pre-save campaign's release date has come"),
            Event(SAVED, PresaveSaved,
                  "a fan who came by a short link or UTM campaign pre-saved a release"),
            Event(DELIVERED_EVENT, ReleaseDelivered,
                  "a store accepted a release's delivery (new, update or takedown)"),
            Event(DEAD_EVENT, DeliveryFailed,
                  "a release's delivery to a store failed for good (retry it from the "
                  "deliveries list)")]


@hookimpl
def jobs() -> list[Job]:
    # the settings are the defaults; the plug-in's "pipeline" settings replace them at startup
    return [Job(DELIVER, DeliveryRun, deliver, "deliver one release to one store",
                PipelineSettings().queue_settings(), on_dead=delivery_died)]


@hookimpl
async def startup(context: PluginContext) -> None:
    start_services(context)


@hookimpl
def workers(context: PluginContext) -> list[Worker]:
    return [Worker("distribution.release_days", run_release_days)]


@hookimpl
async def project_rendered(context: PluginContext, account_id: str, project_id: str, path: str,
                           metadata: dict[str, Any]) -> None:
    await services(context).catalog.record_render(account_id, project_id, path, metadata)


@hookimpl
async def project_deleted(context: PluginContext, account_id: str, project_id: str) -> None:
    await services(context).catalog.forget_renders(project_id)


@hookimpl
async def account_export(context: PluginContext, account_id: str) -> dict[str, Any]:
    return await export_account(context.database(), account_id)


@hookimpl
async def account_erased(context: PluginContext, account_id: str, pseudonym: str,
                         names: list[str]) -> None:
    await erase_account(context.database(), context.background.queue, DELIVER,
                        Pseudonymiser(account_id, tuple(names), pseudonym))
    await erase_files(services(context).catalog.media_folder(account_id))
