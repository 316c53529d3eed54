"""What every fake source shares: the seeded catalogue and series, sign-in, pagination and
failure injection. A source's fake module adds its routes, its answer shape and its error
shapes.

A :class:`FakeSource` is an aiohttp application (mounted under ``/<source>`` by
:class:`~business.analytics.fakes.server.FakeSources`). Failures come on command
(:meth:`FakeSource.fail`: ``kind`` one of :data:`KINDS`, ``times``, ``retry_after``,
``after`` = how many API answers go out well first) and at random (``fail_rate`` with
``fail_seed``: a throttle, a 5xx or a cut-short page, reproducibly). :meth:`FakeSource.revoke`
withdraws every credential (tokens, refresh token, key) as a user revoking access does;
a source with a ``revoke_path`` serves RFC 7009 token revocation there (the app withdrawing
the grant: the same effect, counted in ``stats.revocations``), which fails on command
(:meth:`FakeSource.fail_revoke`: a 503, or no answer at all);
:meth:`FakeSource.drop_days` leaves days out of every series (a gap upstream).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from business.analytics.fakes.series import Series

#: Failure kinds a fake answers on command (each in its source's own shape).
KINDS = ("rate_limited", "quota", "revoked", "expired", "server", "partial", "empty",
         "duplicate", "renamed", "negative")
RANDOM_KINDS = ("rate_limited", "server", "partial")
#: Failure kinds of the revocation endpoint: a 503, or an answer that never comes.
REVOKE_KINDS = ("server", "timeout")

#: The body failures due for a request, and whether a random failure cuts it short.
DUE = web.RequestKey("due", dict)
CUT_SHORT = web.RequestKey("cut_short", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: A series key: (entity kind, entity id as the source reports it, metric, dimensions).
Key = tuple[str, str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class FakeTrack:
    """One recording of the fake artist (the same ISRCs on every source)."""

    index: int
    name: str
    isrc: str
    duration_ms: int


def catalogue(seed: int, count: int = 7) -> list[FakeTrack]:
    """The fake artist's recordings: names, ISRCs and durations from ``seed``."""
    rng = random.Random(seed)
    words = ("Night", "Drive", "Neon", "Tide", "Glass", "Echo", "Static", "Bloom", "Ashes",
             "Satellite", "Velvet", "Orbit")
    return [FakeTrack(i, f"{rng.choice(words)} {rng.choice(words)}",
                      f"QZES6{24 + i % 2}{seed % 1000:03d}{i:02d}"[:12],
                      rng.randrange(150_000, 260_000)) for i in range(count)]


@dataclass
class Injected:
    kind: str
    times: int
    retry_after: float
    after: int


@dataclass
class Paging:
    """Where a page sits in the whole answer."""

    rows: list[Any]
    offset: int
    limit: int
    total: int
    next_url: str | None = None
    next_cursor: str | None = None

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1 if self.limit else 1

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.limit)) if self.limit else 1


@dataclass
class FakeStats:
    requests: int = 0
    api_answers: int = 0
    injected: list[str] = field(default_factory=list)
    token_requests: int = 0
    #: Grants withdrawn through the revocation endpoint.
    revocations: int = 0
    #: Requests the revocation endpoint got, failed ones included.
    revoke_requests: int = 0


class FakeSource:
    """The shared half of a fake source; subclasses give routes and shapes."""

    source = ""
    auth = "none"                     # as the connector's spec
    pagination = "none"
    history = True
    token_path = "/token"
    #: Where the source serves token revocation (empty: it has none).
    revoke_path = ""
    cursor_param, page_param, offset_param, limit_param = "cursor", "page", "offset", "limit"
    first_position = 0
    page_size = 50
    #: A field the "renamed" failure renames, and the count the "negative" one negates.
    rename: tuple[str, str] = ("", "")
    count_field = ""
    #: Failure kinds this source has (no quota failure where the source has no quota).
    kinds: tuple[str, ...] = KINDS

    def __init__(self, *, seed: int = 7, today: date = date(2024, 6, 30),
                 client_id: str = "client-id", client_secret: str = "client-secret",
                 api_key: str = "api-key", refresh_token: str = "refresh-token",
                 fail_rate: float = 0.0, fail_seed: int | None = None,
                 tracks: int = 7) -> None:
        self.series = Series(seed)
        self.seed = seed
        self.today = today
        self.tracks = catalogue(seed, tracks)
        self.client_id, self.client_secret = client_id, client_secret
        self.api_key, self.refresh_token = api_key, refresh_token
        self.fail_rate = fail_rate
        self.rng = random.Random(fail_seed)
        self.injected: list[Injected] = []
        self.dropped: set[date] = set()
        self.revoked = False
        self.stats = FakeStats()
        self._tokens: dict[str, float] = {}
        self._revoke_failures: list[str] = []
        self._never = asyncio.Event()
        self._last_body: bytes | None = None
        self.prefix = ""
        self.base_url = ""

    # -- what a source module supplies -------------------------------------------------

    artist_id = "artist"

    def keys(self) -> list[Key]:
        """Every series the source serves for the fake artist."""
        raise NotImplementedError

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        """The source's answer for ``kind``: rate_limited, quota, unauthorized, server."""
        status = {"rate_limited": 429, "quota": 429, "unauthorized": 401, "server": 503}[kind]
        headers = {"Retry-After": str(int(retry_after))} if kind == "rate_limited" else {}
        return web.json_response({"error": kind}, status=status, headers=headers)

    def credential(self, request: web.Request) -> str:
        """The token or key a request carries (default: a Bearer header)."""
        header = request.headers.get("Authorization", "")
        return header[7:] if header.startswith("Bearer ") else ""

    # -- the truth -----------------------------------------------------------------------

    def value(self, key: Key, day: date) -> int:
        kind, entity, metric, dims = key
        return self.series.value(self.source, entity, metric, day, dims)

    def days(self, start: date, end: date) -> list[date]:
        """The days the source has between ``start`` and ``end`` (dropped days left out)."""
        out, day = [], start
        while day <= end:
            if day not in self.dropped:
                out.append(day)
            day += timedelta(days=1)
        return out

    def truth(self, start: date, end: date) -> dict[tuple, int]:
        """What a complete back-fill must hold: (kind, id, metric, day, dims) -> value."""
        days = self.days(start, end) if self.history else [self.today]
        return {(k[0], k[1], k[2], day, k[3]): self.value(k, day)
                for k in self.keys() for day in days}

    # -- switches ------------------------------------------------------------------------

    def fail(self, kind: str, times: int = 1, retry_after: float = 2.0, *,
             after: int = 0) -> None:
        """Answer ``times`` API calls with failure ``kind``, after ``after`` good answers."""
        if kind not in self.kinds:
            raise ValueError(f"{self.source} has no failure {kind!r}; use one of {self.kinds}")
        self.injected.append(Injected(kind, times, retry_after, after))

    def fail_revoke(self, kind: str, times: int = 1) -> None:
        """Answer the next ``times`` revocation requests with ``kind`` (see
        :data:`REVOKE_KINDS`; ``timeout`` holds the request open, unanswered)."""
        if kind not in REVOKE_KINDS:
            raise ValueError(f"no revocation failure {kind!r}; use one of {REVOKE_KINDS}")
        self._revoke_failures.extend([kind] * times)

    def stop_holding(self) -> None:
        """Answer every revocation request held open (``timeout``), so a server stops
        at once."""
        self._never.set()

    def revoke(self) -> None:
        """Every credential stops working (the user revoked the app's access)."""
        self.revoked = True
        self._tokens.clear()

    def expire_tokens(self) -> None:
        """Every access token expires now (renewal still works)."""
        self._tokens.clear()

    def drop_days(self, *days: date) -> None:
        """Leave ``days`` out of every series (the source has no data for them)."""
        self.dropped.update(days)

    # -- the application ---------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        if self.auth in ("oauth_client_credentials", "refresh_token"):
            self.add_token_route(app)
        if self.revoke_path:
            app.router.add_post(self.revoke_path, self.revoke_endpoint)
        app.router.add_post("/_fake/fail", self._admin_fail)
        self.add_routes(app)
        return app

    def add_token_route(self, app: web.Application) -> None:
        app.router.add_post(self.token_path, self.token_endpoint)

    def issue(self, lifetime: float = 3600.0) -> dict[str, Any]:
        token = f"{self.source}-at-{secrets.token_urlsafe(16)}"
        self._tokens[token] = time.time() + lifetime
        return {"access_token": token, "token_type": "bearer", "expires_in": int(lifetime)}

    async def token_endpoint(self, request: web.Request) -> web.Response:
        self.stats.token_requests += 1
        form = dict(await request.post())
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if self.revoked or client != self.client_id or secret != self.client_secret:
            return self.token_error(401, "invalid_client", "client authentication failed")
        grant = form.get("grant_type")
        if self.auth == "oauth_client_credentials" and grant == "client_credentials":
            return web.json_response(self.issue())
        if self.auth == "refresh_token" and grant == "refresh_token":
            if self.revoked or form.get("refresh_token") != self.refresh_token:
                return self.token_error(400, "invalid_grant", "refresh token revoked")
            return web.json_response(self.token_answer(self.issue()))
        return self.token_error(400, "unsupported_grant_type", f"grant_type {grant!r}")

    def token_answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        return answer

    async def revoke_endpoint(self, request: web.Request) -> web.Response:
        """RFC 7009 revocation: a live refresh or access token as ``token`` withdraws the
        whole grant (every token dies, as Google does); an unknown one is a 400
        ``invalid_token``."""
        self.stats.revoke_requests += 1
        if self._revoke_failures:
            kind = self._revoke_failures.pop(0)
            self.stats.injected.append(f"revoke:{kind}")
            if kind == "timeout":
                await self._never.wait()  # until the server stops (stop_holding)
            return self.token_error(503, "server_error", "revocation unavailable")
        token = str((await request.post()).get("token", ""))
        live = (token == self.refresh_token and not self.revoked) or \
            self._tokens.get(token, 0.0) > time.time()
        if not token or not live:
            return self.token_error(400, "invalid_token", "Token expired or revoked")
        self.revoke()
        self.stats.revocations += 1
        return web.json_response({})

    def token_error(self, status: int, error: str, description: str) -> web.Response:
        return web.json_response({"error": error, "error_description": description},
                                 status=status)

    def authorized(self, request: web.Request) -> bool:
        if self.auth == "none":
            return True
        given = self.credential(request)
        if self.auth == "api_key":
            return not self.revoked and given == self.api_key
        expires = self._tokens.get(given)
        return expires is not None and expires > time.time()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.stats.requests += 1
        path = request.path[len(self.prefix):]
        if path.startswith("/_fake") or path in (self.token_path, self.revoke_path):
            return await handler(request)
        due: dict[str, Injected] = {}
        for injected in self.injected:
            if injected.times <= 0:
                continue
            if injected.after > 0:
                injected.after -= 1
                continue
            if injected.kind in ("revoked", "expired"):
                injected.times = 0
                self.revoke() if injected.kind == "revoked" else self.expire_tokens()
            elif injected.kind in ("rate_limited", "quota", "server"):
                injected.times -= 1
                self.stats.injected.append(injected.kind)
                return self.error(injected.kind, injected.retry_after, request)
            else:
                due.setdefault(injected.kind, injected)
        request[DUE] = due
        if self.fail_rate and self.rng.random() < self.fail_rate:
            kind = self.rng.choice(RANDOM_KINDS)
            self.stats.injected.append(f"random:{kind}")
            if kind != "partial":
                return self.error(kind, 1.0, request)
            request[CUT_SHORT] = True
        if not self.authorized(request):
            return self.error("unauthorized", 0, request)
        return await handler(request)

    def _take(self, request: web.Request, kind: str) -> bool:
        """Spend the body failure ``kind`` that was due when ``request`` came in."""
        injected = request.get(DUE, {}).get(kind)
        if injected is None or injected.times <= 0:
            return False
        injected.times -= 1
        self.stats.injected.append(kind)
        return True

    # -- pages ---------------------------------------------------------------------------

    def paginate(self, request: web.Request, rows: list[Any]) -> Paging:
        """The slice of ``rows`` the request asks for, by the source's pagination kind."""
        query = request.query
        limit = int(query.get(self.limit_param, self.page_size))
        if self.pagination == "none":
            return Paging(rows, 0, len(rows), len(rows))
        if self.pagination == "cursor":
            cursor = query.get(self.cursor_param)
            try:
                offset = int(base64.urlsafe_b64decode(cursor).decode()[2:]) if cursor else 0
            except ValueError:
                raise web.HTTPBadRequest(text=f"invalid cursor {cursor!r}") from None
        elif self.pagination == "page":
            offset = (int(query.get(self.page_param, self.first_position)) - 1) * limit
        else:
            offset = int(query.get(self.offset_param, self.first_position)) \
                - self.first_position
        paging = Paging(rows[offset:offset + limit], offset, limit, len(rows))
        if offset + limit < len(rows):
            following = offset + limit
            params = dict(query)
            if self.pagination == "cursor":
                paging.next_cursor = base64.urlsafe_b64encode(f"o:{following}".encode()
                                                              ).decode()
                params[self.cursor_param] = paging.next_cursor
            elif self.pagination == "page":
                params[self.page_param] = str(following // limit + 1)
            else:
                params[self.offset_param] = str(following + self.first_position)
            paging.next_url = f"{self.base_url}{request.path[len(self.prefix):]}?" \
                              f"{urlencode(params)}"
        return paging

    def respond(self, request: web.Request, rows: list[Any],
                render: Callable[[Paging], Any]) -> web.Response:
        """Page ``rows``, render the page, apply the body failures due, answer."""
        self.stats.api_answers += 1
        if self._take(request, "duplicate") and self._last_body is not None:
            return web.Response(body=self._last_body, content_type="application/json")
        if self._take(request, "empty"):
            rows = []
        body = render(self.paginate(request, rows))
        if self._take(request, "renamed"):
            body = self.renamed(body)
        if self._take(request, "negative"):
            body = self.negate(body)
        raw = json.dumps(body).encode()
        self._last_body = raw
        if self._take(request, "partial") or request.get(CUT_SHORT):
            raw = raw[: len(raw) // 2]
        return web.Response(body=raw, content_type="application/json")

    def renamed(self, body: Any) -> Any:
        """``body`` with the field ``rename[0]`` renamed ``rename[1]`` everywhere."""
        return _rename(body, *self.rename)

    def negate(self, body: Any) -> Any:
        """``body`` with the first ``count_field`` made negative."""
        done = [False]

        def walk(node: Any) -> Any:
            if isinstance(node, dict):
                out = {}
                for key, value in node.items():
                    if key == self.count_field and not done[0] and not isinstance(value, dict):
                        done[0] = True
                        out[key] = -abs(int(value)) - 1 if isinstance(value, int) \
                            else f"-{value}"
                    else:
                        out[key] = walk(value)
                return out
            if isinstance(node, list):
                return [walk(item) for item in node]
            return node
        return walk(body)

    async def _admin_fail(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.fail(str(body.get("kind")), int(body.get("times", 1)),
                      float(body.get("retry_after", 2)), after=int(body.get("after", 0)))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"queued": len(self.injected)})


def _rename(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {(new if key == old else key): _rename(value, old, new)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_rename(item, old, new) for item in node]
    return node


def without(*kinds: str) -> tuple[str, ...]:
    """:data:`KINDS` less ``kinds`` (failures a source cannot have)."""
    return tuple(kind for kind in KINDS if kind not in kinds)


def day_range(request: web.Request, start: str, end: str) -> tuple[date, date]:
    """The inclusive day range of query parameters ``start`` and ``end`` (ISO dates)."""
    return date.fromisoformat(request.query[start]), date.fromisoformat(request.query[end])


def flatten(items: Iterable[Iterable[Any]]) -> list[Any]:
    return [item for group in items for item in group]
