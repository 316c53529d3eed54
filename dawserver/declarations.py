"""What a feature declares to the server: permissions, routes, workers, jobs and events.

Built-in features and plug-ins use the same declarations (re-exported by
:mod:`dawserver.plugin_api`). Request bodies, query parameters and answers are
typed models (pydantic); the router validates requests against them before a
handler runs and the OpenAPI document is generated from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from collab.tokens import Role
from jobs import JobContext, JobRecord, QueueSettings


class Scope(StrEnum):
    """Whom a permission is checked against."""

    #: Anyone, without a token (a public page).
    ANYONE = "anyone"
    #: The account the request acts for: the project in the path (``{project_id}``),
    #: else the token's project (an administrator names it with ``?account=``).
    ACCOUNT = "account"
    #: The whole server: only administrator tokens (project ``*``) hold it.
    SERVER = "server"


@dataclass(frozen=True)
class Permission:
    """A named right: the least project role that holds it, and what it is checked against.

    Declare each as a module constant and name it in routes; the plug-in that
    declares it (its ``permissions`` hook) alone may overrule the roles for it.
    """

    name: str
    description: str
    minimum: Role = Role.OWNER
    scope: Scope = Scope.ACCOUNT


#: The permission of routes anyone may use without a token.
PUBLIC = Permission("public", "anyone may use it, without a token", Role.VIEWER, Scope.ANYONE)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: an account, the role held on it, the token's user.

    ``admin`` marks a server administrator token (project ``*``). ``via`` says
    how the request proved it: ``token`` (a signed project token), ``session``
    (a signed-in person's cookie) or ``key`` (an API key, whose ``scopes`` name
    the only permissions it holds; None: every permission its role holds). ``test``
    marks a test-mode key (it reaches sandbox objects only). All fields are empty on a
    public route.
    """

    account_id: str
    role: str
    user: str = ""
    admin: bool = False
    via: str = ""
    scopes: tuple[str, ...] | None = None
    test: bool = False


ANONYMOUS = Principal("", "")


class Model(BaseModel):
    """A request body or answer: unknown fields are an error, so typos are caught."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query parameters: unknown ones are ignored (``token``, cache busters)."""

    model_config = ConfigDict(extra="ignore")


class Empty(Model):
    """A request body with nothing in it (``{}`` or no body at all)."""


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": message}`` and, per route, details."""

    model_config = ConfigDict(extra="allow")

    error: str


