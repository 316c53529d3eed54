"""One catalogue of identities per account: artists, recordings, releases, playlists and
venues, resolved across platforms.

Each platform id a source reports (``Identity``) is linked to one catalogue entity
(``analytics_links``), matched in this order, with a confidence:

1. the same platform id already linked: kept as it is (a re-ingest changes nothing);
2. another platform's id it carries (``external_ids``) already linked: 1.0;
3. its ISRC (recordings) or UPC (releases): 1.0 for one entity with that code; several
   entities may share an ISRC (a re-release, a split a person made): the best name and
   duration match among them, 0.95. One ISRC mapping to several tracks is kept, never
   blacklisted;
4. its normalised name (accents, case, "feat."/"remastered" tails and punctuation
   dropped), artist name and duration, scored with rapidfuzz against the account's
   entities of that kind: linked at or above :data:`FUZZY_THRESHOLD`, with the score as
   confidence;
5. otherwise a new entity (1.0).

Merges and splits are a person's decisions: the links they touch are marked ``manual``
and re-ingestion never changes a manual link; a merged entity keeps pointing at the one
it was merged into (later matches to it land there). Each decision is written to
``analytics_catalog_audit`` with who made it.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from business.analytics.sources.records import ENTITY_KINDS, Identity

#: Lowest fuzzy score (0..1) that links a platform id to an existing entity.
FUZZY_THRESHOLD = 0.88
#: Durations further apart than this are different recordings whatever their names.
DURATION_TOLERANCE_MS = 4000
KIND_OF = {"track": "recording", "video": "recording", "artist": "artist",
           "release": "release", "playlist": "playlist", "venue": "venue"}
CATALOG_KINDS = ("artist", "recording", "release", "playlist", "venue")
_TAILS = re.compile(r"\s*[\(\[\-–]\s*(feat\.?|ft\.?|featuring|with|remaster(ed)?|"
                    r"\d{4} remaster(ed)?|radio edit|single version|album version|"
                    r"explicit|clean)\b.*$", re.IGNORECASE)
_FEAT = re.compile(r"\s+(feat\.?|ft\.?|featuring)\s+.*$", re.IGNORECASE)
_NON_WORD = re.compile(r"[^\w\s]+")


class CatalogError(Exception):
    """A merge or split that cannot be done (unknown entity, wrong kinds...)."""


class EntityNotFound(CatalogError):
    """No entity (or link) of the account has that id."""


def normalise(name: str) -> str:
    """``name`` lower-cased, without accents, featuring and version tails, punctuation."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().strip()
    text = _TAILS.sub("", text)
    text = _FEAT.sub("", text)
    text = _NON_WORD.sub(" ", text)
    return " ".join(text.split())


def catalog_kind(entity_kind: str) -> str:
    """The catalogue kind of a platform's entity kind (a track and a video: recordings)."""
    if entity_kind not in ENTITY_KINDS:
        raise CatalogError(f"unknown entity kind {entity_kind!r}; use one of {ENTITY_KINDS}")
    return KIND_OF[entity_kind]


@dataclass
class Entity:
    """A catalogue entity as stored."""

    entity_id: str
    kind: str
    name: str = ""
    norm_name: str = ""
    artist_name: str = ""
    isrc: str = ""
    upc: str = ""
    duration_ms: int | None = None
    merged_into: str = ""
    links: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Match:
    """How one platform id was linked."""

    entity_id: str
    method: str              # existing | platform_id | isrc | upc | fuzzy | new | manual
    confidence: float


def score(identity: Identity, entity: Entity) -> float:
    """How alike an identity and an entity are (0..1): name, then artist and duration."""
    name = fuzz.token_sort_ratio(normalise(identity.name), entity.norm_name) / 100.0
    if identity.duration_ms and entity.duration_ms:
        if abs(identity.duration_ms - entity.duration_ms) > DURATION_TOLERANCE_MS:
            return 0.0
        name = min(1.0, name + 0.02)
    if identity.artist_name and entity.artist_name:
        artist = fuzz.token_sort_ratio(normalise(identity.artist_name),
                                       normalise(entity.artist_name)) / 100.0
        if artist < 0.6:
            return name * 0.5
    return name


