"""A local OpenID Connect provider that speaks the real protocol, for the sign-in tests.

:class:`FakeOidcProvider` serves, over TLS on a random port of 127.0.0.1 (a
self-signed certificate the tests trust through :attr:`FakeOidcProvider.trust`):

- ``/.well-known/openid-configuration``: the discovery document;
- ``/authorize``: checks the client, the redirect URI, ``response_type=code``, the
  ``openid`` scope and a PKCE S256 challenge, records the request and redirects back with
  a code and the state (or, with ``auto_approve`` off, waits for :meth:`approve` or
  :meth:`deny`);
- ``/token``: checks the client's secret (``client_secret_basic`` or
  ``client_secret_post``), the code (single use, 10 minutes), the redirect URI and the
  PKCE verifier, and answers as Google does: ``{"error": "invalid_grant"}`` with 400;
- ``/jwks``: the public RSA keys, with ``kid`` (:meth:`rotate_keys` changes them);
- ``/userinfo``: the user's claims for a Bearer access token.

The ID tokens are RS256 JWTs signed with joserfc. Failure switches: :meth:`expire_codes`,
:attr:`id_token_overrides` (a wrong ``aud``, ``nonce``, ``iss``, ``exp``; ``None``
removes a claim), :attr:`sign_with_foreign_key`, :attr:`discovery_overrides` (a wrong
``issuer``), :attr:`claims_in_id_token` (only ``sub``: the client must ask userinfo).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey
from loopback import self_signed_files

#: How long a code may wait before it is exchanged (Google's are short-lived too).
CODE_LIFETIME = 600.0


@dataclass(frozen=True)
class FakeUser:
    """The person who signs in at the provider."""

    subject: str = "108672345937615294019"
    email: str = "ada@example.com"
    email_verified: bool = True
    name: str = "Ada Lovelace"

    def claims(self) -> dict[str, Any]:
        """The user's claims as the ID token and userinfo carry them."""
        return {"sub": self.subject, "email": self.email,
                "email_verified": self.email_verified, "name": self.name}


@dataclass
class AuthorizeRequest:
    """One request the provider's ``/authorize`` received (its query parameters)."""

    params: dict[str, str]

    @property
    def state(self) -> str:
        return self.params.get("state", "")


@dataclass
class _Code:
    params: dict[str, str]
    user: FakeUser
    issued_at: float


@dataclass
class TokenRequest:
    """One request the provider's ``/token`` received, with the client auth it used."""

    form: dict[str, str]
    auth_method: str
    answer: dict[str, Any] = field(default_factory=dict)


def _new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def _error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description},
                             status=status)


