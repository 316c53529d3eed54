"""Loading plug-ins and wiring them into the server.

The core's own routes are the built-in plug-in :mod:`dawserver.core_plugin`
(always loaded); business modules are listed by module path in
:data:`DEFAULT_PLUGINS` and registered exactly like third-party plug-ins, which
are found through the ``maxbooster.plugins`` entry-points group. The core never
imports ``business``: it only names modules as strings here. Every plug-in
declares what it contributes through :mod:`dawserver.plugin_api`.

Configuration is one mapping, ``config.plugins`` (overlaying ``DATA/plugins.json``):
``{name: False}`` disables a plug-in, ``{name: {...}}`` enables it with settings;
unnamed plug-ins stay enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy
from aiohttp import web
from pydantic import ValidationError

from collab.errors import AuthError
from database import Database, Migration, open_database
from dawserver import plugin_api
from dawserver.authorization import call_one, identify_by_token, project_account
from dawserver.background import Background
from dawserver.context import PluginContext, declare
from dawserver.declarations import Event, Job, Permission, Principal, Route, Worker, role_of
from dawserver.errors import PluginError
from dawserver.keys import BACKGROUND, PLUGIN_CONTEXT_KEY
from dawserver.plugin_pages import page_routes
from dawserver.public_api.contract import mounted
from dawserver.public_api.test_mode import live_only
from dawserver.router import add_route
from events import Envelope
from jobs import Handler, JobContext, JobRecord, Permanent
from jobs.dead_notices import OnDead

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "maxbooster.plugins"
#: Optional plug-in settings file in the data directory (same shape as ``config.plugins``).
PLUGINS_FILE = "plugins.json"

#: The core's own routes and permissions: a plug-in that is always loaded.
CORE_PLUGIN = "dawserver.core_plugin"
CORE_NAME = "core"
#: Built-in business plug-ins, registered the same way as third-party ones.
DEFAULT_PLUGINS: list[str] = [
    "business.distribution.plugin",
    "business.distribution.stores.http_drop",
    "business.social.plugin",
    "business.analytics.plugin",
    "business.marketplace.plugin",
]

__all__ = ["CORE_PLUGIN", "DEFAULT_PLUGINS", "PLUGIN_CONTEXT_KEY", "PLUGINS_KEY",
           "PluginContext", "PluginError", "PluginInfo", "Principal", "collect_migrations",
           "describe", "emit_project_rendered", "install", "load_plugins", "project_account",
           "start_plugins", "start_workers", "stop_workers"]


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plug-in as ``dawserver plugins`` lists it."""

    name: str
    version: str
    description: str
    source: str
    hooks: tuple[str, ...]
    routes: int
    permissions: tuple[str, ...]


def _config_value(config: Any, name: str, default: Any = None) -> Any:
    if config is None:
        return default
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def _settings_file(config: Any) -> dict[str, Any]:
    data_dir = _config_value(config, "data_dir", None)
    path = Path(data_dir) / PLUGINS_FILE if data_dir else None
    if path is None or not path.exists():
        return {}
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PluginError(f"cannot read plug-in settings {path}: {exc}; fix or remove it") \
            from exc
    if not isinstance(found, dict):
        raise PluginError(f"{path} must hold a JSON object of plug-in name to settings")
    return found


def plugin_selection(config: Any) -> dict[str, Any]:
    """Name to False, True or settings: ``DATA/plugins.json`` overlaid by ``config.plugins``."""
    raw = _config_value(config, "plugins", None) or {}
    if isinstance(raw, list | tuple):
        raw = dict.fromkeys(raw, True)
    if not isinstance(raw, Mapping):
        raise PluginError(
            f"config 'plugins' must map plug-in names to true/false or settings, got {raw!r}"
        )
    raw = {**_settings_file(config), **raw}
    for name, value in raw.items():
        if not isinstance(value, bool | Mapping):
            raise PluginError(
                f"config plugins.{name} must be true, false or a settings mapping, "
                f"got {value!r}"
            )
    return dict(raw)


def _module_name(module: Any, fallback: str) -> str:
    return getattr(module, "PLUGIN_NAME", None) or fallback


