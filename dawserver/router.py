"""Serving declared routes: check the declaration, then per request check and validate.

:func:`add_route` refuses a route whose declaration is incomplete (no declared
permission, no models) with an error naming it, and registers an aiohttp
handler that, for every request: checks the permission (:func:`require`),
validates the query parameters and the body against the route's models (400 for
a body that is not JSON, 422 naming the fields), calls the handler, and checks its
answer against the response model before sending it.

A body is read up to the route's limit (:func:`body_limit`): a ``Content-Length`` over it
is refused before a byte is read, and a chunked body is read no further than one byte
past it, so a client cannot make the server hold more than the route accepts.
"""

from __future__ import annotations

import inspect
import json
import logging
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from accounts.errors import AccountError
from collab.errors import ProjectBusy
from database.errors import unreachable

from .account_errors import api_error
from .authorization import ACCOUNT_PARAMETER, require
from .declarations import (
    JSON_BODY_LIMIT,
    PUBLIC,
    FileReply,
    Media,
    Query,
    Reply,
    Request,
    Route,
)
from .errors import (
    INVALID_INPUT,
    INVALID_JSON,
    PROBLEM_JSON,
    ApiError,
    BadRequest,
    Conflict,
    InsufficientStorage,
    PayloadTooLarge,
    PluginError,
    Unavailable,
    Unprocessable,
    disk_full,
    problem_body,
    retry_soon,
    storage_failed,
)
from .file_answer import CountedFileResponse, FileAnswer
from .keys import PLUGIN_CONTEXT_KEY
from .public_api.idempotency import idempotent
from .public_api.state import api_state
from .storage.base import (
    ObjectNotFound,
    StorageError,
    content_disposition,
)

log = logging.getLogger(__name__)

BODY_METHODS = ("POST", "PUT", "PATCH")
PLAIN_METHODS = ("GET", "DELETE", "HEAD")
FORM = "application/x-www-form-urlencoded"
#: Query parameters the server itself reads (authentication), never given to a model.
AUTH_PARAMETERS = ("token", ACCOUNT_PARAMETER)
INTERNAL_ERROR = "route {route} failed on the server; the server log has the details"
DISK_FULL = ("the server's disk is full, so nothing of this request was kept; free space "
             "(or ask the operator to) and send it again")
DATABASE_DOWN = ("the server cannot reach its database right now (it may be restarting); "
                 "send the request again in a few seconds")
BAD_ANSWER = ("route {route} answered {problem}; this is a bug in the route's handler "
              "or its declared response model")
TOO_LARGE = ("the request body is over the size limit of {route}: {size} ({limit} bytes){why}; "
             "send at most {limit} bytes (each route's limit is x-max-body-bytes in "
             "/api/openapi.json)")
SERVER_LIMIT = ", the server's limit (dawserver serve --max-message-bytes)"


@dataclass(frozen=True)
class ServedRoute:
    """A registered route, its plug-in, and its compiled models."""

    route: Route
    plugin: str
    response: TypeAdapter | None

    @property
    def statuses(self) -> tuple[int, ...]:
        """Every success status the route may answer with."""
        return (self.route.status, *self.route.statuses)


@dataclass
class RouteTable:
    """The routes an app serves through the contract (and its OpenAPI document, once made)."""

    served: list[ServedRoute] = field(default_factory=list)
    openapi: dict[str, Any] | None = None


ROUTE_TABLE = web.AppKey("route_table", RouteTable)


def check_route(route: Route, plugin: str, declared: dict[str, Any]) -> TypeAdapter | None:
    """The compiled response model of ``route``; PluginError naming it if it is incomplete."""
    if not isinstance(route, Route):
        raise PluginError(f"plug-in {plugin!r} returned {route!r} from its routes hook; "
                          "return plugin_api.Route declarations")
    where = f"plug-in {plugin!r}, route {route.label}"
    if not inspect.iscoroutinefunction(route.handler):
        raise PluginError(f"{where}: the handler must be an async function")
    permission = route.permission
    if permission is not PUBLIC:
        known = declared.get(getattr(permission, "name", None))
        if known is None or known.item != permission:
            raise PluginError(f"{where}: permission {permission!r} is not declared by any "
                              "plug-in; declare it in a 'permissions' hook (or use PUBLIC)")
    method = route.method.upper()
    if method in BODY_METHODS and route.body is None:
        raise PluginError(f"{where}: declares no request body; give body=<model>, "
                          "body=Empty or body=Media(...)")
    if method in PLAIN_METHODS and route.body is not None:
        raise PluginError(f"{where}: a {method} route takes no body; remove body=")
    if route.body is not None and not isinstance(route.body, Media) and not (
            isinstance(route.body, type) and issubclass(route.body, BaseModel)):
        raise PluginError(f"{where}: body must be a pydantic model or Media(...), "
                          f"got {route.body!r}")
    if route.max_body is not None:
        if route.body is None or (isinstance(route.body, Media) and route.body.stream):
            raise PluginError(f"{where}: max_body limits a body the router reads; a route "
                              "without a body or with a streamed one (its handler reads "
                              "and limits it) takes none")
        if not isinstance(route.max_body, int) or route.max_body < 1:
            raise PluginError(f"{where}: max_body must be a positive number of bytes, "
                              f"got {route.max_body!r}")
    if route.query is not None and not (isinstance(route.query, type)
                                        and issubclass(route.query, Query)):
        raise PluginError(f"{where}: query must be a plugin_api.Query model, "
                          f"got {route.query!r}")
    if route.response is None:
        raise PluginError(f"{where}: declares no response; give response=<type> or Media(...)")
    if isinstance(route.response, Media):
        return None
    try:
        adapter = TypeAdapter(route.response)
        schema = adapter.json_schema(mode="serialization")
    except Exception as exc:  # noqa: BLE001 - pydantic raises several kinds here
        raise PluginError(f"{where}: response {route.response!r} has no JSON schema: "
                          f"{exc}") from exc
    if not schema:
        raise PluginError(f"{where}: response {route.response!r} has no JSON schema (it "
                          "allows anything); declare a model")
    return adapter


