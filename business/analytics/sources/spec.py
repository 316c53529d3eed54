"""What a source declares about itself: auth, pagination, rate limits and quotas, back-off,
schedule and whether its API keeps history (:class:`SourceSpec`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

AuthKind = Literal["oauth_client_credentials", "api_key", "refresh_token", "none"]
PaginationKind = Literal["cursor", "page", "offset", "none"]
AUTH_KINDS = ("oauth_client_credentials", "api_key", "refresh_token", "none")
PAGINATION_KINDS = ("cursor", "page", "offset", "none")


@dataclass(frozen=True)
class RateLimit:
    """How fast a source may be called: ``requests`` per ``per_s`` seconds in a moving
    window (Spotify's rolling 30 s window), and an optional quota of ``units`` per
    ``quota_period`` (YouTube's 10,000 a day) that resets at ``quota_reset_tz`` midnight."""

    requests: int
    per_s: int
    units: int | None = None
    quota_period: Literal["day", "hour"] = "day"
    quota_reset_tz: str = "UTC"
    #: Units one request costs (YouTube Analytics: 1 per report query).
    unit_cost: int = 1
    honours_retry_after: bool = True

    def describe(self) -> str:
        text = f"{self.requests} requests / {self.per_s} s"
        if self.units:
            text += f"; {self.units:,} units / {self.quota_period} ({self.quota_reset_tz})"
        return text


@dataclass(frozen=True)
class Backoff:
    """Retries of a retryable failure: ``attempts`` tries in all, waits of ``base_s`` ×
    2^n with full jitter (a random wait between 0 and that), never above ``max_s``."""

    attempts: int = 5
    base_s: float = 1.0
    max_s: float = 60.0


@dataclass(frozen=True)
class Schedule:
    """How often a source runs and how far back one run looks (sources revise late days)."""

    every: timedelta = timedelta(days=1)
    lookback: timedelta = timedelta(days=3)
    grain: Literal["daily", "hourly"] = "daily"
    #: The longest range one request may ask for (Instagram insights: 30 days).
    window_days: int | None = None


@dataclass(frozen=True)
class SourceSpec:
    """Everything the framework needs to know about a source."""

    name: str                       # "spotify": the registry key and the fake's prefix
    title: str                      # "Spotify for Artists"
    auth: AuthKind
    pagination: PaginationKind
    rate_limit: RateLimit
    api_host: str                   # the production base URL
    docs: str                       # where the shape comes from
    metrics: tuple[str, ...]
    entity_kinds: tuple[str, ...]
    #: True: the API answers past dates (back-fill works); False: current counts only.
    history: bool = True
    #: "documented": the public API as documented; "modelled": a partner export or
    #: dashboard format modelled where no public API exists (the module docstring says).
    shape: Literal["documented", "modelled"] = "documented"
    backoff: Backoff = field(default_factory=Backoff)
    schedule: Schedule = field(default_factory=Schedule)
    #: The token endpoint (absolute, production) for OAuth kinds.
    token_url: str = ""

    def __post_init__(self) -> None:
        if self.auth not in AUTH_KINDS:
            raise ValueError(f"{self.name}: auth {self.auth!r} is not one of {AUTH_KINDS}")
        if self.pagination not in PAGINATION_KINDS:
            raise ValueError(f"{self.name}: pagination {self.pagination!r} is not one of "
                             f"{PAGINATION_KINDS}")
        if self.auth in ("oauth_client_credentials", "refresh_token") and not self.token_url:
            raise ValueError(f"{self.name}: an OAuth source needs token_url")
