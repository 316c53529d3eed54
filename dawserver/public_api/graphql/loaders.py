"""Per-request DataLoaders: every project, asset list and track list is read in batches.

A query over N projects with their assets costs the same few database queries
whatever N is: roles in one pass (:func:`..services.project_roles`), the projects'
rows in one query (``Store.get_projects``), the asset lists from the asset stores'
indexes (files) in one thread hop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from strawberry.dataloader import DataLoader

from ...declarations import Principal
from ...errors import NotFound
from .. import services
from ..resources import Asset, Project, Track


@dataclass
class Loaders:
    """The loaders of one GraphQL request (a DataLoader caches for its request only)."""

    app: web.Application
    principal: Principal
    projects: DataLoader[str, Project | None] = field(init=False)
    assets: DataLoader[str, list[Asset]] = field(init=False)
    tracks: DataLoader[str, list[Track] | None] = field(init=False)
    _roles: asyncio.Future[dict[str, str]] | None = None

    def __post_init__(self) -> None:
        self.projects = DataLoader(load_fn=self._load_projects)
        self.assets = DataLoader(load_fn=self._load_assets)
        self.tracks = DataLoader(load_fn=self._load_tracks)

    async def roles(self) -> dict[str, str]:
        """``{project_id: role}`` of every project the caller may open (read once)."""
        if self._roles is None:  # (resolvers running at once share the one read)
            self._roles = asyncio.ensure_future(services.project_roles(self.app,
                                                                       self.principal))
        return await self._roles

    async def _load_projects(self, ids: list[str]) -> list[Project | None]:
        roles = await self.roles()
        allowed = [pid for pid in ids if pid in roles]
        infos = await services.project_infos(self.app, allowed)
        return [services.project_view(infos[pid], roles[pid]) if pid in infos else None
                for pid in ids]

    async def _load_assets(self, ids: list[str]) -> list[list[Asset]]:
        found = await services.assets(self.app, list(ids))
        return [found[pid] for pid in ids]

    async def _load_tracks(self, ids: list[str]) -> list[list[Track] | None]:
        async def one(project_id: str) -> list[Track] | None:
            try:
                return await services.tracks(self.app, project_id)
            except NotFound:
                return None

        return list(await asyncio.gather(*(one(pid) for pid in ids)))


def loaders_of(info: Any) -> Loaders:
    """The loaders in a resolver's ``info.context``."""
    return info.context["loaders"]
