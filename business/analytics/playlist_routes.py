"""Routes of playlist tracking (``/api/analytics/playlists...``): placements with their
position history, adds and removes, and a recording's reach over time.

Every query is scoped by ``request.account_id``: another account's entity answers 404.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import Field, model_validator

from business.analytics.catalog import EntityNotFound
from business.analytics.permissions import READ
from business.analytics.schemas import check_span
from business.analytics.services import services
from dawserver.plugin_api import (
    BadRequest,
    Model,
    NotFound,
    Query,
    Request,
    Route,
    map_errors,
)

_api = map_errors((EntityNotFound, NotFound))


class PlaylistQuery(Query):
    """A day range (default: the 28 days to today) and optionally one catalogue entity."""

    entity: str = Field("", max_length=64)
    start: date | None = Field(None, alias="from")
    end: date | None = Field(None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> PlaylistQuery:
        check_span(self.start, self.end)
        return self

    def days(self) -> tuple[date, date]:
        end = self.end or datetime.now(UTC).date()
        return self.start or end - timedelta(days=27), end


class PlacementOut(Model):
    source: str
    playlist_id: str
    playlist_name: str
    curator: str
    track_id: str
    entity_id: str
    track_name: str
    first_day: str
    last_day: str
    on_last_day: bool
    position: int
    best_position: int
    followers: float | None
    positions: list[list[Any]]


class ChangeOut(Model):
    day: str
    change: str
    source: str
    playlist_id: str
    playlist_name: str
    curator: str
    track_id: str
    entity_id: str
    track_name: str
    position: int


class ReachDayOut(Model):
    day: str
    total: float
    editorial: float
    user: float
    playlists: int


class ReachOut(Model):
    entity_id: str
    first_day: str
    last_day: str
    days: list[ReachDayOut]


async def _entity(request: Request, query: PlaylistQuery) -> str | None:
    if not query.entity:
        return None
    await services(request.context).catalog.get(request.account_id, query.entity)
    return query.entity


@_api
async def placements(request: Request) -> Any:
    """Each track on each playlist in the range, with its position history."""
    query: PlaylistQuery = request.query
    start, end = query.days()
    return await services(request.context).playlists.placements(
        request.account_id, start, end, await _entity(request, query))


@_api
async def changes(request: Request) -> Any:
    """Adds to and removes from playlists in the range, oldest first."""
    query: PlaylistQuery = request.query
    start, end = query.days()
    return await services(request.context).playlists.changes(
        request.account_id, start, end, await _entity(request, query))


@_api
async def reach(request: Request) -> Any:
    """A recording's playlist reach per day: total, editorial, user."""
    query: PlaylistQuery = request.query
    entity = await _entity(request, query)
    if entity is None:
        raise BadRequest("name the recording: entity=<catalogue entity id>")
    start, end = query.days()
    return await services(request.context).playlists.reach(request.account_id, entity,
                                                           start, end)


A = "/api/analytics/playlists"
PLAYLIST_ROUTES = [
    Route(method="GET", path=A, handler=placements, permission=READ, query=PlaylistQuery,
          response=list[PlacementOut]),
    Route(method="GET", path=f"{A}/changes", handler=changes, permission=READ,
          query=PlaylistQuery, response=list[ChangeOut]),
    Route(method="GET", path=f"{A}/reach", handler=reach, permission=READ,
          query=PlaylistQuery, response=ReachOut),
]
