"""Beatport: daily sales per track of a label's or artist's releases.

Beatport's API v4 (``api.beatport.com/v4``) is documented for catalogue data, with an
OAuth 2 token at ``/v4/auth/o/token/`` and Django REST Framework paging (``count``,
``next``, ``previous``, ``page`` as ``"1/7"``, ``per_page``, ``results``); sales reach
labels as statements from the label portal, not through the API. The sales rows here are
*modelled* on those statements (one row per day and track with its ISRC and units),
served in the v4 paging envelope. Throttled requests get DRF's 429 with ``Retry-After``
and ``{"detail": ...}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt, PositiveInt

from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Track(BaseModel):
    id: int
    name: str
    mix_name: str = ""
    isrc: str | None = None
    length_ms: NonNegativeInt | None = None


class Row(BaseModel):
    date: str
    track: Track
    units: NonNegativeInt


class Page(BaseModel):
    count: NonNegativeInt
    next: str | None = None
    previous: str | None = None
    page: str
    per_page: PositiveInt
    results: list[Row]


class BeatportConnector(Connector):
    spec = SourceSpec(
        name="beatport", title="Beatport", auth="oauth_client_credentials",
        pagination="page", rate_limit=RateLimit(60, 60), shape="modelled",
        api_host="https://api.beatport.com",
        token_url="https://api.beatport.com/v4/auth/o/token/",
        docs="https://api.beatport.com/v4/docs/", metrics=("sales",),
        entity_kinds=("artist", "track"))
    Page = Page
    limit_param, first_position, page_size = "per_page", 1, 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged("/v4/my/sales/daily/", {"artist_id": entity.id,
                                                  "date_from": start.isoformat(),
                                                  "date_to": end.isoformat()})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.results

    def total(self, page: Page) -> int:
        return max(1, math.ceil(page.count / page.per_page))

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for row in page.results:
            track, key = row.track, str(row.track.id)
            out.points.append(point(self.spec, "track", key, "sales", parse_day(row.date),
                                    row.units))
            name = f"{track.name} ({track.mix_name})" if track.mix_name else track.name
            out.add_identity(Identity(self.name, "track", key, name, isrc=track.isrc,
                                      duration_ms=track.length_ms))
