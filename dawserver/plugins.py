"""Loading business plug-ins and wiring them into the server.

Built-in business modules are listed by module path in :data:`DEFAULT_PLUGINS`
and registered exactly like third-party plug-ins, which are found through the
``maxbooster.plugins`` entry-points group. The core never imports ``business``:
it only names modules as strings here.

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
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy
from aiohttp import web

from collab.errors import AuthError
from collab.tokens import Role
from database import Database, Migration, open_database
from dawserver import hookspecs
from dawserver.access import AccessDenied, authenticate, request_token
from dawserver.keys import TOKENS

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "maxbooster.plugins"
#: Optional plug-in settings file in the data directory (same shape as ``config.plugins``).
PLUGINS_FILE = "plugins.json"

#: Built-in business plug-ins, registered the same way as third-party ones.
DEFAULT_PLUGINS: list[str] = [
    "business.distribution.plugin",
    "business.distribution.stores.http_drop",
]

HTTP_UNAUTHORIZED_MESSAGE = (
    "this route needs a token: pass ?token=... or 'Authorization: Bearer ...' "
    "(get one with 'dawserver token' or from a project owner)"
)
HTTP_FORBIDDEN_MESSAGE = "this account lacks the permission {permission!r} needed here"
HTTP_ROLE_MESSAGE = (
    "role {role!r} may not use {permission!r}: it needs {minimum} or higher; "
    "ask a project owner for a token with that role"
)
#: The minimum role of a permission declared without one, or that no plug-in declares.
UNDECLARED_ROLE = Role.OWNER


class PluginError(Exception):
    """A plug-in could not be loaded, configured or run."""


@dataclass(frozen=True)
class Permission:
    """A declared permission: the plug-in that declared it and the least role holding it."""

    plugin: str
    minimum: Role


@dataclass
class PluginContext:
    """What a plug-in's hooks receive: settings, data directory, database, manager."""

    manager: pluggy.PluginManager
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_dir: Path = Path(".")
    db: Database | None = None
    config: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    permissions: dict[str, Permission] = field(default_factory=dict)

    def settings_for(self, plugin: str) -> dict[str, Any]:
        """The settings mapping configured for ``plugin`` (empty if none)."""
        return self.settings.get(plugin, {})

    def database(self) -> Database:
        """The started database; an error before the server started."""
        if self.db is None:
            raise PluginError("the database is not open yet; plug-ins use it once started")
        return self.db

    async def announce(self, name: str, payload: dict[str, Any]) -> None:
        """Tell every plug-in about an event (the ``business_event`` hook)."""
        for result in self.manager.hook.business_event(context=self, name=name,
                                                       payload=payload):
            if inspect.isawaitable(result):
                await result


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
    """A plug-in manager holding the enabled built-in, entry-point and extra plug-ins."""
    selection = plugin_selection(config)
    disabled = {name for name, value in selection.items() if value is False}
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
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

    for path in DEFAULT_PLUGINS if defaults is None else defaults:
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
    pm.check_pending()
    return pm


def _call_one(pm: pluggy.PluginManager, hook: str, name: str, **kwargs: Any) -> Any:
    plugin = pm.get_plugin(name)
    for impl in getattr(pm.hook, hook).get_hookimpls():
        if impl.plugin is plugin:
            return impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
    return None


def describe(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """What each loaded plug-in is and contributes."""
    sources = getattr(pm, "_maxbooster_sources", {})
    context = PluginContext(manager=pm)
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        info = _call_one(pm, "plugin_info", name) or {}
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or []))
        routes = _call_one(pm, "routes", name, context=context) or []
        perms = _call_one(pm, "permissions", name) or []
        infos.append(PluginInfo(
            name=name,
            version=str(info.get("version", "")),
            description=str(info.get("description", "")),
            source=sources.get(name, "registered"),
            hooks=hooks,
            routes=len(routes),
            permissions=tuple(p[0] for p in perms),
        ))
    return sorted(infos, key=lambda i: i.name)


def collect_migrations(pm: pluggy.PluginManager) -> list[Migration]:
    """Every migration the loaded plug-ins contribute (``Migration`` s or plain tuples)."""
    found = []
    for batch in pm.hook.migrations():
        for item in batch:
            if isinstance(item, Migration):
                found.append(item)
            else:
                component, version, name, sql = item
                found.append(Migration(component, int(version), name, sql))
    return found


