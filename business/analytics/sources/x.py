"""X: impressions, likes, reposts, replies and quotes of an account's recent posts, today.

Documented: the X API v2 user posts timeline (``GET /2/users/{id}/tweets?tweet.fields=
public_metrics,created_at``), answering ``data`` (posts with ``public_metrics``) and
``meta`` (``result_count``, ``next_token``), paged by ``pagination_token`` and
``max_results``; ``data`` is left out of an empty answer. Sign-in: an app-only Bearer
token from ``POST /oauth2/token`` (client credentials, HTTP Basic). The counts are current
values (a daily snapshot, per post as the ``post`` dimension; no back-fill). Over a rate
limit the API answers 429 with ``x-rate-limit-reset`` (Unix seconds) rather than
``Retry-After``; a 429 whose problem ``title`` is ``UsageCapExceeded`` is the plan's
monthly post cap (a quota until the first of next month).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, NonNegativeInt

from business.analytics.errors import QuotaExhausted, RateLimited, SourceError
from business.analytics.sources.base import (
    Call,
    Connector,
    point,
    seconds_until_epoch,
    utc_day,
)
from business.analytics.sources.records import Entity, Fetched
from business.analytics.sources.spec import RateLimit, SourceSpec

METRICS = ("impression_count", "like_count", "retweet_count", "reply_count", "quote_count")


class PublicMetrics(BaseModel):
    impression_count: NonNegativeInt
    like_count: NonNegativeInt
    retweet_count: NonNegativeInt
    reply_count: NonNegativeInt
    quote_count: NonNegativeInt


class Post(BaseModel):
    id: str
    text: str
    created_at: datetime
    public_metrics: PublicMetrics


class Meta(BaseModel):
    result_count: NonNegativeInt
    next_token: str | None = None


class Page(BaseModel):
    data: list[Post] | None = None
    meta: Meta


class XConnector(Connector):
    spec = SourceSpec(
        name="x", title="X (API v2)", auth="oauth_client_credentials", pagination="cursor",
        rate_limit=RateLimit(1500, 900), api_host="https://api.x.com",
        token_url="https://api.x.com/oauth2/token",
        docs="https://docs.x.com/x-api/posts/user-posts-timeline-by-user-id",
        metrics=METRICS, entity_kinds=("artist",), history=False)
    Page = Page
    cursor_param, limit_param, page_size = "pagination_token", "max_results", 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/2/users/{entity.id}/tweets",
                          {"tweet.fields": "public_metrics,created_at",
                           "exclude": "retweets,replies"})

    def rows(self, page: Page) -> Sequence[Post]:
        return page.data or []

    def next_cursor(self, page: Page) -> str | None:
        return page.meta.next_token

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for post in page.data or []:
            for metric in METRICS:
                out.points.append(point(self.spec, "artist", entity.id, metric, at,
                                        getattr(post.public_metrics, metric),
                                        (("post", post.id),)))

    def classify(self, status: int, body: Any, headers: Mapping[str, str]
                 ) -> SourceError | None:
        if status != 429:
            return None
        title = body.get("title", "") if isinstance(body, dict) else ""
        if title == "UsageCapExceeded":
            now = self.clock().astimezone(UTC)
            resets = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
            return QuotaExhausted(f"the plan's monthly post cap is spent: "
                                  f"{body.get('detail', '')}", resets_at=resets,
                                  source=self.name, status=status)
        return RateLimited(f"throttled: {title}",
                           retry_after=seconds_until_epoch(headers, "x-rate-limit-reset"),
                           source=self.name, status=status)
