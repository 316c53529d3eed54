"""The connector contract every network module implements, and the PKCE helpers.

A connector is built with the network's API ``base_url`` (production: the network's host;
tests: a fake on loopback), the app's ``client_id`` and ``client_secret`` and an
``aiohttp.ClientSession`` it does not own. It holds no per-channel state: every call takes
the channel's access token. Failures raise :mod:`business.social.errors`.
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

    def text_with_link(self) -> str:
        """The text as a network without link attachments shows it: the link on a line of
        its own at the end unless the text holds it already (validation counts this)."""
        return text_with_link(self.text, self.link)


def text_with_link(text: str, link: str | None) -> str:
    """``text`` with ``link`` on a line of its own at the end, unless it is in it already."""
    link = link.strip() if link else None
    if not link or link in text:
        return text
    return f"{text}\n{link}" if text else link


@dataclass(frozen=True)
class Published:
    """A post the network holds: its id there and its public URL."""

    remote_id: str
    url: str


@dataclass(frozen=True)
class Quota:
    """A publishing or API quota as the network reports it (or as its documented rule
    gives it): ``used`` of ``limit`` spent, frees by ``resets_at`` (epoch seconds)."""

    used: int
    limit: int
    resets_at: float

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


class Connector(Protocol):
    """One social network, spoken over its real HTTP API."""

    network: str                                   # "x", "instagram", ...

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str: ...

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens: ...

    async def refresh(self, refresh_token: str) -> OAuthTokens: ...

    async def profile(self, access_token: str) -> dict: ...   # {"id", "name", "handle"}

    async def publish(self, access_token: str, publication: Publication) -> Published: ...

    async def find_published(self, access_token: str, dedupe_key: str, *,
                             text: str | None = None, since: float | None = None
                             ) -> Published | None: ...   # asked before a retry

    async def quota(self, access_token: str) -> Quota | None: ...

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]: ...


#: The metric names :meth:`Connector.metrics` answers with (a network fills those it has;
#: one it does not report is left out, never 0).
METRICS = ("impressions", "reach", "likes", "comments", "shares", "clicks", "video_views")


def count(value: object) -> int | None:
    """A count as a network gives it (an int, or a string as YouTube's) or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def total(*values: object) -> int | None:
    """The sum of the counts given, None when none of them was reported."""
    counts = [c for c in map(count, values) if c is not None]
    return sum(counts) if counts else None


def reported(**values: object) -> dict[str, int]:
    """The metrics a network reported, by our names; missing ones are left out."""
    return {name: c for name, value in values.items() if (c := count(value)) is not None}


def new_code_verifier() -> str:
    """A fresh PKCE code verifier (RFC 7636: 43 to 128 unreserved characters)."""
    return secrets.token_urlsafe(64)[:96]


def code_challenge(verifier: str) -> str:
    """The S256 challenge of ``verifier``: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
