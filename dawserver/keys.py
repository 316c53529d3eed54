"""Typed application keys: where ``create_app`` keeps the server's long-lived objects."""

from __future__ import annotations

from aiohttp import web

from accounts.ratelimit import RateLimiter
from accounts.service import AccountService
from collab.registry import RoomRegistry
from collab.relay import RedisRelay
from collab.store import Store
from collab.tokens import TokenSigner
from database import Database

from .background import Background
from .config import ServerConfig
from .context import PluginContext
from .project_engine import ProjectEngines

CONFIG = web.AppKey("config", ServerConfig)
TOKENS = web.AppKey("tokens", TokenSigner)
DATABASE = web.AppKey("database", Database)
STORE = web.AppKey("store", Store)
ROOMS = web.AppKey("rooms", RoomRegistry)
ENGINES = web.AppKey("engines", ProjectEngines)
RELAY = web.AppKey("relay", RedisRelay)
PLUGIN_CONTEXT_KEY = web.AppKey("plugin_context", PluginContext)
#: The job queue, its worker and the event bus (:mod:`dawserver.background`).
BACKGROUND = web.AppKey("background", Background)
#: People, organisations, sessions and keys (:mod:`dawserver.accounts_setup`).
ACCOUNTS = web.AppKey("accounts", AccountService)
#: API keys' rate limits (in process, or shared through Redis).
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
#: Open automation write passes (:mod:`dawserver.automation_api`).
#: (project, user, pass id, track, param) -> the pass's writer and times.
AUTOMATION_PASSES = web.AppKey("automation_passes", dict)
