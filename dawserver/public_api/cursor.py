"""Opaque cursors for paginated lists: a signed position, never an offset.

A cursor is ``base64url(JSON position) "." base64url(HMAC-SHA256)[:22]``, bound to
the list it came from (``scope``), so a client can neither forge a position nor use
one list's cursor on another; a cursor that fails either check answers 400. A list
kept in its own order (a document's tracks) names its last item given and where it
stood (:meth:`Cursors.page_in_place`), so items added or removed before it between
pages neither repeat nor skip one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import BadRequest

T = TypeVar("T")
BAD_CURSOR = ("cursor {cursor!r} is not one this list gave out ({why}); pass the "
              "next_cursor of the previous page unchanged, or omit cursor to start over")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Signs and checks cursors with one key (derived from the server's secret)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, scope: str, payload: str) -> str:
        digest = hmac.new(self._key, f"{scope}\n{payload}".encode(), hashlib.sha256).digest()
        return _b64(digest)[:22]

    def encode(self, scope: str, position: Sequence[Any]) -> str:
        """The cursor of ``position`` (JSON-able values) in the list ``scope``."""
        payload = _b64(json.dumps(list(position), separators=(",", ":")).encode())
        return f"{payload}.{self._mac(scope, payload)}"

    def decode(self, scope: str, cursor: str) -> list[Any]:
        """The position in ``cursor``; BadRequest if forged, damaged or another list's."""
        payload, _, mac = cursor.partition(".")
        if not payload or not hmac.compare_digest(mac.encode(), self._mac(scope, payload)
                                                  .encode()):
            raise BadRequest(BAD_CURSOR.format(cursor=cursor[:80], why="bad signature"))
        try:
            position = json.loads(_unb64(payload))
        except ValueError:
            raise BadRequest(BAD_CURSOR.format(cursor=cursor[:80], why="unreadable")) from None
        if not isinstance(position, list):
            raise BadRequest(BAD_CURSOR.format(cursor=cursor[:80], why="not a position"))
        return position

    def after(self, scope: str, cursor: str | None,
              shape: Sequence[type | tuple[type, ...]]) -> tuple[Any, ...] | None:
        """The position in ``cursor`` (None without one), checked against ``shape``: one
        type per value, for lists whose store seeks the position itself."""
        if not cursor:
            return None
        position = self.decode(scope, cursor)
        if len(position) != len(shape) or not all(
                isinstance(value, kind) and not isinstance(value, bool)
                for value, kind in zip(position, shape, strict=True)):
            raise BadRequest(BAD_CURSOR.format(cursor=cursor[:80],
                                               why="a position of another shape"))
        return tuple(position)

    def cut(self, scope: str, rows: Sequence[T], key: Callable[[T], Sequence[Any]],
            limit: int) -> tuple[list[T], str | None]:
        """The page of ``rows``, already in ``key`` order after the cursor and up to
        ``limit + 1`` long, and its ``next_cursor`` (None on the last page)."""
        chosen = list(rows[:limit])
        more = len(rows) > limit
        return chosen, (self.encode(scope, key(chosen[-1])) if more and chosen else None)

    def page(self, scope: str, items: Sequence[T], key: Callable[[T], Sequence[Any]],
             limit: int, cursor: str | None) -> tuple[list[T], str | None]:
        """The page of ``items`` (sorted by ``key``, a unique key) after ``cursor``.

        Returns the items and the ``next_cursor`` (None on the last page). For lists that
        fit in memory; a long one seeks in its store (:meth:`after`, :meth:`cut`).
        """
        ordered = sorted(items, key=lambda item: tuple(key(item)))
        if cursor:
            after = tuple(self.decode(scope, cursor))
            try:
                ordered = [item for item in ordered if tuple(key(item)) > after]
            except TypeError:
                raise BadRequest(BAD_CURSOR.format(cursor=cursor[:80],
                                                   why="a position of another shape")) from None
        return self.cut(scope, ordered, key, limit)

    def page_in_place(self, scope: str, items: Sequence[T], ident: Callable[[T], str],
                      limit: int, cursor: str | None) -> tuple[list[T], str | None]:
        """The page of ``items``, a list in its own order that others may edit between
        pages, after ``cursor``, and its ``next_cursor``. The cursor names the last item
        given (``ident``) and its index: the page starts after wherever that item is now,
        or at its old index when it is gone."""
        start = 0
        position = self.after(scope, cursor, (int, str))
        if position is not None:
            index, last = position
            now = next((n for n, item in enumerate(items) if ident(item) == last), None)
            start = now + 1 if now is not None else max(index, 0)
        chosen = list(items[start:start + limit])
        more = len(items) > start + limit
        return chosen, (self.encode(scope, [start + len(chosen) - 1, ident(chosen[-1])])
                        if more and chosen else None)
