"""The OpenAPI 3.1 document of ``/api/v1`` alone, cut from the server's generated one.

It keeps the ``/api/v1`` paths and the schemas they use, adds the public API's
headers (``If-None-Match`` on reads, ``If-Match`` on PATCH and DELETE,
``Idempotency-Key`` on POST) and carries :data:`VERSION`: the ``1`` of the path is its
major version, and an incompatible change needs a new major version and path
(:mod:`.compat` and ``scripts/check_openapi_compat.py`` check it).
"""

from __future__ import annotations

import copy
from typing import Any

from ..openapi import openapi_document
from ..plugin_api import PUBLIC, Request, Route
from ..router import ROUTE_TABLE
from .resources import V1

#: The version of the v1 document: minor for additions, major (a new path) for breaks.
VERSION = "1.18.0"
OPENAPI_V1_PATH = f"{V1}/openapi.json"
STATE = "public_api.openapi"
REF_PREFIX = "#/components/schemas/"
_HEADERS = {
    "get": {"name": "If-None-Match", "in": "header", "required": False,
            "schema": {"type": "string", "maxLength": 1000},
            "description": "An ETag from an earlier answer: 304 while it is still current."},
    "patch": {"name": "If-Match", "in": "header", "required": False,
              "schema": {"type": "string", "maxLength": 1000},
              "description": "The resource's ETag: 412 if it changed since."},
    "post": {"name": "Idempotency-Key", "in": "header", "required": False,
             "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": "^[!-~]+$"},
             "description": "Makes a retry safe: the same key and body replay the first "
                            "answer for 24 hours; another body with the key answers 422."},
}
_HEADERS["delete"] = _HEADERS["patch"]


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """``node`` with every schema ``$ref`` renamed by ``names``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            return {**node, "$ref": REF_PREFIX + names[ref.removeprefix(REF_PREFIX)]}
        return {key: _renamed(value, names) for key, value in node.items()}
    if isinstance(node, list):
        return [_renamed(value, names) for value in node]
    return node


def _short_names(used: set[str]) -> dict[str, str]:
    """Each schema's short name (``a__b__Track`` → ``Track``) where the v1 part keeps it
    unique: other modules' models of the same name never rename v1's schemas."""
    short = {name: name.rsplit("__", 1)[-1] for name in used}
    taken = list(short.values())
    return {name: s if taken.count(s) == 1 else name for name, s in short.items()}


def v1_document(full: dict[str, Any]) -> dict[str, Any]:
    """The ``/api/v1`` part of the server's OpenAPI document ``full``."""
    paths = {path: copy.deepcopy(item) for path, item in full["paths"].items()
             if path.startswith(f"{V1}/")}
    for item in paths.values():
        for method, operation in item.items():
            header = _HEADERS.get(method)
            if header is not None:
                operation.setdefault("parameters", []).append(dict(header))
            operation["tags"] = ["v1"]
    schemas = full["components"]["schemas"]
    used: set[str] = set()
    _refs(paths, used)
    pending = list(used)
    while pending:
        inner: set[str] = set()
        _refs(schemas[pending.pop()], inner)
        pending.extend(inner - used)
        used |= inner
    names = _short_names(used)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Max Booster Studio public API", "version": VERSION,
                 "description": "The public REST API (docs/public-api.md): stable ids, "
                                "cursor pagination, sparse fields, ETags, idempotency keys; "
                                "errors are application/problem+json (RFC 9457)."},
        "paths": _renamed(dict(sorted(paths.items())), names),
        "components": {"schemas": {names[name]: _renamed(schemas[name], names)
                                   for name in sorted(used, key=names.__getitem__)},
                       "securitySchemes": full["components"]["securitySchemes"]},
        "security": full["security"],
        "tags": [{"name": "v1"}],
    }


async def openapi_v1(request: Request) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the public API `/api/v1` (this document)."""
    state = request.context.state
    if STATE not in state:
        table = request.app[ROUTE_TABLE]
        if table.openapi is None:
            table.openapi = openapi_document(request.app)
        state[STATE] = v1_document(table.openapi)
    return state[STATE]


ROUTES = [Route(method="GET", path=OPENAPI_V1_PATH, handler=openapi_v1, permission=PUBLIC,
                response=dict[str, Any], problem=True)]
