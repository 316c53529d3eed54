"""The aiohttp application: ``create_app(config)`` wires store, rooms, engines and routes.

State lives under the typed keys of :mod:`dawserver.keys`.  The process's one
database (:mod:`database`, from ``config.database_url``) is opened first and
closed last; the collaboration store, the one job queue (bounces, transcription,
the plug-ins' jobs; ``app[BACKGROUND]``) and the plug-ins all use it.  The configured
data regions' databases are opened right after it (:mod:`dawserver.regions`): the
accounts and the documents of a region's accounts live there.  The store,
the room registry and the engines are opened by one ``cleanup_ctx`` and closed
cleanly (every document persisted) when the app stops, after the job worker.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from collab.registry import RegistryLimits, RoomRegistry
from collab.room import RoomLimits
from collab.schema import ProjectDocument
from collab.tokens import TokenSigner
from database import open_database

from . import plugins
from .account_moves import setup_account_moves
from .accounts_setup import (
    plugin_admin_emails,
    plugin_membership,
    plugin_owner_emails,
    plugin_people_emails,
    setup_accounts,
)
from .asset_collection import setup_asset_collection
from .assets import (
    account_asset_file,
    account_asset_link,
    recover_cut_short_takes,
    setup_assets,
)
from .background import Background
from .bounces import setup_bounces
from .clip_sources import MIGRATIONS, DocumentMigrations, Resolver
from .config import ServerConfig
from .forwarded import forwarded_middleware, trusted_networks
from .host_guard import host_guard
from .identity import add_rate_headers, identify
from .keys import (
    AUTOMATION_PASSES,
    BACKGROUND,
    CONFIG,
    DATABASE,
    ENGINES,
    RELAY,
    ROOMS,
    STORE,
    TOKENS,
)
from .lv2_faults import AWARENESS_KEY, LV2_FAULTS, setup_lv2_faults
from .lv2_routes import holders as lv2_holders
from .lv2_warmup import lv2_warmup_context
from .privacy_routes import setup_privacy
from .project_engine import ProjectEngines
from .public_api.usage.hook import meter_response
from .regions import collab_store, regions_context
from .relay import relay_link
from .request_telemetry import request_telemetry
from .rtc import setup_rtc
from .sample_service import setup_samples
from .storage.service import setup_storage
from .transcription_service import setup_transcription
from .websocket import collab_socket

log = logging.getLogger(__name__)

#: The collaboration WebSocket (docs/collab-protocol.md): the one route outside the HTTP
#: API, because it answers refusals with WebSocket close codes after the upgrade.
COLLAB_PATH = "/collab/{project_id}"


def create_app(config: ServerConfig) -> web.Application:
    """The server application for ``config`` (run it with ``web.run_app`` or a runner)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # the client's address first: every limit and audit record after it reads that one
    client_address = forwarded_middleware(trusted_networks(config.trusted_proxies))
    app = web.Application(client_max_size=config.max_message_bytes,
                          middlewares=[client_address, request_telemetry, host_guard])
    app[CONFIG] = config
    app[TOKENS] = TokenSigner.from_data_dir(config.data_dir)
    app[DATABASE] = open_database(config.database_url, config.data_dir)
    app.cleanup_ctx.append(database_context)
    app.cleanup_ctx.append(regions_context)
    app.cleanup_ctx.append(lv2_warmup_context)  # lilv's first load off the event loop
    app.cleanup_ctx.append(collab_context)
    app.router.add_get(COLLAB_PATH, collab_socket)
    # the one job queue: bounces and transcription register their queues on it here,
    # the plug-ins theirs in install(), which starts its worker after every component
    app[BACKGROUND] = Background()
    app[AUTOMATION_PASSES] = {}  # open automation write passes (automation_api.py)
    setup_accounts(app)
    setup_account_moves(app)
    setup_storage(app)
    setup_assets(app)
    setup_bounces(app)
    setup_rtc(app)
    setup_lv2_faults(app, functools.partial(lv2_holders, app))
    setup_transcription(app)
    setup_samples(app)
    setup_privacy(app)
    # every HTTP route, the core's and the plug-ins', on the process's one database
    context = plugins.install(app, config, database=app[DATABASE], identify=identify)
    # after install: its loop queues jobs, so it starts once the job queue is open
    setup_asset_collection(app)
    recover_cut_short_takes(app)  # ... and the takes it places are announced on the bus
    # plug-ins ask who is in which organisation or team through their context (read-only)
    context.membership = plugin_membership(app)
    # ... and for the files of their accounts' uploaded assets (media to post, beats to sell)
    context.asset_file = functools.partial(account_asset_file, app)
    context.asset_link = functools.partial(account_asset_link, app)  # S3: presigned URLs
    # ... and for the addresses of an account's owners (a webhook disabled: docs/public-api.md)
    context.owner_emails = plugin_owner_emails(app)
    context.admin_emails = plugin_admin_emails(app)  # ... its owners and admins
    context.people_emails = plugin_people_emails(app)  # ... and of all its people
    app.on_response_prepare.append(add_rate_headers)
    # every answer to an API key counts in its usage (docs/public-api.md#usage)
    app.on_response_prepare.append(meter_response)
    return app


async def database_context(app: web.Application) -> AsyncIterator[None]:
    """Open the process's database before every component and close it after them."""
    async with app[DATABASE] as database:
        log.info("database ready (%s)", database.redacted_url)
        yield


async def collab_context(app: web.Application) -> AsyncIterator[None]:
    """Open the store (one per data region, if any) and the room registry; on shutdown
    persist and unload every room."""
    config = app[CONFIG]
    store = collab_store(app)
    async with store:
        registry = RoomRegistry(
            store,
            RegistryLimits(max_documents=config.max_documents,
                           idle_seconds=config.idle_unload_seconds),
            RoomLimits(max_message_bytes=config.max_message_bytes,
                       compact_every=config.compact_every,
                       server_fields=frozenset({AWARENESS_KEY})),
            document_type=ProjectDocument,
        )
        engines = ProjectEngines(debounce=config.engine_debounce_seconds, enabled=config.engine,
                                 resolver=Resolver(app).source,
                                 on_plugins=lambda project_id: app[LV2_FAULTS].changed(project_id))
        migrations = app[MIGRATIONS] = DocumentMigrations(app)
        registry.on_room_loaded(migrations)
        registry.on_room_loaded(engines.attach)
        registry.on_room_unloaded(engines.detach)
        app[STORE], app[ROOMS], app[ENGINES] = store, registry, engines
        async with contextlib.AsyncExitStack() as stack:
            if config.redis_url:
                app[RELAY] = await stack.enter_async_context(
                    relay_link(app, registry, config.redis_url))
            await stack.enter_async_context(registry)
            log.info("collaboration store ready (%s)", type(store).__name__)
            yield
