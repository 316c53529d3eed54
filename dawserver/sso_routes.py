"""Organisations' own OpenID providers (single sign-on): their settings and the sign-in.

``PUT/GET/DELETE /accounts/{account_id}/sso`` register, show (never the client
secret) and remove an organisation's provider (its admins and owners:
:class:`accounts.sso.SingleSignOn`). Each domain the provider covers is pending until
``POST /accounts/{account_id}/sso/domains/{domain}/verify`` finds the TXT record the
answer names (:mod:`accounts.sso_domains`); ``GET /accounts/{account_id}/sso/domains``
lists them. ``GET /auth/sso/{org_id}/start?next=PATH`` sends the browser to that
provider; its callback signs the person in as the global providers' does
(:mod:`dawserver.oidc_routes`; only in the browser that started it) and returns to
``next``, or, when they use two-step sign-in, sends the browser to
``/#second_factor=TOKEN`` to finish with a code at ``POST /auth/sign-in/second-factor``.

An issuer must be https and, unless ``config.single_sign_on["allow_private_issuers"]``,
resolve to public addresses only: the server fetches its discovery document and keys,
and an organisation's admin must not point it into the server's own network.
``config.single_sign_on`` also names the DNS servers that domain checks ask
(``dns_servers``: ``["HOST[:PORT]", ...]``; default the system's), their timeout
(``dns_timeout``, seconds) and how long a proof holds before a newcomer's join reads the
record again (``domain_reverify_after``, seconds).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from pydantic import Field

from accounts.oidc import OidcClient, PendingLogins, ProviderConfig
from accounts.sso import SecretBox, SingleSignOn, SsoError, SsoProvider, SsoStore
from accounts.sso_domains import (
    DNS_TIMEOUT,
    REVERIFY_AFTER,
    DnsUnavailable,
    DomainNotProven,
    DomainProofs,
    SsoDomain,
    SsoDomainStore,
    TxtLookup,
)
from collab.tokens import SECRET_FILE
from database import Session

from .auth_routes import actor_of
from .keys import ACCOUNTS, CONFIG, DATABASE
from .oidc_routes import (
    Callback,
    PendingSignIn,
    Start,
    finish_started,
    safe_next,
    send_to_provider,
    signed_in_redirect,
)
from .permissions import ACCOUNT_ADMIN
from .plugin_api import (
    PUBLIC,
    BadRequest,
    Empty,
    Media,
    Model,
    NotFound,
    Request,
    Route,
    Unavailable,
    Unprocessable,
)
from .public_addresses import is_public


class SsoSettings(Model):
    """An organisation's provider: its issuer, the client it issued, the domains it covers.

    Leave ``client_secret`` out to keep the stored one."""

    issuer: str = Field(min_length=8, max_length=500)
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: str | None = Field(None, min_length=1, max_length=2000)
    domains: list[str] = Field(min_length=1, max_length=50)
    default_role: str = Field("member", min_length=1, max_length=40)


class DomainInfo(Model):
    """One of the provider's domains: ``pending`` until the TXT record ``record_name``
    holds ``record_value`` and the domain is verified; only a ``verified`` one signs
    people in."""

    domain: str
    status: str
    record_type: str
    record_name: str
    record_value: str
    verified_at: float | None
    checked_at: float | None
    last_error: str


class SsoInfo(Model):
    """An organisation's provider as shown to its admins (the secret never is)."""

    issuer: str
    client_id: str
    domains: list[str]
    domain_checks: list[DomainInfo]
    default_role: str
    sign_in_url: str
    redirect_uri: str
    updated_by: str
    updated_at: float