class Catalog:
    """The account's catalogue in the shared database (every call scoped by account)."""

    def __init__(self, db: Any, *, clock: Any = time.time) -> None:
        self.db = db
        self.clock = clock

    # -- resolving ------------------------------------------------------------------------

    async def resolve(self, account_id: str, identities: Iterable[Identity]) -> dict[
            tuple[str, str, str], Match]:
        """Link every identity's platform id to a catalogue entity (see the module doc);
        ``{(source, entity_kind, platform id): Match}``."""
        wanted = list(identities)
        if not wanted:
            return {}
        links = {(r["source"], r["platform_kind"], r["platform_id"]): r for r in await
                 self.db.fetch("SELECT * FROM analytics_links WHERE account_id = ?",
                               account_id)}
        entities = {r["entity_id"]: Entity(**{k: r[k] for k in (
            "entity_id", "kind", "name", "norm_name", "artist_name", "isrc", "upc",
            "duration_ms", "merged_into")}) for r in await self.db.fetch(
            "SELECT * FROM analytics_entities WHERE account_id = ?", account_id)}
        out: dict[tuple[str, str, str], Match] = {}
        now = self.clock()
        async with self.db.transaction() as tx:
            for identity in wanted:
                key = (identity.source, identity.entity_kind, identity.entity_id)
                found = links.get(key)
                if found is not None:
                    out[key] = Match(found["entity_id"], "existing", found["confidence"])
                    await self._fill(tx, account_id, entities.get(found["entity_id"]),
                                     identity, now)
                    continue
                match = self._match(identity, links, entities)
                if match is None:
                    entity = self._new_entity(identity)
                    entities[entity.entity_id] = entity
                    await self._insert_entity(tx, account_id, entity, now)
                    match = Match(entity.entity_id, "new", 1.0)
                else:
                    await self._fill(tx, account_id, entities.get(match.entity_id), identity,
                                     now)
                row = {"source": identity.source, "platform_kind": identity.entity_kind,
                       "platform_id": identity.entity_id, "entity_id": match.entity_id,
                       "method": match.method, "confidence": match.confidence, "manual": 0}
                added = await tx.execute(
                    "INSERT INTO analytics_links (account_id, source, platform_kind, "
                    "platform_id, entity_id, method, confidence, manual, name, isrc, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?) "
                    "ON CONFLICT (account_id, source, platform_kind, platform_id) DO NOTHING",
                    account_id, identity.source, identity.entity_kind, identity.entity_id,
                    match.entity_id, match.method, match.confidence, identity.name or "",
                    identity.isrc or "", now, now)
                if not added:  # another worker linked it meanwhile: theirs stands
                    other = await tx.fetchrow(
                        "SELECT * FROM analytics_links WHERE account_id = ? AND source = ? "
                        "AND platform_kind = ? AND platform_id = ?", account_id, *key)
                    if match.method == "new":
                        await tx.execute("DELETE FROM analytics_entities WHERE account_id = ? "
                                         "AND entity_id = ?", account_id, match.entity_id)
                        entities.pop(match.entity_id, None)
                    row, match = other, Match(other["entity_id"], "existing",
                                              other["confidence"])
                links[key] = row
                out[key] = match
        return out

    def _match(self, identity: Identity, links: dict[tuple[str, str, str], dict[str, Any]],
               entities: dict[str, Entity]) -> Match | None:
        kind = catalog_kind(identity.entity_kind)

        def live(entity_id: str) -> str:
            seen = set()
            while entities.get(entity_id) and entities[entity_id].merged_into \
                    and entity_id not in seen:
                seen.add(entity_id)
                entity_id = entities[entity_id].merged_into
            return entity_id

        for source, other_id in identity.external_ids:
            for (s, _, pid), row in links.items():
                if s == source and pid == other_id and \
                        entities.get(row["entity_id"], Entity("", "")).kind == kind:
                    return Match(live(row["entity_id"]), "platform_id", 1.0)
        for code, column in ((identity.isrc, "isrc"), (identity.upc, "upc")):
            if not code:
                continue
            ids = {live(e.entity_id) for e in entities.values()
                   if e.kind == kind and getattr(e, column) == code.upper()}
            same = [entities[i] for i in sorted(ids) if i in entities]
            if len(same) == 1:
                return Match(same[0].entity_id, column, 1.0)
            if same:
                best = max(same, key=lambda e: score(identity, e))
                return Match(best.entity_id, column, 0.95)
        if not identity.name:
            return None
        # merged-away entities stay candidates (their names are aliases of the survivor)
        candidates = [e for e in entities.values() if e.kind == kind and e.norm_name]
        if not candidates:
            return None
        shortlist = process.extract(normalise(identity.name), [e.norm_name for e in candidates],
                                    scorer=fuzz.token_sort_ratio, limit=5)
        best_entity, best = None, 0.0
        for _, _, index in shortlist:
            entity = candidates[index]
            if identity.isrc and entity.isrc and entity.isrc != identity.isrc.upper():
                continue  # two different ISRCs: two recordings, however alike the names
            value = score(identity, entity)
            if value > best:
                best_entity, best = entity, value
        if best_entity is not None and best >= FUZZY_THRESHOLD:
            return Match(live(best_entity.entity_id), "fuzzy", round(best, 3))
        return None

    def _new_entity(self, identity: Identity) -> Entity:
        name = identity.name or identity.entity_id
        return Entity(uuid.uuid4().hex[:16], catalog_kind(identity.entity_kind), name,
                      normalise(identity.name or ""), identity.artist_name or "",
                      (identity.isrc or "").upper(), (identity.upc or "").upper(),
                      identity.duration_ms)

    async def _insert_entity(self, tx: Any, account_id: str, entity: Entity,
                             now: float) -> None:
        await tx.execute(
            "INSERT INTO analytics_entities (account_id, entity_id, kind, name, norm_name, "
            "artist_name, isrc, upc, duration_ms, merged_into, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)", account_id, entity.entity_id,
            entity.kind, entity.name, entity.norm_name, entity.artist_name, entity.isrc,
            entity.upc, entity.duration_ms, now, now)

    async def _fill(self, tx: Any, account_id: str, entity: Entity | None,
                    identity: Identity, now: float) -> None:
        """Fill an entity's missing name, codes and duration from what a source says."""
        if entity is None:
            return
        changes: dict[str, Any] = {}
        if identity.name and not entity.norm_name:
            changes.update(name=identity.name, norm_name=normalise(identity.name))
        if identity.isrc and not entity.isrc:
            changes["isrc"] = identity.isrc.upper()
        if identity.upc and not entity.upc:
            changes["upc"] = identity.upc.upper()
        if identity.duration_ms and not entity.duration_ms:
            changes["duration_ms"] = identity.duration_ms
        if identity.artist_name and not entity.artist_name:
            changes["artist_name"] = identity.artist_name
        if not changes:
            return
        for name, value in changes.items():
            setattr(entity, name, value)
        sets = ", ".join(f"{name} = ?" for name in changes)
        await tx.execute(f"UPDATE analytics_entities SET {sets}, updated_at = ? "
                         "WHERE account_id = ? AND entity_id = ?", *changes.values(), now,
                         account_id, entity.entity_id)

    # -- reading --------------------------------------------------------------------------

    async def entities(self, account_id: str, kind: str | None = None, *,
                       limit: int = 200, offset: int = 0) -> list[Entity]:
        """The account's live entities (not merged away) with their links, by name."""
        where, args = ["account_id = ?", "merged_into = ''"], [account_id]
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        rows = await self.db.fetch(
            f"SELECT * FROM analytics_entities WHERE {' AND '.join(where)} "
            "ORDER BY name, entity_id LIMIT ? OFFSET ?", *args, limit, offset)
        found = [Entity(**{k: r[k] for k in Entity.__dataclass_fields__ if k != "links"})
                 for r in rows]
        if found:
            ids = [e.entity_id for e in found]
            links = await self.db.fetch(
                "SELECT source, platform_kind, platform_id, entity_id, method, confidence, "
                "manual, name, isrc FROM analytics_links WHERE account_id = ? AND entity_id "
                f"IN ({', '.join('?' * len(ids))}) ORDER BY source, platform_id",
                account_id, *ids)
            by_id = {e.entity_id: e for e in found}
            for link in links:
                by_id[link["entity_id"]].links.append(
                    {**link, "manual": bool(link["manual"])})
        return found

    async def get(self, account_id: str, entity_id: str) -> Entity:
        row = await self.db.fetchrow("SELECT * FROM analytics_entities WHERE account_id = ? "
                                     "AND entity_id = ?", account_id, entity_id)
        if row is None:
            raise EntityNotFound(f"the catalogue has no entity {entity_id!r}; list them "
                                 "with GET /api/analytics/catalog")
        entity = Entity(**{k: row[k] for k in Entity.__dataclass_fields__ if k != "links"})
        entity.links = [{**r, "manual": bool(r["manual"])} for r in await self.db.fetch(
            "SELECT source, platform_kind, platform_id, entity_id, method, confidence, manual, "
            "name, isrc FROM analytics_links WHERE account_id = ? AND entity_id = ? "
            "ORDER BY source, platform_id", account_id, entity_id)]
        return entity

    async def audit(self, account_id: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            "SELECT audit_id, action, actor, entity_id, detail, at FROM "
            "analytics_catalog_audit WHERE account_id = ? ORDER BY at DESC, audit_id "
            "LIMIT ?", account_id, limit)
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    # -- a person's decisions -------------------------------------------------------------

    async def merge(self, account_id: str, into: str, others: Sequence[str],
                    actor: str) -> Entity:
        """Fold ``others`` into ``into``: their links move (and turn manual), they point at
        ``into`` from now on; audited."""
        target = await self.get(account_id, into)
        if target.merged_into:
            raise CatalogError(f"entity {into!r} was merged into {target.merged_into!r}; "
                               "merge into that one")
        moved: list[dict[str, Any]] = []
        sources = [await self.get(account_id, other) for other in others if other != into]
        if not sources:
            raise CatalogError("name at least one other entity to merge")
        for other in sources:
            if other.kind != target.kind:
                raise CatalogError(f"cannot merge {other.kind} {other.entity_id!r} into "
                                   f"{target.kind} {into!r}: kinds differ")
        now = self.clock()
        async with self.db.transaction() as tx:
            for other in sources:
                await tx.execute(
                    "UPDATE analytics_links SET entity_id = ?, manual = 1, method = 'manual', "
                    "confidence = 1.0, updated_at = ? WHERE account_id = ? AND entity_id = ?",
                    into, now, account_id, other.entity_id)
                await tx.execute(
                    "UPDATE analytics_entities SET merged_into = ?, updated_at = ? "
                    "WHERE account_id = ? AND (entity_id = ? OR merged_into = ?)",
                    into, now, account_id, other.entity_id, other.entity_id)
                moved.extend({"source": link["source"], "platform_kind": link["platform_kind"],
                              "platform_id": link["platform_id"], "from": other.entity_id}
                             for link in other.links)
            await tx.execute(
                "UPDATE analytics_links SET manual = 1, updated_at = ? WHERE account_id = ? "
                "AND entity_id = ?", now, account_id, into)
            await self._audit(tx, account_id, "merge", actor, into,
                              {"merged": [o.entity_id for o in sources], "links": moved}, now)
        return await self.get(account_id, into)

    async def split(self, account_id: str, entity_id: str,
                    links: Sequence[tuple[str, str, str]], actor: str,
                    name: str | None = None) -> Entity:
        """Move the platform ids ``links`` (source, kind, id) of ``entity_id`` to a new
        entity; both sides' links turn manual, so no re-ingest joins them again; audited."""
        entity = await self.get(account_id, entity_id)
        have = {(link["source"], link["platform_kind"], link["platform_id"]): link
                for link in entity.links}
        wanted = [tuple(link) for link in links]
        missing = [link for link in wanted if link not in have]
        if missing:
            raise EntityNotFound(f"entity {entity_id!r} has no link {list(missing[0])}; "
                                 "name links it has (GET /api/analytics/catalog/{id})")
        if not wanted or len(wanted) == len(have):
            raise CatalogError("a split moves some of an entity's links, not none or all")
        first = have[wanted[0]]
        new = Entity(uuid.uuid4().hex[:16], entity.kind, name or first["name"] or entity.name,
                     normalise(name or first["name"] or entity.name), entity.artist_name,
                     first["isrc"] or "", entity.upc, entity.duration_ms)
        now = self.clock()
        async with self.db.transaction() as tx:
            await self._insert_entity(tx, account_id, new, now)
            for source, kind, platform_id in wanted:
                await tx.execute(
                    "UPDATE analytics_links SET entity_id = ?, manual = 1, method = 'manual', "
                    "confidence = 1.0, updated_at = ? WHERE account_id = ? AND source = ? "
                    "AND platform_kind = ? AND platform_id = ?", new.entity_id, now,
                    account_id, source, kind, platform_id)
            await tx.execute(
                "UPDATE analytics_links SET manual = 1, updated_at = ? WHERE account_id = ? "
                "AND entity_id = ?", now, account_id, entity_id)
            await self._audit(tx, account_id, "split", actor, entity_id,
                              {"new_entity": new.entity_id,
                               "links": [list(link) for link in wanted]}, now)
        return await self.get(account_id, new.entity_id)

    async def _audit(self, tx: Any, account_id: str, action: str, actor: str, entity_id: str,
                     detail: dict[str, Any], now: float) -> None:
        await tx.execute(
            "INSERT INTO analytics_catalog_audit (account_id, audit_id, action, actor, "
            "entity_id, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)", account_id,
            uuid.uuid4().hex, action, actor, entity_id, json.dumps(detail), now)
