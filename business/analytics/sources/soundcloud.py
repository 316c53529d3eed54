"""SoundCloud: plays, likes, reposts and comments of a user's tracks, today.

Documented: the SoundCloud API (``GET /users/{id}/tracks?linked_partitioning=true``),
signed with an OAuth 2.1 client-credentials token from ``secure.soundcloud.com``, paged by
``next_href``. Counts are current values (a daily snapshot; no back-fill). Over a limit it
answers 429 with a ``rate_limit`` object (bucket, ``max_nr_of_requests``, ``time_window``
such as ``PT24H``) and the ``reset_time``: a 24-hour bucket is a quota until then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, NonNegativeInt

from business.analytics.errors import QuotaExhausted, RateLimited, SourceError
from business.analytics.sources.base import Call, Connector, point, retry_after_from, utc_day
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec

METRICS = ("playback_count", "likes_count", "reposts_count", "comment_count")


class Publisher(BaseModel):
    isrc: str | None = None
    upc_or_ean: str | None = None


class Track(BaseModel):
    id: int
    title: str
    duration: NonNegativeInt        # milliseconds
    playback_count: NonNegativeInt
    likes_count: NonNegativeInt
    reposts_count: NonNegativeInt
    comment_count: NonNegativeInt
    publisher_metadata: Publisher | None = None


class Page(BaseModel):
    collection: list[Track]
    next_href: str | None = None


class SoundCloudConnector(Connector):
    spec = SourceSpec(
        name="soundcloud", title="SoundCloud", auth="oauth_client_credentials",
        pagination="cursor", rate_limit=RateLimit(50, 1),
        api_host="https://api.soundcloud.com",
        token_url="https://secure.soundcloud.com/oauth/token",
        docs="https://developers.soundcloud.com/docs/api/rate-limits",
        metrics=METRICS, entity_kinds=("track",), history=False)
    Page = Page

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/users/{entity.id}/tracks", {"linked_partitioning": "true"})

    def sign(self, headers: dict[str, str], params: dict[str, str], token: str) -> None:
        headers["Authorization"] = f"OAuth {token}"

    def rows(self, page: Page) -> Sequence[Track]:
        return page.collection

    def next_cursor(self, page: Page) -> str | None:
        return page.next_href

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for track in page.collection:
            for metric in METRICS:
                out.points.append(point(self.spec, "track", str(track.id), metric, at,
                                        getattr(track, metric)))
            meta = track.publisher_metadata or Publisher()
            out.add_identity(Identity(self.name, "track", str(track.id), track.title,
                                      isrc=meta.isrc, upc=meta.upc_or_ean,
                                      duration_ms=track.duration))

    def classify(self, status: int, body: Any, headers: Mapping[str, str]
                 ) -> SourceError | None:
        if status != 429 or not isinstance(body, dict):
            return None
        limit = body.get("rate_limit") or {}
        reset = body.get("reset_time")
        if limit.get("time_window") == "PT24H" and reset:
            resets = datetime.strptime(reset, "%Y/%m/%d %H:%M:%S %z").astimezone(UTC)
            return QuotaExhausted(f"the {limit.get('bucket')} bucket of "
                                  f"{limit.get('max_nr_of_requests')} requests a day is spent",
                                  resets_at=resets, source=self.name, status=status)
        return RateLimited("throttled", retry_after=retry_after_from(headers),
                           source=self.name, status=status)
