"""Per-request DataLoaders: every project, asset list, track list, transcript set and
job list is read in batches.

A query over N projects with their assets, tracks, transcripts and transcription jobs
costs the same few database queries whatever N is: roles in one pass
(:func:`..services.project_roles`), the projects' rows in one query
(``Store.get_projects``), the asset lists from the asset stores' indexes (files) in one
thread hop, the job lists in one query (``JobQueue.find_many``), and the documents the
tracks and transcripts live in: a document in memory (its room is loaded) is read there,
the rest as the store holds them, all in one read (``Store.load_many``,
:data:`PROJECTS_PER_READ` projects a read), decoded one at a time and dropped once read;
no room is loaded for them. One loader (``documents``) reads each document once per
request however many fields and aliases ask, tracks and transcripts alike: each decoded
document gives both (:class:`DocumentContents`), and only they are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from strawberry.dataloader import DataLoader

from collab.errors import StoreError
from collab.schema import ProjectDocument
from collab.store import StoredDocument
from collab.trial import UnappliableUpdate, load_document
from transcription.jobs import Job
from transcription.transcript import Transcript

from ...declarations import Principal
from ...keys import ROOMS
from .. import services
from ..resources import Asset, Project, Track
from ..transcripts import document_transcripts, projects_jobs
from .limits import MAX_PAGE

T = TypeVar("T")

#: How many projects' stored documents one store read brings (a page of projects); they
#: are decoded one at a time.
PROJECTS_PER_READ = MAX_PAGE


async def _read_documents(app: web.Application, ids: list[str],
                          read: Callable[[ProjectDocument], T]
                          ) -> list[T | StoreError | None]:
    """``read(document)`` of every project; None where the project is gone, the
    :class:`StoreError` where its stored snapshot cannot be applied (that project's
    fields fail, not the others').

    A document in memory is read in its room; the others are read from the store in
    reads of :data:`PROJECTS_PER_READ` projects, each decoded, read and dropped before
    the next (the event loop runs in between). No room is loaded.
    """
    rooms = app[ROOMS]
    found: dict[str, T | StoreError] = {}
    stored: list[str] = []
    for project_id in dict.fromkeys(ids):
        room = rooms.loaded(project_id)
        if room is not None and not room.diverged and isinstance(room.document,
                                                                 ProjectDocument):
            found[project_id] = read(room.document)
        else:
            stored.append(project_id)
    for start in range(0, len(stored), PROJECTS_PER_READ):
        loaded = await rooms.store.load_many(stored[start:start + PROJECTS_PER_READ])
        for project_id, document in loaded.items():
            try:
                found[project_id] = read(_document(project_id, document))
            except StoreError as exc:
                found[project_id] = exc
            await asyncio.sleep(0)  # (one project's decoding at a time on the loop)
    return [found.get(project_id) for project_id in ids]


def _document(project_id: str, stored: StoredDocument) -> ProjectDocument:
    """A read-only document of what the store holds (updates it cannot apply left out,
    as a room leaves them out)."""
    try:
        doc, _left_out = load_document(stored.snapshot, stored.updates,
                                       stored.snapshot_seq + 1)
    except UnappliableUpdate as exc:
        raise StoreError(f"project {project_id}: the stored snapshot cannot be applied "
                         f"({exc})") from None
    return ProjectDocument(doc)


@dataclass(frozen=True)
class DocumentContents:
    """What GraphQL reads of a project's document: its tracks, and its transcripts by clip."""

    tracks: list[Track]
    transcripts: dict[str, Transcript]


def document_contents(document: ProjectDocument) -> DocumentContents:
    """The tracks and transcripts of ``document``."""
    return DocumentContents(services.document_tracks(document),
                            document_transcripts(document))


@dataclass
class Loaders:
    """The loaders of one GraphQL request (a DataLoader caches for its request only)."""

    app: web.Application
    principal: Principal
    projects: DataLoader[str, Project | None] = field(init=False)
    assets: DataLoader[str, list[Asset]] = field(init=False)
    documents: DataLoader[str, DocumentContents | None] = field(init=False)
    transcription_jobs: DataLoader[str, list[Job]] = field(init=False)
    _roles: asyncio.Future[dict[str, str]] | None = None

    def __post_init__(self) -> None:
        self.projects = DataLoader(load_fn=self._load_projects)
        self.assets = DataLoader(load_fn=self._load_assets)
        self.documents = DataLoader(load_fn=self._load_documents)
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

    async def tracks(self, project_id: str) -> list[Track] | None:
        """The project's tracks (None: no such project; StoreError: unreadable)."""
        found = await self.documents.load(project_id)
        return found.tracks if found is not None else None

    async def transcripts(self, project_id: str) -> dict[str, Transcript] | None:
        """The project's transcripts by clip id (None: no such project)."""
        found = await self.documents.load(project_id)
        return found.transcripts if found is not None else None

    async def _load_documents(self, ids: list[str]
                              ) -> list[DocumentContents | StoreError | None]:
        return await _read_documents(self.app, ids, document_contents)

    async def _load_transcription_jobs(self, ids: list[str]) -> list[list[Job]]:
        found = await projects_jobs(self.app, ids)
        return [found[pid] for pid in ids]


def loaders_of(info: Any) -> Loaders:
    """The loaders in a resolver's ``info.context``."""
    return info.context["loaders"]
