"""Sign-in with Google or any OpenID Connect provider: the relying party's side.

The authorization-code flow with PKCE (S256), ``state`` and ``nonce``
(OpenID Connect Core 1.0, section 3.1; RFC 7636)::

    async with OidcClient(ProviderConfig.google(client_id, client_secret)) as google:
        url, pending = await google.begin("https://studio.example/auth/google/callback")
        await logins.put(pending)                # server side, keyed by pending.state
        # ... the browser goes to ``url`` and comes back with ?code=...&state=...
        pending = await logins.take(request.query["state"])  # None: unknown, used, expired
        identity = await google.finish(pending, request.query["state"],
                                       request.query.get("code"),
                                       error=request.query.get("error"))

authlib builds the requests and checks the discovery document and the ID token's
claims; joserfc verifies the ID token's signature against the provider's JWKS.
Every failure raises :class:`~accounts.errors.ProviderError` with a message that says
what was wrong and what to do.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import aiohttp
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata, get_well_known_url
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet

from accounts.errors import ProviderError
from database import Session

logger = logging.getLogger(__name__)

#: Seconds a started sign-in may take before its callback is refused.
LOGIN_LIFETIME = 600.0
#: Seconds of clock skew allowed on the ID token's ``exp`` and ``iat``.
ID_TOKEN_LEEWAY = 60
#: Google's issuer (https://developers.google.com/identity/openid-connect/openid-connect).
GOOGLE_ISSUER = "https://accounts.google.com"
#: Signature algorithms accepted on ID tokens: public-key ones only (never ``none``, and
#: never HMAC keyed with the client secret).
SIGNING_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                "ES256", "ES384", "ES512", "EdDSA"})
#: The largest answer read from a provider.
_MAX_ANSWER_BYTES = 1 << 20

#: What to do after the token endpoint's standard errors (RFC 6749, section 5.2).
_TOKEN_ERROR_HINTS = {
    "invalid_grant": "the code expired, was used already, or the PKCE verifier does not "
                     "match; start the sign-in again",
    "invalid_client": "the provider does not accept this client id and secret; check the "
                      "provider's client configuration",
    "unauthorized_client": "this client may not use the authorization-code flow; check "
                           "the provider's client configuration",
    "redirect_uri_mismatch": "the redirect URI differs from the one registered with the "
                             "provider; register it exactly",
}


@dataclass(frozen=True)
class ProviderConfig:
    """One OpenID provider this server signs people in with.

    ``id_token_issuers`` lists further ``iss`` values accepted in ID tokens besides
    ``issuer`` (Google also writes ``accounts.google.com``).
    """

    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    id_token_issuers: tuple[str, ...] = ()

    @classmethod
    def google(cls, client_id: str, client_secret: str) -> ProviderConfig:
        """Sign-in with Google."""
        return cls("google", GOOGLE_ISSUER, client_id, client_secret,
                   id_token_issuers=("accounts.google.com",))


@dataclass(frozen=True)
class PendingLogin:
    """A started sign-in, kept on the server (keyed by ``state``) until its callback."""

    state: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str
    created_at: float
    provider: str = ""

    def expired(self, now: float, lifetime: float = LOGIN_LIFETIME) -> bool:
        """Whether the sign-in is older than ``lifetime`` seconds at ``now``."""
        return now - self.created_at > lifetime


@dataclass(frozen=True)
class OidcIdentity:
    """Who signed in: ``(issuer, subject)`` names the person for good; the email may change."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


P = TypeVar("P", bound=PendingLogin)


