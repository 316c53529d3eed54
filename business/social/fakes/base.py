"""What every fake network shares: OAuth 2.0 with PKCE, expiring tokens, failure injection.

A :class:`FakeNetwork` is an aiohttp application (mounted under ``/<network>`` by
:class:`~business.social.fakes.server.FakeNetworks`). It keeps everything in memory:

- ``GET <authorize path>``: checks the client, records the PKCE S256 challenge and
  redirects back with a code and the state;
- ``POST <token path>``: codes are single use and expire after :data:`CODE_LIFETIME`;
  the verifier must match the challenge; refresh tokens rotate (the old one stops
  working), and a refresh answer leaves the refresh token out when
  :attr:`FakeNetwork.refresh_omit_rate` says so (Google never sends one again);
- access tokens expire after :attr:`FakeNetwork.token_lifetime` (or at once through
  :meth:`FakeNetwork.expire_tokens`) and then answer the network's "expired" error;
- failures on command (:meth:`FakeNetwork.fail`, or ``POST /_fake/fail`` with
  ``{"status": 429, "times": 2, "retry_after": 3}`` or ``{"kind": "duplicate"}``) and at
  random (``fail_rate`` with ``seed``: a 429 or a 503), each in the network's own shape;
- ``POST <revoke path>`` (networks that have one): RFC 7009 revocation; a live access or
  refresh token withdraws the user's whole grant (every token of theirs then answers the
  network's invalid-token error), an unknown one is a 400 ``invalid_token``; counted in
  ``stats.revocations``; fails on command (:meth:`FakeNetwork.fail_revoke`: a 503, or
  no answer until the server stops).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

#: How long a code may wait before it is exchanged.
CODE_LIFETIME = 600.0
#: How long the fakes of networks with a duplicate-content error (X, Facebook, LinkedIn)
#: refuse a post repeating one of the account's: the networks refuse only recent repeats
#: and document no window, so a day stands in (last week's weekly post is not refused).
DUPLICATE_WINDOW_S = 86_400.0
#: The failure kinds every fake can answer with (in its own network's shape).
KINDS = ("rate_limited", "expired", "server", "duplicate", "quota", "rejected")
_STATUS_KINDS = {429: "rate_limited", 401: "expired"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeUser:
    """The account that signs in at the fake network."""

    id: str = "1001"
    name: str = "Ada Beats"
    handle: str = "adabeats"


#: The account an API request's access token belongs to.
USER = web.RequestKey("user", FakeUser)


@dataclass
class Injected:
    """A failure waiting to be answered ``times`` more times."""

    kind: str
    times: int
    retry_after: float
    path: str = ""


@dataclass
class _Code:
    params: dict[str, str]
    issued_at: float


@dataclass
class _Token:
    user: FakeUser
    expires_at: float
    scope: str


@dataclass
class FakeStats:
    """What the fake saw, for tests that count calls."""

    requests: int = 0
    injected: int = 0
    random_failures: int = 0
    lost_answers: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)
    #: Grants withdrawn by revocation, and revocation requests (failed ones too).
    revocations: int = 0
    revoke_requests: int = 0


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeNetwork:
    """The shared half of a fake network; subclasses add the API routes and error shapes."""

    network = ""
    authorize_path = "/oauth/authorize"
    token_path = "/oauth/token"
    #: Where the network serves token revocation (empty: it has none).
    revoke_path = ""
    #: Whether a revocation must name the client (Google's does not).
    revoke_checks_client = True
    #: The OAuth parameter that names the client (TikTok calls it ``client_key``).
    client_param = "client_id"
    #: Whether the network refuses an authorization request without a PKCE challenge.
    pkce_required = True
    #: The failure kinds this network has (no duplicate error where the network has none).
    kinds: tuple[str, ...] = KINDS
    #: Whether the token endpoint issues refresh tokens (Meta's do not).
    issue_refresh = True
    #: Whether the revocation endpoint withdraws the user's whole grant to the app
    #: (Google's), or only the grant of the token named, its access and refresh tokens
    #: (X's and TikTok's RFC 7009 revoke): another connection of the user's stays.
    revokes_whole_grant = True
    #: Paths served without an access token (OAuth endpoints, admin).
    public_prefixes: tuple[str, ...] = ()

    def __init__(self, *, client_id: str = "client-id", client_secret: str = "client-secret",
                 user: FakeUser | None = None, token_lifetime: float = 3600.0,
                 fail_rate: float = 0.0, seed: int | None = None,
                 refresh_omit_rate: float | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = user or FakeUser()
        self.token_lifetime = token_lifetime
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        if refresh_omit_rate is not None:
            self.refresh_omit_rate = refresh_omit_rate
        self.posts: list[dict[str, Any]] = []
        self.stats = FakeStats()
        self.injected: list[Injected] = []
        #: Calls whose answer is lost: ``[times, path]`` (see :meth:`lose_answers`).
        self.losing: list[list[Any]] = []
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, _Token] = {}
        self._refresh: dict[str, tuple[FakeUser, str]] = {}
        #: The authorisation each token issued by the token endpoint belongs to.
        self._grant_of: dict[str, str] = {}
        self._revoke_failures: list[str] = []
        self._never = asyncio.Event()
        self._ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)
        #: The clock posts' engagement grows by (tests move it forward).
        self.clock: Callable[[], float] = time.time

    #: The share of refresh answers that leave out the refresh token.
    refresh_omit_rate = 0.0
    #: Where the server mounted this network ("/x"); request paths start with it.
    prefix = ""
    #: The fake's own URL (set by the server), for upload URLs it hands out.
    base_url = ""

    # -- the application ---------------------------------------------------------------

    def app(self) -> web.Application:
        """The network's aiohttp application (OAuth, admin and API routes)."""
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 2**20)
        app.router.add_get(self.authorize_path, self._authorize)
        self.add_token_route(app)
        if self.revoke_path:
            app.router.add_post(self.revoke_path, self.revoke_endpoint)
        app.router.add_post("/_fake/fail", self._admin_fail)
        app.router.add_get("/_fake/posts", self._admin_posts)
        self.add_routes(app)
        return app

    def add_token_route(self, app: web.Application) -> None:
        app.router.add_post(self.token_path, self.token_endpoint)

    def add_routes(self, app: web.Application) -> None:
        """The network's API routes."""

    # -- switches ------------------------------------------------------------------------

    def fail(self, status: int | None = None, times: int = 1, retry_after: float = 1.0,
             *, kind: str | None = None, path: str = "") -> None:
        """Answer the next ``times`` API calls (whose path contains ``path``) with a
        failure: by ``status`` (429, 401, 5xx, other 4xx) or by ``kind`` (:data:`KINDS`)."""
        if kind is None:
            if status is None:
                raise ValueError("give a status (429, 401, 500, ...) or a kind")
            kind = _STATUS_KINDS.get(status, "server" if status >= 500 else "rejected")
        if kind not in self.kinds:
            raise ValueError(f"{self.network} has no failure kind {kind!r}; use one of "
                             f"{self.kinds}")
        self.injected.append(Injected(kind, times, retry_after, path))

    def lose_answers(self, times: int = 1, path: str = "") -> None:
        """The next ``times`` POST calls (whose path contains ``path``) are carried out,
        then the connection drops before the answer (the caller cannot tell whether the
        post was made)."""
        self.losing.append([times, path])

    def fail_revoke(self, kind: str, times: int = 1) -> None:
        """Answer the next ``times`` revocations with ``kind``: "server" (a 503, or the
        network's own server error) or
        "timeout" (held unanswered until the server stops)."""
        if kind not in ("server", "timeout"):
            raise ValueError(f"no revocation failure {kind!r}; use 'server' or 'timeout'")
        self._revoke_failures.extend([kind] * times)

    def stop_holding(self) -> None:
        """Let go of every revocation held open (the server is stopping)."""
        self._never.set()

    def withdraw(self, user: FakeUser) -> None:
        """Every token of ``user`` stops working (the grant is withdrawn)."""
        self._tokens = {t: v for t, v in self._tokens.items() if v.user.id != user.id}
        self._refresh = {t: v for t, v in self._refresh.items() if v[0].id != user.id}

    def holder(self, token: str) -> FakeUser | None:
        """Whose live access or refresh token ``token`` is (None: nobody's)."""
        held = self._tokens.get(token)
        if held is not None and held.expires_at >= time.time():
            return held.user
        grant = self._refresh.get(token)
        return grant[0] if grant is not None else None

    async def revoke_failing(self) -> bool:
        """Count a revocation request; True when :meth:`fail_revoke` says it fails (a
        "timeout" is first held unanswered until the server stops)."""
        self.stats.revoke_requests += 1
        if not self._revoke_failures:
            return False
        if self._revoke_failures.pop(0) == "timeout":
            await self._never.wait()
        return True

    async def revoke_endpoint(self, request: web.Request) -> web.Response:
        if await self.revoke_failing():
            return self.oauth_error(503, "server_error", "revocation unavailable")
        form = await self.read_token_form(request)
        if self.revoke_checks_client and (
                form.get(self.client_param) != self.client_id
                or not hmac.compare_digest(form.get("client_secret", ""), self.client_secret)):
            return self.oauth_error(401, "invalid_client", "client authentication failed")
        user = self.holder(form.get("token", ""))
        if user is None:
            return self.oauth_error(400, "invalid_token", "Token expired or revoked")
        if self.revokes_whole_grant:
            self.withdraw(user)
        else:
            self.withdraw_grant(form.get("token", ""))
        self.stats.revocations += 1
        return self.revoked_answer()

    def withdraw_grant(self, token: str) -> None:
        """``token`` and the other tokens of its authorisation stop working (the user's
        other authorisations stay)."""
        grant = self._grant_of.get(token)
        ended = {t for t, g in self._grant_of.items() if g == grant} if grant else {token}
        ended.add(token)
        self._tokens = {t: v for t, v in self._tokens.items() if t not in ended}
        self._refresh = {t: v for t, v in self._refresh.items() if t not in ended}

    def revoked_answer(self) -> web.Response:
        """What the network answers a revocation (RFC 7009: 200, the body its own)."""
        return web.json_response({})

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        for token in self._tokens.values():
            token.expires_at = time.time() - 1

    def expire_codes(self) -> None:
        """Every code not yet exchanged is past its lifetime."""
        for code in self._codes.values():
            code.issued_at -= CODE_LIFETIME + 1

    def issue_access_token(self, user: FakeUser | None = None, scope: str = "") -> str:
        """A valid access token for ``user`` (tests that skip the OAuth dance)."""
        token = f"{self.network}-at-{secrets.token_urlsafe(24)}"
        self._tokens[token] = _Token(user or self.user, time.time() + self.token_lifetime,
                                     scope)
        return token

    def next_id(self) -> str:
        return str(next(self._ids))

    def counts(self, post_id: str, created: float, weights: Mapping[str, float]
               ) -> dict[str, int]:
        """Engagement of post ``post_id`` now, in the network's own metric names:
        deterministic per post id and age, and growing with age.

        Each metric is its weight × a factor of the post (0.5 to 1.5, from a hash of
        the network and id) × ``1 + ln(1 + age in hours)`` (:attr:`clock` gives now).
        """
        digest = hashlib.sha256(f"{self.network}:{post_id}".encode()).digest()
        growth = 1.0 + math.log1p(max(0.0, self.clock() - created) / 3600.0)
        return {name: int(weight * (0.5 + digest[i % len(digest)] / 255) * growth)
                for i, (name, weight) in enumerate(weights.items())}

    # -- OAuth ---------------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if params.get(self.client_param) != self.client_id:
            return web.Response(status=400, text=f"unknown {self.client_param}")
        redirect = params.get("redirect_uri", "")
        if not redirect.startswith(("http://", "https://")):
            return web.Response(status=400, text="redirect_uri must be an http(s) URL")
        challenge = params.get("code_challenge", "")
        bad = params.get("code_challenge_method") != "S256" or len(challenge) != 43
        if (challenge or self.pkce_required) and bad:
            query = urlencode({"error": "invalid_request", "state": params.get("state", ""),
                               "error_description": "code_challenge (S256) required"})
            raise web.HTTPFound(f"{redirect}?{query}")
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(params, time.time())
        query = urlencode({"code": code, "state": params.get("state", "")})
        raise web.HTTPFound(f"{redirect}?{query}")

    async def read_token_form(self, request: web.Request) -> dict[str, str]:
        """The token request's parameters (a form; Meta's GET variant uses the query)."""
        form = {k: str(v) for k, v in (await request.post()).items()}
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            form.setdefault(self.client_param, client)
            form.setdefault("client_secret", secret)
        return form

    async def token_endpoint(self, request: web.Request) -> web.Response:
        form = await self.read_token_form(request)
        self.stats.token_requests.append(form)
        if (form.get(self.client_param) != self.client_id
                or not hmac.compare_digest(form.get("client_secret", ""), self.client_secret)):
            return self.oauth_error(401, "invalid_client", "client authentication failed")
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            answer = self.code_grant(form)
        elif grant == "refresh_token":
            answer = self.refresh_grant(form.get("refresh_token", ""))
        else:
            return self.oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")
        if isinstance(answer, web.Response):
            return answer
        return web.json_response(answer)

    def code_grant(self, form: dict[str, str]) -> dict[str, Any] | web.Response:
        """Check a code (single use, unexpired, same redirect URI, PKCE) and issue tokens."""
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or time.time() - code.issued_at > CODE_LIFETIME:
            return self.oauth_error(400, "invalid_grant", "code is invalid, used or expired")
        if form.get("redirect_uri") != code.params.get("redirect_uri"):
            return self.oauth_error(400, "invalid_grant", "redirect_uri does not match")
        challenge = code.params.get("code_challenge")
        if challenge and not hmac.compare_digest(s256(form.get("code_verifier", "")),
                                                 challenge):
            return self.oauth_error(400, "invalid_grant", "code_verifier does not match")
        return self.new_tokens(self.user, code.params.get("scope", ""))

    def new_tokens(self, user: FakeUser, scope: str, *, refresh: bool = True
                   ) -> dict[str, Any]:
        access = self.issue_access_token(user, scope)
        answer: dict[str, Any] = {"access_token": access, "token_type": "bearer",
                                  "expires_in": int(self.token_lifetime), "scope": scope}
        if refresh and self.issue_refresh:
            token = f"{self.network}-rt-{secrets.token_urlsafe(24)}"
            self._refresh[token] = (user, scope)
            answer["refresh_token"] = token
        grant = secrets.token_urlsafe(12)
        for token in (answer["access_token"], answer.get("refresh_token")):
            if token:
                self._grant_of[token] = grant
        return answer

    def refresh_grant(self, refresh_token: str) -> dict[str, Any] | web.Response:
        """A new access token; the refresh token rotates unless this answer omits it."""
        grant = self._refresh.get(refresh_token)
        if grant is None:
            return self.oauth_error(400, "invalid_grant", "refresh token is invalid")
        user, scope = grant
        omit = self.rng.random() < self.refresh_omit_rate
        answer = self.new_tokens(user, scope, refresh=not omit)
        grant = self._grant_of.get(refresh_token)
        if grant is not None:  # the same authorisation, refreshed
            for token in (answer["access_token"], answer.get("refresh_token")):
                if token:
                    self._grant_of[token] = grant
        if not omit:
            del self._refresh[refresh_token]  # rotated: the old one is spent
        return answer

    def oauth_error(self, status: int, error: str, description: str) -> web.Response:
        return web.json_response({"error": error, "error_description": description},
                                 status=status)

    # -- API auth and failures -----------------------------------------------------------

    def public(self, path: str) -> bool:
        """Whether ``path`` is served without an access token (upload URLs, sessions)."""
        return False

    def bearer(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        for scheme in ("Bearer ", "OAuth "):
            if header.startswith(scheme):
                return header[len(scheme):]
        return request.query.get("access_token", "")

    def user_of(self, request: web.Request) -> FakeUser:
        return request[USER]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.stats.requests += 1
        path = request.path[len(self.prefix):]
        if path.startswith("/_fake") or path in (self.authorize_path, self.token_path,
                                                  self.revoke_path or self.token_path) \
                or path.startswith(self.public_prefixes) or self.public(path):
            return await handler(request)
        for injected in self.injected:
            if injected.times > 0 and injected.path in request.path:
                injected.times -= 1
                self.stats.injected += 1
                return self.error(injected.kind, injected.retry_after, request)
        self.injected = [i for i in self.injected if i.times > 0]
        if self.fail_rate and self.rng.random() < self.fail_rate:
            self.stats.random_failures += 1
            kind = self.rng.choice(("rate_limited", "server"))
            return self.error(kind, 1.0, request)
        token = self._tokens.get(self.bearer(request))
        if token is None:
            return self.error("invalid_token", 0, request)
        if token.expires_at < time.time():
            return self.error("expired", 0, request)
        request[USER] = token.user
        response = await handler(request)
        for losing in self.losing:
            if losing[0] > 0 and losing[1] in request.path and request.method == "POST" \
                    and response.status < 300:
                losing[0] -= 1
                self.stats.lost_answers += 1
                if request.transport is not None:
                    request.transport.abort()  # done, but the answer never leaves
        return response

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        """The network's answer for a failure ``kind`` (subclasses give the real shapes)."""
        status = {"rate_limited": 429, "expired": 401, "invalid_token": 401, "server": 503,
                  "duplicate": 409, "quota": 429, "rejected": 400}[kind]
        headers = {"Retry-After": str(int(retry_after))} if kind == "rate_limited" else {}
        return web.json_response({"error": kind}, status=status, headers=headers)

    # -- admin ---------------------------------------------------------------------------

    async def _admin_fail(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.fail(body.get("status"), int(body.get("times", 1)),
                      float(body.get("retry_after", 1)), kind=body.get("kind"),
                      path=str(body.get("path", "")))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"queued": len(self.injected)})

    async def _admin_posts(self, request: web.Request) -> web.Response:
        return web.json_response({"posts": self.posts}, dumps=_dumps)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def repeats_recent(posts: list[dict[str, Any]], same: Callable[[dict[str, Any]], bool],
                   created: str = "created", now: float | None = None) -> dict[str, Any] | None:
    """The newest of ``posts`` that ``same`` picks and that is younger than
    :data:`DUPLICATE_WINDOW_S` (its time under ``created``): what a duplicate repeats."""
    since = (time.time() if now is None else now) - DUPLICATE_WINDOW_S
    for post in reversed(posts):
        if post[created] > since and same(post):
            return post
    return None


def graph_time(epoch: float) -> str:
    """``epoch`` as the Graph API writes times (``2026-05-01T09:00:00+0000``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch))
