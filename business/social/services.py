"""The social module's running objects, shared by its routes and its workers.

Built once the database, the job queue and the event bus are open (the plug-in's
``startup`` hook) from the plug-in's settings (docs/social.md):

- ``networks``: ``{name: {"client_id", "client_secret", "base_url"?, ...}}``, a
  connector per network (``business.social.networks.connector_for``); other plug-ins
  add connectors through the ``social_connectors`` hook (tests use it for fakes);
- ``token_keys``: Fernet keys sealing channel tokens, newest first (default: one key
  derived from the server's secret);
- ``base_url`` (default: the server's), ``refresh_margin_s`` (300), ``refresh_check_s``
  (60) and ``expiry_check_s`` (60).
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
from business.social.networks.base import Connector
from business.social.posts import Posts
from business.social.store import SocialStore
from business.social.tokens import TokenBox
from dawserver.plugin_api import PluginContext, backoff_delay

PLUGIN_NAME = "social"
logger = logging.getLogger(__name__)
_KEY = "social"
#: What the server's secret is stretched into for sealing channel tokens.
TOKEN_KEY_PURPOSE = "social channel tokens"


@dataclass
class Services:
    """The social module's objects, shared by its routes and workers."""

    store: SocialStore
    channels: Channels
    posts: Posts
    approvals: Approvals
    calendar: Calendar
    session: aiohttp.ClientSession | None = None

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


def build_services(context: PluginContext) -> Services:
    """Create the module's objects from the context's database and settings."""
    settings = context.settings_for(PLUGIN_NAME)
    store = SocialStore(context.database())
    session = aiohttp.ClientSession()
    publish = _publish(context)
    channels = Channels(store, token_box(context), build_connectors(context, session),
                        publish, base_url=_base_url(context),
                        margin_s=float(settings.get("refresh_margin_s", 300)))
    return Services(store, channels, Posts(store),
                    Approvals(store, publish, context.role_in), Calendar(store),
                    session=session)


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


async def run_token_refresh(context: PluginContext) -> None:
    """Refresh tokens that expire within the margin, every ``refresh_check_s``; closes
    the connectors' HTTP session when the server stops."""
    module = services(context)
    period = float(context.settings_for(PLUGIN_NAME).get("refresh_check_s", 60))
    try:
        await _every(period, "token refresh", module.channels.refresh_due)
    finally:
        await module.close()


async def run_expiry(context: PluginContext) -> None:
    """Expire posts not approved in time, every ``expiry_check_s``."""
    period = float(context.settings_for(PLUGIN_NAME).get("expiry_check_s", 60))
    await _every(period, "approval expiry", services(context).approvals.expire_due)
