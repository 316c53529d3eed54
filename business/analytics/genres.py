"""The genres of the catalogue's artists, for benchmarking within a genre.

A genre comes from a platform's identity of the artist (:attr:`Identity.genres`, kept per
source as the catalogue resolves it) or from a person (``source = "manual"``). A person's
genres stand alone once set (the platforms' are kept but not used) and an empty list
hands the artist back to the platforms'; each change is audited like merges and splits.
Genres are compared normalised: lower case, single spaces (``"Hip  Hop"`` is
``"hip hop"``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from business.analytics.catalog import Catalog, CatalogError
from business.analytics.sources.records import Identity

MANUAL = "manual"
MAX_GENRES = 10
MAX_LENGTH = 60


class BadGenres(CatalogError, ValueError):
    """Genres that cannot be kept (empty, too long, too many, not an artist)."""


def normalise_genre(genre: str) -> str:
    """``" Hip  Hop "`` -> ``"hip hop"``."""
    return re.sub(r"\s+", " ", genre).strip().lower()


def clean(genres: Iterable[str]) -> list[str]:
    """Normalised, unique, in the order given; bad ones raise :class:`BadGenres`."""
    out: list[str] = []
    for raw in genres:
        genre = normalise_genre(raw)
        if not genre:
            raise BadGenres(f"an empty genre ({raw!r}); leave it out")
        if len(genre) > MAX_LENGTH:
            raise BadGenres(f"genre {genre[:20]!r}... is over {MAX_LENGTH} characters")
        if genre not in out:
            out.append(genre)
    if len(out) > MAX_GENRES:
        raise BadGenres(f"at most {MAX_GENRES} genres an artist, {len(out)} given")
    return out


class Genres:
    """Artists' genres of every account (always scoped by account)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db

    async def reported(self, account_id: str, identities: Sequence[Identity],
                       matches: Mapping[tuple[str, str, str], Any]) -> None:
        """Keep the genres ``identities`` report for the entities they resolved to."""
        rows = []
        for identity in identities:
            match = matches.get((identity.source, identity.entity_kind, identity.entity_id))
            if match is None or not identity.genres:
                continue
            try:
                genres = clean(identity.genres)[:MAX_GENRES]
            except BadGenres:
                genres = [g for g in map(normalise_genre, identity.genres)
                          if 0 < len(g) <= MAX_LENGTH][:MAX_GENRES]
            rows += [(account_id, match.entity_id, g, identity.source, time.time())
                     for g in genres]
        if rows:
            async with self.db.transaction() as tx:
                for row in rows:
                    await tx.execute(
                        "INSERT INTO analytics_genres (account_id, entity_id, genre, source, "
                        "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, "
                        "entity_id, genre, source) DO NOTHING", *row)

    async def set(self, account_id: str, entity_id: str, genres: Iterable[str],
                  actor: str) -> list[str]:
        """A person sets an artist's genres (empty: back to the platforms'); its genres."""
        entity = await self.catalog.get(account_id, entity_id)   # 404 for another account
        if entity.kind != "artist":
            raise BadGenres(f"{entity_id} is a {entity.kind}: genres are set on artists")
        chosen = clean(genres)
        before = await self.of(account_id, [entity_id])
        now = time.time()
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM analytics_genres WHERE account_id = ? AND "
                             "entity_id = ? AND source = ?", account_id, entity_id, MANUAL)
            for genre in chosen:
                await tx.execute(
                    "INSERT INTO analytics_genres (account_id, entity_id, genre, source, "
                    "created_at) VALUES (?, ?, ?, ?, ?)", account_id, entity_id, genre,
                    MANUAL, now)
            await self.catalog._audit(tx, account_id, "genres", actor, entity_id,
                                      {"before": before.get(entity_id, []),
                                       "after": chosen}, now)
        return (await self.of(account_id, [entity_id])).get(entity_id, [])

    async def of(self, account_id: str, entity_ids: Sequence[str] | None = None
                 ) -> dict[str, list[str]]:
        """Entity id -> its genres (a person's if set, else every platform's), sorted."""
        rows = await self.db.fetch(
            "SELECT entity_id, genre, source FROM analytics_genres WHERE account_id = ? "
            "ORDER BY entity_id, genre", account_id)
        manual: dict[str, set[str]] = {}
        reported: dict[str, set[str]] = {}
        for row in rows:
            if entity_ids is not None and row["entity_id"] not in entity_ids:
                continue
            into = manual if row["source"] == MANUAL else reported
            into.setdefault(row["entity_id"], set()).add(row["genre"])
        return {e: sorted(manual.get(e) or reported[e])
                for e in sorted({*manual, *reported})}
