"""Routes of artists' genres and benchmarking within a genre (``/api/analytics/genres``,
``/api/analytics/catalog/{entity_id}/genres``, ``/api/analytics/benchmark/genres``).

Scoped by ``request.account_id``: another account's artist answers 404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from business.analytics.audience_routes import BenchmarkKpiOut
from business.analytics.benchmark import BadPeers, by_genre
from business.analytics.catalog import EntityNotFound
from business.analytics.genres import MAX_GENRES, BadGenres, Genres
from business.analytics.permissions import CATALOG, READ
from business.analytics.playlist_routes import PlaylistQuery
from business.analytics.services import services
from dawserver.plugin_api import (
    BadRequest,
    Model,
    NotFound,
    Request,
    Route,
    Unprocessable,
    map_errors,
)

_api = map_errors((EntityNotFound, NotFound), (BadGenres, Unprocessable))


class GenresIn(Model):
    """An artist's genres as a person sets them (empty: the platforms' again)."""

    genres: list[str] = Field(max_length=MAX_GENRES)


class GenresOut(Model):
    entity_id: str
    name: str
    genres: list[str]


class GenreRankOut(Model):
    genre: str
    peers: list[str]
    kpis: dict[str, BenchmarkKpiOut]


class GenreBenchmarkOut(Model):
    entity_id: str
    name: str
    first_day: str
    last_day: str
    genres: list[GenreRankOut]


def _person(request: Request) -> str:
    return request.user or request.account_id


@_api
async def artist_genres(request: Request) -> Any:
    """Every artist of the catalogue with its genres (a person's, else the platforms')."""
    module = services(request.context)
    every = await Genres(module.catalog).of(request.account_id)
    return [{"entity_id": e.entity_id, "name": e.name, "genres": every.get(e.entity_id, [])}
            for e in await module.catalog.entities(request.account_id, "artist")
            if not e.merged_into]


@_api
async def set_genres(request: Request) -> Any:
    """Set an artist's genres (audited); an empty list goes back to the platforms'."""
    body: GenresIn = request.body
    module = services(request.context)
    entity_id = request.params["entity_id"]
    genres = await Genres(module.catalog).set(request.account_id, entity_id, body.genres,
                                              _person(request))
    entity = await module.catalog.get(request.account_id, entity_id)
    return {"entity_id": entity_id, "name": entity.name, "genres": genres}


@_api
async def genre_benchmark(request: Request) -> Any:
    """An artist's KPIs ranked among the account's artists of each of its genres."""
    query: PlaylistQuery = request.query
    if not query.entity:
        raise BadRequest("name the artist: entity=<catalogue entity id>")
    module = services(request.context)
    start, end = query.days()
    try:
        return await by_genre(module.store, module.catalog, Genres(module.catalog),
                              request.account_id, query.entity, start, end)
    except BadPeers as err:
        raise BadRequest(str(err)) from err


A = "/api/analytics"
GENRE_ROUTES = [
    Route(method="GET", path=f"{A}/genres", handler=artist_genres, permission=READ,
          response=list[GenresOut]),
    Route(method="PUT", path=f"{A}/catalog/{{entity_id}}/genres", handler=set_genres,
          permission=CATALOG, body=GenresIn, response=GenresOut),
    Route(method="GET", path=f"{A}/benchmark/genres", handler=genre_benchmark,
          permission=READ, query=PlaylistQuery, response=GenreBenchmarkOut),
]