class PendingLogins(Generic[P]):
    """Started sign-ins, kept in the server's database until their callback takes them.

    A sign-in may start on one server process and come back to another (many nodes
    behind a load balancer), so it is kept in ``db`` (table ``oidc_pending_logins``),
    found by the SHA-256 of its state. :meth:`take` deletes and returns it in one
    statement, so a replayed ``state`` finds nothing, on any process. Expired ones are
    dropped; beyond ``max_entries`` the oldest go first. ``kind`` is the
    :class:`PendingLogin` subclass kept (its fields are stored as JSON).
    """

    def __init__(self, db: Session, kind: type[P] = PendingLogin,  # type: ignore[assignment]
                 *, lifetime: float = LOGIN_LIFETIME, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.kind = kind
        self.lifetime = lifetime
        self.max_entries = max_entries
        self._clock = clock

    async def count(self) -> int:
        """How many sign-ins wait (expired ones included until the next put)."""
        return int(await self.db.fetchval("SELECT COUNT(*) FROM oidc_pending_logins"))

    async def put(self, pending: P) -> None:
        """Keep ``pending`` until its callback takes it."""
        now = self._clock()
        await self.db.execute("DELETE FROM oidc_pending_logins WHERE created_at < ?",
                              now - self.lifetime)
        excess = await self.count() + 1 - self.max_entries
        if excess > 0:  # a flood of starts: the oldest go
            await self.db.execute(
                "DELETE FROM oidc_pending_logins WHERE lookup_key IN (SELECT lookup_key "
                "FROM oidc_pending_logins ORDER BY created_at LIMIT ?)", excess)
        await self.db.execute(
            "INSERT INTO oidc_pending_logins (lookup_key, data, created_at) VALUES (?, ?, ?)",
            _state_key(pending.state), json.dumps(asdict(pending)), pending.created_at)

    async def take(self, state: str) -> P | None:
        """Remove and return the sign-in started with ``state``; None if unknown or expired."""
        rows = await self.db.fetch("DELETE FROM oidc_pending_logins WHERE lookup_key = ? "
                                   "RETURNING data", _state_key(state))
        if not rows:
            return None
        pending = self.kind(**json.loads(rows[0]["data"]))
        return None if pending.expired(self._clock(), self.lifetime) else pending


def _state_key(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class OidcClient:
    """The relying party for one provider (an async context manager owning its HTTP session).

    Pass ``session`` to use an existing :class:`aiohttp.ClientSession` (then it is not
    closed here). ``clock`` gives the time for expiries and the ID token's checks.
    """

    def __init__(self, config: ProviderConfig, *, session: aiohttp.ClientSession | None = None,
                 clock: Callable[[], float] = time.time, leeway: int = ID_TOKEN_LEEWAY,
                 timeout: float = 10.0, login_lifetime: float = LOGIN_LIFETIME) -> None:
        if "openid" not in config.scopes:
            raise ValueError(f"the scopes of provider {config.name!r} lack 'openid': "
                             f"{config.scopes!r}; add it, or no ID token comes back")
        if urlsplit(config.issuer).scheme != "https":
            raise ValueError(f"the issuer of provider {config.name!r} must be an https URL, "
                             f"not {config.issuer!r}")
        self.config = config
        self.leeway = leeway
        self.login_lifetime = login_lifetime
        self._clock = clock
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._metadata: OpenIDProviderMetadata | None = None
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> OidcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session this client made (not one it was given)."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- HTTP -------------------------------------------------------------------------

    async def _call(self, method: str, url: str, what: str,
                    **kwargs: Any) -> tuple[int, Any]:
        """Send one request; its status and its JSON body (None if it is not JSON)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        try:
            async with self._session.request(method, url, headers=headers,
                                             timeout=self._timeout, allow_redirects=False,
                                             **kwargs) as response:
                status = response.status
                body = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) > _MAX_ANSWER_BYTES:
                        break
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(
                f"could not reach the {what} of {self.config.name!r} at {url}: "
                f"{exc or type(exc).__name__}; check the network and the provider's status"
            ) from exc
        if len(body) > _MAX_ANSWER_BYTES:
            raise ProviderError(f"the {what} of {self.config.name!r} at {url} answered more "
                                f"than {_MAX_ANSWER_BYTES} bytes; it is not a provider")
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    async def _get_json(self, url: str, what: str, hint: str = "try again later",
                        **kwargs: Any) -> dict[str, Any]:
        status, data = await self._call("GET", url, what, **kwargs)
        if status != 200 or not isinstance(data, dict):
            raise ProviderError(f"the {what} of {self.config.name!r} at {url} answered "
                                f"HTTP {status} without a JSON object; {hint}")
        return data

    # -- discovery and keys -----------------------------------------------------------

    async def discover(self) -> OpenIDProviderMetadata:
        """The provider's discovery document (fetched once, then cached), checked."""
        async with self._lock:
            if self._metadata is None:
                self._metadata = await self._fetch_metadata()
            return self._metadata

    async def _fetch_metadata(self) -> OpenIDProviderMetadata:
        url = get_well_known_url(self.config.issuer, external=True)
        metadata = OpenIDProviderMetadata(await self._get_json(
            url, "discovery document", f"check the issuer URL {self.config.issuer!r}"))
        if metadata.get("issuer") != self.config.issuer:
            raise ProviderError(
                f"the discovery document at {url} names the issuer {metadata.get('issuer')!r}, "
                f"not the configured {self.config.issuer!r}; configure the provider's exact "
                f"issuer URL (an impostor's document is refused)")
        try:
            metadata.validate()
        except ValueError as exc:
            raise ProviderError(f"the discovery document at {url} is invalid: {exc}") from exc
        if "code" not in metadata["response_types_supported"]:
            raise ProviderError(f"{self.config.name!r} does not offer the authorization-code "
                                f"flow (response_types_supported in {url})")
        return metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        """The provider's signing keys (fetched once; again when ``refresh``)."""
        if self._keys is None or refresh:
            url = (await self.discover())["jwks_uri"]
            data = await self._get_json(url, "key set (jwks_uri)")
            try:
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, KeyError, TypeError, ValueError) as exc:
                raise ProviderError(f"the key set of {self.config.name!r} at {url} holds no "
                                    f"usable key: {exc}") from exc
        return self._keys

    # -- the flow ---------------------------------------------------------------------

    async def begin(self, redirect_uri: str) -> tuple[str, PendingLogin]:
        """Start a sign-in: the URL to send the browser to, and what to keep until it returns.

        Keep the :class:`PendingLogin` on the server (:class:`PendingLogins`), keyed by
        its ``state``; never in a cookie the browser could swap.
        """
        metadata = await self.discover()
        pending = PendingLogin(
            state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64), redirect_uri=redirect_uri,
            created_at=self._clock(), provider=self.config.name)
        url = prepare_grant_uri(
            metadata["authorization_endpoint"], self.config.client_id, "code",
            redirect_uri=redirect_uri, scope=list(self.config.scopes), state=pending.state,
            nonce=pending.nonce, code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256")
        return url, pending

    async def finish(self, pending: PendingLogin, returned_state: str, code: str | None, *,
                     error: str | None = None) -> OidcIdentity:
        """End a sign-in at its callback: who signed in, once every check has passed.

        ``returned_state``, ``code`` and ``error`` are the callback's query parameters.
        """
        if not hmac.compare_digest(pending.state.encode(), (returned_state or "").encode()):
            raise ProviderError("the sign-in's state does not match the one this server sent "
                                "(a forged or mixed-up callback); start the sign-in again")
        if error:
            raise ProviderError(f"{self.config.name!r} did not sign the person in ({error}; "
                                f"access_denied means they declined); they may try again")
        if pending.expired(self._clock(), self.login_lifetime):
            raise ProviderError(f"the sign-in took longer than {self.login_lifetime:.0f} s; "
                                f"start it again")
        if pending.provider and pending.provider != self.config.name:
            raise ProviderError(f"this sign-in was started with {pending.provider!r}, not "
                                f"{self.config.name!r}; finish it with that provider")
        if not code:
            raise ProviderError(f"the callback from {self.config.name!r} carries no code; "
                                f"start the sign-in again")
        tokens = await self._exchange(pending, code)
        claims = await self._verify_id_token(tokens["id_token"], pending, tokens["access_token"])
        if "email" not in claims and (await self.discover()).get("userinfo_endpoint"):
            claims = {**claims, **await self._userinfo(tokens["access_token"], claims["sub"])}
        email = claims.get("email")
        name = claims.get("name")
        return OidcIdentity(
            issuer=self.config.issuer, subject=claims["sub"],
            email=email if isinstance(email, str) else None,
            email_verified=claims.get("email_verified") in (True, "true"),
            name=name if isinstance(name, str) else None)

    def _client_auth(self, metadata: OpenIDProviderMetadata) -> ClientAuth:
        methods = metadata.token_endpoint_auth_methods_supported
        for method in ("client_secret_basic", "client_secret_post"):
            if method in methods:
                return ClientAuth(self.config.client_id, self.config.client_secret, method)
        raise ProviderError(f"{self.config.name!r} supports none of client_secret_basic and "
                            f"client_secret_post at its token endpoint (it offers {methods!r})")

    async def _exchange(self, pending: PendingLogin, code: str) -> dict[str, Any]:
        """Trade the code (and the PKCE verifier) for tokens at the token endpoint."""
        metadata = await self.discover()
        url = metadata["token_endpoint"]
        body = prepare_token_request("authorization_code", code=code,
                                     redirect_uri=pending.redirect_uri,
                                     code_verifier=pending.code_verifier)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        url, headers, body = self._client_auth(metadata).prepare("POST", url, headers, body)
        status, data = await self._call("POST", url, "token endpoint", headers=headers,
                                        data=body)
        if status != 200 or not isinstance(data, dict) or "error" in data:
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                described = data["error"]
                if data.get("error_description"):
                    described += f" ({data['error_description']})"
                hint = _TOKEN_ERROR_HINTS.get(data["error"], "start the sign-in again")
                raise ProviderError(f"{self.config.name!r} refused the code: {described}; "
                                    f"{hint}")
            raise ProviderError(f"the token endpoint of {self.config.name!r} at {url} answered "
                                f"HTTP {status} without a token; start the sign-in again")
        if str(data.get("token_type", "")).lower() != "bearer" or not isinstance(
                data.get("access_token"), str):
            raise ProviderError(f"{self.config.name!r} answered the code without a Bearer "
                                f"access token (token_type {data.get('token_type')!r})")
        if not isinstance(data.get("id_token"), str):
            raise ProviderError(f"{self.config.name!r} answered the code without an ID token; "
                                f"is it an OpenID provider, and is 'openid' among the scopes?")
        return data

    async def _verify_id_token(self, id_token: str, pending: PendingLogin,
                               access_token: str) -> dict[str, Any]:
        """The ID token's claims, once its signature and claims have been checked."""
        metadata = await self.discover()
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = sorted(SIGNING_ALGORITHMS.intersection(offered))
        if not algorithms:
            raise ProviderError(f"{self.config.name!r} signs ID tokens only with {offered!r}; "
                                f"this server accepts {sorted(SIGNING_ALGORITHMS)!r}")
        name = self.config.name
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(), algorithms=algorithms)
            except InvalidKeyIdError:
                # The provider may have rotated its keys since they were fetched.
                logger.info("ID token of %s signed with an unknown key: fetching its keys",
                            name)
                token = jwt.decode(id_token, await self._key_set(refresh=True),
                                   algorithms=algorithms)
        except InvalidKeyIdError as exc:
            raise ProviderError(f"the ID token from {name!r} is signed with a key its key set "
                                f"does not publish ({exc}); refused") from exc
        except BadSignatureError as exc:
            raise ProviderError(f"the ID token from {name!r} has a bad signature (it does not "
                                f"verify against the provider's published keys); refused"
                                ) from exc
        except UnsupportedAlgorithmError as exc:
            raise ProviderError(f"the ID token from {name!r} is signed with an algorithm not "
                                f"allowed here ({exc}); accepted: {algorithms!r}") from exc
        except (JoseError, ValueError) as exc:
            raise ProviderError(f"the ID token from {name!r} is malformed: {exc}") from exc

        client_id = self.config.client_id
        options = {
            "iss": {"essential": True,
                    "values": [self.config.issuer, *self.config.id_token_issuers]},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "nonce": {"essential": True, "value": pending.nonce},
        }
        params = {"nonce": pending.nonce, "client_id": client_id, "access_token": access_token}
        claims = CodeIDToken(token.claims, token.header, options, params)
        try:
            claims.validate(now=int(self._clock()), leeway=self.leeway)
        except ExpiredTokenError as exc:
            raise ProviderError(f"the ID token from {name!r} expired at {claims.get('exp')!r}; "
                                f"check this server's clock, then start the sign-in again"
                                ) from exc
        except ClaimError as exc:
            raise ProviderError(self._claim_problem(exc.claim, claims)) from exc
        return dict(claims)

    def _claim_problem(self, claim: str, claims: CodeIDToken) -> str:
        """What is wrong with the ID token's ``claim`` (a sentence)."""
        name = self.config.name
        value = claims.get(claim)
        if value is None:
            return f"the ID token from {name!r} lacks the claim {claim!r}; refused"
        if claim == "aud":
            return (f"the ID token from {name!r} is for the audience {value!r}, not this "
                    f"client {self.config.client_id!r}; refused (check the client id)")
        if claim == "azp":
            return (f"the ID token from {name!r} has several audiences {claims.get('aud')!r} "
                    f"but its authorized party (azp) is {value!r}, not this client; refused")
        if claim == "iss":
            return (f"the ID token names the issuer {value!r}, not {self.config.issuer!r}; "
                    f"refused")
        if claim == "nonce":
            return (f"the ID token from {name!r} carries a nonce other than the one this "
                    f"sign-in sent (a replayed token); start the sign-in again")
        if claim == "at_hash":
            return (f"the ID token from {name!r} does not belong with its access token "
                    f"(at_hash); refused")
        if claim == "iat":
            return (f"the ID token from {name!r} was issued in the future (iat {value!r}); "
                    f"check this server's clock")
        return f"the ID token from {name!r} has an invalid {claim!r}: {value!r}; refused"

    async def _userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The userinfo endpoint's claims about ``subject`` (its ``sub`` must match)."""
        url = (await self.discover())["userinfo_endpoint"]
        info = await self._get_json(url, "userinfo endpoint",
                                    headers={"Authorization": f"Bearer {access_token}"})
        if info.get("sub") != subject:
            raise ProviderError(f"the userinfo of {self.config.name!r} describes "
                                f"{info.get('sub')!r}, not the signed-in {subject!r}; refused")
        return {k: v for k, v in info.items() if k in ("email", "email_verified", "name")}
