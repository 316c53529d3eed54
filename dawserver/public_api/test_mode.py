"""What a test-mode key reaches on plug-ins' routes: their sandbox data, never live data.

A plug-in's object is a sandbox object when ``api_sandbox`` marks it under the account
(``kind`` the plug-in's name, ``object_id`` ``"{plugin}:{id}"``:
:meth:`~dawserver.public_api.sandbox.Sandbox.add_object`). The core confines every
plug-in route, so no plug-in has to remember to:

- :func:`confined`, on each ``/api/v1`` route of a plug-in: for an API key, every path
  parameter (``{release_id}``) must name an object of the key's mode (test: a sandbox
  one, live: any other), else 404; what lies under it (a release's deliveries) is in
  its mode. A list without path parameters (``GET /api/v1/releases``) keeps only the
  items (by ``id``) of the key's mode: :func:`in_mode`, which ``answer_page`` applies.
- :func:`live_only`, on each of a plug-in's other routes: they serve and change live
  data (Stripe, stores, social networks), so a test-mode key is refused (403).

Signed-in people and project tokens are not keys: they see both modes.

A plug-in makes sandbox objects through the plug-in API: :func:`mark_sandbox` marks
what a test-mode key made (with ``tx``, in the transaction that makes it), and
:func:`in_sandbox` tells a worker (a delivery) that an object is a sandbox one, so its
side effects (stores, money, networks) are simulated.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from ..declarations import Handler, Request, Route
from ..errors import Forbidden, NotFound
from .state import api_state

T = TypeVar("T")

NOT_IN_MODE = ("there is no {what} {value!r} among this account's {mode} data (a test-mode "
               "key reaches sandbox data only, a live key live data only)")
LIVE_ONLY = ("a test-mode key reaches sandbox data only, and plug-in {plugin!r}'s route "
             "{route} serves live data (and may move money or post to real networks); "
             "use a live key (mbk_live_...) for it, or test against its /api/v1 routes")


@dataclasses.dataclass(frozen=True)
class ModeView:
    """A key's mode and its account's sandbox objects of one plug-in."""

    test: bool
    sandbox: frozenset[str]

    def reaches(self, object_id: str) -> bool:
        """Whether ``object_id`` is of this mode."""
        return (object_id in self.sandbox) == self.test


#: Where a plug-in list's request keeps the view that :func:`in_mode` applies.
VIEW = web.RequestKey("public_api_mode_view", ModeView)


def confined(handler: Handler, plugin: str) -> Handler:
    """``handler`` of a plug-in's ``/api/v1`` route, reaching only the key's mode (one
    that is no coroutine function is left for the route's check to refuse)."""
    if not inspect.iscoroutinefunction(handler):
        return handler

    @functools.wraps(handler)
    async def in_its_mode(request: Request) -> Any:
        principal = request.principal
        if principal.via == "key":
            marks = await api_state(request.context).sandbox.marks(principal.account_id,
                                                                   plugin)
            view = ModeView(principal.test, marks)
            for name, value in request.params.items():
                if not view.reaches(value):
                    raise NotFound(NOT_IN_MODE.format(
                        what=name.removesuffix("_id").replace("_", " "), value=value,
                        mode="sandbox" if view.test else "live"))
            if not request.params and request.native is not None:
                request.native[VIEW] = view
        return await handler(request)

    return in_its_mode


def live_only(route: Route, plugin: str) -> Route:
    """``route`` of plug-in ``plugin`` outside ``/api/v1``, refusing test-mode keys."""
    handler = route.handler
    if not inspect.iscoroutinefunction(handler):
        return route  # the route's check refuses it, naming the plug-in

    @functools.wraps(handler)
    async def live_data_only(request: Request) -> Any:
        if request.test_mode:
            raise Forbidden(LIVE_ONLY.format(plugin=plugin, route=route.label))
        return await handler(request)

    return dataclasses.replace(route, handler=live_data_only)


async def mark_sandbox(context: Any, plugin: str, account_id: str, object_id: str, *,
                       tx: Any = None) -> None:
    """Mark plug-in ``plugin``'s object ``object_id`` of ``account_id`` a sandbox object
    (what a test-mode key made: ``request.test_mode``); with ``tx``, in the transaction
    that makes the object, so it is never seen live. Its ``/api/v1`` routes then reach
    it with test-mode keys only."""
    await api_state(context).sandbox.add_object(account_id, plugin, object_id, tx=tx)


async def in_sandbox(context: Any, plugin: str, account_id: str, object_id: str) -> bool:
    """Whether plug-in ``plugin``'s object ``object_id`` of ``account_id`` is a sandbox
    object (its side effects must be simulated, never reach a real store or network)."""
    found = await api_state(context).sandbox.marked(account_id, [f"{plugin}:{object_id}"])
    return bool(found)


async def sandbox_ids(context: Any, plugin: str, account_id: str, object_ids: Iterable[str],
                      *, tx: Any = None) -> set[str]:
    """Those of plug-in ``plugin``'s ``object_ids`` of ``account_id`` that are sandbox
    objects, a query per 1,000 ids (in ``tx`` if given: a plug-in transaction's own
    reads)."""
    prefix = f"{plugin}:"
    found = await api_state(context).sandbox.marked(
        account_id, [prefix + object_id for object_id in object_ids], tx=tx)
    return {object_id.removeprefix(prefix) for object_id in found}


def in_mode(request: Any, items: Sequence[T]) -> Sequence[T]:
    """Those of a plug-in list's ``items`` (by ``id``) in the key's mode (all for others)."""
    native = getattr(request, "native", None)
    view = native.get(VIEW) if native is not None else None
    if view is None:
        return items
    return [item for item in items if view.reaches(item.id)]  # type: ignore[attr-defined]
