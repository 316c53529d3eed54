"""The connector contract every network module implements, and the PKCE helpers.

A connector is built with the network's API ``base_url`` (production: the network's
host; tests: a fake on loopback), the app's ``client_id`` and ``client_secret`` and an
``aiohttp.ClientSession`` it does not own. Failures raise :mod:`business.social.errors`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OAuthTokens:
    """What a token endpoint answered."""

    access_token: str
    refresh_token: str | None      # None: the network did not send one (keep the old!)
    expires_at: float | None       # epoch seconds
    scope: str = ""


@dataclass(frozen=True)
class MediaItem:
    """One local file to attach to a post."""

    kind: str                      # "image" | "video" | "audio"
    content_type: str              # "image/jpeg", "video/mp4", ...
    size_bytes: int
    path: str                      # local file to upload
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Publication:
    """What to publish on one channel."""

    dedupe_key: str                # stable per (post, channel): e.g. "post_id:channel_id"
    text: str
    media: tuple[MediaItem, ...] = ()
    link: str | None = None
    first_comment: str | None = None


@dataclass(frozen=True)
class Published:
    """A post the network holds: its id there and its public URL."""

    remote_id: str
    url: str


@dataclass(frozen=True)
class Quota:
    """A quota as the network reports it: ``used`` of ``limit``, frees by ``resets_at``."""

    used: int
    limit: int
    resets_at: float


class Connector(Protocol):
    """One social network, spoken over its real HTTP API."""

    network: str

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str: ...

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens: ...

    async def refresh(self, refresh_token: str) -> OAuthTokens: ...

    async def profile(self, access_token: str) -> dict: ...

    async def publish(self, access_token: str, publication: Publication) -> Published: ...

    async def find_published(self, access_token: str, dedupe_key: str
                             ) -> Published | None: ...

    async def quota(self, access_token: str) -> Quota | None: ...

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]: ...


def new_code_verifier() -> str:
    """A fresh PKCE code verifier (RFC 7636: 43 to 128 unreserved characters)."""
    return secrets.token_urlsafe(64)[:96]


def code_challenge(verifier: str) -> str:
    """The S256 challenge of ``verifier``: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
