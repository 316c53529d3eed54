"""The OpenAPI 3.1 document of every served route, and its reference page.

Generated from the route declarations (:mod:`dawserver.router`): paths and
methods, path and query parameters, request bodies and answers from their models,
the permission each route needs (``x-permission``) and the most bytes of request
body it reads (``x-max-body-bytes``). ``GET /api/openapi.json`` serves it and
``GET /api/docs`` renders it with Redoc, bundled in ``dawserver/static`` (built
from ``web/``), so the page needs no network.
"""

from __future__ import annotations

import inspect
import re
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from .authorization import ACCOUNT_PARAMETER, PROJECT_PARAMETER
from .declarations import ErrorBody, Media, ProblemBody, Scope, role_of
from .errors import ERROR_STATUSES, PROBLEM_JSON
from .keys import CONFIG
from .plugin_api import PUBLIC, Request, Route
from .public_api.idempotency import HEADER as IDEMPOTENCY_HEADER
from .router import ROUTE_TABLE, RouteTable, ServedRoute, body_limit

OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
VERSION = "0.1.0"
REF = "#/components/schemas/{model}"
_PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A token from `dawserver token` or a project owner."},
    "token": {"type": "apiKey", "in": "query", "name": "token",
              "description": "The same token as `?token=...`."},
}
REDOC_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Max Booster Studio HTTP API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="{spec}"></redoc><script src="/static/redoc.standalone.js"></script>
</body></html>
"""


def openapi_path(path: str) -> str:
    """``path`` as OpenAPI writes it: ``{name:regex}`` becomes ``{name}``."""
    return _PARAMETER.sub(lambda m: "{" + m.group(1) + "}", path)


def _binary(media: Media | tuple[str, ...]) -> dict[str, Any]:
    types = media.types if isinstance(media, Media) else media
    return {t: {"schema": {"type": "string"} if t.startswith("text/")
                or t.endswith(("xml", "json")) else {}} for t in types}


def _text(handler: Any) -> tuple[str, str]:
    doc = inspect.cleandoc(handler.__doc__ or "")
    summary, _, rest = doc.partition("\n")
    return summary.strip(), rest.strip()


def _permission_text(route: Route) -> str:
    permission = route.permission
    if permission is PUBLIC:
        return "Public: no token needed."
    if permission.scope is Scope.SERVER:
        return (f"Needs `{permission.name}`: {permission.description} (server administrator "
                "tokens only).")
    return (f"Needs `{permission.name}`: {permission.description} "
            f"({role_of(permission.minimum).value} or higher).")


class _Schemas:
    """Every model of the served routes, turned into JSON Schema with shared components."""

    def __init__(self, served: list[ServedRoute]) -> None:
        inputs: list[tuple[Any, Any, TypeAdapter]] = [
            ("error", "serialization", TypeAdapter(ErrorBody)),
            ("problem", "serialization", TypeAdapter(ProblemBody))]
        for index, item in enumerate(served):
            route = item.route
            if route.body is not None and not isinstance(route.body, Media):
                inputs.append(((index, "body"), "validation", TypeAdapter(route.body)))
            if route.query is not None:
                inputs.append(((index, "query"), "validation", TypeAdapter(route.query)))
            if item.response is not None:
                inputs.append(((index, "response"), "serialization", item.response))
        found, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
        self.found = {key: schema for (key, _mode), schema in found.items()}
        self.components = defs.get("$defs", {})

    def get(self, index: int, part: str) -> dict[str, Any] | None:
        return self.found.get((index, part))

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref", "")
        return self.components[ref.rsplit("/", 1)[-1]] if ref else schema


def _parameters(item: ServedRoute, index: int, schemas: _Schemas) -> list[dict[str, Any]]:
    route = item.route
    names = _PARAMETER.findall(route.path)
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in names]
    query = schemas.get(index, "query")
    if query is not None:
        model = schemas.resolve(query)
        required = set(model.get("required", []))
        for name, schema in model.get("properties", {}).items():
            parameter = {"name": name, "in": "query", "required": name in required,
                         "schema": schema}
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameters.append(parameter)
    if route.permission.scope is Scope.ACCOUNT and PROJECT_PARAMETER not in names:
        parameters.append({
            "name": ACCOUNT_PARAMETER, "in": "query", "required": False,
            "schema": {"type": "string"},
            "description": "With an administrator token: the account (project id) to act "
                           "for. Ignored for project tokens."})
    if route.idempotent:
        parameters.append({
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                       "pattern": "^[!-~]+$"},
            "description": "Makes a retry safe: the same key and request replay the first "
                           "answer for 24 hours; another request with the key answers 422."})
    return parameters


def _operation(item: ServedRoute, index: int, schemas: _Schemas, operation_id: str,
               server_limit: int | None) -> dict[str, Any]:
    route = item.route
    summary, description = _text(route.handler)
    operation: dict[str, Any] = {
        "operationId": operation_id, "tags": [item.plugin], "summary": summary,
        "description": "\n\n".join(p for p in (description, _permission_text(route)) if p),
        "x-permission": route.permission.name,
    }
    parameters = _parameters(item, index, schemas)
    if parameters:
        operation["parameters"] = parameters
    if isinstance(route.body, Media):
        operation["requestBody"] = {"required": False, "content": _binary(route.body)}
    elif route.body is not None:
        schema = schemas.get(index, "body")
        media = {"application/json": {"schema": schema}}
        if route.forms:
            media["application/x-www-form-urlencoded"] = {"schema": schema}
        required = bool(schemas.resolve(schema).get("required"))
        operation["requestBody"] = {"required": required, "content": media}
    limit = body_limit(route, server_limit)
    if route.body is not None and limit is not None and not (
            isinstance(route.body, Media) and route.body.stream):
        operation["x-max-body-bytes"] = limit
    if isinstance(route.response, Media):
        content = _binary(route.response)
    else:
        content = {"application/json": {"schema": schemas.get(index, "response")},
                   **_binary(route.media)}
    responses: dict[str, Any] = {
        str(status): {"description": "Success", "content": content}
        for status in item.statuses}
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}
    statuses = ERROR_STATUSES
    if route.problem:
        error = {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="ProblemBody")}}}
        statuses = tuple(sorted({*ERROR_STATUSES, HTTPStatus.PRECONDITION_FAILED}))
        if route.method.upper() == "GET":
            responses["304"] = {"description": "Not Modified: the If-None-Match ETag is "
                                               "still current"}
    for status in statuses:
        responses[str(int(status))] = {"description": status.phrase, "content": error}
    responses["default"] = {"description": "Any other error", "content": error}
    operation["responses"] = responses
    if route.permission is PUBLIC:
        operation["security"] = []
    if route.sunset is not None:
        operation["deprecated"] = True
    return operation


def openapi_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route served by ``app``."""
    served = app.get(ROUTE_TABLE, RouteTable()).served
    schemas = _Schemas(served)
    config = app.get(CONFIG)
    server_limit = config.max_message_bytes if config is not None else None
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for index, item in enumerate(served):
        route = item.route
        operation_id = route.name or route.handler.__name__
        if operation_id in used:
            operation_id = f"{operation_id}_{route.method.lower()}"
        used.add(operation_id)
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = _operation(
            item, index, schemas, operation_id, server_limit)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Max Booster Studio", "version": VERSION,
                 "description": "The HTTP API of a Max Booster Studio server: the core's "
                                "routes and every loaded plug-in's, generated from their "
                                "declarations. Errors are `{\"error\": message}`."},
        "paths": paths,
        "components": {"schemas": schemas.components, "securitySchemes": SECURITY_SCHEMES},
        "security": [{"bearer": []}, {"token": []}],
        "tags": sorted(({"name": p} for p in {item.plugin for item in served}),
                       key=lambda t: t["name"]),
    }


async def openapi_json(request: Request) -> dict[str, Any]:
    """This document: every route of this server as OpenAPI 3.1."""
    table = request.app[ROUTE_TABLE]
    if table.openapi is None:
        table.openapi = openapi_document(request.app)
    return table.openapi


async def reference_page(request: Request) -> str:
    """A readable reference of this API (Redoc over ``/api/openapi.json``)."""
    return REDOC_PAGE.format(spec=OPENAPI_PATH)


ROUTES = [
    Route(method="GET", path=OPENAPI_PATH, handler=openapi_json, permission=PUBLIC,
          response=dict[str, Any]),
    Route(method="GET", path=DOCS_PATH, handler=reference_page, permission=PUBLIC,
          response=Media("text/html")),
]
