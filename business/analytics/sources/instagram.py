"""Instagram: a professional account's daily reach, profile views and follower count.

Documented: the Instagram API's account insights
(``GET /{ig-user-id}/insights?metric=...&period=day&since&until``, Unix seconds), answering
``data``: one object per metric with ``values`` of ``{"value", "end_time"}``; a day's value
carries the ``end_time`` of the next morning (Pacific), so ``at`` is the day before it.
A range is at most 30 days; ``paging.next`` walks on past the asked range forever, so a
back-fill is cut into 30-day windows and the link is not followed. Sign-in: the
long-lived access token (``access_token`` query parameter), renewed with
``GET /refresh_access_token?grant_type=ig_refresh_token``. Errors are Graph API
``OAuthException`` objects: code 190 (token invalid or revoked), 4 (the app's hourly
call budget: quota), 17 / 32 / 613 / 80002 (throttles; ``X-Business-Use-Case-Usage``
says when access returns).

**Audience**: when a window reaches yesterday or today, the documented
``follower_demographics`` insight (``metric_type=total_value``, ``period=lifetime``,
one request per ``breakdown``: age, gender, country, city) answers the followers as they
are now, ``total_value.breakdowns[0].results`` of ``{"dimension_values": [...],
"value"}``; stored as today's ``audience_followers`` with the dimension ``age``,
``gender`` (``F``, ``M``, ``U`` as female, male, unknown), ``country`` or ``city``. A
breakdown other than the one asked, an unknown gender or a missing field raises
``SchemaChanged`` naming it. No history: a back-fill of past months gets none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, NonNegativeInt

from business.analytics.errors import (
    QuotaExhausted,
    RateLimited,
    SchemaChanged,
    SourceError,
    TokenRevoked,
)
from business.analytics.sources.base import Call, Connector, point, utc_day
from business.analytics.sources.records import Entity, Fetched
from business.analytics.sources.spec import RateLimit, Schedule, SourceSpec

METRICS = ("reach", "profile_views", "follower_count")
AUDIENCE_METRIC = "audience_followers"
#: follower_demographics' breakdowns, in the order asked, and the dimension stored.
BREAKDOWNS = {"age": "age", "gender": "gender", "country": "country", "city": "city"}
GENDERS = {"F": "female", "M": "male", "U": "unknown"}
#: Graph API throttles (80001: Pages, 80002: Instagram business use cases).
THROTTLES = {17, 32, 613, 80001, 80002}


class Value(BaseModel):
    value: NonNegativeInt
    end_time: datetime


class Insight(BaseModel):
    name: str
    period: str
    values: list[Value]
    id: str


class Page(BaseModel):
    data: list[Insight]


class Result(BaseModel):
    dimension_values: list[str]
    value: NonNegativeInt


class Breakdown(BaseModel):
    dimension_keys: list[str]
    results: list[Result]


class TotalValue(BaseModel):
    breakdowns: list[Breakdown]


class Demographic(BaseModel):
    name: str
    period: str
    total_value: TotalValue
    id: str


class DemographicsPage(BaseModel):
    data: list[Demographic]


class InstagramConnector(Connector):
    spec = SourceSpec(
        name="instagram", title="Instagram insights", auth="refresh_token",
        pagination="none", rate_limit=RateLimit(200, 3600),
        api_host="https://graph.instagram.com",
        token_url="https://graph.instagram.com/refresh_access_token",
        docs="https://developers.facebook.com/docs/instagram-platform/api-reference/"
             "instagram-user/insights",
        metrics=(*METRICS, AUDIENCE_METRIC), entity_kinds=("artist",),
        schedule=Schedule(window_days=30))
    Page = Page
    #: Whether the account has ``follower_demographics`` (Facebook Pages: not here).
    demographics: ClassVar[bool] = True

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        since = utc_day(start) + timedelta(days=1)
        until = utc_day(end) + timedelta(days=2)
        return Call(f"/v21.0/{entity.id}/insights", {
            "metric": ",".join(METRICS), "period": "day",
            "since": str(int(since.timestamp())), "until": str(int(until.timestamp()))})

    def sign(self, headers: dict[str, str], params: dict[str, str], token: str) -> None:
        params["access_token"] = token

    def rows(self, page: Page) -> Sequence[Insight]:
        return [insight for insight in page.data if insight.values]

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for insight in page.data:
            for value in insight.values:
                ends = value.end_time.astimezone(UTC).date()
                out.points.append(point(self.spec, "artist", entity.id, insight.name,
                                        utc_day(ends - timedelta(days=1)), value.value))

    async def after_window(self, entity: Entity, start: date, end: date,
                           out: Fetched) -> None:
        """The followers' demographics now, when the window reaches yesterday."""
        today = self.today()
        if not self.demographics or end < today - timedelta(days=1):
            return
        for breakdown, dimension in BREAKDOWNS.items():
            page = await self.get(Call(f"/v21.0/{entity.id}/insights", {
                "metric": "follower_demographics", "period": "lifetime",
                "metric_type": "total_value", "breakdown": breakdown}), out,
                DemographicsPage)
            out.pages += 1
            read = []   # kept once the whole page is sound
            for i, insight in enumerate(page.data):
                for j, part in enumerate(insight.total_value.breakdowns):
                    where = f"data.{i}.total_value.breakdowns.{j}"
                    if part.dimension_keys != [breakdown]:
                        raise SchemaChanged(f"{where}.dimension_keys", f"asked for "
                                            f"[{breakdown!r}], got {part.dimension_keys}",
                                            source=self.name)
                    for k, result in enumerate(part.results):
                        key = result.dimension_values[0] if result.dimension_values else ""
                        if breakdown == "gender":
                            if key not in GENDERS:
                                raise SchemaChanged(
                                    f"{where}.results.{k}.dimension_values", f"unknown "
                                    f"gender {key!r}; known: {sorted(GENDERS)}",
                                    source=self.name)
                            key = GENDERS[key]
                        if not key:
                            raise SchemaChanged(f"{where}.results.{k}.dimension_values",
                                                "no value", source=self.name)
                        read.append(point(self.spec, "artist", entity.id, AUDIENCE_METRIC,
                                          utc_day(today), result.value,
                                          ((dimension, key),)))
            out.points.extend(read)

    async def renew(self) -> tuple[str, float]:
        params = {"grant_type": "ig_refresh_token",
                  "access_token": self.credentials.refresh_token}
        async with self.session.get(self.token_url(), params=params,
                                    timeout=self.timeout) as response:
            status, raw, headers = response.status, await response.read(), response.headers
        if status != 200:
            error = self.error_for(status, raw, headers, "token refresh")
            if status in (400, 401, 403):
                raise TokenRevoked(f"the long-lived token cannot be refreshed ({error.reason});"
                                   " reconnect Instagram", source=self.name, status=status)
            raise error
        body = json.loads(raw)
        return str(body["access_token"]), float(body.get("expires_in") or 5_184_000)

    def classify(self, status: int, body: Any, headers: Mapping[str, str]
                 ) -> SourceError | None:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return None
        code, message = error.get("code"), str(error.get("message", ""))
        if code == 190:
            return TokenRevoked(message, source=self.name, status=status)
        if code == 4:
            return QuotaExhausted(message, resets_at=self.clock() + timedelta(hours=1),
                                  source=self.name, status=status)
        if code in THROTTLES:
            return RateLimited(message, retry_after=_regain_s(headers), source=self.name,
                               status=status)
        return None


def _regain_s(headers: Mapping[str, str]) -> float | None:
    """Seconds until access returns, from ``X-Business-Use-Case-Usage`` (minutes)."""
    raw = headers.get("X-Business-Use-Case-Usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
        minutes = max(int(entry.get("estimated_time_to_regain_access", 0))
                      for entries in usage.values() for entry in entries)
    except (ValueError, AttributeError, TypeError):
        return None
    return minutes * 60.0
