"""Creating projects in the collaboration store from sessions and project files."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from collab.regional_store import RegionalCollabStore
from collab.schema import ProjectDocument
from collab.store import ProjectInfo, Store
from dsp_core.project import load_project
from dsp_core.session import Session
from dsp_core.sources import is_asset_id, session_refs

if TYPE_CHECKING:
    from .asset_store import AssetStore

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
                         project_id: str | None = None, region: str | None = None,
                         assets: AssetStore | None = None) -> ProjectInfo:
    """Store ``session`` as a new project (its document becomes the first snapshot).

    ``region``: the data region whose database keeps the project (its owner's); None,
    or a store without regions: the main database.  ``assets``: the operator's import
    of local files (``dawserver import``, tests): every clip source and ``ir`` that is a
    file path is stored as an asset of the new project and named by its id; without it
    paths stay as they are, and the server never plays them.
    """
    session.validate()
    title = name or session.name
    project_id = project_id or new_project_id(title)
    if assets is not None:
        session = await ingest_sources(assets, session, project_id)
    update = document_update(session, title)
    if region is not None and isinstance(store, RegionalCollabStore):
        return await store.create_project_in(region, project_id, title, update)
    return await store.create_project(project_id, title, update)


async def import_project_file(store: Store, path: Path, *, name: str | None = None,
                              project_id: str | None = None,
                              assets: AssetStore | None = None) -> ProjectInfo:
    """Load a project JSON file (``dsp_core.project`` format) and store it as a new project
    (its audio files as the project's assets when ``assets`` is given)."""
    return await import_session(store, load_project(path), name=name, project_id=project_id,
                                assets=assets)


async def ingest_sources(assets: AssetStore, session: Session, project_id: str) -> Session:
    """``session`` with every local file it plays stored as an asset of ``project_id``
    (and published to the object store, if any) and named by its id."""
    from dsp_core.sources import resolve_session

    from . import asset_objects

    ids: dict[str, str] = {}
    for ref in session_refs(session):
        if ref.source in ids or is_asset_id(ref.source):
            continue
        asset = await asyncio.to_thread(assets.ingest_file, Path(ref.source),
                                        project_id=project_id, name=Path(ref.source).name)
        if assets.objects is not None:
            await asset_objects.publish(assets, asset, project_id)
        ids[ref.source] = asset.id
    resolved, _ = resolve_session(session, lambda source: ids.get(source, source))
    return resolved