def add_route(app: web.Application, route: Route, plugin: str, declared: dict[str, Any]
              ) -> ServedRoute:
    """Check ``route`` and serve it from ``app``."""
    served = ServedRoute(route, plugin, check_route(route, plugin, declared))
    handler = _aiohttp_handler(served)
    if route.method.upper() == "GET":  # answers HEAD too, as aiohttp's GET routes do
        app.router.add_get(route.path, handler)
    else:
        app.router.add_route(route.method.upper(), route.path, handler)
    app.setdefault(ROUTE_TABLE, RouteTable()).served.append(served)
    return served


def _invalid(exc: ValidationError, where: str) -> Unprocessable:
    fields = [{"path": ".".join([where, *(str(part) for part in error["loc"])]),
               "message": error["msg"]} for error in exc.errors()]
    listed = "; ".join(f"{f['path']}: {f['message']}" for f in fields)
    return Unprocessable(INVALID_INPUT.format(fields=listed), fields=fields)


def _query(served: ServedRoute, request: web.Request) -> Any:
    if served.route.query is None:
        return None
    raw = {k: v for k, v in request.query.items() if k not in AUTH_PARAMETERS}
    try:
        return served.route.query.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, "query") from None


def body_limit(route: Route, server_limit: int | None) -> int | None:
    """The most bytes of request body the router reads for ``route`` (None: no limit).

    The route's ``max_body``, else :data:`JSON_BODY_LIMIT` for a JSON body, else (raw
    bytes) the server's; never more than ``server_limit`` (the server's, when it has
    one). A streamed body is its handler's to read and limit.
    """
    limit = route.max_body or (None if isinstance(route.body, Media) else JSON_BODY_LIMIT)
    if limit is None or server_limit is None:
        return limit or server_limit
    return min(limit, server_limit)