class SsoSignIns:
    """The organisations' sign-in: rules, started sign-ins, clients per provider version."""

    def __init__(self, sso: SingleSignOn, settings: dict[str, Any], db: Session) -> None:
        self.sso = sso
        self.pending = PendingLogins(db, PendingSignIn)
        self.allow_private = bool(settings.get("allow_private_issuers"))
        self._trust = (ssl.create_default_context(cafile=settings["ca_file"])
                       if settings.get("ca_file") else None)
        self._http: aiohttp.ClientSession | None = None
        self._clients: dict[tuple[str, float], OidcClient] = {}

    def client(self, provider: SsoProvider) -> OidcClient:
        """The client of ``provider`` as stored now (a changed provider gets a new one)."""
        key = (provider.account_id, provider.updated_at)
        if key not in self._clients:
            if self._http is None:
                self._http = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=self._trust or True))
            for old in [k for k in self._clients if k[0] == provider.account_id]:
                del self._clients[old]  # (they share the one HTTP session)
            self._clients[key] = OidcClient(
                ProviderConfig(f"sso:{provider.account_id}", provider.issuer,
                               provider.client_id, provider.client_secret),
                session=self._http)
        return self._clients[key]

    async def check_issuer_host(self, issuer: str) -> None:
        """Refuse an issuer whose host resolves to a private, loopback or link-local
        address (unless allowed); :class:`BadRequest` saying so."""
        if self.allow_private:
            return
        host = urlsplit(issuer).hostname or ""
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, 443)
        except OSError as exc:
            raise BadRequest(f"the issuer's host {host!r} does not resolve ({exc}); check "
                             f"the URL") from None
        for *_, sockaddr in found:
            address = ipaddress.ip_address(sockaddr[0].split("%")[0])
            if not is_public(address):
                raise BadRequest(f"the issuer's host {host!r} is a private address "
                                 f"({address}); an organisation's provider must be reachable "
                                 f"on the internet")

    async def close(self) -> None:
        """Close the HTTP session of the clients."""
        self._clients = {}
        if self._http is not None:
            await self._http.close()
            self._http = None


SSO = web.AppKey("sso_sign_ins", SsoSignIns)


def setup_sso(app: web.Application) -> None:
    """Open organisations' single sign-on with the app (after the account service)."""
    app.cleanup_ctx.append(sso_context)


async def sso_context(app: web.Application) -> AsyncIterator[None]:
    """Build :class:`SsoSignIns` over the account service; close its clients after."""
    secret = (app[CONFIG].data_dir / SECRET_FILE).read_text().strip().encode("ascii")
    store = SsoStore(app[DATABASE], SecretBox(secret))
    settings = dict(app[CONFIG].single_sign_on)
    lookup = TxtLookup(list(settings.get("dns_servers") or ()),
                       float(settings.get("dns_timeout", DNS_TIMEOUT)))
    domains = DomainProofs(SsoDomainStore(app[DATABASE]), lookup, reverify_after=float(
        settings.get("domain_reverify_after", REVERIFY_AFTER)))
    app[SSO] = sign_ins = SsoSignIns(SingleSignOn(app[ACCOUNTS], store, domains), settings,
                                     app[DATABASE])
    try:
        yield
    finally:
        await sign_ins.close()


def _sign_ins(request: Request) -> SsoSignIns:
    sign_ins = request.native.app.get(SSO)
    if sign_ins is None:
        raise NotFound("single sign-on is not set up on this server")
    return sign_ins


def _base(request: Request) -> str:
    return request.app[CONFIG].base_url.rstrip("/")


def _domain_info(domain: SsoDomain) -> DomainInfo:
    return DomainInfo(domain=domain.domain, status=domain.status, record_type="TXT",
                      record_name=domain.record_name, record_value=domain.record_value,
                      verified_at=domain.verified_at, checked_at=domain.checked_at,
                      last_error=domain.last_error)


async def _info(request: Request, provider: SsoProvider) -> SsoInfo:
    start = f"{_base(request)}/auth/sso/{provider.account_id}"
    domains = await _sign_ins(request).sso.domains.store.list(provider.account_id)
    return SsoInfo(issuer=provider.issuer, client_id=provider.client_id,
                   domains=list(provider.domains),
                   domain_checks=[_domain_info(d) for d in domains],
                   default_role=provider.default_role,
                   sign_in_url=f"{start}/start", redirect_uri=f"{start}/callback",
                   updated_by=provider.updated_by, updated_at=provider.updated_at)


async def put_sso(request: Request) -> SsoInfo:
    """Register or change the organisation's provider (admins and owners)."""
    body: SsoSettings = request.body
    sign_ins = _sign_ins(request)
    try:
        provider = await sign_ins.sso.configure(
            actor_of(request), request.params["account_id"], issuer=body.issuer,
            client_id=body.client_id, client_secret=body.client_secret, domains=body.domains,
            default_role=body.default_role, check_host=sign_ins.check_issuer_host)
    except SsoError as exc:
        raise BadRequest(str(exc)) from None
    return await _info(request, provider)