def declared_permissions(pm: pluggy.PluginManager) -> dict[str, Permission]:
    """Each declared permission: who declared it, and the least role holding it (owner).

    A permission belongs to the one plug-in that declares it; a second plug-in
    declaring the same name is an error.
    """
    found: dict[str, Permission] = {}
    for plugin, registered in pm.list_name_plugin():
        if registered is None:  # blocked (disabled)
            continue
        for item in _call_one(pm, "permissions", plugin) or []:
            name, _description, *rest = item
            try:
                minimum = Role.parse(str(rest[0])) if rest else UNDECLARED_ROLE
            except AuthError as exc:
                raise PluginError(f"plug-in {plugin!r}, permission {name!r}: {exc}") from None
            other = found.get(name)
            if other is not None and other.plugin != plugin:
                raise PluginError(f"permission {name!r} is declared by both {other.plugin!r} "
                                  f"and {plugin!r}; a permission belongs to one plug-in: "
                                  "rename one or disable a plug-in")
            found[name] = Permission(plugin, minimum)
    return found


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: an account, the role held on it, and the token's user."""

    account_id: str
    role: str
    user: str = ""


@dataclass
class PluginRequest:
    """The framework-neutral request a plug-in's route handler receives.

    ``account_id``, ``role`` and ``user`` are empty on a public route.
    """

    method: str
    path: str
    match_info: dict[str, str]
    query: dict[str, str]
    headers: Mapping[str, str]
    account_id: str
    context: PluginContext
    _body: bytes = b""
    role: str = ""
    user: str = ""

    async def json(self) -> Any:
        """The body parsed as JSON; ValueError with a clear message when it is not."""
        if not self._body:
            return {}
        try:
            return json.loads(self._body)
        except ValueError as exc:
            raise ValueError(f"request body is not valid JSON: {exc}") from exc

    def body(self) -> bytes:
        """The raw request body."""
        return self._body


def project_account(project_id: str) -> str:
    """The business account of a project: plug-in data is kept per project."""
    return project_id


def _json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


async def default_identify(request: web.Request) -> Principal | None:
    """The principal of a request's token; None when it carries no token.

    A project token acts for that project's account (:func:`project_account`) with
    its role there; revoked tokens are refused like everywhere else. A server
    administrator's token (project ``*``) acts as owner of the account named by
    ``?account=``. A bad, expired or revoked token is refused (401/403), never
    treated as anonymous.
    """
    token = request_token(request)
    if token is None or TOKENS not in request.app:
        return None
    try:
        grant = await authenticate(request.app, token)
    except AccessDenied as exc:
        raise _json_error(web.HTTPForbidden, str(exc)) from exc
    except AuthError as exc:
        raise _json_error(web.HTTPUnauthorized,
                          f"{exc}; get a token with 'dawserver token'") from exc
    if grant.is_admin:
        account = request.query.get("account", "")
        if not account:
            raise _json_error(web.HTTPBadRequest, "an administrator token acts for any "
                              "account: name one with ?account=<project id>")
        return Principal(account, Role.OWNER.value, grant.user)
    return Principal(project_account(grant.project_id), grant.role.value, grant.user)


def _refusal(context: PluginContext, principal: Principal, permission: str,
             request: web.Request) -> str | None:
    """Why ``principal`` may not use ``permission`` (None when it may).

    Only the plug-in that declared ``permission`` may overrule the roles for it.
    """
    declared = context.permissions.get(permission)
    if declared is not None:
        pm = context.manager
        answer = _call_one(pm, "permission_allowed", declared.plugin,
                           account_id=principal.account_id, permission=permission,
                           request=request, role=principal.role)
        if answer is not None:
            return None if answer else HTTP_FORBIDDEN_MESSAGE.format(permission=permission)
    minimum = declared.minimum if declared is not None else UNDECLARED_ROLE
    try:
        held = Role.parse(principal.role).at_least(minimum)
    except AuthError:  # an unknown role holds nothing
        held = False
    if held:
        return None
    return HTTP_ROLE_MESSAGE.format(role=principal.role, permission=permission,
                                    minimum=minimum.value)


def _to_response(result: Any) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise PluginError(
            f"route handler returned {type(result).__name__}; expected (status, body[, headers])"
        )
    status, body, *rest = result
    headers = dict(rest[0]) if rest else {}
    if isinstance(body, bytes):
        headers.setdefault("Content-Type", "application/octet-stream")
        return web.Response(status=status, body=body, headers=headers)
    if isinstance(body, str):
        kind = "text/html" if body.lstrip().startswith("<") else "text/plain"
        headers.setdefault("Content-Type", f"{kind}; charset=utf-8")
        return web.Response(status=status, text=body, headers=headers)
    return web.json_response(body, status=status, headers=headers)