class FakeOidcProvider:
    """An OpenID provider on https://127.0.0.1:<random port> (an async context manager)."""

    def __init__(self, *, client_id: str = "studio-test.apps.example",
                 client_secret: str = "GOCSPX-test-secret",
                 redirect_uris: tuple[str, ...] = ("https://studio.example/auth/callback",),
                 user: FakeUser | None = None,
                 auth_methods: tuple[str, ...] = ("client_secret_post", "client_secret_basic"),
                 ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris
        self.user = user or FakeUser()
        self.auth_methods = auth_methods
        #: Redirect from ``/authorize`` at once; off: wait for :meth:`approve`.
        self.auto_approve = True
        #: Put the user's email and name in the ID token (off: only ``sub``).
        self.claims_in_id_token = True
        #: Claims to change in the next ID tokens; a ``None`` value removes the claim.
        self.id_token_overrides: dict[str, Any] = {}
        #: Claims to change in userinfo answers (a different ``sub`` must be refused).
        self.userinfo_overrides: dict[str, Any] = {}
        #: Members to change in the discovery document.
        self.discovery_overrides: dict[str, Any] = {}
        #: Sign ID tokens with a key the JWKS does not hold (under a published kid).
        self.sign_with_foreign_key = False
        self.authorize_requests: list[AuthorizeRequest] = []
        self.token_requests: list[TokenRequest] = []
        self.jwks_requests = 0
        self.discovery_requests = 0
        self._codes: dict[str, _Code] = {}
        self._waiting: dict[str, dict[str, str]] = {}
        self._access_tokens: dict[str, FakeUser] = {}
        self._kid_serial = 0
        self.signing_key = self._next_key()
        self.published_keys = [self.signing_key]
        self._foreign_key = _new_key(self.signing_key.kid)
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.issuer = ""
        #: An SSL context that trusts this provider's certificate (for the client's session).
        self.trust: ssl.SSLContext | None = None

    # -- life cycle -------------------------------------------------------------------

    async def __aenter__(self) -> FakeOidcProvider:
        if self._runner is not None:
            raise RuntimeError("the fake provider is running already")
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-oidc-")
        cert_file, key_file = self_signed_files(Path(self._tmp.name))
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(cert_file, key_file)
        self.trust = ssl.create_default_context(cafile=cert_file)

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/userinfo", self._userinfo)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_ssl)
        await site.start()
        port = self._runner.addresses[0][1]
        self.issuer = f"https://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- switches ---------------------------------------------------------------------

    def _next_key(self) -> RSAKey:
        self._kid_serial += 1
        return _new_key(f"fake-key-{self._kid_serial}")

    def rotate_keys(self, keep_old: bool = False) -> str:
        """Sign with a new key (new kid) and publish it; return its kid."""
        self.signing_key = self._next_key()
        old = self.published_keys if keep_old else []
        self.published_keys = [self.signing_key, *old]
        self._foreign_key = _new_key(self.signing_key.kid)
        return self.signing_key.kid

    def expire_codes(self) -> None:
        """Age every code not yet exchanged past its lifetime."""
        for code in self._codes.values():
            code.issued_at -= CODE_LIFETIME + 1

    def approve(self, state: str) -> str:
        """The user consents to the waiting request with ``state``: the redirect URL."""
        params = self._waiting.pop(state)
        return self._issue_code(params)

    def deny(self, state: str) -> str:
        """The user refuses the waiting request with ``state``: the redirect URL."""
        params = self._waiting.pop(state)
        return _with_query(params["redirect_uri"], {"error": "access_denied",
                                                    "state": params.get("state", "")})

    # -- endpoints --------------------------------------------------------------------

    async def _discovery(self, request: web.Request) -> web.Response:
        self.discovery_requests += 1
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss",
                                 "name", "sub"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
        }
        doc.update(self.discovery_overrides)
        return web.json_response(doc)

    async def _authorize(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.authorize_requests.append(AuthorizeRequest(params))
        if params.get("client_id") != self.client_id:
            return web.Response(status=400, text="Error 401: invalid_client")
        if params.get("redirect_uri") not in self.redirect_uris:
            return web.Response(status=400, text="Error 400: redirect_uri_mismatch")
        problem = None
        if params.get("response_type") != "code":
            problem = "unsupported_response_type"
        elif "openid" not in params.get("scope", "").split():
            problem = "invalid_scope"
        elif (params.get("code_challenge_method") != "S256"
              or len(params.get("code_challenge", "")) != 43):
            problem = "invalid_request"
        if problem:
            url = _with_query(params["redirect_uri"], {"error": problem,
                                                       "state": params.get("state", "")})
            raise web.HTTPFound(url)
        if not self.auto_approve:
            self._waiting[params.get("state", "")] = params
            return web.Response(text="<h1>Sign in to continue to Max Booster Studio</h1>",
                                content_type="text/html")
        raise web.HTTPFound(self._issue_code(params))

    def _issue_code(self, params: dict[str, str]) -> str:
        code = "4/0A" + secrets.token_urlsafe(32)
        self._codes[code] = _Code(params, self.user, time.time())
        answer = {"code": code, "scope": params.get("scope", "")}
        if "state" in params:
            answer["state"] = params["state"]
        return _with_query(params["redirect_uri"], answer)

    def _client_auth(self, request: web.Request, form: dict[str, str]) -> str | None:
        """The auth method the client used, or None when its credentials are wrong."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic ") and "client_secret_basic" in self.auth_methods:
            try:
                decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
            except ValueError:
                return None
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
            method = "client_secret_basic"
        elif "client_secret" in form and "client_secret_post" in self.auth_methods:
            client_id, secret = form.get("client_id", ""), form["client_secret"]
            method = "client_secret_post"
        else:
            return None
        if client_id != self.client_id or not hmac.compare_digest(secret, self.client_secret):
            return None
        return method

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _error(400, "invalid_request", "Bad Request")
        form = {k: str(v) for k, v in (await request.post()).items()}
        method = self._client_auth(request, form)
        record = TokenRequest(form, method or "")
        self.token_requests.append(record)
        if method is None:
            return _error(401, "invalid_client", "Unauthorized")
        if form.get("grant_type") != "authorization_code":
            return _error(400, "unsupported_grant_type", "Invalid grant_type: ")
        code = self._codes.pop(form.get("code", ""), None)  # single use
        if code is None or time.time() - code.issued_at > CODE_LIFETIME:
            return _error(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != code.params["redirect_uri"]:
            return _error(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier", "")
        if not hmac.compare_digest(_s256(verifier), code.params["code_challenge"]):
            return _error(400, "invalid_grant", "Invalid code verifier.")
        access_token = "ya29." + secrets.token_urlsafe(32)
        self._access_tokens[access_token] = code.user
        record.answer = {
            "access_token": access_token,
            "expires_in": 3599,
            "scope": code.params.get("scope", ""),
            "token_type": "Bearer",
            "id_token": self._id_token(code, access_token),
        }
        return web.json_response(record.answer)

    def _id_token(self, code: _Code, access_token: str) -> str:
        now = int(time.time())
        digest = hashlib.sha256(access_token.encode("ascii")).digest()
        claims: dict[str, Any] = {
            "iss": self.issuer, "azp": self.client_id, "aud": self.client_id,
            "sub": code.user.subject,
            "at_hash": base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii"),
            "iat": now, "exp": now + 3600,
        }
        if "nonce" in code.params:
            claims["nonce"] = code.params["nonce"]
        if self.claims_in_id_token:
            claims.update(code.user.claims())
        for name, value in self.id_token_overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self._foreign_key if self.sign_with_foreign_key else self.signing_key
        return jwt.encode({"alg": "RS256", "kid": self.signing_key.kid, "typ": "JWT"},
                          claims, key)

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        return web.json_response(
            {"keys": [key.as_dict(private=False) for key in self.published_keys]})

    async def _userinfo(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        user = self._access_tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if user is None:
            return web.json_response(
                {"error": "invalid_request", "error_description": "Invalid Credentials"},
                status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        claims = user.claims()
        claims.update(self.userinfo_overrides)
        return web.json_response(claims)