def load_plugins(
    config: Any = None,
    *,
    defaults: list[str] | None = None,
    entry_points: bool = True,
    extra: list[Any] | None = None,
) -> pluggy.PluginManager:
    """A plug-in manager holding the core and the enabled built-in, entry-point and extra
    plug-ins, with every plug-in's own hook specifications added."""
    selection = plugin_selection(config)
    disabled = {name for name, value in selection.items() if value is False}
    if CORE_NAME in disabled:
        raise PluginError(f"the {CORE_NAME!r} plug-in serves the server's own routes and "
                          f"cannot be disabled; remove plugins.{CORE_NAME} from the config")
    pm = pluggy.PluginManager(plugin_api.PROJECT)
    pm.add_hookspecs(plugin_api)
    pm._maxbooster_sources = {}  # type: ignore[attr-defined]

    def register(obj: Any, name: str, source: str) -> None:
        if name in disabled:
            pm.set_blocked(name)
            logger.info("plug-in %s disabled by configuration", name)
            return
        if pm.get_plugin(name) is not None or pm.is_blocked(name):
            return
        pm.register(obj, name=name)
        pm._maxbooster_sources[name] = source  # type: ignore[attr-defined]

    for path in [CORE_PLUGIN, *(DEFAULT_PLUGINS if defaults is None else defaults)]:
        try:
            module = importlib.import_module(path)
        except ImportError as exc:
            raise PluginError(f"built-in plug-in {path!r} cannot be imported: {exc}") from exc
        register(module, _module_name(module, path), "built-in")
    if entry_points:
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry.name in disabled:
                pm.set_blocked(entry.name)
                continue
            try:
                obj = entry.load()
            except Exception as exc:
                raise PluginError(
                    f"plug-in {entry.name!r} ({entry.value}) failed to load: {exc}; "
                    f"disable it with plugins.{entry.name} = false"
                ) from exc
            register(obj, entry.name, f"entry point {entry.value}")
    for obj in extra or []:
        name = _module_name(obj, getattr(obj, "__name__", repr(obj)))
        register(obj, name, "extra")
    unknown = set(selection) - {n for n, _ in pm.list_name_plugin()} - disabled
    if unknown:
        raise PluginError(
            f"config names unknown plug-ins {sorted(unknown)}; loaded: "
            f"{sorted(n for n, _ in pm.list_name_plugin())}"
        )
    for _plugin, namespaces in each_plugin(pm, "hookspecs"):
        for namespace in namespaces:
            pm.add_hookspecs(namespace)
    pm.check_pending()
    return pm


