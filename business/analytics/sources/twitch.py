"""Twitch: a channel's follower total and the view counts of its videos, today.

Documented: the Twitch Helix API. ``GET /helix/videos?user_id=`` lists the channel's
videos with ``view_count``, paged by the ``after`` cursor (``pagination.cursor``) and
``first``; ``GET /helix/channels/followers?broadcaster_id=`` answers ``total`` (with an
app access token, as here, ``data`` stays empty and only the total comes back). Sign-in:
an app access token from ``id.twitch.tv/oauth2/token`` (client credentials), sent as a
Bearer header with the ``Client-Id`` header. Requests spend points of a per-minute bucket
(800 here); over it the API answers 429 with ``Ratelimit-Reset`` (Unix seconds). Counts
are current values (a daily snapshot; no back-fill).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, NonNegativeInt

from business.analytics.errors import RateLimited, SchemaChanged, SourceError
from business.analytics.sources.base import (
    Call,
    Connector,
    point,
    seconds_until_epoch,
    utc_day,
)
from business.analytics.sources.records import Entity, Fetched
from business.analytics.sources.spec import RateLimit, SourceSpec


class Video(BaseModel):
    id: str
    user_id: str
    title: str
    created_at: str
    view_count: NonNegativeInt
    duration: str


class Pagination(BaseModel):
    cursor: str | None = None


class Page(BaseModel):
    data: list[Video]
    pagination: Pagination = Pagination()
    #: Only in the followers answer.
    total: NonNegativeInt | None = None


class TwitchConnector(Connector):
    spec = SourceSpec(
        name="twitch", title="Twitch", auth="oauth_client_credentials", pagination="cursor",
        rate_limit=RateLimit(800, 60), api_host="https://api.twitch.tv",
        token_url="https://id.twitch.tv/oauth2/token",
        docs="https://dev.twitch.tv/docs/api/reference/", metrics=("followers", "view_count"),
        entity_kinds=("artist", "video"), history=False)
    Page = Page
    cursor_param, limit_param, page_size = "after", "first", 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged("/helix/videos", {"user_id": entity.id, "sort": "time"})

    def sign(self, headers: dict[str, str], params: dict[str, str], token: str) -> None:
        headers["Authorization"] = f"Bearer {token}"
        headers["Client-Id"] = self.credentials.client_id

    def rows(self, page: Page) -> Sequence[Video]:
        return page.data

    def next_cursor(self, page: Page) -> str | None:
        return page.pagination.cursor

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for video in page.data:
            out.points.append(point(self.spec, "video", video.id, "view_count", at,
                                    video.view_count))

    async def after_window(self, entity: Entity, start: date, end: date,
                           out: Fetched) -> None:
        page = await self.get(Call("/helix/channels/followers",
                                   {"broadcaster_id": entity.id}), out)
        out.pages += 1
        if page.total is None:
            raise SchemaChanged("total", "the followers answer has no total",
                                source=self.name)
        out.points.append(point(self.spec, "artist", entity.id, "followers",
                                utc_day(self.today()), page.total))

    def classify(self, status: int, body: Any, headers: Mapping[str, str]
                 ) -> SourceError | None:
        if status != 429:
            return None
        message = body.get("message", "") if isinstance(body, dict) else ""
        return RateLimited(f"throttled: {message}",
                           retry_after=seconds_until_epoch(headers, "Ratelimit-Reset"),
                           source=self.name, status=status)