class ProblemBody(BaseModel):
    """An error of a ``problem`` route: RFC 9457 problem details, and per route, details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str


class Media:
    """A body that is not JSON: bytes of one of ``types`` (``stream``: read by the handler)."""

    def __init__(self, *types: str, stream: bool = False) -> None:
        if not types:
            raise ValueError("Media needs at least one media type, e.g. Media('text/csv')")
        self.types = types
        self.stream = stream

    def __repr__(self) -> str:
        return f"Media{self.types!r}"


#: How many bytes :meth:`Request.chunks` hands over at a time by default.
STREAM_CHUNK = 256 * 1024

#: The most bytes a JSON request body may have when its route declares no ``max_body``.
JSON_BODY_LIMIT = 64 * 1024

#: ``await handler(request)``: a JSON value or model, a :class:`Reply`, a
#: :class:`FileReply`, or (core only) an aiohttp response.
Handler = Callable[["Request"], Awaitable[Any]]


@dataclass(frozen=True)
class Sunset:
    """A route on its way out: when it was deprecated, when it stops, and where to read why.

    Every answer of such a route carries ``Deprecation: @<unix time>`` (RFC 9745),
    ``Sunset: <HTTP date>`` (RFC 8594) and ``Link: <link>; rel="deprecation"``; the
    OpenAPI document marks its operation ``deprecated``.
    """

    deprecated_at: float
    sunset_at: float | None = None
    link: str = ""

    def headers(self) -> dict[str, str]:
        """The answer headers that announce it."""
        from email.utils import formatdate

        found = {"Deprecation": f"@{int(self.deprecated_at)}"}
        if self.sunset_at is not None:
            found["Sunset"] = formatdate(self.sunset_at, usegmt=True)
        if self.link:
            found["Link"] = f'<{self.link}>; rel="deprecation"'
        return found


@dataclass(frozen=True, kw_only=True)
class Route:
    """An HTTP route: path, handler, the permission it needs and its typed input and output.

    ``body`` is a model (JSON), a :class:`Media` (raw bytes) or None (no body; then
    only GET and DELETE). ``query`` is a :class:`Query` model or None (no
    parameters). ``response`` is the answer's type (a model, ``list[Model]``,
    ``dict[str, Any]``...) or a :class:`Media`; ``media`` lists other media types
    the route may answer instead of JSON. ``status`` is the success status and
    ``statuses`` any other success status a handler may give in a :class:`Reply`.
    ``max_body`` is the most bytes of request body the route reads before answering
    413: by default :data:`JSON_BODY_LIMIT` for a JSON body and the server's own limit
    (``max_message_bytes``) for a :class:`Media` one; the server's limit caps any
    declared value. A streamed body is read (and limited) by its handler.
    ``problem``: errors answer as RFC 9457 ``application/problem+json`` (the public
    API's routes) instead of ``{"error": ...}``. ``sunset``: the route is deprecated
    (:class:`Sunset`). ``idempotent``: a request sent with an ``Idempotency-Key`` header
    runs once; a retry with the same key and request (body and query) replays the first
    success answer, another request with the key answers 422, a retry while the first
    runs 409 (:mod:`dawserver.public_api.idempotency`).
    """

    method: str
    path: str
    handler: Handler
    permission: Permission
    response: Any
    body: Any = None
    query: type[Query] | None = None
    status: int = 200
    statuses: tuple[int, ...] = ()
    media: tuple[str, ...] = ()
    forms: bool = False
    name: str = ""
    max_body: int | None = None
    problem: bool = False
    sunset: Sunset | None = None
    idempotent: bool = False

    @property
    def label(self) -> str:
        """``METHOD /path``, as errors and logs name the route."""
        return f"{self.method} {self.path}"


@dataclass
class Reply:
    """A handler's answer when the route's default status or headers do not fit.

    ``body`` is checked against the route's ``response``; ``media_type`` is for
    bytes or text answers of a :class:`Media` response.
    """

    body: Any
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str | None = None


@dataclass(frozen=True)
class FileReply:
    """A handler's answer that is a file on the server's disk, streamed from it (never read
    whole), as the core serves asset bytes (aiohttp's file answer).

    ``media_type`` is its ``Content-Type``, one of the route's :class:`Media` response
    types (or its ``media``). The answer carries ``Content-Length``, ``Last-Modified``,
    ``Accept-Ranges: bytes`` and an ``ETag`` (the file's modification time and size);
    ``If-None-Match`` or ``If-Modified-Since`` that still hold answer 304, an ``If-Match``
    that does not 412, a ``Range`` 206 with that part (``If-Range`` honoured), a range
    that is not satisfiable 416 (``Content-Range: bytes */size``), a ``Range`` of several
    ranges the whole file (200: it is ignored); HEAD the headers only.
    ``filename`` is its ``Content-Disposition`` (``inline``, shown in the browser;
    ``attachment``: saved), none when empty. ``headers`` are more answer headers
    (``Cache-Control``...). A ``.gz`` or ``.br`` file beside ``path`` would be sent in its
    place to a client that accepts that encoding: keep none there. A file gone by the
    time it is sent answers an empty 404. ``on_sent`` is awaited once the answer is over
    (sent whole, cut short by a dropped connection, or cancelled) with a
    :class:`FileSent` saying how many of the file's bytes it wrote; its errors are
    logged, never answered.
    """

    path: str | Path
    media_type: str
    filename: str = ""
    attachment: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    on_sent: Callable[[FileSent], Awaitable[None]] | None = None


@dataclass(frozen=True)
class FileSent:
    """What a :class:`FileReply` answer sent of its file: the body's first byte in the
    file (``first``), how many bytes the body was to have (``length``: 0 for HEAD, 304,
    412, 416...) and how many it wrote to the connection (``sent``: fewer when the
    connection dropped or the answer was cancelled part-way)."""

    first: int
    length: int
    sent: int

    @property
    def complete(self) -> bool:
        """Whether the whole body was written."""
        return self.sent >= self.length


@dataclass
class Request:
    """What a route handler receives: validated input, who asks, the plug-in context.

    ``query`` and ``body`` are instances of the route's models (``body`` is bytes
    for a :class:`Media` body, None for a streamed one or none). ``native`` is the
    server's own request object, for the core's streaming routes only; a plug-in reads a
    streamed body with :meth:`chunks`.
    """

    params: dict[str, str]
    query: Any
    body: Any
    principal: Principal
    context: Any
    headers: Mapping[str, str]
    native: Any = None

    @property
    def method(self) -> str:
        """The HTTP method asked (``HEAD`` on a GET route asks for its headers only)."""
        return str(getattr(self.native, "method", "GET"))

    @property
    def account_id(self) -> str:
        """The account the request acts for (empty on a public route)."""
        return self.principal.account_id

    @property
    def role(self) -> str:
        """The role the token holds on the account."""
        return self.principal.role

    @property
    def test_mode(self) -> bool:
        """Whether a test-mode API key asks: it reaches sandbox data only."""
        return self.principal.via == "key" and self.principal.test

    @property
    def user(self) -> str:
        """The token's user name."""
        return self.principal.user

    @property
    def app(self) -> Any:
        """The server application (core routes only)."""
        return self.native.app

    async def chunks(self, size: int = STREAM_CHUNK) -> AsyncIterator[bytes]:
        """The body of a streamed route (``Media(..., stream=True)``), ``size`` bytes at a
        time as it arrives: the handler counts and limits it (nothing when there is none)."""
        if self.native is None or not self.native.can_read_body:
            return
        async for chunk in self.native.content.iter_chunked(size):
            yield chunk


@dataclass(frozen=True)
class Worker:
    """A long-running coroutine ``await run(context)`` while the server is up."""

    name: str
    run: Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """A kind of durable job: a queue of the job queue, its payload model and its handler.

    ``await run(context, payload, job)`` runs one job: ``payload`` is the checked
    model, ``job`` the :class:`jobs.JobContext` (progress, cancel checks, attempt).
    It returns a JSON-able result; raising retries it with backoff
    (:class:`jobs.Permanent`: never).  ``settings`` sets attempts, backoff, lease
    and how many run at once per process.  Enqueue with ``context.enqueue``.

    ``await on_dead(context, payload, record)`` runs for each job of the kind that
    becomes a dead letter, however it died (its workers killed on every attempt
    included; :mod:`jobs.dead_notices`): ``payload`` is the checked model (None when
    the stored one no longer checks), ``record`` the dead :class:`jobs.JobRecord`
    (``last_error`` says why).  It is retried when it raises and may run twice after
    a crash, so it must be idempotent.
    """

    name: str
    payload: type[BaseModel]
    run: Callable[[Any, Any, JobContext], Awaitable[Any]]
    description: str = ""
    settings: QueueSettings = field(default_factory=QueueSettings)
    on_dead: Callable[[Any, Any, JobRecord], Awaitable[Any]] | None = None


@dataclass(frozen=True)
class Event:
    """A business event one plug-in publishes and others observe (``business_event``).

    Published through the event bus's outbox (``context.publish`` inside the
    transaction of the change, or ``context.announce``); docs/events.md lists them.
    """

    name: str
    payload: type[BaseModel]
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class Page:
    """A browser page a plug-in ships (its ``pages`` hook).

    ``path`` ("/social": one segment) serves ``html`` from ``static_dir`` to signed-in
    people (anyone else is sent to ``/account/sign-in?next=...``). Every file of
    ``static_dir`` (the plug-in's built bundle, a folder inside its package) is served at
    ``/plugins/{plug-in}/static/{file}``; the page's relative ``src="x.js"`` and
    ``href="x.css"`` become those URLs with ``?v=`` the bundle's version, which the
    browser may keep for a year. ``title`` names the page in links to it.
    """

    path: str
    title: str
    static_dir: Path
    html: str = "index.html"


def role_of(value: Role | str) -> Role:
    """``value`` as a :class:`Role` (a plug-in may name it as a string)."""
    return value if isinstance(value, Role) else Role.parse(str(value))


__all__ = ["ANONYMOUS", "JSON_BODY_LIMIT", "PUBLIC", "Empty", "ErrorBody", "Event",
           "FileReply", "FileSent", "Handler", "Job", "Media", "Model", "Page", "Permission",
           "Principal",
           "ProblemBody", "Query", "Reply", "Request", "Role", "Route", "Scope", "Sunset",
           "Worker", "role_of"]
