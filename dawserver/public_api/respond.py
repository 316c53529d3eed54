"""Answers of ``/api/v1``: JSON bytes with an ETag, sparse when asked, 304 when unchanged.

Handlers return :func:`answer` (an aiohttp response): the model is validated by
pydantic when it is built, dumped once, cut to ``fields`` and tagged with the ETag of
the bytes sent. A conditional GET whose ``If-None-Match`` names that ETag gets 304
without a body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from .conditional import etag_of, none_match
from .fields import sparse

#: Answers depend on who asks: shared caches must not keep them.
CACHE_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Authorization, Cookie"}


def representation(model: BaseModel) -> bytes:
    """The full JSON representation of ``model`` (what the ETag of writes compares)."""
    return model.__pydantic_serializer__.to_json(model)


def _sparse_bytes(model: BaseModel, fields: frozenset[str]) -> bytes:
    data = model.model_dump(mode="json")
    if isinstance(data.get("data"), list):  # a page: cut each item, keep next_cursor
        data["data"] = [sparse(item, fields) for item in data["data"]]
    else:
        data = sparse(data, fields)
    return json.dumps(data, separators=(",", ":")).encode()


def answer(request: Any, model: BaseModel, *, status: int = 200,
           fields: frozenset[str] | None = None,
           headers: Mapping[str, str] | None = None) -> web.Response:
    """``model`` as the answer to ``request`` (a :class:`dawserver.plugin_api.Request`)."""
    body = representation(model) if fields is None else _sparse_bytes(model, fields)
    etag = etag_of(body)
    sent = {**CACHE_HEADERS, "ETag": etag, **(headers or {})}
    if status == 200 and request.native.method in ("GET", "HEAD") and none_match(
            request.headers, etag):
        return web.Response(status=304, headers=sent)
    return web.Response(status=status, body=body, headers=sent,
                        content_type="application/json")
