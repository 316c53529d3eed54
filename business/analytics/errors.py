"""Errors a source connector raises: one base class, one subclass per way a source fails.

Every :class:`SourceError` names its source and says whether trying again can help
(``retryable``). An error raised during a back-fill carries ``progress``: how far the
back-fill got (pages, points and the last day fully fetched) and the points it fetched.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from business.analytics.sources.records import Progress


class SourceError(Exception):
    """A source refused or could not answer (other 4xx: not retryable; 5xx: retryable)."""

    retryable: bool = False

    def __init__(self, reason: str, *, source: str = "", status: int | None = None,
                 retryable: bool | None = None) -> None:
        super().__init__(f"{source}: {reason}" if source else reason)
        self.reason = reason
        self.source = source
        self.status = status
        if retryable is not None:
            self.retryable = retryable
        #: Set by a back-fill that stopped on this error: how far it got.
        self.progress: Progress | None = None


class ServerError(SourceError):
    """The source failed on its side (5xx, connection error, timeout): back off and retry."""

    retryable = True


class RateLimited(SourceError):
    """The source throttled us (HTTP 429 or its own code); wait ``retry_after`` seconds
    (None: the source did not say, use the back-off)."""

    retryable = True

    def __init__(self, reason: str, *, retry_after: float | None = None,
                 **kwargs: object) -> None:
        super().__init__(reason, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class QuotaExhausted(SourceError):
    """A daily or hourly quota is spent (YouTube's units, SoundCloud's 24 h bucket); nothing
    helps before ``resets_at`` (UTC), so the job should be scheduled again for then."""

    retryable = False

    def __init__(self, reason: str, *, resets_at: datetime, **kwargs: object) -> None:
        super().__init__(reason, **kwargs)  # type: ignore[arg-type]
        self.resets_at = resets_at


class TokenRevoked(SourceError):
    """The credentials stopped working and could not be renewed (token revoked, refresh
    token refused, API key disabled): the account must reconnect the source."""

    retryable = False


class SchemaChanged(SourceError):
    """An answer did not match the source's declared shape (a renamed or missing field, a
    wrong type, a negative count): nothing of it was kept. ``field`` names the field
    (``items.3.streams``), ``detail`` what was wrong with it."""

    retryable = False

    def __init__(self, field: str, detail: str, **kwargs: object) -> None:
        super().__init__(f"the answer changed shape at {field!r}: {detail}; update the "
                         "source's response model before ingesting again",
                         **kwargs)  # type: ignore[arg-type]
        self.field = field
        self.detail = detail


class PartialPage(SourceError):
    """A page arrived cut short (a truncated or undecodable body): retried like a 5xx."""

    retryable = True


class DuplicatePage(SourceError):
    """The source answered the same page (same cursor or same items) again: stopped rather
    than loop; the points before it are kept in ``progress``."""

    retryable = False


class NoHistory(SourceError):
    """A back-fill was asked of a source whose API only answers current counts."""

    retryable = False
