"""The connector framework: one :class:`Connector` subclass per source declares its
:class:`~business.analytics.sources.spec.SourceSpec`, the pydantic model of its answers
(``Page``), its first request and how to read a page; this base does the rest.

A back-fill (:meth:`Connector.fetch`) splits the date range into the source's windows and,
per window, follows the source's pagination (cursor or next link, page number, offset, or
none) until the last page or an empty one. Every request is paced (:mod:`.pacing`), signed
(:class:`Credentials` per the spec's auth kind, renewed once on a 401) and retried: a 429
waits its ``Retry-After``, a 5xx or a truncated page backs off with jitter. Every answer is
validated against ``Page``: one that does not fit raises
:class:`~business.analytics.errors.SchemaChanged` naming the field, and nothing of it is
kept. The same page twice raises :class:`~business.analytics.errors.DuplicatePage`; days
missing from a series come back as :class:`~business.analytics.sources.records.Gap`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from limits.aio.storage import Storage
from pydantic import BaseModel, ValidationError

from business.analytics.errors import (
    DuplicatePage,
    NoHistory,
    PartialPage,
    QuotaExhausted,
    RateLimited,
    SchemaChanged,
    ServerError,
    SourceError,
    TokenRevoked,
)
from business.analytics.sources.pacing import Pacer, backoff_delay
from business.analytics.sources.records import (
    Entity,
    Fetched,
    Point,
    Progress,
    find_gaps,
)
from business.analytics.sources.spec import RateLimit, SourceSpec

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]
USER_AGENT = "MaxBoosterStudio-Analytics/1.0 (+https://maxbooster.example/analytics)"


@dataclass(frozen=True)
class Credentials:
    """What a source signs in with; which fields count depends on the spec's auth kind."""

    client_id: str = ""
    client_secret: str = ""
    api_key: str = ""
    refresh_token: str = ""

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(client_id={self.client_id!r}, ...)"


@dataclass(frozen=True)
class Call:
    """One request: a path under the base URL (or an absolute next link) and its query;
    ``method`` and a ``json`` body for the few report APIs that are POSTed (Bandcamp)."""

    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    #: The page number or offset this call asks for (page and offset pagination).
    position: int = 0
    method: str = "GET"
    json: Mapping[str, Any] | None = None


def utc_day(day: date) -> datetime:
    """Midnight UTC of ``day`` (the ``at`` of a daily point)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_day(text: str) -> datetime:
    """Midnight UTC of an ISO date or date-time (``2024-05-01`` or ``...T07:00:00+0000``)."""
    return utc_day(date.fromisoformat(text[:10]))


def retry_after_from(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from ``Retry-After`` (delta seconds or an HTTP date); None when absent."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        now = time.time() if now is None else now
        return max(0.0, when.timestamp() - now) if when else None


def seconds_until_epoch(headers: Mapping[str, str], name: str,
                        now: float | None = None) -> float | None:
    """Seconds until the Unix time in header ``name`` (X's ``x-rate-limit-reset``,
    Twitch's ``Ratelimit-Reset``); None when absent or not a number."""
    raw = headers.get(name)
    if not raw:
        return None
    try:
        reset = float(raw)
    except ValueError:
        return None
    return max(0.0, reset - (time.time() if now is None else now))


class Connector:
    """Base of the source connectors (see the module docstring)."""

    spec: ClassVar[SourceSpec]
    #: The pydantic model of one answer page (the schema check).
    Page: ClassVar[type[BaseModel]]
    #: Query parameters of the pagination kinds.
    cursor_param: ClassVar[str] = "cursor"
    page_param: ClassVar[str] = "page"
    offset_param: ClassVar[str] = "offset"
    limit_param: ClassVar[str] = "limit"
    page_size: ClassVar[int] = 50
    #: The first page number or offset (YouTube's startIndex counts from 1).
    first_position: ClassVar[int] = 0
    #: Where an API key goes: ("query", name) or ("header", name, template with {key}).
    api_key_in: ClassVar[tuple[str, ...]] = ("query", "api_key")
    #: The platform's token revocation endpoint (production URL, RFC 7009: the refresh
    #: token POSTed as ``token``); empty: the platform has none (:meth:`revoke`).
    revoke_url: ClassVar[str] = ""

    def __init__(self, base_url: str | None, credentials: Credentials,
                 session: aiohttp.ClientSession, *, rate_limit: RateLimit | None = None,
                 storage: Storage | None = None, sleep: Sleep | None = None,
                 rng: random.Random | None = None, clock: Clock | None = None,
                 timeout_s: float = 30.0, page_size: int | None = None) -> None:
        if page_size is not None:
            self.page_size = page_size  # type: ignore[misc]
        self.base_url = (base_url or self.spec.api_host).rstrip("/")
        self.production = self.base_url == self.spec.api_host.rstrip("/")
        self.credentials = credentials
        self.session = session
        self.pacer = Pacer(self.spec.name, rate_limit or self.spec.rate_limit,
                           key=credentials.client_id or credentials.api_key[:8] or "anon",
                           storage=storage)
        self.sleep: Sleep = sleep or asyncio.sleep
        self.rng = rng or random.Random()
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token: str | None = None
        self._token_expires = 0.0
        #: Every wait before a retry, in seconds (Retry-After or back-off), for inspection.
        self.waits: list[float] = []
        self.requests = 0

    @property
    def name(self) -> str:
        return self.spec.name

    # -- what a source module supplies --------------------------------------------------

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        """The first request of a window [start, end] (inclusive days)."""
        raise NotImplementedError

    def rows(self, page: Any) -> Sequence[Any]:
        """The items of a page (empty: the pagination ends)."""
        raise NotImplementedError

    def read(self, page: Any, entity: Entity, out: Fetched) -> None:
        """Add the page's points (``out.points``) and identities (``out.add_identity``)."""
        raise NotImplementedError

    def next_cursor(self, page: Any) -> str | None:
        """Cursor pagination: the next cursor or absolute next link (None: last page)."""
        return None

    def total(self, page: Any) -> int | None:
        """Page pagination: the number of pages; offset pagination: the number of items."""
        return None

    def check(self, page: Any) -> None:
        """Raise the source's error for a 2xx answer that reports one in its body."""

    def classify(self, status: int, body: Any, headers: Mapping[str, str]) -> SourceError | None:
        """The source's own error for a failed answer (None: the generic mapping)."""
        return None

    async def after_window(self, entity: Entity, start: date, end: date,
                           out: Fetched) -> None:
        """Requests a source makes once a window's pages are read (Twitch's follower
        total); nothing by default."""

    def token_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The standard token fields of a token answer (TikTok nests them under data)."""
        return body

    def sign(self, headers: dict[str, str], params: dict[str, str], token: str) -> None:
        """Put the access token (a Bearer header) or the API key (where ``api_key_in``
        says) on a request."""
        if self.spec.auth == "api_key":
            where = self.api_key_in
            if where[0] == "query":
                params[where[1]] = token
            else:
                headers[where[1]] = where[2].format(key=token)
            return
        headers["Authorization"] = f"Bearer {token}"

    # -- back-fill ---------------------------------------------------------------------

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    def windows(self, start: date, end: date) -> list[tuple[date, date]]:
        """[start, end] cut into the source's longest request ranges."""
        size = self.spec.schedule.window_days
        if not size:
            return [(start, end)]
        out, first = [], start
        while first <= end:
            last = min(end, first + timedelta(days=size - 1))
            out.append((first, last))
            first = last + timedelta(days=1)
        return out

    async def fetch(self, entity: Entity, start: date, end: date) -> Fetched:
        """Every point of ``entity`` from ``start`` to ``end`` (inclusive days).

        A source without history answers only today (``start == end == today``); a range
        raises :class:`NoHistory`. Any error raised carries ``progress``.
        """
        if end < start:
            raise ValueError(f"end {end} is before start {start}; swap them")
        if not self.spec.history and (start != end or end != self.today()):
            raise NoHistory(f"{self.spec.title} answers current counts only, so "
                            f"{start}..{end} cannot be back-filled; run it daily from now on",
                            source=self.name)
        out = Fetched()
        done: date | None = None
        last_rows: list[Sequence[Any]] = []   # the page before, across windows too
        try:
            for first, last in self.windows(start, end):
                await self._window(entity, first, last, out, last_rows)
                await self.after_window(entity, first, last, out)
                done = last
        except SourceError as exc:
            exc.progress = Progress(out.pages, len(out.points), done, out)
            raise
        if self.spec.history:
            out.gaps = find_gaps(self.name, out.points, start, end, self.spec.schedule.grain)
        return out

    async def _window(self, entity: Entity, start: date, end: date, out: Fetched,
                      last_rows: list[Sequence[Any]]) -> None:
        call: Call | None = self.first_call(entity, start, end)
        cursors: set[str] = set()
        while call is not None:
            page = await self.get(call, out)
            out.pages += 1
            rows = self.rows(page)
            if not rows:
                return
            if last_rows and rows == last_rows[0]:
                raise DuplicatePage(f"page {out.pages} repeats the page before it "
                                    f"({len(rows)} items, {call.url}); stopped instead of "
                                    "looping", source=self.name)
            self.read(page, entity, out)
            call = self.next_call(call, page, rows)
            if call is not None and self.spec.pagination == "cursor":
                marker = call.url + json.dumps(dict(call.params), sort_keys=True)
                if marker in cursors:
                    raise DuplicatePage(f"the cursor of page {out.pages + 1} was served "
                                        "before; stopped instead of looping",
                                        source=self.name)
                cursors.add(marker)
            last_rows[:] = [rows]

    def next_call(self, call: Call, page: Any, rows: Sequence[Any]) -> Call | None:
        """The request after ``call`` by the spec's pagination kind (None: done)."""
        kind = self.spec.pagination
        if kind == "cursor":
            cursor = self.next_cursor(page)
            if not cursor:
                return None
            if cursor.startswith(("http://", "https://", "/")):
                return Call(cursor)
            return replace(call, params={**call.params, self.cursor_param: cursor})
        if kind == "page":
            pages = self.total(page)
            if pages is not None and call.position >= pages:
                return None
            number = call.position + 1
            return replace(call, params={**call.params, self.page_param: str(number)},
                           position=number)
        if kind == "offset":
            offset = call.position + len(rows)
            total = self.total(page)
            if total is not None and offset - self.first_position >= total:
                return None
            return replace(call, params={**call.params, self.offset_param: str(offset)},
                           position=offset)
        return None

    def paged(self, path: str, params: Mapping[str, str]) -> Call:
        """The first call of ``path`` with the pagination parameters of the spec's kind."""
        params = dict(params)
        kind, position = self.spec.pagination, self.first_position
        if kind in ("page", "offset"):
            params[self.limit_param] = str(self.page_size)
            params[self.page_param if kind == "page" else self.offset_param] = str(position)
        elif kind == "cursor":
            params[self.limit_param] = str(self.page_size)
        return Call(path, params, position)

    # -- one page ------------------------------------------------------------------------

    async def get(self, call: Call, out: Fetched | None = None,
                  model: type[BaseModel] | None = None) -> Any:
        """One validated page (a ``model``, by default the source's ``Page``), paced,
        signed and retried per the spec."""
        backoff = self.spec.backoff
        renewed = False
        attempt = 0
        while True:
            try:
                await self.pacer.acquire(self.clock())
                raw = await self._send(call)
                if out is not None:
                    out.requests += 1
                page = self.validate(raw, model)
                self.check(page)
                return page
            except TokenRevoked:
                if renewed or self.spec.auth in ("api_key", "none"):
                    raise
                renewed = True          # one renewal per call; a second 401 is final
                self._token = None
                continue
            except (RateLimited, ServerError, PartialPage) as exc:
                attempt += 1
                if attempt >= backoff.attempts:
                    raise
                wait = getattr(exc, "retry_after", None)
                if wait is None or not self.spec.rate_limit.honours_retry_after:
                    wait = backoff_delay(backoff, attempt - 1, self.rng)
                log.info("%s: %s; retry %d in %.2f s", self.name, exc, attempt, wait)
                self.waits.append(wait)
                await self.sleep(wait)

    def validate(self, raw: bytes, model: type[BaseModel] | None = None) -> Any:
        """``raw`` as a ``Page`` (or ``model``); a truncated body is a :class:`PartialPage`,
        anything else that does not fit a :class:`SchemaChanged` naming the first field at
        fault."""
        try:
            return (model or self.Page).model_validate_json(raw)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            if error["type"] in ("json_invalid", "json_type") and not error["loc"]:
                raise PartialPage(f"the page is cut short or not JSON ({len(raw)} bytes): "
                                  f"{error['msg']}", source=self.name) from None
            where = ".".join(str(part) for part in error["loc"]) or "(the whole answer)"
            raise SchemaChanged(where, f"{error['msg']} (got {error.get('input')!r:.80})",
                                source=self.name) from None

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}{path}"

    async def _send(self, call: Call) -> bytes:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        params = dict(call.params)
        if self.spec.auth != "none":
            self.sign(headers, params, await self.token())
        self.requests += 1
        try:
            async with self.session.request(call.method, self.url(call.url), params=params,
                                            json=call.json, headers=headers,
                                            timeout=self.timeout) as response:
                raw = await response.read()
                status, answer_headers = response.status, response.headers
        except (aiohttp.ClientPayloadError, aiohttp.ContentTypeError) as exc:
            raise PartialPage(f"{call.method} {call.url}: body cut short: {exc}",
                              source=self.name) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServerError(f"{call.method} {call.url} failed: {type(exc).__name__}: {exc}",
                              source=self.name) from exc
        if 200 <= status < 300:
            return raw
        raise self.error_for(status, raw, answer_headers, f"{call.method} {call.url}")

    def error_for(self, status: int, raw: bytes, headers: Mapping[str, str],
                  what: str) -> SourceError:
        """The error for a failed answer: the source's :meth:`classify`, else by status."""
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw[:200].decode("utf-8", "replace")}
        error = self.classify(status, body, headers)
        if error is not None:
            return error
        reason = f"{what}: HTTP {status}: {json.dumps(body)[:300]}"
        if status == 429:
            return RateLimited(reason, retry_after=retry_after_from(headers),
                               source=self.name, status=status)
        if status == 401:
            return TokenRevoked(reason, source=self.name, status=status)
        if status >= 500 or status == 408:
            return ServerError(reason, source=self.name, status=status)
        return SourceError(reason, source=self.name, status=status)

    # -- auth ----------------------------------------------------------------------------

    def token_url(self) -> str:
        """The token endpoint: production's, or the same path on a fake's base URL."""
        if self.production:
            return self.spec.token_url
        return self.base_url + urlsplit(self.spec.token_url).path

    async def token(self) -> str:
        """The access token or API key to sign with (fetched or renewed when needed)."""
        if self.spec.auth == "api_key":
            if not self.credentials.api_key:
                raise TokenRevoked(f"{self.spec.title} needs an API key; add one to the "
                                   "source's credentials", source=self.name)
            return self.credentials.api_key
        if self._token is None or time.time() >= self._token_expires - 30:
            self._token, lifetime = await self.renew()
            self._token_expires = time.time() + lifetime
        return self._token

    async def renew(self) -> tuple[str, float]:
        """A fresh access token and its lifetime in seconds (client credentials or a
        refresh token; a rotated refresh token replaces the old in ``credentials``)."""
        creds = self.credentials
        form = {"grant_type": "client_credentials"}
        basic: str | None = aiohttp.encode_basic_auth(creds.client_id, creds.client_secret)
        if self.spec.auth == "refresh_token":
            form = {"grant_type": "refresh_token", "refresh_token": creds.refresh_token,
                    "client_id": creds.client_id, "client_secret": creds.client_secret}
            basic = None
        body = await self.token_request(form, basic)
        if body.get("refresh_token"):
            self.credentials = Credentials(creds.client_id, creds.client_secret,
                                           creds.api_key, str(body["refresh_token"]))
        return str(body["access_token"]), float(body.get("expires_in") or 3600)

    # -- revocation ----------------------------------------------------------------------

    @classmethod
    def revocable(cls) -> bool:
        """Whether the platform can be told to withdraw a grant (:attr:`revoke_url`)."""
        return bool(cls.revoke_url)

    def revoke_endpoint(self) -> str:
        """The revocation endpoint: production's, or the same path on a fake's base URL."""
        if self.production:
            return self.revoke_url
        return self.base_url + urlsplit(self.revoke_url).path

    async def revoke(self) -> None:
        """Withdraw the grant at the platform (RFC 7009 token revocation of the refresh
        token), so its tokens stop working there too.

        A token the platform no longer knows (``invalid_token``, ``invalid_grant``: revoked
        or expired already) counts as withdrawn. Raises :class:`ServerError` or
        :class:`RateLimited` when trying again can help (5xx, 429, timeout), another
        :class:`SourceError` when it cannot, and :class:`NotImplementedError` for a
        platform without a revocation endpoint.
        """
        if not self.revocable():
            raise NotImplementedError(f"{self.spec.title} has no token revocation endpoint")
        form = {"token": self.credentials.refresh_token, "token_type_hint": "refresh_token"}
        try:
            async with self.session.post(self.revoke_endpoint(), data=form,
                                         headers={"User-Agent": USER_AGENT},
                                         timeout=self.timeout) as response:
                status, raw, headers = response.status, await response.read(), \
                    response.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServerError(f"revocation failed: {type(exc).__name__}: {exc}",
                              source=self.name) from exc
        if status == 200:
            return
        try:
            error = json.loads(raw).get("error") if raw else None
        except (ValueError, AttributeError):
            error = None
        if status == 400 and error in ("invalid_token", "invalid_grant"):
            return  # already dead at the platform: nothing left to withdraw
        if status == 429:
            raise RateLimited("revocation throttled (HTTP 429)", source=self.name,
                              retry_after=retry_after_from(headers), status=status)
        if status >= 500 or status == 408:
            raise ServerError(f"revocation failed: HTTP {status}", source=self.name,
                              status=status)
        raise SourceError(f"the platform refused the revocation: HTTP {status}: "
                          f"{raw[:200].decode('utf-8', 'replace')}", source=self.name,
                          status=status)

    async def token_request(self, form: Mapping[str, str],
                            basic: str | None) -> dict[str, Any]:
        """POST a token request (``basic``: an HTTP Basic ``Authorization`` value for the
        client); a refused grant or client is :class:`TokenRevoked`."""
        headers = {"Authorization": basic} if basic else {}
        try:
            async with self.session.post(self.token_url(), data=dict(form), headers=headers,
                                         timeout=self.timeout) as response:
                status, raw = response.status, await response.read()
                headers = response.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServerError(f"token request failed: {exc}", source=self.name) from exc
        if status in (400, 401, 403):
            raise TokenRevoked(f"the token endpoint refused the credentials (HTTP {status}: "
                               f"{raw[:200].decode('utf-8', 'replace')}); reconnect the "
                               "source", source=self.name, status=status)
        if status != 200:
            raise self.error_for(status, raw, headers, "token request")
        try:
            body = json.loads(raw)
        except ValueError:
            raise PartialPage("token answer is not JSON", source=self.name) from None
        if isinstance(body, dict):
            body = self.token_answer(body)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise SchemaChanged("access_token", "the token answer has no access_token",
                                source=self.name)
        return body


def point(spec: SourceSpec, kind: str, entity_id: str, metric: str, at: datetime,
          value: int | float, dimensions: tuple[tuple[str, str], ...] = ()) -> Point:
    """A :class:`Point` of ``spec``'s source (a shorthand for the source modules)."""
    return Point(spec.name, kind, entity_id, metric, at, value, dimensions)


class CodeEnvelope:
    """For a :class:`Connector` whose API answers HTTP 200 with ``{"code", <message>,
    "data"}``, a non-zero ``code`` being the error (Boomplay, TikTok): ``check``,
    ``classify`` and the code's error, from the codes below. Mix in before
    :class:`Connector`."""

    #: The codes that mean throttled, token or key invalid, and quota spent.
    throttled_codes: ClassVar[frozenset[int]] = frozenset()
    token_codes: ClassVar[frozenset[int]] = frozenset()
    quota_codes: ClassVar[frozenset[int]] = frozenset()
    #: The envelope's message field (``msg``, ``message``).
    message_field: ClassVar[str] = "message"

    name: str
    pacer: Pacer
    clock: Any

    def check(self, page: Any) -> None:
        """Code 0 with data passes; otherwise the code's error."""
        if page.code == 0:
            if page.data is None:
                raise SchemaChanged("data", "code 0 without data", source=self.name)
            return
        raise self.error_of(page.code, str(getattr(page, self.message_field)))

    def error_of(self, code: int, message: str) -> SourceError:
        """The error a non-zero ``code`` means (5xxxx: the source's servers)."""
        text = f"code {code}: {message}"
        if code in self.throttled_codes:
            return RateLimited(text, retry_after=None, source=self.name)
        if code in self.token_codes:
            return TokenRevoked(text, source=self.name)
        if code in self.quota_codes:
            return QuotaExhausted(text, resets_at=self.pacer.resets_at(self.clock()),
                                  source=self.name)
        if code >= 50000:
            return ServerError(text, source=self.name)
        return SourceError(text, source=self.name)

    def classify(self, status: int, body: Any, headers: Mapping[str, str]
                 ) -> SourceError | None:
        """A body carrying a non-zero code is that code's error, whatever the status."""
        if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"]:
            return self.error_of(body["code"], str(body.get(self.message_field, "")))
        return None