#: ``identify(request)``: the request's :class:`Principal` or None (may be a coroutine).
Identify = Callable[[web.Request], Any]


def _adapt(
    handler: Callable[[PluginRequest], Any],
    permission: str | None,
    context: PluginContext,
    identify: Identify,
) -> Callable[[web.Request], Any]:
    async def aiohttp_handler(request: web.Request) -> web.StreamResponse:
        principal = Principal("", "")
        if permission != hookspecs.PUBLIC:
            found = identify(request)
            found = await found if inspect.isawaitable(found) else found
            if found is None:
                return web.json_response({"error": HTTP_UNAUTHORIZED_MESSAGE}, status=401)
            principal = found
            refusal = permission and _refusal(context, principal, permission, request)
            if refusal:
                return web.json_response({"error": refusal}, status=403)
        body = await request.read() if request.can_read_body else b""
        plugin_request = PluginRequest(
            method=request.method, path=request.path, match_info=dict(request.match_info),
            query=dict(request.query), headers=request.headers,
            account_id=principal.account_id, context=context, _body=body,
            role=principal.role, user=principal.user,
        )
        return _to_response(await handler(plugin_request))

    return aiohttp_handler


PLUGINS_KEY = web.AppKey("plugins", pluggy.PluginManager)
PLUGIN_CONTEXT_KEY = web.AppKey("plugin_context", PluginContext)


def install(
    app: web.Application,
    config: Any = None,
    *,
    manager: pluggy.PluginManager | None = None,
    database: Database | None = None,
    identify: Identify = default_identify,
) -> PluginContext:
    """Load the enabled plug-ins into ``app``: routes now; database, jobs on startup.

    The database is ``database`` when given (its owner starts it), else one opened
    from ``config.database_url`` (SQLite in ``config.data_dir`` by default).
    ``identify(request)`` (may be async) gives the request's :class:`Principal`, or
    None when it has no credentials: every route but a public one then answers 401.
    """
    pm = manager or load_plugins(config)
    selection = plugin_selection(config)
    settings = {k: dict(v) for k, v in selection.items() if isinstance(v, Mapping)}
    data_dir = Path(_config_value(config, "data_dir", None) or ".")
    context = PluginContext(manager=pm, settings=settings, data_dir=data_dir, config=config,
                            db=database, permissions=declared_permissions(pm))
    app[PLUGINS_KEY] = pm
    app[PLUGIN_CONTEXT_KEY] = context
    for batch in pm.hook.routes(context=context):
        for route in batch:
            method, path, handler, *rest = route
            permission = rest[0] if rest else None
            if (permission not in (None, hookspecs.PUBLIC)
                    and permission not in context.permissions):
                logger.warning("route %s %s names undeclared permission %r: only %s may use it",
                               method, path, permission, UNDECLARED_ROLE.value)
            app.router.add_route(method, path, _adapt(handler, permission, context, identify))
    owns_db = database is None
    url = _config_value(config, "database_url", None)
    app.cleanup_ctx.append(_lifecycle(context, url if owns_db else None, owns_db))
    return context


def _lifecycle(context: PluginContext, url: str | None, owns_db: bool) -> Callable:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if owns_db:
                context.db = await stack.enter_async_context(
                    open_database(url, context.data_dir)
                )
            await start_plugins(context)
            tasks = run_background_jobs(context)
            try:
                yield
            finally:
                await stop_background_jobs(tasks)

    return lifecycle


async def start_plugins(context: PluginContext) -> None:
    """Apply every plug-in migration, then call the ``startup`` hooks."""
    db = context.database()
    await db.migrate(collect_migrations(context.manager))
    for result in context.manager.hook.startup(context=context):
        if inspect.isawaitable(result):
            await result


def run_background_jobs(context: PluginContext) -> list[asyncio.Task]:
    """Start every plug-in background job as a task."""
    tasks = []
    for batch in context.manager.hook.background_jobs(context=context):
        for name, function in batch:
            task = asyncio.create_task(function(context), name=f"plugin-job:{name}")
            task.add_done_callback(_report_crash)
            tasks.append(task)
    return tasks


def _report_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background job %s stopped: %r", task.get_name(), task.exception())


async def stop_background_jobs(tasks: list[asyncio.Task]) -> None:
    """Cancel the jobs and wait until they have stopped."""
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
    for result in context.manager.hook.project_rendered(
        context=context, account_id=account_id, project_id=project_id, path=str(path),
        metadata=dict(metadata or {}),
    ):
        if inspect.isawaitable(result):
            await result
