"""Benchmarking: an artist's KPIs against a peer set, as percentile ranks.

The peers are the artists a person names (catalogue entities of the account), or else the
account's other artists of a similar size: followers within ``SIZE_FACTOR`` times the
artist's either way (all other artists when the artist has no follower figure), sought
among all its live artists by name, the first :data:`MAX_PEERS` found kept.

**By genre** (:func:`by_genre`): for each of the artist's genres (:mod:`.genres`), the
account's other artists of that genre are the peers, and every KPI is ranked within it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from business.analytics.catalog import Catalog, Entity
from business.analytics.genres import Genres
from business.analytics.kpis import KPI_BY_NAME, KPIS, entity_kpis
from business.analytics.store import PointStore

SIZE_FACTOR = 10.0
MAX_PEERS = 50
#: Artists read from the catalogue per request while gathering peers.
PAGE = 200
#: The most artists whose size one benchmark reads (each costs a few queries), by name.
MAX_SCANNED = 1000


class BadPeers(ValueError):
    """The peer set cannot be used (the artist itself, too many, not an artist)."""


def percentile_rank(value: float, others: Sequence[float]) -> float | None:
    """The share of ``others`` below ``value`` (ties count half), 0..100; None without
    others."""
    if not others:
        return None
    below = sum(1 for o in others if o < value)
    equal = sum(1 for o in others if o == value)
    return 100.0 * (below + 0.5 * equal) / len(others)


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile ``q`` (0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def benchmark(store: PointStore, catalog: Catalog, account_id: str, entity_id: str,
                    start: date, end: date, peers: Sequence[str] = ()) -> dict[str, Any]:
    """Artist ``entity_id``'s KPIs over ``[start, end]`` with, per KPI, the peers' values,
    quartiles and the artist's percentile rank among them. Unknown peers raise
    ``EntityNotFound`` (404, like another account's)."""
    artist = await catalog.get(account_id, entity_id)
    if artist.kind != "artist":
        raise BadPeers(f"{entity_id} is a {artist.kind}: benchmark an artist")
    if entity_id in peers:
        raise BadPeers("the artist is among its own peers: leave it out of 'peers'")
    if len(set(peers)) > MAX_PEERS:
        raise BadPeers(f"at most {MAX_PEERS} peers, {len(set(peers))} named")
    chosen = bool(peers)
    if chosen:
        peer_entities = [await catalog.get(account_id, p) for p in dict.fromkeys(peers)]
        for peer in peer_entities:
            if peer.kind != "artist":
                raise BadPeers(f"peer {peer.entity_id} is a {peer.kind}: name artists")
    mine = await entity_kpis(store, account_id, entity_id, start, end)
    if not chosen:
        others = [e for e in await live_artists(catalog, account_id)
                  if e.entity_id != entity_id]
        size = mine["followers"]["value"]
        peer_entities = (await similar_size(store, account_id, others, size, start, end)
                         if size else others[:MAX_PEERS])
    theirs = {p.entity_id: await entity_kpis(store, account_id, p.entity_id, start, end)
              for p in peer_entities}
    names = {p.entity_id: p.name for p in peer_entities}
    return {"entity_id": entity_id, "name": artist.name, "first_day": start.isoformat(),
            "last_day": end.isoformat(), "peer_set": "chosen" if chosen else "similar_size",
            "peers": sorted(theirs), "kpis": ranked(mine, theirs, names)}


async def live_artists(catalog: Catalog, account_id: str) -> list[Entity]:
    """Every live (not merged) artist of the account by name, read a page at a time."""
    found: list[Entity] = []
    while True:
        page = await catalog.entities(account_id, "artist", limit=PAGE, offset=len(found))
        found += page
        if len(page) < PAGE:
            return found


async def similar_size(store: PointStore, account_id: str, artists: Sequence[Entity],
                       size: float, start: date, end: date) -> list[Entity]:
    """The first :data:`MAX_PEERS` of ``artists`` (in order) whose followers over
    ``[start, end]`` are within :data:`SIZE_FACTOR` times ``size`` either way, among the
    first :data:`MAX_SCANNED` (a request stays bounded however big the label)."""
    followers = KPI_BY_NAME["followers"]
    found: list[Entity] = []
    for artist in artists[:MAX_SCANNED]:
        kpis = await entity_kpis(store, account_id, artist.entity_id, start, end, (followers,))
        theirs = kpis["followers"]["value"]
        if theirs is not None and size / SIZE_FACTOR <= theirs <= size * SIZE_FACTOR:
            found.append(artist)
            if len(found) == MAX_PEERS:
                break
    return found


def ranked(mine: dict[str, Any], theirs: dict[str, dict[str, Any]],
           names: dict[str, str]) -> dict[str, Any]:
    """Per KPI: the artist's value, its percentile among ``theirs``, their quartiles and
    values (biggest first)."""
    kpis = {}
    for kpi in KPIS:
        values = {pid: k[kpi.name]["value"] for pid, k in theirs.items()
                  if k[kpi.name]["value"] is not None}
        own = mine[kpi.name]["value"]
        figures = list(values.values())
        kpis[kpi.name] = {
            "title": kpi.title, "value": own,
            "percentile": None if own is None else percentile_rank(own, figures),
            "p25": quantile(figures, 0.25), "median": quantile(figures, 0.5),
            "p75": quantile(figures, 0.75),
            "peers": [{"entity_id": pid, "name": names[pid], "value": v}
                      for pid, v in sorted(values.items(), key=lambda kv: -kv[1])]}
    return kpis


async def by_genre(store: PointStore, catalog: Catalog, genres: Genres, account_id: str,
                   entity_id: str, start: date, end: date) -> dict[str, Any]:
    """Artist ``entity_id``'s KPIs ranked within each of its genres: per genre, the
    account's other artists of that genre (at most :data:`MAX_PEERS`, merged ones left
    out) as peers. An artist without a genre raises :class:`BadPeers` saying how to give
    it one."""
    artist = await catalog.get(account_id, entity_id)
    if artist.kind != "artist":
        raise BadPeers(f"{entity_id} is a {artist.kind}: benchmark an artist")
    every = await genres.of(account_id)
    own = every.get(entity_id, [])
    if not own:
        raise BadPeers(f"{artist.name or entity_id} has no genre: set its genres with PUT "
                       f"/api/analytics/catalog/{entity_id}/genres")
    artists = {e.entity_id: e.name for e in await live_artists(catalog, account_id)
               if e.entity_id != entity_id}
    mine = await entity_kpis(store, account_id, entity_id, start, end)
    figures: dict[str, dict[str, Any]] = {}
    out = []
    for genre in own:
        peers = [pid for pid in sorted(artists) if genre in every.get(pid, ())][:MAX_PEERS]
        for pid in peers:
            if pid not in figures:
                figures[pid] = await entity_kpis(store, account_id, pid, start, end)
        out.append({"genre": genre, "peers": peers,
                    "kpis": ranked(mine, {pid: figures[pid] for pid in peers}, artists)})
    return {"entity_id": entity_id, "name": artist.name, "first_day": start.isoformat(),
            "last_day": end.isoformat(), "genres": out}
