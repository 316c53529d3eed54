"""The plug-in contract: every hook a business module may implement.

Plug-ins mark their functions with ``pluggy.HookimplMarker("maxbooster")`` (or
:data:`hookimpl` here); they never need to import the core. Results are plain
data so a plug-in depends on nothing but the standard library:

- a route is ``(method, path, handler)`` or ``(method, path, handler, permission)``;
  ``handler(request)`` is a coroutine taking a :class:`dawserver.plugins.PluginRequest`
  and returning ``(status, body)`` or ``(status, body, headers)``, where ``body`` is a
  JSON-able dict/list, a ``str`` (HTML when it starts with ``<``) or ``bytes``. Every
  route needs a valid token (HTTP 401 without one) unless its permission is
  :data:`PUBLIC` (``"public"``); a route naming a permission also needs a role that
  holds it (HTTP 403);
- a migration is a :class:`database.Migration`, applied once, in version order per
  plug-in: a plug-in keeps them as ``migrations/NNNN_name.sql`` files beside its code
  and returns ``database.load_migrations(name, folder)`` (docs/plugins.md); a tuple
  ``(plugin, version, name, sql)`` is accepted too;
- a background job is ``(name, coroutine_function)`` run as ``await fn(context)`` while
  the server runs and cancelled on shutdown;
- a permission is ``(name, description)`` or ``(name, description, minimum_role)``:
  tokens of that role or above hold it (roles: ``viewer`` < ``editor`` < ``owner``;
  without a role only owners do). Only the plug-in that declared a permission is
  asked ``permission_allowed`` about it, and may overrule the roles for it.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "maxbooster"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: The permission of a route anyone may use without a token (e.g. a public page).
PUBLIC = "public"


@hookspec
def plugin_info() -> dict[str, str]:
    """Name, version and one-line description of the plug-in."""


@hookspec
def migrations() -> list[Any]:
    """Database migrations (``database.Migration`` s) the plug-in needs."""


@hookspec
def routes(context: Any) -> list[tuple]:
    """HTTP routes ``(method, path, handler[, permission])`` served under the app."""


@hookspec
def permissions() -> list[tuple[str, ...]]:
    """Permissions ``(name, description[, minimum_role])`` the plug-in's routes require."""


@hookspec(firstresult=True)
def permission_allowed(account_id: str, permission: str, request: Any, role: str
                       ) -> bool | None:
    """Whether ``account_id`` (role ``role``) holds this plug-in's ``permission``; None: roles."""


@hookspec
def background_jobs(context: Any) -> list[tuple[str, Any]]:
    """Long-running jobs ``(name, async fn(context))`` to run while the server is up."""


@hookspec
def startup(context: Any) -> Any:
    """Called once after migrations and before jobs start; may return an awaitable."""


@hookspec
def project_rendered(
    context: Any, account_id: str, project_id: str, path: str, metadata: dict[str, Any]
) -> None:
    """React to a project rendered to the audio file at ``path`` (document hook)."""


@hookspec
def business_event(context: Any, name: str, payload: dict[str, Any]) -> None:
    """Observe an event one plug-in announced (e.g. "presave.release_day")."""


@hookspec
def distribution_stores(context: Any) -> list[Any]:
    """Store connectors (objects with ``name`` and ``async deliver(package)``)."""
