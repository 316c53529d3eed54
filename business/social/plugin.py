"""The social plug-in: hook implementations that wire the module into the server.

Settings (``config.plugins["social"]``): see :mod:`business.social.services`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from business.social import hookspecs as social_hookspecs
from business.social.approvals import APPROVED_EVENT, EXPIRED_EVENT, REJECTED_EVENT
from business.social.bulk_routes import BULK_ROUTES
from business.social.channels import NEEDS_RECONNECT_EVENT
from business.social.composer_routes import COMPOSER_ROUTES
from business.social.dispatch import (
    FAILED_EVENT,
    PUBLISH,
    PUBLISHED_EVENT,
    DispatchSettings,
)
from business.social.listening import LISTEN, SPIKE_EVENT
from business.social.listening import queue_settings as listen_queue_settings
from business.social.listening_routes import LISTENING_ROUTES
from business.social.listening_schemas import ListenRun, ReplyRun, SpikeAlert
from business.social.listening_services import (
    listen,
    run_listening_scheduler,
    send_reply,
    start_listening,
)
from business.social.permissions import APPROVER, APPROVER_MAY, PERMISSIONS
from business.social.privacy import erase_account, export_account
from business.social.replies import REPLY
from business.social.replies import queue_settings as reply_queue_settings
from business.social.results import COLLECT, ResultsSettings
from business.social.results_routes import RESULT_ROUTES
from business.social.results_schemas import CollectRun
from business.social.results_services import (
    collect_metrics,
    observe_event,
    run_results_scheduler,
    start_results,
)
from business.social.revocation import REVOKE, RevokeRun, revoke_queue_settings
from business.social.routes import ROUTES
from business.social.schemas import (
    ChannelNeedsReconnect,
    PostApproved,
    PostExpired,
    PostFailed,
    PostPublished,
    PostRejected,
    PublishRun,
)
from business.social.services import (
    PLUGIN_NAME,
    publish,
    revoke_channel,
    run_expiry,
    run_sweeper,
    run_token_refresh,
    start_services,
)
from business.social.uploads import erase_uploads
from business.social.uploads_routes import UPLOAD_ROUTES
from business.social.v1_routes import ROUTES as V1_ROUTES
from business.social.waveform_jobs import WAVEFORM, WaveformRun, erase_videos, render_waveform
from business.social.waveform_jobs import queue_settings as waveform_queue_settings
from business.social.waveform_routes import WAVEFORM_ROUTES
from dawserver.plugin_api import (
    Event,
    Job,
    Migration,
    Page,
    Permission,
    PluginContext,
    Principal,
    Pseudonymiser,
    Route,
    Worker,
    hookimpl,
    load_migrations,
)

#: The module's tables (``social_*``, each keyed by ``account_id`` first).
MIGRATIONS = load_migrations(PLUGIN_NAME, Path(__file__).with_name("migrations"))
#: The calendar page's bundle, built from web/src/social/ by web/build.mjs.
STATIC_DIR = Path(__file__).with_name("static")


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": "1.0",
            "description": "Social channels, composer, approvals, calendar and dispatch"}


@hookimpl
def hookspecs() -> list[Any]:
    return [social_hookspecs]


@hookimpl
def migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def permissions() -> list[Permission]:
    return PERMISSIONS


@hookimpl
def permission_allowed(principal: Principal, permission: Permission) -> bool | None:
    """An organisation's ``approver`` reads and approves, and does nothing else here;
    every other role is judged by the roles as usual."""
    if principal.role == APPROVER.name.removeprefix("role:"):
        return permission.name in APPROVER_MAY
    return None


@hookimpl
def routes(context: PluginContext) -> list[Route]:
    return (ROUTES + COMPOSER_ROUTES + BULK_ROUTES + RESULT_ROUTES + LISTENING_ROUTES
            + WAVEFORM_ROUTES + UPLOAD_ROUTES)


@hookimpl
def public_routes(context: PluginContext) -> list[Route]:
    return V1_ROUTES


@hookimpl
def pages(context: PluginContext) -> list[Page]:
    return [Page(path="/social", title="Social calendar", static_dir=STATIC_DIR,
                 html="calendar.html")]


@hookimpl
def events() -> list[Event]:
    return [
        Event(APPROVED_EVENT, PostApproved, "every channel of a post passed its approvals"),
        Event(REJECTED_EVENT, PostRejected, "an approver sent a post back to its author"),
        Event(EXPIRED_EVENT, PostExpired,
              "a post was not approved before its publish time, or within 90 days"),
        Event(NEEDS_RECONNECT_EVENT, ChannelNeedsReconnect,
              "a channel's grant died; it must be connected again"),
        Event(PUBLISHED_EVENT, PostPublished, "a network accepted one channel of a post"),
        Event(FAILED_EVENT, PostFailed,
              "one channel of a post failed with the network's reason (retry_url retries)"),
        Event(SPIKE_EVENT, SpikeAlert,
              "a listening stream's last hour spiked against the 12 hours before"),
    ]


@hookimpl
def jobs() -> list[Job]:
    # the settings are the defaults; the plug-in's "dispatch" settings replace them at startup
    return [Job(PUBLISH, PublishRun, publish, "publish one channel of one post",
                DispatchSettings().queue_settings()),
            Job(COLLECT, CollectRun, collect_metrics, "read one channel's due post metrics",
                ResultsSettings().queue_settings()),
            Job(LISTEN, ListenRun, listen, "poll one listening stream into the inbox",
                listen_queue_settings()),
            Job(REPLY, ReplyRun, send_reply, "send one answer from the inbox (reply or DM)",
                reply_queue_settings()),
            Job(WAVEFORM, WaveformRun, render_waveform,
                "render a project's audio asset to a waveform video (MP4) for a post",
                waveform_queue_settings()),
            Job(REVOKE, RevokeRun, revoke_channel,
                "withdraw a forgotten channel grant (disconnected, or its account erased) "
                "at the network", revoke_queue_settings())]


@hookimpl
async def startup(context: PluginContext) -> None:
    start_services(context)
    start_results(context)
    start_listening(context)


@hookimpl
def workers(context: PluginContext) -> list[Worker]:
    return [Worker("social.token_refresh", run_token_refresh),
            Worker("social.approval_expiry", run_expiry),
            Worker("social.dispatch_sweeper", run_sweeper),
            Worker("social.results_scheduler", run_results_scheduler),
            Worker("social.listening_scheduler", run_listening_scheduler)]


@hookimpl
async def business_event(context: PluginContext, name: str, payload: dict[str, Any]) -> None:
    await observe_event(context, name, payload)


@hookimpl
async def account_export(context: PluginContext, account_id: str) -> dict[str, Any]:
    return await export_account(context.database(), account_id)


@hookimpl
async def account_erased(context: PluginContext, account_id: str, pseudonym: str,
                         names: list[str]) -> None:
    await erase_account(context.database(), context.background.queue, PUBLISH,
                        Pseudonymiser(account_id, tuple(names), pseudonym))
    erase_videos(context.data_dir, account_id)
    erase_uploads(context.data_dir, account_id)
