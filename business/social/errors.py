"""Errors a network connector raises: one base class, one subclass per way a network fails.

Every :class:`NetworkError` says whether trying again can help (``retryable``), when
(``retry_after`` seconds, or ``None`` for "use your own back-off") and why (``reason``, the
network's own words where it gave any). The dispatcher decides on these three alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from business.social.networks.base import Published


class NetworkError(Exception):
    """A network refused or could not answer a call (5xx, connection error: retryable)."""

    retryable: bool = True

    def __init__(self, reason: str, *, network: str = "", status: int | None = None,
                 retry_after: float | None = None, retryable: bool | None = None) -> None:
        prefix = f"{network}: " if network else ""
        super().__init__(f"{prefix}{reason}")
        self.reason = reason
        self.network = network
        self.status = status
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable


class RateLimited(NetworkError):
    """The network throttled the call (HTTP 429 or its own code); wait ``retry_after``."""

    retryable = True


class TokenExpired(NetworkError):
    """The access token expired or was revoked: refresh it (or reconnect), then retry."""

    retryable = False


class Duplicate(NetworkError):
    """The network refused the post as a duplicate; ``existing`` is the earlier post when
    the network (or a search of recent posts) can tell which it is."""

    retryable = False

    def __init__(self, reason: str, *, existing: Published | None = None,
                 **kwargs: object) -> None:
        super().__init__(reason, **kwargs)  # type: ignore[arg-type]
        self.existing = existing


class QuotaExhausted(NetworkError):
    """A daily or rolling quota is spent (YouTube units, Instagram's 24 h publishing limit);
    ``retry_after`` is when it frees."""

    retryable = True


class Rejected(NetworkError):
    """The network refused the content or the request (4xx): retrying cannot help; the
    reason says what to change."""

    retryable = False


class SocialError(Exception):
    """Something the social module refuses; the message says what to change."""


class NotFoundError(SocialError):
    """No such channel or post in this account (another account's ids look the same)."""


class ConflictError(SocialError):
    """The object's state does not allow this now (a published post cannot be edited)."""


class NotAllowedError(SocialError):
    """The person may not do this (approve their own post, approve outside a tier)."""


class NotPersonOfAccount(SocialError):
    """An address (a notification's recipient) is none of the account's people (422)."""


class InvalidPost(SocialError):
    """The post breaks its networks' rules: ``problems`` per channel and field."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems
