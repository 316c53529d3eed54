"""The core's own routes and permissions, contributed like any plug-in's.

Registered first and always by :func:`dawserver.plugins.load_plugins`; it uses
the same hooks and declarations (:mod:`dawserver.plugin_api`) as business
plug-ins, so every HTTP route of the server goes through one contract.
"""

from __future__ import annotations

from pathlib import Path

from . import (
    account_moves,
    account_plans,
    account_routes,
    api,
    assets,
    auth_routes,
    automation_api,
    bounces,
    immersive_routes,
    lv2_routes,
    midi_routes,
    models_api,
    oidc_routes,
    openapi,
    page,
    privacy_routes,
    rtc,
    sample_routes,
    sso_routes,
    take_events,
    transcription_api,
    transcription_events,
)
from .permissions import CORE_PERMISSIONS
from .plugin_api import (
    Event,
    Job,
    Migration,
    Page,
    Permission,
    PluginContext,
    Route,
    Worker,
    hookimpl,
)
from .public_api import idempotency, openapi_v1, retention, track_edits, transcripts
from .public_api import routes as public_routes
from .public_api.graphql import route as graphql_route
from .public_api.portal import pages as portal_pages
from .public_api.state import api_state
from .public_api.usage import routes as usage_routes
from .public_api.webhooks import routes as webhook_routes
from .public_api.webhooks import service as webhooks
from .storage import service as storage_service

PLUGIN_NAME = "core"
#: The developer dashboard's built bundle (web/src/developer/, bundled by web/build.mjs).
DEVELOPER_STATIC = Path(__file__).with_name("public_api") / "static"


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": openapi.VERSION,
            "description": "Projects, members, renders, audio, bounces, transcription, "
                           "live mix, the page and the API reference"}


@hookimpl
def permissions() -> list[Permission]:
    return [*CORE_PERMISSIONS, webhooks.WEBHOOKS_MANAGE, *account_moves.PERMISSIONS]


@hookimpl
def routes(context: PluginContext) -> list[Route]:
    return [*api.ROUTES, *assets.ROUTES, *bounces.ROUTES, *rtc.ROUTES,
            *transcription_api.ROUTES, *page.ROUTES, *openapi.ROUTES,
            *auth_routes.ROUTES, *account_routes.ROUTES, *oidc_routes.ROUTES,
            *privacy_routes.ROUTES, *sso_routes.ROUTES, *public_routes.ROUTES,
            *openapi_v1.ROUTES, *sample_routes.ROUTES, *graphql_route.ROUTES,
            *webhook_routes.ROUTES, *storage_service.ROUTES,
            *midi_routes.ROUTES, *automation_api.ROUTES, *immersive_routes.ROUTES,
            *usage_routes.ROUTES, *models_api.ROUTES, *portal_pages.ROUTES,
            *transcripts.ROUTES, *account_moves.ROUTES, *account_plans.ROUTES,
            *track_edits.ROUTES, *lv2_routes.ROUTES]


@hookimpl
def pages(context: PluginContext) -> list[Page]:
    return [Page(path="/developer", title="Developer", static_dir=DEVELOPER_STATIC,
                 html="developer.html")]


@hookimpl
def events() -> list[Event]:
    return [transcription_events.DONE, take_events.RECOVERED]


@hookimpl
def jobs() -> list[Job]:
    return [webhooks.JOB]


@hookimpl
async def startup(context: PluginContext) -> None:
    webhooks.subscribe(context)
    await webhooks.deliverer(context).store.seal_plain_secrets()


async def _flush_usage(context: PluginContext) -> None:
    await api_state(context).usage.run()


async def _purge(context: PluginContext) -> None:
    await retention.run_purge(context.database(), webhooks.deliverer(context).settings)


@hookimpl
def workers(context: PluginContext) -> list[Worker]:
    return [Worker("public_api.usage", _flush_usage),
            Worker("public_api.retention", _purge)]


@hookimpl
async def project_deleted(context: PluginContext, account_id: str, project_id: str) -> None:
    await api_state(context).sandbox.forget(account_id, project_id)


@hookimpl
async def account_erased(context: PluginContext, account_id: str, pseudonym: str,
                         names: list[str]) -> None:
    await webhooks.deliverer(context).store.forget_account(account_id)
    state = api_state(context)
    await state.usage.store.forget_account(account_id)
    await state.sandbox.forget_account(account_id)


@hookimpl
def migrations() -> list[Migration]:
    return idempotency.MIGRATIONS