def _size(count: int) -> str:
    """``count`` bytes in words: 64 KiB, 16 MiB, 1000 bytes."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"


def _too_large(route: Route, limit: int, server_limit: int | None) -> PayloadTooLarge:
    why = SERVER_LIMIT if server_limit is not None and limit >= server_limit else ""
    return PayloadTooLarge(TOO_LARGE.format(route=route.label, size=_size(limit), limit=limit,
                                            why=why),
                           headers={"Connection": "close"}, limit_bytes=limit)


async def read_limited(request: web.Request, route: Route, limit: int | None) -> bytes:
    """The body of ``request``; 413 past ``limit`` bytes, without reading further."""
    server_limit = request.client_max_size or None
    if limit is not None and (request.content_length or 0) > limit:
        raise _too_large(route, limit, server_limit)
    body = bytearray()
    while chunk := await request.content.readany():
        body.extend(chunk)
        if limit is not None and len(body) > limit:
            raise _too_large(route, limit, server_limit)
    return bytes(body)


async def _body(served: ServedRoute, request: web.Request) -> Any:
    spec = served.route.body
    if spec is None or (isinstance(spec, Media) and spec.stream):
        return None
    limit = body_limit(served.route, request.client_max_size or None)
    raw = await read_limited(request, served.route, limit) if request.can_read_body else b""
    if isinstance(spec, Media):
        return raw
    if not raw.strip():
        data: Any = {}
    elif served.route.forms and request.content_type == FORM:
        data = dict(urllib.parse.parse_qsl(raw.decode("utf-8", errors="replace")))
    else:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(INVALID_JSON.format(reason=exc)) from None
    try:
        return spec.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, "body") from None


def _file_answer(served: ServedRoute, reply: FileReply) -> web.StreamResponse:
    """A :class:`FileReply`: the file streamed by aiohttp's file answer, which answers
    conditional requests (304, 412) and ranges (206, 416) itself (counting what it sends
    for an ``on_sent``)."""
    route = served.route
    allowed = route.response.types if served.response is None else route.media
    if reply.media_type not in allowed:
        raise RuntimeError(BAD_ANSWER.format(
            route=route.label, problem=f"a file as {reply.media_type}, not declared"))
    headers = {**reply.headers, "Content-Type": reply.media_type}
    if reply.filename:
        headers["Content-Disposition"] = content_disposition(reply.filename,
                                                             inline=not reply.attachment)
    if reply.on_sent is not None:
        return CountedFileResponse(reply.path, on_sent=reply.on_sent, headers=headers)
    return FileAnswer(reply.path, headers=headers)


def _answer(served: ServedRoute, result: Any) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    if isinstance(result, FileReply):
        return _file_answer(served, result)
    route = served.route
    reply = result if isinstance(result, Reply) else Reply(result)
    status = reply.status or route.status
    if status not in served.statuses:
        raise RuntimeError(BAD_ANSWER.format(route=route.label,
                                             problem=f"status {status}, not declared"))
    headers = dict(reply.headers)
    body = reply.body
    if served.response is None or reply.media_type is not None:
        allowed = route.response.types if served.response is None else route.media
        media_type = reply.media_type or allowed[0]
        if media_type not in allowed or not isinstance(body, bytes | str):
            raise RuntimeError(BAD_ANSWER.format(
                route=route.label, problem=f"{type(body).__name__} as {media_type}"))
        headers["Content-Type"] = (f"{media_type}; charset=utf-8" if isinstance(body, str)
                                   else media_type)
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data, headers=headers)
    try:
        checked = served.response.validate_python(body)
    except ValidationError as exc:
        raise RuntimeError(BAD_ANSWER.format(route=route.label,
                                             problem=f"a body that fails its model: {exc}")
                           ) from exc
    data = served.response.dump_json(checked, exclude_unset=True)
    headers["Content-Type"] = "application/json"
    return web.Response(status=status, body=data, headers=headers)


def _error(route: Route, status: int, exc: ApiError | None, message: str = ""
           ) -> web.Response:
    """An error answer: ``{"error": ...}``, or problem details on a ``problem`` route."""
    headers = dict(exc.headers) if exc is not None else {}
    if route.problem:
        body = exc.problem() if exc is not None else problem_body(status, message)
        return web.Response(status=status, body=json.dumps(body), headers=headers,
                            content_type=PROBLEM_JSON)
    return web.json_response(exc.body() if exc is not None else {"error": message},
                             status=status, headers=headers)


def _aiohttp_handler(served: ServedRoute) -> Any:
    route = served.route
    sunset = route.sunset.headers() if route.sunset is not None else {}

    async def handle(request: web.Request) -> web.StreamResponse:
        answer = await answer_request(request)
        for name, value in sunset.items():
            answer.headers.setdefault(name, value)
        return answer

    async def answer_request(request: web.Request) -> web.StreamResponse:
        try:
            principal = await require(request, route.permission)
            query = _query(served, request)
            body = await _body(served, request)
            asked = Request(
                params=dict(request.match_info), query=query, body=body, principal=principal,
                context=request.app[PLUGIN_CONTEXT_KEY], headers=request.headers,
                native=request)

            async def run() -> web.StreamResponse:
                return _answer(served, await route.handler(asked))

            if route.idempotent:
                return await idempotent(asked, api_state(asked.context).idempotency, run,
                                        also=query)
            return await run()
        except ApiError as exc:
            answer = _error(route, int(exc.status), exc)
            if exc.headers.get("Connection") == "close":
                answer.force_close()  # (a body left unread: never read on into it)
            return answer
        except AccountError as exc:
            error = api_error(exc)
            return _error(route, int(error.status), error)
        except ProjectBusy as exc:  # its room is held closed a moment (a region move)
            wait = str(max(1, round(exc.retry_after)))
            return _error(route, 409, Conflict(str(exc), headers={"Retry-After": wait}))
        except web.HTTPException:
            raise
        except Exception as exc:
            if disk_full(exc):  # nothing was kept (writes go to a temporary file first)
                log.error("route %s: the disk is full: %s", route.label, exc)
                return _error(route, 507, InsufficientStorage(DISK_FULL))
            if unreachable(exc):  # PostgreSQL restarting: the pool reconnects by itself
                log.error("route %s: the database is unreachable: %s", route.label, exc)
                error = Unavailable(DATABASE_DOWN, headers=retry_soon())
                return _error(route, 503, error)
            if isinstance(exc, StorageError) and not isinstance(exc, ObjectNotFound):
                # S3 down, or refusing the server's settings (credentials, bucket)
                log.error("route %s: object storage failed: %s", route.label, exc)
                return _error(route, 503, storage_failed(exc))
            log.exception("route %s failed", route.label)
            return _error(route, 500, None, INTERNAL_ERROR.format(route=route.label))

    handle.__name__ = getattr(route.handler, "__name__", "handler")
    handle.__doc__ = route.handler.__doc__
    return handle
