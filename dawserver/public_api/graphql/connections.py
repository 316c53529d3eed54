"""Cursor connections: GraphQL's pages, with REST's signed cursors.

Every paged list (``projects``, a project's ``transcripts``, a transcript's ``words``)
is ``edges { cursor node }`` and ``pageInfo { hasNextPage endCursor }``, paged by
:meth:`..cursor.Cursors.page` with ``first`` (1 to :data:`.limits.MAX_PAGE`) and
``after`` (an ``endCursor``). A cursor is bound to its list: one from another list,
project or transcript is ``BAD_USER_INPUT``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError

from ...errors import ApiError
from ..state import api_state
from .limits import MAX_PAGE

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def page(
    info: strawberry.Info,
    scope: str,
    items: Sequence[T],
    key: Callable[[T], Sequence[Any]],
    first: int,
    after: str | None,
) -> tuple[list[tuple[str, T]], PageInfo]:
    """The ``(cursor, item)`` pairs of the page of ``items`` (sorted by the unique
    ``key``) after cursor ``after`` in the list ``scope``, and its page info."""
    if not 1 <= first <= MAX_PAGE:
        raise GraphQLError(
            f"first must be 1 to {MAX_PAGE}, got {first}", extensions={"code": "BAD_USER_INPUT"}
        )
    cursors = api_state(info.context["context"]).cursors
    try:
        chosen, next_cursor = cursors.page(scope, items, key, first, after)
    except ApiError as exc:
        raise GraphQLError(exc.message, extensions={"code": "BAD_USER_INPUT"}) from None
    pairs = [(cursors.encode(scope, key(item)), item) for item in chosen]
    return pairs, PageInfo(
        has_next_page=next_cursor is not None, end_cursor=pairs[-1][0] if pairs else None
    )
