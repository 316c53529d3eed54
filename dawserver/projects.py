"""Creating projects in the collaboration store from sessions and project files."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from collab.regional_store import RegionalCollabStore
from collab.schema import ProjectDocument
from collab.store import ProjectInfo, Store
from dsp_core.project import load_project
from dsp_core.session import Session

_SLUG = re.compile(r"[^a-z0-9]+")


def new_project_id(name: str = "") -> str:
    """A readable, unique project id: ``slug-of-name-1a2b3c4d``."""
    slug = _SLUG.sub("-", name.lower()).strip("-")[:32]
    suffix = uuid.uuid4().hex[:8]
    return f"{slug}-{suffix}" if slug else suffix


def document_update(session: Session, name: str | None = None) -> bytes:
    """The whole Yjs document of ``session`` as one update."""
    return ProjectDocument.from_session(session, name=name).doc.get_update()


async def import_session(store: Store, session: Session, *, name: str | None = None,
                         project_id: str | None = None, region: str | None = None
                         ) -> ProjectInfo:
    """Store ``session`` as a new project (its document becomes the first snapshot).

    ``region``: the data region whose database keeps the project (its owner's); None,
    or a store without regions: the main database.
    """
    session.validate()
    title = name or session.name
    project_id = project_id or new_project_id(title)
    update = document_update(session, title)
    if region is not None and isinstance(store, RegionalCollabStore):
        return await store.create_project_in(region, project_id, title, update)
    return await store.create_project(project_id, title, update)


async def import_project_file(store: Store, path: Path, *, name: str | None = None,
                              project_id: str | None = None) -> ProjectInfo:
    """Load a project JSON file (``dsp_core.project`` format) and store it as a new project."""
    return await import_session(store, load_project(path), name=name, project_id=project_id)
