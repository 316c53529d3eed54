"""What every connector shares: hosts, one request helper that maps failures to
:mod:`business.social.errors`, the OAuth token request and rate-limit headers."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from business.social.errors import NetworkError, RateLimited, Rejected, TokenExpired
from business.social.networks.base import MediaItem, OAuthTokens, Quota

log = logging.getLogger(__name__)

#: Answers to a call: the status, the decoded JSON body (``{}`` when none) and the headers.
JsonBody = dict[str, Any]
#: Turns a local media item into a public HTTPS URL the network can fetch (Instagram,
#: Threads and TikTok photos only take media by URL); production: a signed asset URL.
MediaUrl = Callable[[MediaItem], str]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, JSON body (``{}`` when not JSON) and headers."""

    status: int
    body: JsonBody
    headers: Mapping[str, str]


def retry_after_from(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or an HTTP date), or the reset
    epoch of ``x-rate-limit-reset`` (X) or ``ratelimit-reset`` (Bluesky)."""
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            if when is not None:
                return max(0.0, when.timestamp() - now)
    for name in ("x-rate-limit-reset", "ratelimit-reset"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) - now)
            except ValueError:
                continue
    return None


class HttpConnector:
    """Base of the connectors: keeps the session and the hosts, calls and maps failures.

    ``HOSTS`` names the network's production hosts (``api``, ``auth``, ``token``, ...);
    when ``base_url`` is anything but the production ``api`` host (a fake on loopback),
    every host is ``base_url``, so one fake serves the whole network.
    """

    network = ""
    HOSTS: Mapping[str, str] = {}
    #: Scopes asked for at authorization, space-separated.
    SCOPES = ""
    #: Token revocation (RFC 7009): the (host, path) a token is POSTed to; None: the
    #: network has no revocation endpoint (:meth:`revoke`).
    REVOKE: tuple[str, str] | None = None
    #: Which token withdraws the grant there: "refresh" (else the access token) or "access".
    revoke_by = "refresh"

    def __init__(self, base_url: str, client_id: str, client_secret: str,
                 session: aiohttp.ClientSession, *, media_url: MediaUrl | None = None,
                 timeout_s: float = 60.0, poll_interval_s: float = 2.0,
                 poll_timeout_s: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.session = session
        self.media_url = media_url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self.production = self.base_url == self.HOSTS.get("api", "").rstrip("/")
        #: The last rate-limit headers seen (limit, remaining, reset epoch), for quota().
        self.last_rate_limit: Quota | None = None

    def url(self, path: str, host: str = "api") -> str:
        """The URL of ``path`` on one of the network's hosts."""
        if path.startswith(("http://", "https://")):
            return path
        base = self.HOSTS[host].rstrip("/") if self.production else self.base_url
        return f"{base}{path}"

    def with_query(self, url: str, params: Mapping[str, str]) -> str:
        return f"{url}?{urlencode(params)}"

    # -- calls -------------------------------------------------------------------------

    async def call(self, method: str, path: str, *, token: str | None = None,
                   host: str = "api", ok: tuple[int, ...] = (), **kwargs: Any) -> Answer:
        """One request; an :class:`Answer` for 2xx (and ``ok`` statuses), else the mapped
        error. ``token`` goes in ``Authorization: Bearer``; ``kwargs`` to aiohttp."""
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        url = self.url(path, host)
        try:
            async with self.session.request(method, url, headers=headers,
                                            timeout=self.timeout, **kwargs) as response:
                raw = await response.read()
                answer = Answer(response.status, _json(raw), response.headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NetworkError(f"{method} {path} failed: {type(exc).__name__}: {exc}",
                               network=self.network) from exc
        self._note_rate_limit(answer.headers)
        if 200 <= answer.status < 300 or answer.status in ok:
            return answer
        raise self.error_for(answer, f"{method} {path}")

    def error_for(self, answer: Answer, what: str) -> NetworkError:
        """The error for a failed answer; networks override :meth:`classify` first."""
        error = self.classify(answer)
        if error is not None:
            return error
        reason = f"{what}: HTTP {answer.status}: {self.describe(answer)}"
        if answer.status == 429:
            return RateLimited(reason, network=self.network, status=429,
                               retry_after=retry_after_from(answer.headers))
        if answer.status == 401:
            return TokenExpired(reason, network=self.network, status=401)
        if answer.status >= 500 or answer.status in (408, 425):
            return NetworkError(reason, network=self.network, status=answer.status,
                                retry_after=retry_after_from(answer.headers))
        return Rejected(reason, network=self.network, status=answer.status)

    def classify(self, answer: Answer) -> NetworkError | None:
        """A network's own error codes (duplicates, quotas, expired tokens); None: generic."""
        return None

    def describe(self, answer: Answer) -> str:
        """The network's words for a failed answer."""
        body = answer.body
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        for key in ("detail", "message", "error_description", "error", "title"):
            if body.get(key):
                return str(body[key])
        return json.dumps(body)[:300] if body else "(no body)"

    def _note_rate_limit(self, headers: Mapping[str, str]) -> None:
        for prefix in ("x-rate-limit-", "ratelimit-"):
            limit, left = headers.get(prefix + "limit"), headers.get(prefix + "remaining")
            reset = headers.get(prefix + "reset")
            if limit and left and reset:
                try:
                    self.last_rate_limit = Quota(int(limit) - int(left), int(limit),
                                                 float(reset))
                except ValueError:
                    return
                return

    # -- revocation ----------------------------------------------------------------------

    @classmethod
    def revocable(cls) -> bool:
        """Whether the network can be told to withdraw a channel's grant."""
        return cls.REVOKE is not None

    def revoke_form(self, token: str) -> dict[str, str]:
        """The revocation request's form (RFC 7009, the client in the form)."""
        return {"token": token, "client_id": self.client_id,
                "client_secret": self.client_secret}

    async def revoke(self, access_token: str, refresh_token: str) -> None:
        """Withdraw the grant at the network, so neither token works there any more.

        A token the network no longer knows (``invalid_token``, ``invalid_grant``)
        counts as withdrawn. Raises a retryable :class:`NetworkError` for a 5xx, 429 or
        no answer, :class:`Rejected` when the network refuses, and
        :class:`NotImplementedError` for a network without revocation.
        """
        if self.REVOKE is None:
            raise NotImplementedError(f"{self.network} has no token revocation endpoint")
        host, path = self.REVOKE
        if self.revoke_by == "refresh":
            token = refresh_token or access_token
        else:
            token = access_token or refresh_token
        headers = {"Authorization": aiohttp.encode_basic_auth(
            self.client_id, self.client_secret)} if self.revoke_basic else {}
        try:
            async with self.session.post(self.url(path, host), data=self.revoke_form(token),
                                         headers=headers, timeout=self.timeout) as response:
                answer = Answer(response.status, _json(await response.read()),
                                response.headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NetworkError(f"revocation failed: {type(exc).__name__}: {exc}",
                               network=self.network) from exc
        self.check_revoked(answer)

    #: Whether the client authenticates a revocation with HTTP Basic (X).
    revoke_basic = False

    def check_revoked(self, answer: Answer) -> None:
        """Raise unless ``answer`` says the grant is gone (now or already)."""
        if 200 <= answer.status < 300:
            return
        error = answer.body.get("error")
        if answer.status in (400, 401) and error in ("invalid_token", "invalid_grant"):
            return  # already dead at the network
        reason = f"revocation: HTTP {answer.status}: {self.describe(answer)}"
        if answer.status == 429 or answer.status >= 500 or answer.status == 408:
            raise NetworkError(reason, network=self.network, status=answer.status,
                               retry_after=retry_after_from(answer.headers))
        raise Rejected(reason, network=self.network, status=answer.status)

    # -- OAuth -------------------------------------------------------------------------

    async def token_request(self, path: str, form: Mapping[str, str], *, host: str = "token",
                            client_auth: str = "post") -> OAuthTokens:
        """POST an OAuth token request (form-encoded) and read the standard answer.
        ``client_auth``: "post" (id and secret in the form), "basic" (HTTP Basic) or
        "form" (the caller put the client's fields in ``form`` under its own names)."""
        form = dict(form)
        headers = {}
        if client_auth == "basic":
            headers["Authorization"] = aiohttp.encode_basic_auth(self.client_id,
                                                                 self.client_secret)
        elif client_auth == "post":
            form.setdefault("client_id", self.client_id)
            form.setdefault("client_secret", self.client_secret)
        answer = await self.call("POST", path, host=host, data=form, headers=headers)
        return tokens_from(answer.body)

    async def read_media(self, item: MediaItem) -> bytes:
        """The bytes of a local media file (read off the event loop)."""
        return await asyncio.to_thread(_read, item.path)

    def public_url(self, item: MediaItem) -> str:
        """The public URL of ``item`` for networks that fetch media themselves."""
        if self.media_url is None:
            raise Rejected(f"{self.network} fetches media from a public URL: build the "
                           "connector with media_url= (a signed asset URL)",
                           network=self.network)
        return self.media_url(item)


def tokens_from(body: JsonBody, *, now: float | None = None) -> OAuthTokens:
    """Tokens from a standard OAuth token answer (``expires_in`` relative seconds)."""
    now = time.time() if now is None else now
    if not body.get("access_token"):
        raise NetworkError(f"token answer without access_token: {sorted(body)}")
    expires_in = body.get("expires_in")
    return OAuthTokens(
        access_token=str(body["access_token"]),
        refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
        expires_at=now + float(expires_in) if expires_in else None,
        scope=str(body.get("scope", "")).replace(",", " "),
    )


def _json(raw: bytes) -> JsonBody:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"raw": raw[:300].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"data": value}


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


#: How much earlier than a target's first attempt a network's clock may stamp the post
#: that attempt sent (clock skew between this server and the network): 5 minutes.
CLOCK_SKEW_S = 300.0


def remote_time(value: object, *, millis: bool = False) -> float | None:
    """A created time as a network writes it (ISO 8601 with ``Z`` or ``+0000``, or epoch
    seconds; ``millis``: epoch milliseconds) in epoch seconds; None when missing or
    unreadable."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float):
        return value / 1000.0 if millis else float(value)
    return _iso_epoch(str(value))


def sent_since(created: float | None, since: float | None) -> bool:
    """Whether a remote post created at ``created`` may be one sent since ``since`` (the
    target's first attempt), less :data:`CLOCK_SKEW_S`. Without ``since`` any time does;
    with it, a post without a created time never does: taking an older post with the same
    text (last week's weekly post) for ours would record it and never send this one."""
    if since is None:
        return True
    return created is not None and created >= since - CLOCK_SKEW_S


def same_text(a: str, b: str) -> bool:
    """Whether two post texts are the same post (whitespace and case of spacing aside;
    links are ignored because networks rewrite them, as X does to t.co)."""
    return _norm(a) == _norm(b)


def _norm(text: str) -> str:
    words = [w for w in text.split() if not w.startswith(("http://", "https://"))]
    return " ".join(words)


def epoch(stamp: str) -> float:
    """An ISO 8601 time as the networks write it ("...Z") in epoch seconds; 0 if unreadable."""
    found = _iso_epoch(stamp)
    return 0.0 if found is None else found


def _iso_epoch(stamp: str) -> float | None:
    """An ISO 8601 time (``Z`` or an offset such as ``+0000``) in epoch seconds; None if
    unreadable."""
    try:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
