"""Sign in with Google or any OpenID Connect provider: the browser's two stops here.

``GET /auth/oidc/{provider}/start`` sends the browser to the provider (302);
``GET /auth/oidc/{provider}/callback`` takes it back, checks everything
(:class:`accounts.oidc.OidcClient`), signs the person in
(:func:`accounts.oidc_sign_in.sign_in_with`), sets the session cookie as the
password sign-in does and sends the browser back to ``?next=`` given to ``start`` (a
path on this site only; :func:`safe_next`), else to ``/``. A person with two-step
sign-in is sent to ``/#second_factor=TOKEN&expires_at=T`` (and ``&next=PATH``)
instead (a fragment never reaches a server or a Referer), and finishes with ``POST
/auth/sign-in/second-factor`` and a code, as after a password. Only the browser that
started a sign-in may finish it (:mod:`dawserver.sign_in_binding`): elsewhere the
callback answers 400. Providers come from
``config.sign_in_providers``; :func:`setup_oidc` keeps their clients (made at
their first use) and the started sign-ins on the app, and closes the clients
with it.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from accounts.oidc import (
    GOOGLE_ISSUER,
    OidcClient,
    OidcIdentity,
    PendingLogin,
    PendingLogins,
    ProviderConfig,
)
from accounts.oidc_sign_in import sign_in_with
from accounts.service import SecondFactorNeeded, SignedIn
from database import Session

from .auth_routes import session_cookie
from .client_address import limited_client
from .keys import ACCOUNTS, CONFIG, DATABASE
from .plugin_api import PUBLIC, BadRequest, Media, NotFound, Query, Request, Route
from .sign_in_binding import OTHER_BROWSER, binding_cookie, holds_binding, new_binding

#: The longest ``next`` path kept with a started sign-in.
MAX_NEXT = 2000
BAD_NEXT = ("next={value!r} is not a path on this site; give a path such as /account/team "
            "(no scheme, host, '//' or backslash)")
UNKNOWN_SIGN_IN = ("this sign-in is unknown, was finished already or took too long; "
                   "start it again")


def safe_next(value: str) -> str:
    r"""``value`` when it is a path on this site (``/...``), else :class:`BadRequest`.

    Refused: anything with a scheme or host (``http://...``), a protocol-relative
    ``//host``, backslashes (browsers read ``/\host`` as ``//host``) and control
    characters or spaces (browsers drop tabs and newlines, so ``/<TAB>/host`` would
    become ``//host``). ``""`` stands for ``/``.
    """
    if value == "":
        return "/"
    parts = urlsplit(value)
    if (len(value) > MAX_NEXT or not value.startswith("/") or value.startswith("//")
            or "\\" in value or parts.scheme or parts.netloc
            or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value)):
        raise BadRequest(BAD_NEXT.format(value=value[:100]))
    return value


@dataclass(frozen=True)
class PendingSignIn(PendingLogin):
    """A started sign-in, the page to return to after it and the digest of the cookie
    that binds it to its browser (:mod:`dawserver.sign_in_binding`)."""

    next: str = "/"
    browser: str = field(default="", repr=False)

    @classmethod
    def of(cls, pending: PendingLogin, next_path: str, browser: str) -> PendingSignIn:
        """``pending`` with ``next_path`` to return to, bound to ``browser`` (a digest)."""
        return cls(**{f.name: getattr(pending, f.name) for f in fields(pending)},
                   next=next_path, browser=browser)

    @property
    def cookie_path(self) -> str:
        """The path of the callback, where the binding cookie is sent."""
        return urlsplit(self.redirect_uri).path or "/"


class Start(Query):
    """Where to go once signed in: ``next``, a path on this site (default ``/``)."""

    next: str = ""


class OidcSignIns:
    """The app's OpenID clients by provider name (made at first use) and started sign-ins."""

    def __init__(self, providers: dict[str, dict[str, Any]], db: Session) -> None:
        self.providers = providers
        self.pending = PendingLogins(db, PendingSignIn)
        self._clients: dict[str, OidcClient] = {}
        self._sessions: list[aiohttp.ClientSession] = []
        self._lock = asyncio.Lock()

    async def client(self, name: str) -> OidcClient:
        """The client for provider ``name``; NotFound when it is not configured."""
        settings = self.providers.get(name)
        if settings is None:
            raise NotFound(f"no sign-in provider {name!r} here; configured: "
                           f"{sorted(self.providers)}")
        async with self._lock:
            if name not in self._clients:
                client, session = _client(name, settings)
                self._clients[name] = client
                if session is not None:
                    self._sessions.append(session)
            return self._clients[name]

    async def close(self, app: web.Application | None = None) -> None:
        """Close every client made (an ``on_cleanup`` handler)."""
        clients, self._clients = list(self._clients.values()), {}
        sessions, self._sessions = self._sessions, []
        for client in clients:
            await client.aclose()
        for session in sessions:
            await session.close()


OIDC = web.AppKey("oidc_sign_ins", OidcSignIns)


def _client(name: str, settings: dict[str, Any]
            ) -> tuple[OidcClient, aiohttp.ClientSession | None]:
    """A client from ``{"issuer", "client_id", "client_secret"}`` (and ``ca_file``: a CA
    bundle to trust for a provider behind a private certificate authority), and the
    HTTP session made for that bundle (closed with the client)."""
    missing = [k for k in ("client_id", "client_secret") if not settings.get(k)]
    if missing:
        raise RuntimeError(f"sign_in_providers[{name!r}] lacks {missing}; give the client id "
                           f"and secret the provider issued")
    issuer = settings.get("issuer") or (GOOGLE_ISSUER if name == "google" else "")
    if not issuer:
        raise RuntimeError(f"sign_in_providers[{name!r}] lacks 'issuer' (the provider's "
                           f"https URL)")
    if issuer == GOOGLE_ISSUER:
        config = replace(ProviderConfig.google(settings["client_id"], settings["client_secret"]),
                         name=name)
    else:
        config = ProviderConfig(name, issuer, settings["client_id"], settings["client_secret"])
    session = None
    if settings.get("ca_file"):
        trust = ssl.create_default_context(cafile=settings["ca_file"])
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust))
    return OidcClient(config, session=session), session


