"""TikTok: a business account's daily video views, followers, likes, comments and shares.

Documented: the TikTok API for Business account endpoint
(``GET /open_api/v1.3/business/get/`` with ``business_id``, ``start_date``, ``end_date``
and ``fields``), answering ``{"code", "message", "request_id", "data": {"metrics": [...]}}``
with one object per day; the access token goes in the ``Access-Token`` header and is
renewed with the account's refresh token (the answer nests the tokens under ``data``).
Errors come back as HTTP 200 with a non-zero ``code``; the codes mapped here (40100
throttled, 40105 invalid token, 40133 daily quota, 5xxxx server) are *modelled* on the
published list and need checking against it before production. A request covers at most
30 days, so a back-fill is cut into 30-day windows (no other pagination).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, NonNegativeInt

from business.analytics.errors import (
    TokenRevoked,
)
from business.analytics.sources.base import Call, CodeEnvelope, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched
from business.analytics.sources.spec import RateLimit, Schedule, SourceSpec

METRICS = ("video_views", "followers_count", "likes", "comments", "shares")
RATE_LIMITED, TOKEN_INVALID, QUOTA_SPENT = 40100, (40104, 40105), 40133


class Day(BaseModel):
    date: str
    video_views: NonNegativeInt
    followers_count: NonNegativeInt
    likes: NonNegativeInt
    comments: NonNegativeInt
    shares: NonNegativeInt


class Data(BaseModel):
    metrics: list[Day]


class Page(BaseModel):
    code: int
    message: str
    request_id: str
    data: Data | None = None


class TikTokConnector(CodeEnvelope, Connector):
    spec = SourceSpec(
        name="tiktok", title="TikTok for Business", auth="refresh_token", pagination="none",
        rate_limit=RateLimit(10, 1, units=20_000), api_host="https://business-api.tiktok.com",
        token_url="https://business-api.tiktok.com/open_api/v1.3/tt_user/oauth2/refresh_token/",
        docs="https://business-api.tiktok.com/portal/docs", metrics=METRICS,
        entity_kinds=("artist",), schedule=Schedule(window_days=30))
    Page = Page
    throttled_codes, token_codes, quota_codes = (frozenset({RATE_LIMITED}),
                                                 frozenset(TOKEN_INVALID),
                                                 frozenset({QUOTA_SPENT}))

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        fields = "[" + ",".join(f'"{m}"' for m in METRICS) + "]"
        return Call("/open_api/v1.3/business/get/", {
            "business_id": entity.id, "start_date": start.isoformat(),
            "end_date": end.isoformat(), "fields": fields})

    def sign(self, headers: dict[str, str], params: dict[str, str], token: str) -> None:
        headers["Access-Token"] = token

    def rows(self, page: Page) -> Sequence[Day]:
        return page.data.metrics if page.data else []

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        spec = self.spec
        for day in self.rows(page):
            at = parse_day(day.date)
            for metric in METRICS:
                out.points.append(point(spec, "artist", entity.id, metric, at,
                                        getattr(day, metric)))

    def token_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("code"):
            raise TokenRevoked(f"refresh refused: code {body['code']}: {body.get('message')}",
                               source=self.name)
        return body.get("data") or {}