async def get_sso(request: Request) -> SsoInfo:
    """The organisation's provider (admins and owners; the secret is never shown)."""
    provider = await _sign_ins(request).sso.describe(actor_of(request),
                                                     request.params["account_id"])
    return await _info(request, provider)


async def delete_sso(request: Request) -> SsoInfo:
    """Stop single sign-on for the organisation; linked people keep their accounts."""
    sso = _sign_ins(request).sso
    provider = await sso.describe(actor_of(request), request.params["account_id"])
    info = await _info(request, provider)
    await sso.remove(actor_of(request), request.params["account_id"])
    return info


async def list_domains(request: Request) -> list[DomainInfo]:
    """The provider's domains, each pending or verified, with the TXT record that
    proves it (admins and owners)."""
    domains = await _sign_ins(request).sso.domains_of(actor_of(request),
                                                      request.params["account_id"])
    return [_domain_info(d) for d in domains]


async def verify_domain(request: Request) -> DomainInfo:
    """Read the domain's TXT record now: verified when it holds the domain's
    ``record_value`` (422 saying what was found when not; 503 when the DNS does not
    answer, and nothing changes). Admins and owners."""
    try:
        proven = await _sign_ins(request).sso.verify_domain(
            actor_of(request), request.params["account_id"], request.params["domain"])
    except DomainNotProven as exc:
        raise Unprocessable(str(exc), reason=exc.reason) from None
    except DnsUnavailable as exc:
        raise Unavailable(str(exc), headers={"Retry-After": "60"}) from None
    return _domain_info(proven)


async def start(request: Request) -> web.StreamResponse:
    """Send the browser to the organisation's provider (302); back to ``?next=`` (a path
    on this site, else 400) once signed in."""
    back = safe_next(request.query.next)
    sign_ins = _sign_ins(request)
    org_id = request.params["org_id"]
    client = sign_ins.client(await sign_ins.sso.provider(org_id))
    return await send_to_provider(request, client, sign_ins.pending,
                                  f"{_base(request)}/auth/sso/{org_id}/callback", back)


async def callback(request: Request) -> web.StreamResponse:
    """Finish the sign-in the organisation's provider sent back (cookie, or the second
    factor to give); 400 for an unknown state, for a sign-in started in another browser
    and for anything the checks refuse."""
    sign_ins = _sign_ins(request)
    org_id = request.params["org_id"]
    client = sign_ins.client(await sign_ins.sso.provider(org_id))
    pending, identity = await finish_started(request, client, sign_ins.pending)
    try:
        result = await sign_ins.sso.sign_in(org_id, identity,
                                            address=request.native.remote or "",
                                            user_agent=request.headers.get("User-Agent", ""))
    except DnsUnavailable as exc:
        raise Unavailable(f"{exc}; sign in again in a minute",
                          headers={"Retry-After": "60"}) from None
    return signed_in_redirect(request, result, pending)


ACCOUNT_SSO = "/accounts/{account_id}/sso"

ROUTES = [
    Route(method="PUT", path=ACCOUNT_SSO, handler=put_sso, permission=ACCOUNT_ADMIN,
          body=SsoSettings, response=SsoInfo),
    Route(method="GET", path=ACCOUNT_SSO, handler=get_sso, permission=ACCOUNT_ADMIN,
          response=SsoInfo),
    Route(method="DELETE", path=ACCOUNT_SSO, handler=delete_sso, permission=ACCOUNT_ADMIN,
          response=SsoInfo),
    Route(method="GET", path=f"{ACCOUNT_SSO}/domains", handler=list_domains,
          permission=ACCOUNT_ADMIN, response=list[DomainInfo]),
    Route(method="POST", path=f"{ACCOUNT_SSO}/domains/{{domain}}/verify",
          handler=verify_domain, permission=ACCOUNT_ADMIN, body=Empty, response=DomainInfo),
    Route(method="GET", path="/auth/sso/{org_id}/start", handler=start, permission=PUBLIC,
          query=Start, response=Media("text/html"), status=302),
    Route(method="GET", path="/auth/sso/{org_id}/callback", handler=callback,
          permission=PUBLIC, query=Callback, response=Media("text/html"), status=302),
]
