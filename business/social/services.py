"""The social module's running objects, shared by its routes and its workers.

Built once the database, the job queue and the event bus are open (the plug-in's
``startup`` hook) from the plug-in's settings (docs/social.md):

- ``networks``: ``{name: {"client_id", "client_secret", "base_url"?, ...}}``, a
  connector per network (``business.social.networks.connector_for``); other plug-ins
  add connectors through the ``social_connectors`` hook (tests use it for fakes);
- ``token_keys``: Fernet keys sealing channel tokens, newest first (default: one key
  derived from the server's secret);
- ``base_url`` (default: the server's), ``refresh_margin_s`` (300), ``refresh_check_s``
  (60) and ``expiry_check_s`` (60);
- ``dispatch``: :class:`~business.social.dispatch.DispatchSettings` fields (attempts,
  backoff, leases, burst limits, quota checks, the sweeper's period). Without
  ``pacing_storage`` the burst limits are shared through the server's ``redis_url``
  when it has one, else kept per process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from business.social.approvals import Approvals
from business.social.calendar import Calendar
from business.social.channels import Channels
from business.social.dispatch import Dispatcher, DispatchSettings
from business.social.networks.base import Connector
from business.social.posts import Posts
from business.social.revocation import RevokeRun, run_revoke
from business.social.revoke_notices import RevokeNotices
from business.social.schemas import PublishRun
from business.social.store import SocialStore
from business.social.sweeper import Sweeper
from business.social.tokens import TokenBox
from business.social.waveform_jobs import media_file as waveform_media_file
from dawserver.plugin_api import JobContext, PluginContext, backoff_delay, in_sandbox

PLUGIN_NAME = "social"
logger = logging.getLogger(__name__)
_KEY = "social"
#: What the server's secret is stretched into for sealing channel tokens.
TOKEN_KEY_PURPOSE = "social channel tokens"
#: Seconds an idle connection to a network stays open for the next call.
KEEPALIVE_S = 75.0


@dataclass
class Services:
    """The social module's objects, shared by its routes and workers."""

    store: SocialStore
    channels: Channels
    posts: Posts
    approvals: Approvals
    calendar: Calendar
    dispatcher: Dispatcher
    sweeper: Sweeper
    session: aiohttp.ClientSession | None = None
    #: Who is mailed when a disconnected channel's grant cannot be withdrawn.
    revoke_notices: RevokeNotices | None = None

    async def close(self) -> None:
        """Close the HTTP session the connectors share."""
        if self.session is not None and not self.session.closed:
            await self.session.close()


def services(context: PluginContext) -> Services:
    """The started module of a plug-in context."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the social plug-in has not started yet")
    return found


def token_box(context: PluginContext) -> TokenBox:
    """The box sealing channel tokens: the configured keys, or one derived from the
    server's secret."""
    keys = context.settings_for(PLUGIN_NAME).get("token_keys")
    if keys:
        return TokenBox(list(keys))
    return TokenBox.from_secret(context.derive_key(TOKEN_KEY_PURPOSE))


def build_connectors(context: PluginContext, session: aiohttp.ClientSession
                     ) -> dict[str, Connector]:
    """The configured networks' connectors, then those other plug-ins contribute."""
    found: dict[str, Connector] = {}
    networks = context.settings_for(PLUGIN_NAME).get("networks") or {}
    if networks:
        from business.social.networks import connector_for

        for name, options in networks.items():
            options = dict(options)
            found[name] = connector_for(name, options.pop("base_url", None),
                                        options.pop("client_id", ""),
                                        options.pop("client_secret", ""), session, **options)
    hook = getattr(context.manager.hook, "social_connectors", None)
    if hook is not None:
        for batch in hook(context=context):
            for connector in batch or []:
                found[connector.network] = connector
    return found


def _base_url(context: PluginContext) -> str:
    configured = context.settings_for(PLUGIN_NAME).get("base_url")
    if configured:
        return str(configured)
    try:
        return str(getattr(context.config, "base_url", "") or "")
    except Exception:  # a config without a host to build it from
        return ""


def _publish(context: PluginContext) -> Callable[..., Awaitable[Any]]:
    async def publish(tx: Any, name: str, payload: dict[str, Any], account_id: str) -> Any:
        return await context.publish(tx, name, payload, account_id=account_id)

    return publish