def setup_oidc(app: web.Application) -> None:
    """Keep the sign-in providers of ``app[CONFIG]`` on ``app``; close them with it."""
    sign_ins = OidcSignIns(dict(app[CONFIG].sign_in_providers), app[DATABASE])
    app[OIDC] = sign_ins
    app.on_cleanup.append(sign_ins.close)


def _sign_ins(request: Request) -> OidcSignIns:
    sign_ins = request.native.app.get(OIDC)
    if sign_ins is None:
        raise NotFound("sign-in with a provider is not set up on this server")
    return sign_ins


def _redirect_uri(request: Request, name: str) -> str:
    return f"{request.app[CONFIG].base_url.rstrip('/')}/auth/oidc/{name}/callback"


class Callback(Query):
    """What the provider sends back: ``state`` and ``code``, or ``error``."""

    state: str = ""
    code: str | None = None
    error: str | None = None


async def start(request: Request) -> web.StreamResponse:
    """Send the browser to the provider to sign in (302); back to ``?next=`` after.

    400 for a ``next`` that is not a path on this site."""
    name = request.params["provider"]
    back = safe_next(request.query.next)
    sign_ins = _sign_ins(request)
    client = await sign_ins.client(name)
    return await send_to_provider(request, client, sign_ins.pending,
                                  _redirect_uri(request, name), back)


async def send_to_provider(request: Request, client: OidcClient,
                           started: PendingLogins[PendingSignIn], redirect_uri: str,
                           back: str) -> web.Response:
    """Start a sign-in with ``client`` (kept in ``started``, returning to ``back``): the
    302 to the provider, with the cookie that binds the sign-in to this browser."""
    url, pending = await client.begin(redirect_uri)
    value, digest = new_binding()
    signing_in = PendingSignIn.of(pending, back, digest)
    await started.put(signing_in)
    cookie = binding_cookie(request, value, signing_in.cookie_path, int(started.lifetime))
    return web.Response(status=302, headers={"Location": url, "Set-Cookie": cookie,
                                             "Cache-Control": "no-store"})


async def finish_started(request: Request, client: OidcClient,
                         started: PendingLogins[PendingSignIn]
                         ) -> tuple[PendingSignIn, OidcIdentity]:
    """The sign-in the callback names, once this browser is shown to have started it,
    and who the provider says signed in; :class:`BadRequest` for an unknown, used or
    expired ``state`` or another browser's sign-in (and what ``client`` refuses)."""
    query: Callback = request.query
    pending = await started.take(query.state) if query.state else None
    if pending is None or pending.provider != client.config.name:
        raise BadRequest(UNKNOWN_SIGN_IN)
    if not holds_binding(request, pending.browser):
        raise BadRequest(OTHER_BROWSER)
    return pending, await client.finish(pending, query.state, query.code, error=query.error)


async def callback(request: Request) -> web.StreamResponse:
    """Finish the sign-in the provider sent back: set the session cookie, go to ``/``.

    400 for an unknown, used or expired ``state``, for a sign-in started in another
    browser and for anything the checks refuse; 429 after repeated failures from the
    address (an IPv6 address's /64), counted with those of password sign-ins."""
    name = request.params["provider"]
    sign_ins = _sign_ins(request)
    service, address = request.app[ACCOUNTS], request.native.remote or ""
    # counted as a failure of the address (its /64) until it succeeds, as a password
    # sign-in is: 429 after repeated failures
    attempts = await service.take_client_attempt(limited_client(address))
    pending, identity = await finish_started(request, await sign_ins.client(name),
                                             sign_ins.pending)
    result = await sign_in_with(service, identity, address=address,
                                user_agent=request.headers.get("User-Agent", ""))
    await service.release_attempts(attempts)
    return signed_in_redirect(request, result, pending)


def signed_in_redirect(request: Request, result: SignedIn | SecondFactorNeeded,
                       pending: PendingSignIn) -> web.Response:
    """The callback's answer: to the sign-in's ``next`` (checked by :func:`safe_next` at
    the start) with the session cookie, or to ``/`` with the second factor's token (and
    the path) in the fragment; either way the binding cookie is cleared."""
    next_path = pending.next
    if isinstance(result, SecondFactorNeeded):
        fragment = {"second_factor": result.token, "expires_at": result.expires_at}
        if next_path != "/":
            fragment["next"] = next_path
        response = web.Response(status=302, headers={"Location": f"/#{urlencode(fragment)}",
                                                     "Cache-Control": "no-store"})
    else:
        max_age = int(request.app[ACCOUNTS].sessions.policy.absolute_s)
        cookie = session_cookie(request, result.secret, max_age)
        response = web.Response(status=302, headers={
            "Location": next_path, "Set-Cookie": cookie, "Cache-Control": "no-store"})
    response.headers.add("Set-Cookie", binding_cookie(request, "", pending.cookie_path, 0))
    return response


ROUTES = [
    Route(method="GET", path="/auth/oidc/{provider}/start", handler=start, permission=PUBLIC,
          query=Start, response=Media("text/html"), status=302),
    Route(method="GET", path="/auth/oidc/{provider}/callback", handler=callback,
          permission=PUBLIC, query=Callback, response=Media("text/html"), status=302),
]
