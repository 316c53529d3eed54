"""Per-request DataLoaders: every project, asset list, track list, transcript set and
job list is read in batches.

A query over N projects with their assets costs the same few database queries
whatever N is: roles in one pass (:func:`..services.project_roles`), the projects'
rows in one query (``Store.get_projects``), the asset lists from the asset stores'
indexes (files) in one thread hop. Tracks and transcripts live in each project's
document: every document a query needs is opened once per request, however many
fields and aliases ask for it, at most :data:`DOCUMENTS_AT_ONCE` at a time (the room
registry holds a bounded number in memory). Transcription jobs are read once per
project and request, all projects' reads in one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from strawberry.dataloader import DataLoader

from transcription.jobs import Job
from transcription.transcript import Transcript

from ...declarations import Principal
from ...errors import NotFound
from ...transcription_service import TRANSCRIPTION
from .. import services
from ..resources import Asset, Project, Track
from ..transcripts import project_transcripts

T = TypeVar("T")

#: How many project documents one request opens at once.
DOCUMENTS_AT_ONCE = 8


async def _each(ids: list[str], read: Callable[[str], Awaitable[T]]) -> list[T | None]:
    """``read(id)`` of every id, :data:`DOCUMENTS_AT_ONCE` at a time; None where the
    project is gone (:class:`NotFound`)."""
    gate = asyncio.Semaphore(DOCUMENTS_AT_ONCE)

    async def one(project_id: str) -> T | None:
        async with gate:
            try:
                return await read(project_id)
            except NotFound:
                return None

    return list(await asyncio.gather(*(one(pid) for pid in ids)))


@dataclass
class Loaders:
    """The loaders of one GraphQL request (a DataLoader caches for its request only)."""

    app: web.Application
    principal: Principal
    projects: DataLoader[str, Project | None] = field(init=False)
    assets: DataLoader[str, list[Asset]] = field(init=False)
    tracks: DataLoader[str, list[Track] | None] = field(init=False)
    transcripts: DataLoader[str, dict[str, Transcript] | None] = field(init=False)
    transcription_jobs: DataLoader[str, list[Job]] = field(init=False)
    _roles: asyncio.Future[dict[str, str]] | None = None

    def __post_init__(self) -> None:
        self.projects = DataLoader(load_fn=self._load_projects)
        self.assets = DataLoader(load_fn=self._load_assets)
        self.tracks = DataLoader(load_fn=self._load_tracks)
        self.transcripts = DataLoader(load_fn=self._load_transcripts)
        self.transcription_jobs = DataLoader(load_fn=self._load_transcription_jobs)

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
        return await _each(ids, lambda pid: services.tracks(self.app, pid))

    async def _load_transcripts(self, ids: list[str]) -> list[dict[str, Transcript] | None]:
        return await _each(ids, lambda pid: project_transcripts(self.app, pid))

    async def _load_transcription_jobs(self, ids: list[str]) -> list[list[Job]]:
        service = self.app[TRANSCRIPTION]
        return list(await asyncio.gather(*(service.for_project(pid) for pid in ids)))


def loaders_of(info: Any) -> Loaders:
    """The loaders in a resolver's ``info.context``."""
    return info.context["loaders"]
