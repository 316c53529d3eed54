"""Data regions for documents: one collaboration store per region, one interface.

:class:`RegionalCollabStore` is a :class:`~collab.store.Store` that holds a store per
data region (each on its region's database, each with the collaboration tables) and
sends every call keyed by a project to the store of that project's region:

- a project's region is given when it is made (:meth:`RegionalCollabStore.
  create_project_in`); :meth:`~RegionalCollabStore.create_project` makes it in the
  main region, where every project made before regions (or by an admin token) is;
- any other process (or this one after a restart) finds a project's region by asking
  every region at once (:func:`asyncio.gather`) for it and remembers the answer, since
  a project moves only with its account (:meth:`RegionalCollabStore.relocate`, called
  by :mod:`dawserver.document_moves`); a project no region knows is routed to the main
  region, and one its remembered region no longer holds is looked for again;
- appends go to the region's store, so group commit (SQLite's one hop to the writer
  thread, PostgreSQL's ``COPY``) works per region's database;
- :meth:`~RegionalCollabStore.list_projects` merges every region's answer;
- :meth:`~RegionalCollabStore.load_many` calls each region store's ``load_many`` once
  (all regions at once) with the ids routed there and merges the documents;
- :meth:`~RegionalCollabStore.delete_project` deletes in the project's region and
  forgets the region it remembered.

The region names are the server's (``default`` and the configured ones); this module
knows nothing of accounts. docs/accounts.md ("Data regions") says what is routed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from .errors import StoreError
from .store import PendingAppend, ProjectInfo, QuarantinedUpdate, Store, StoredDocument

log = logging.getLogger(__name__)

T = TypeVar("T")


class UnknownStoreRegion(StoreError):
    """A project was to be made in a region that has no store."""


class RegionalCollabStore(Store):
    """:class:`Store`'s interface over one store per data region (see the module).

    Parameters
    ----------
    stores:
        ``{region: store}``, not started; started and stopped with this store.
    main:
        The region of projects whose region is not given (it must be in ``stores``).
    """

    def __init__(self, stores: Mapping[str, Store], *, main: str = "default") -> None:
        if main not in stores:
            raise ValueError(f"the stores must include the main region {main!r}")
        self.stores = {main: stores[main], **{n: s for n, s in stores.items() if n != main}}
        self.main = main
        # the base class's state (not its __init__: ``commits`` is computed here); the
        # main region's database, and an append queue no append goes through
        self.database = self.stores[main].database
        self._owns_database = False
        self._appends: list[PendingAppend] = []
        self._committer: asyncio.Task[None] | None = None
        self._regions: dict[str, str] = {}

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions, the main one first."""
        return tuple(self.stores)

    @property
    def commits(self) -> int:  # type: ignore[override]
        """Append transactions committed, over every region's store."""
        return sum(store.commits for store in self.stores.values())

    @property
    def group_commit(self) -> bool:  # type: ignore[override]
        """Whether the regions' stores group-commit appends (set on all of them)."""
        return self.stores[self.main].group_commit

    @group_commit.setter
    def group_commit(self, value: bool) -> None:
        for store in self.stores.values():
            store.group_commit = value

    async def start(self) -> None:
        """Start every region's store (migrating its database); starting twice is an error."""
        if self._started:
            raise StoreError(f"{type(self).__name__} is already started")
        started: list[Store] = []
        try:
            for store in self.stores.values():
                await store.start()
                started.append(store)
        except BaseException:
            for store in reversed(started):
                await store.stop()
            raise
        self._started = True

    async def stop(self) -> None:
        """Stop every region's store (idempotent), once their appends are committed."""
        if self._started:
            self._started = False
            for store in reversed(self.stores.values()):
                await store.stop()

    # -- routing -------------------------------------------------------------------------

    def in_region(self, region: str) -> Store:
        """The store of ``region``; :class:`UnknownStoreRegion` if there is none."""
        try:
            return self.stores[region]
        except KeyError:
            raise UnknownStoreRegion(f"no collaboration store for data region {region!r}; "
                                     f"use one of {list(self.stores)}") from None

    async def _each(self, call: Callable[[Store], Awaitable[T]]) -> dict[str, T]:
        """``call`` on every region's store at once; ``{region: answer}``."""
        answers = await asyncio.gather(*(call(store) for store in self.stores.values()))
        return dict(zip(self.stores, answers, strict=True))

    async def _find(self, project_id: str) -> tuple[str, ProjectInfo] | None:
        """The region holding ``project_id`` and its row, asking every region."""
        hits = [(region, info) for region, info in
                (await self._each(lambda store: store.get_project(project_id))).items()
                if info is not None]
        if len(hits) > 1:
            log.warning("project %r is in %d regions (%s); using %r", project_id, len(hits),
                        ", ".join(r for r, _ in hits), hits[0][0])
        if not hits:
            return None
        self._regions[project_id] = hits[0][0]
        return hits[0]

    async def region_of(self, project_id: str) -> str:
        """The region ``project_id`` lives in (the main region if no region knows it)."""
        if project_id in self._regions:
            return self._regions[project_id]
        found = await self._find(project_id)
        return found[0] if found else self.main

    def relocate(self, project_id: str, region: str) -> None:
        """Route ``project_id`` to ``region`` from now on (its document was copied there,
        moving with its account); :class:`UnknownStoreRegion` if it has no store."""
        self.in_region(region)
        self._regions[project_id] = region

    async def _store_of(self, project_id: str) -> Store:
        return self.stores[await self.region_of(project_id)]

    # -- projects --------------------------------------------------------------------------

    async def create_project(self, project_id: str, name: str, initial_update: bytes | None
                             ) -> ProjectInfo:
        """Register a project in the main region (one whose owner is not known)."""
        return await self.create_project_in(self.main, project_id, name, initial_update)

    async def create_project_in(self, region: str, project_id: str, name: str,
                                initial_update: bytes | None) -> ProjectInfo:
        """Register a project in ``region``'s store; :class:`StoreError` if its id is
        taken in any region, :class:`UnknownStoreRegion` if ``region`` has no store."""
        store = self.in_region(region)
        if await self._find(project_id) is not None:
            raise StoreError(f"project {project_id!r} already exists")
        info = await store.create_project(project_id, name, initial_update)
        self._regions[project_id] = region
        return info

    async def get_project(self, project_id: str) -> ProjectInfo | None:
        if project_id in self._regions:
            info = await self.stores[self._regions[project_id]].get_project(project_id)
            if info is not None:
                return info
            self._regions.pop(project_id, None)  # moved away (by another process)
        found = await self._find(project_id)
        return found[1] if found else None

    async def get_projects(self, project_ids: list[str]) -> dict[str, ProjectInfo]:
        ids = list(dict.fromkeys(project_ids))
        if not ids:
            return {}
        every = await self._each(lambda store: store.get_projects(ids))
        found: dict[str, ProjectInfo] = {}
        for region, infos in every.items():
            for project_id, info in infos.items():
                self._regions.setdefault(project_id, region)
                found.setdefault(project_id, info)
        return found

    async def list_projects(self) -> list[ProjectInfo]:
        every = await self._each(lambda store: store.list_projects())
        for region, infos in every.items():
            for info in infos:
                self._regions.setdefault(info.project_id, region)
        return sorted((info for infos in every.values() for info in infos),
                      key=lambda info: info.created_at)

    async def rename_project(self, project_id: str, name: str, *,
                             expected: str | None = None) -> ProjectInfo:
        return await (await self._store_of(project_id)).rename_project(project_id, name,
                                                                       expected=expected)

    async def delete_project(self, project_id: str) -> bool:
        """Delete the project in its region's store (one transaction there); the region
        is forgotten after, so the id may be made again in any region."""
        deleted = await (await self._store_of(project_id)).delete_project(project_id)
        self._regions.pop(project_id, None)
        return deleted

    # -- documents -------------------------------------------------------------------------

    async def load(self, project_id: str) -> StoredDocument:
        return await (await self._store_of(project_id)).load(project_id)

    async def load_many(self, project_ids: list[str]) -> dict[str, StoredDocument]:
        """:meth:`load` of many projects: one ``load_many`` per region store, at once.

        A project whose region is remembered is read in that region only; one whose
        region is not known yet is asked of every region in the same call (a region's
        ``load_many`` leaves out what it does not hold), so no lookup comes first, and
        the region that answers is remembered (the main region first, as :meth:`_find`
        prefers).  Projects no region holds are left out.
        """
        ids = list(dict.fromkeys(project_ids))
        if not ids:
            return {}
        unknown = [project_id for project_id in ids if project_id not in self._regions]
        asked: dict[str, list[str]] = {region: list(unknown) for region in self.stores
                                       if unknown}
        for project_id in ids:
            if project_id in self._regions:
                asked.setdefault(self._regions[project_id], []).append(project_id)
        regions = list(asked)
        answers = await asyncio.gather(*(self.stores[region].load_many(asked[region])
                                         for region in regions))
        by_region = dict(zip(regions, answers, strict=True))
        found: dict[str, StoredDocument] = {}
        for region in self.stores:  # the main region first
            for project_id, document in by_region.get(region, {}).items():
                if project_id in found:
                    log.warning("project %r is in more than one region; using %r",
                                project_id, self._regions[project_id])
                    continue
                found[project_id] = document
                self._regions.setdefault(project_id, region)
        return {project_id: found[project_id] for project_id in ids if project_id in found}

    async def load_since(self, project_id: str, after_seq: int) -> StoredDocument:
        return await (await self._store_of(project_id)).load_since(project_id, after_seq)

    async def append(self, project_id: str, first_seq: int, updates: list[bytes]) -> None:
        """Append through the region's store, which group-commits on its own database."""
        await (await self._store_of(project_id)).append(project_id, first_seq, updates)

    async def _append_group(self, group: list[PendingAppend]) -> list[StoreError | None]:
        """Write ``group`` as one group per region (:meth:`append` never queues here)."""
        by_region: dict[str, list[int]] = {}
        for index, entry in enumerate(group):
            by_region.setdefault(await self.region_of(entry.project_id), []).append(index)
        failures: list[StoreError | None] = [None] * len(group)
        for region, indexes in by_region.items():
            answers = await self.stores[region]._append_group([group[i] for i in indexes])
            for index, failure in zip(indexes, answers, strict=True):
                failures[index] = failure
        return failures

    async def compact(self, project_id: str, snapshot: bytes, upto_seq: int) -> bool:
        return await (await self._store_of(project_id)).compact(project_id, snapshot, upto_seq)

    async def quarantine(self, project_id: str, entries: list[QuarantinedUpdate]) -> None:
        await (await self._store_of(project_id)).quarantine(project_id, entries)

    async def quarantined(self, project_id: str) -> list[QuarantinedUpdate]:
        return await (await self._store_of(project_id)).quarantined(project_id)

    # -- revocations -----------------------------------------------------------------------

    async def revoke(self, project_id: str, user: str, at: float) -> None:
        await (await self._store_of(project_id)).revoke(project_id, user, at)

    async def revoked_at(self, project_id: str, user: str) -> float | None:
        return await (await self._store_of(project_id)).revoked_at(project_id, user)

    async def revocations(self, project_id: str) -> dict[str, float]:
        return await (await self._store_of(project_id)).revocations(project_id)