def each_plugin(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
    """``(plug-in name, result)`` of ``hook`` for every loaded plug-in implementing it."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        name = pm.get_name(impl.plugin)
        result = impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
        yield name, result or []


def describe(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """What each loaded plug-in is and contributes."""
    sources = getattr(pm, "_maxbooster_sources", {})
    context = PluginContext(manager=pm)
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        info = call_one(pm, "plugin_info", name) or {}
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or []))
        routes = call_one(pm, "routes", name, context=context) or []
        perms = call_one(pm, "permissions", name) or []
        infos.append(PluginInfo(
            name=name,
            version=str(info.get("version", "")),
            description=str(info.get("description", "")),
            source=sources.get(name, "registered"),
            hooks=hooks,
            routes=len(routes),
            permissions=tuple(p.name for p in perms),
        ))
    return sorted(infos, key=lambda i: i.name)


def _typed(plugin: str, hook: str, items: list[Any], kind: type) -> list[Any]:
    for item in items:
        if not isinstance(item, kind):
            raise PluginError(f"plug-in {plugin!r}: its {hook!r} hook returned {item!r}; "
                              f"return plugin_api.{kind.__name__} declarations")
    return items


def collect_migrations(pm: pluggy.PluginManager) -> list[Migration]:
    """Every migration the loaded plug-ins contribute."""
    return [migration for plugin, batch in each_plugin(pm, "migrations")
            for migration in _typed(plugin, "migrations", batch, Migration)]


def declare_all(context: PluginContext) -> None:
    """Record every permission, event and job of the loaded plug-ins in ``context``.

    Each name belongs to the one plug-in that declares it; a second plug-in
    declaring the same name is an error.
    """
    pm = context.manager
    for plugin, batch in each_plugin(pm, "permissions"):
        for permission in _typed(plugin, "permissions", batch, Permission):
            try:
                role_of(permission.minimum)
            except AuthError as exc:
                raise PluginError(f"plug-in {plugin!r}, permission {permission.name!r}: "
                                  f"{exc}") from None
            declare(context.permissions, plugin, permission.name, permission, "permission")
    for plugin, batch in each_plugin(pm, "events"):
        for event in _typed(plugin, "events", batch, Event):
            declare(context.events, plugin, event.name, event, "event")
    for plugin, batch in each_plugin(pm, "jobs"):
        for job in _typed(plugin, "jobs", batch, Job):
            declare(context.jobs, plugin, job.name, job, "job")


#: ``identify(request)``: the request's :class:`Principal` or None (may be a coroutine).
Identify = Callable[[web.Request], Any]
PLUGINS_KEY = web.AppKey("plugins", pluggy.PluginManager)


def install(
    app: web.Application,
    config: Any = None,
    *,
    manager: pluggy.PluginManager | None = None,
    database: Database | None = None,
    identify: Identify = identify_by_token,
) -> PluginContext:
    """Load the plug-ins into ``app``: routes now; database, workers on startup.

    The database is ``database`` when given (its owner starts it), else one opened
    from ``config.database_url`` (SQLite in ``config.data_dir`` by default).
    ``identify(request)`` (may be async) gives the request's :class:`Principal`, or
    None when it has no credentials: every route but a public one then answers 401.
    Routes are checked as they are added: an incomplete declaration is a PluginError.
    """
    pm = manager or load_plugins(config)
    selection = plugin_selection(config)
    settings = {k: dict(v) for k, v in selection.items() if isinstance(v, Mapping)}
    data_dir = Path(_config_value(config, "data_dir", None) or ".")
    context = PluginContext(manager=pm, settings=settings, data_dir=data_dir, config=config,
                            db=database, identify=identify,
                            background=app.get(BACKGROUND) or Background())
    app[BACKGROUND] = context.background
    declare_all(context)
    register_jobs(context)
    app[PLUGINS_KEY] = pm
    app[PLUGIN_CONTEXT_KEY] = context
    for plugin, batch in each_plugin(pm, "routes", context=context):
        for route in batch:  # a plug-in's routes outside /api/v1 serve live data only
            live = plugin != CORE_NAME and isinstance(route, Route)
            served = live_only(route, plugin) if live else route
            add_route(app, served, plugin, context.permissions)
    for plugin, batch in each_plugin(pm, "public_routes", context=context):
        for route in _typed(plugin, "public_routes", batch, Route):
            add_route(app, mounted(route, plugin), plugin, context.permissions)
    add_pages(app, context)
    owns_db = database is None
    url = _config_value(config, "database_url", None)
    app.cleanup_ctx.append(_lifecycle(context, url if owns_db else None, owns_db))
    return context


def add_pages(app: web.Application, context: PluginContext) -> None:
    """Serve every plug-in's browser pages and their built files (:mod:`.plugin_pages`)."""
    taken: dict[str, str] = {}
    for plugin, batch in each_plugin(context.manager, "pages", context=context):
        for route in page_routes(plugin, list(batch)):
            owner = taken.setdefault(route.path, plugin)
            if owner != plugin:
                raise PluginError(f"plug-in {plugin!r} declares the page {route.path!r} "
                                  f"that plug-in {owner!r} serves already; choose another path")
            try:
                add_route(app, route, plugin, context.permissions)
            except RuntimeError as exc:  # aiohttp: the path is served already
                raise PluginError(f"plug-in {plugin!r}, page {route.path!r}: {exc}") from exc


def _lifecycle(context: PluginContext, url: str | None, owns_db: bool) -> Callable:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if owns_db:
                context.db = await stack.enter_async_context(
                    open_database(url, context.data_dir)
                )
            await open_background(context, _config_value(context.config, "redis_url", None))
            await start_plugins(context)
            await context.background.start()
            stack.push_async_callback(context.background.stop)
            tasks = start_workers(context)
            try:
                yield
            finally:
                await stop_workers(tasks)

    return lifecycle


def register_jobs(context: PluginContext) -> None:
    """Serve every declared :class:`Job` kind on the job queue."""
    for name, declared in context.jobs.items():
        job: Job = declared.item
        context.background.register(name, _job_handler(context, job), job.settings,
                                    owner=declared.plugin,
                                    on_dead=_dead_handler(context, job))


def _job_handler(context: PluginContext, job: Job) -> Handler:
    async def handle(ctx: JobContext) -> Any:
        try:
            payload = job.payload.model_validate(ctx.payload)
        except ValidationError as exc:
            raise Permanent(f"payload does not match {job.payload.__name__}: {exc}") from None
        return await job.run(context, payload, ctx)

    return handle


def _dead_handler(context: PluginContext, job: Job) -> OnDead | None:
    """The job kind's ``on_dead`` given its checked payload (None when it does not check)."""
    on_dead = job.on_dead
    if on_dead is None:
        return None

    async def told(record: JobRecord) -> None:
        try:
            payload = job.payload.model_validate(record.payload)
        except ValidationError:
            payload = None
        await on_dead(context, payload, record)

    return told


async def open_background(context: PluginContext, redis_url: str | None) -> None:
    """Open the job queue and event bus; declare the events; subscribe every listener.

    Each plug-in implementing ``business_event`` is a subscriber of its own
    (``plugin:NAME``), so one failing listener is retried without repeating
    the event to the others.
    """
    bus = await context.background.prepare(context.database(), redis_url)
    for name, declared in context.events.items():
        event: Event = declared.item
        bus.declare(name, event.payload, event.description)
    for impl in context.manager.hook.business_event.get_hookimpls():
        bus.subscribe(f"plugin:{impl.plugin_name}", _listener(context, impl.function))


def _listener(context: PluginContext, function: Callable[..., Any]) -> Callable:
    async def hear(event: Envelope) -> None:
        result = function(context=context, name=event.name,
                          payload={**event.payload, "event_id": event.id})
        if inspect.isawaitable(result):
            await result

    return hear


async def start_plugins(context: PluginContext) -> None:
    """Record the declarations, apply every plug-in migration, call the ``startup`` hooks."""
    declare_all(context)
    db = context.database()
    await db.migrate(collect_migrations(context.manager))
    for result in context.manager.hook.startup(context=context):
        if inspect.isawaitable(result):
            await result


def start_workers(context: PluginContext) -> list[asyncio.Task]:
    """Start every plug-in worker as a task."""
    tasks = []
    for plugin, batch in each_plugin(context.manager, "workers", context=context):
        for worker in _typed(plugin, "workers", batch, Worker):
            task = asyncio.create_task(worker.run(context), name=f"plugin-worker:{worker.name}")
            task.add_done_callback(_report_crash)
            tasks.append(task)
    return tasks


def _report_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("worker %s stopped: %r", task.get_name(), task.exception())


async def stop_workers(tasks: list[asyncio.Task]) -> None:
    """Cancel the workers and wait until they have stopped."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def emit_project_rendered(
    app: web.Application, account_id: str, project_id: str, path: str,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Tell the plug-ins that a project was rendered to ``path`` (a document hook)."""
    context = app.get(PLUGIN_CONTEXT_KEY)
    if context is None:
        return
    results = context.manager.hook.project_rendered(
        context=context, account_id=account_id, project_id=project_id, path=str(path),
        metadata=dict(metadata or {}),
    )
    try:
        for result in results:
            if inspect.isawaitable(result):
                await result
    finally:  # stopped half-way (the job was cancelled): the rest will never run
        for result in results:
            if inspect.iscoroutine(result):
                result.close()


async def emit_project_deleted(app: web.Application, account_id: str, project_id: str
                               ) -> list[str]:
    """Tell the plug-ins that ``project_id`` was deleted (``account_id``: its owner, or
    ""); the names of the plug-ins told, in order. A plug-in's failure is raised."""
    context = app.get(PLUGIN_CONTEXT_KEY)
    if context is None:
        return []
    told = []
    given = {"context": context, "account_id": account_id, "project_id": project_id}
    for impl in context.manager.hook.project_deleted.get_hookimpls():
        result = impl.function(**{k: v for k, v in given.items() if k in impl.argnames})
        if inspect.isawaitable(result):
            await result
        told.append(context.manager.get_name(impl.plugin))
    return told
