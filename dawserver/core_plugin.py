"""The core's own routes and permissions, contributed like any plug-in's.

Registered first and always by :func:`dawserver.plugins.load_plugins`; it uses
the same hooks and declarations (:mod:`dawserver.plugin_api`) as business
plug-ins, so every HTTP route of the server goes through one contract.
"""

from __future__ import annotations

from . import (
    account_routes,
    api,
    assets,
    auth_routes,
    automation_api,
    bounces,
    midi_routes,
    oidc_routes,
    openapi,
    page,
    privacy_routes,
    rtc,
    sample_routes,
    sso_routes,
    transcription_api,
)
from .permissions import CORE_PERMISSIONS
from .plugin_api import Job, Migration, Permission, PluginContext, Route, hookimpl
from .public_api import idempotency, openapi_v1
from .public_api import routes as public_routes
from .public_api.graphql import route as graphql_route
from .public_api.webhooks import routes as webhook_routes
from .public_api.webhooks import service as webhooks
from .storage import service as storage_service

PLUGIN_NAME = "core"


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": openapi.VERSION,
            "description": "Projects, members, renders, audio, bounces, transcription, "
                           "live mix, the page and the API reference"}


@hookimpl
def permissions() -> list[Permission]:
    return [*CORE_PERMISSIONS, webhooks.WEBHOOKS_MANAGE]


@hookimpl
def routes(context: PluginContext) -> list[Route]:
    return [*api.ROUTES, *assets.ROUTES, *bounces.ROUTES, *rtc.ROUTES,
            *transcription_api.ROUTES, *page.ROUTES, *openapi.ROUTES,
            *auth_routes.ROUTES, *account_routes.ROUTES, *oidc_routes.ROUTES,
            *privacy_routes.ROUTES, *sso_routes.ROUTES, *public_routes.ROUTES,
            *openapi_v1.ROUTES, *sample_routes.ROUTES, *graphql_route.ROUTES,
            *webhook_routes.ROUTES, *storage_service.ROUTES,
            *midi_routes.ROUTES, *automation_api.ROUTES]


@hookimpl
def jobs() -> list[Job]:
    return [webhooks.JOB]


@hookimpl
def startup(context: PluginContext) -> None:
    webhooks.subscribe(context)


@hookimpl
async def account_erased(context: PluginContext, account_id: str, pseudonym: str,
                         names: list[str]) -> None:
    await webhooks.deliverer(context).store.forget_account(account_id)


@hookimpl
def migrations() -> list[Migration]:
    return idempotency.MIGRATIONS
