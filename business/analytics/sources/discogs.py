"""Discogs: how many collectors own and want each of an artist's releases, today.

Documented: the Discogs API ``GET /artists/{id}/releases?page&per_page`` with a personal
access token (``Authorization: Discogs token=...``), answering ``pagination`` (``page``,
``pages``, ``items``, ``urls``) and ``releases`` whose ``stats.community`` holds
``in_collection`` and ``in_wantlist``. Counts are current values (a daily snapshot; no
back-fill). 60 requests a minute when authenticated, in a moving window; over it, 429.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, NonNegativeInt

from business.analytics.sources.base import Call, Connector, point, utc_day
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Community(BaseModel):
    in_collection: NonNegativeInt
    in_wantlist: NonNegativeInt


class Stats(BaseModel):
    community: Community


class Release(BaseModel):
    id: int
    title: str
    type: str
    artist: str
    year: int | None = None
    stats: Stats


class Pagination(BaseModel):
    page: NonNegativeInt
    pages: NonNegativeInt
    per_page: NonNegativeInt
    items: NonNegativeInt


class Page(BaseModel):
    pagination: Pagination
    releases: list[Release]


class DiscogsConnector(Connector):
    spec = SourceSpec(
        name="discogs", title="Discogs", auth="api_key", pagination="page",
        rate_limit=RateLimit(60, 60), api_host="https://api.discogs.com",
        docs="https://www.discogs.com/developers#page:database,header:database-artist-releases",
        metrics=("in_collection", "in_wantlist"), entity_kinds=("release",), history=False)
    Page = Page
    api_key_in = ("header", "Authorization", "Discogs token={key}")
    limit_param, first_position = "per_page", 1

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged(f"/artists/{entity.id}/releases", {"sort": "year"})

    def rows(self, page: Page) -> Sequence[Release]:
        return page.releases

    def total(self, page: Page) -> int:
        return page.pagination.pages

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for release in page.releases:
            key, community = f"{release.type}/{release.id}", release.stats.community
            out.points.append(point(self.spec, "release", key, "in_collection", at,
                                    community.in_collection))
            out.points.append(point(self.spec, "release", key, "in_wantlist", at,
                                    community.in_wantlist))
            out.add_identity(Identity(self.name, "release", key, release.title,
                                      artist_name=release.artist))