def _media_file(context: PluginContext) -> Callable[[str, str], Awaitable[str | None]]:
    async def media_file(account_id: str, asset_id: str) -> str | None:
        """The local file of a post's media: a rendered waveform video, else the
        platform's asset store."""
        return await waveform_media_file(context, account_id, asset_id)

    return media_file


def dispatch_settings(context: PluginContext) -> DispatchSettings:
    """The ``dispatch`` settings; the burst limits go through the server's Redis when it
    has one and no ``pacing_storage`` is named."""
    raw = dict(context.settings_for(PLUGIN_NAME).get("dispatch") or {})
    redis_url = getattr(context.config, "redis_url", None) if context.config else None
    if "pacing_storage" not in raw and isinstance(redis_url, str) and redis_url:
        raw["pacing_storage"] = redis_url
    return DispatchSettings.from_config(raw)


def http_session(settings: DispatchSettings) -> aiohttp.ClientSession:
    """The connectors' HTTP session: a pool of kept-alive connections per network host,
    as many as the publish jobs one process runs at once (and room for the rest), kept
    open longer than a minute so the next minute's posts find them warm."""
    connector = aiohttp.TCPConnector(limit=max(100, 2 * settings.concurrency),
                                     keepalive_timeout=KEEPALIVE_S)
    return aiohttp.ClientSession(connector=connector)


def build_services(context: PluginContext) -> Services:
    """Create the module's objects from the context's database and settings."""
    settings = context.settings_for(PLUGIN_NAME)
    store = SocialStore(context.database())
    dispatch = dispatch_settings(context)
    session = http_session(dispatch)
    publish = _publish(context)
    base_url = _base_url(context)
    channels = Channels(store, token_box(context), build_connectors(context, session),
                        publish, base_url=base_url,
                        margin_s=float(settings.get("refresh_margin_s", 300)),
                        queue=context.background.queue)
    dispatcher = Dispatcher(store, channels, context.background.queue, publish,
                            settings=dispatch, base_url=base_url,
                            media_file=_media_file(context),
                            sandboxed=lambda account_id, post_id: in_sandbox(
                                context, PLUGIN_NAME, account_id, post_id))
    return Services(store, channels, Posts(store, dispatch=dispatcher),
                    Approvals(store, publish, context.role_in, dispatch=dispatcher),
                    Calendar(store), dispatcher, Sweeper(store.db, dispatcher),
                    session=session,
                    revoke_notices=RevokeNotices(context.send_mail, context.admin_emails,
                                                 base_url=base_url))


def start_services(context: PluginContext) -> Services:
    """Build the module's objects and keep them in the context."""
    context.state[_KEY] = build_services(context)
    return context.state[_KEY]


async def _every(period: float, what: str, step: Callable[[], Awaitable[Any]]) -> None:
    errors = 0
    while True:
        try:
            await step()
        except Exception:
            errors += 1
            delay = backoff_delay(errors, period, max(period, 600.0))
            logger.exception("%s failed (%d in a row); again in %.2f s", what, errors, delay)
        else:
            errors, delay = 0, period
        await asyncio.sleep(delay)


async def revoke_channel(context: PluginContext, payload: RevokeRun, job: JobContext) -> dict:
    """The ``social.revoke`` job: withdraw one forgotten channel grant at its network."""
    module = services(context)
    return await run_revoke(module.channels, job.job.account_id, payload, job,
                            module.revoke_notices)


async def run_token_refresh(context: PluginContext) -> None:
    """Refresh tokens that expire within the margin, every ``refresh_check_s``; closes
    the connectors' HTTP session when the server stops."""
    module = services(context)
    period = float(context.settings_for(PLUGIN_NAME).get("refresh_check_s", 60))
    try:
        await _every(period, "token refresh", module.channels.refresh_due)
    finally:
        await module.close()


async def publish(context: PluginContext, payload: PublishRun, job: JobContext) -> Any:
    """The ``social.publish`` job: one attempt at one channel of one post."""
    return await services(context).dispatcher.handle(job)


async def run_sweeper(context: PluginContext) -> None:
    """Re-arm due targets nothing will publish and set the liveness gauges, every
    ``dispatch.sweep_s``."""
    module = services(context)
    await _every(module.dispatcher.settings.sweep_s, "dispatch sweep", module.sweeper.sweep)


async def run_expiry(context: PluginContext) -> None:
    """Expire posts not approved in time, every ``expiry_check_s``."""
    period = float(context.settings_for(PLUGIN_NAME).get("expiry_check_s", 60))
    await _every(period, "approval expiry", services(context).approvals.expire_due)
