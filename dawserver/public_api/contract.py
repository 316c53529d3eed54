"""What a plug-in needs to serve part of ``/api/v1``: its routes' mounting and answers.

A plug-in returns :class:`~dawserver.declarations.Route` s from its ``public_routes``
hook with paths relative to ``/api/v1`` (``/releases``); :func:`mounted` puts each
under ``/api/v1`` with problem-details errors, so it is in the v1 OpenAPI document,
the docs portal and the SDKs' types like the core's own routes, and confined to the
key's mode (:mod:`.test_mode`). Handlers answer with
:func:`answer_one` and :func:`answer_page`: the same ETags, sparse fields and signed
cursors as the core's resources. A list too long to read whole seeks in its store:
:func:`page_after` gives the position the page starts after, :func:`key_sandbox` the
key's mode, and :func:`answer_seeked` answers the rows read. The plug-in API re-exports
these names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from ..declarations import Route
from ..errors import PluginError
from .fields import parse_fields
from .resources import V1, Listing, One, Resource, rfc3339
from .respond import answer
from .state import api_state
from .test_mode import confined, in_mode, in_sandbox, mark_sandbox, sandbox_ids

T = TypeVar("T", bound=BaseModel)

__all__ = ["Listing", "One", "Resource", "answer_one", "answer_page", "answer_seeked",
           "in_sandbox", "key_sandbox", "mark_sandbox", "mounted", "page_after", "rfc3339",
           "sandbox_ids"]


def mounted(route: Route, plugin: str) -> Route:
    """``route`` of plug-in ``plugin``, declared relative to ``/api/v1``, under it."""
    if not route.path.startswith("/") or route.path.startswith(f"{V1}/"):
        raise PluginError(f"plug-in {plugin!r}: public route {route.label!r} must be a path "
                          f"relative to {V1} starting with '/' (e.g. '/releases')")
    name = route.name or f"v1_{plugin.replace('.', '_')}_{route.handler.__name__}"
    return dataclasses.replace(route, path=f"{V1}{route.path}", problem=True, name=name,
                               handler=confined(route.handler, plugin))


def answer_one(request: Any, item: BaseModel, *, status: int = 200,
               headers: dict[str, str] | None = None) -> web.Response:
    """``item`` (a :class:`Resource`) as the answer, cut to the ``fields`` asked for
    (``status`` and ``headers``: a write's, such as 201 and ``Location``)."""
    fields = parse_fields(getattr(request.query, "fields", None), type(item))
    return answer(request, item, fields=fields, status=status, headers=headers)


def answer_page(request: Any, page: type[BaseModel], items: Sequence[T],
                key: Callable[[T], Sequence[Any]], *, list_name: str = "") -> web.Response:
    """The page of ``items`` that ``request.query`` (a :class:`Listing`) asks for.

    ``page`` is the page model (``data`` and ``next_cursor``), ``key`` a unique sort key
    of an item (JSON values); the cursor is bound to ``list_name`` (default: the path).
    A key's list keeps only the items of its mode (:mod:`.test_mode`).
    """
    items = in_mode(request, items)
    query: Listing = request.query
    item_model = page.model_fields["data"].annotation.__args__[0]  # list[Item]
    fields = parse_fields(query.fields, item_model)
    scope = list_name or request.native.path
    chosen, after = api_state(request.context).cursors.page(
        scope, items, key, query.limit, query.cursor)
    return answer(request, page(data=chosen, next_cursor=after), fields=fields)


def page_after(request: Any, shape: Sequence[type | tuple[type, ...]], *,
               list_name: str = "") -> tuple[Any, ...] | None:
    """The sort key of the last item of the previous page (None: the first page), for a
    list its store seeks: read ``request.query.limit + 1`` rows after it, in key order,
    and answer them with :func:`answer_seeked`. ``shape`` is one type per key value; a
    cursor of another list or shape answers 400."""
    return api_state(request.context).cursors.after(list_name or request.native.path,
                                                    request.query.cursor, shape)


def key_sandbox(request: Any) -> bool | None:
    """Whether the request's API key reaches only sandbox objects (True: a test-mode key)
    or only live ones (False); None for a signed-in person, who sees both. A store that
    seeks a list filters on it, as :func:`answer_page` does for a list read whole."""
    principal = request.principal
    return principal.test if principal.via == "key" else None


def answer_seeked(request: Any, page: type[BaseModel], rows: Sequence[T],
                  key: Callable[[T], Sequence[Any]], *, list_name: str = "") -> web.Response:
    """The page of ``rows``: items of the key's mode after :func:`page_after`'s position,
    in ``key`` order (a unique sort key), up to ``limit + 1`` of them (one more tells
    that a next page exists)."""
    query: Listing = request.query
    item_model = page.model_fields["data"].annotation.__args__[0]  # list[Item]
    fields = parse_fields(query.fields, item_model)
    chosen, after = api_state(request.context).cursors.cut(
        list_name or request.native.path, in_mode(request, rows), key, query.limit)
    return answer(request, page(data=chosen, next_cursor=after), fields=fields)
