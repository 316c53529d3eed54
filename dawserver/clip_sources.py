"""The audio a project may play: clip sources (and convolution ``ir``s) resolved to files.

Clips name audio by asset id (:mod:`dsp_core.sources`).  The server plays only the
project's own assets: an id is looked up in the project's asset membership (its local
index, else the object store's membership keys) and fetched into the local cache; a
document written before ids may still carry an asset-store path, which counts as its id.
Anything else (another project's asset, any other server path) is refused and never
read: a bounce fails naming the clip, the live mix and the render route leave the clip
out and report it.

:func:`migrate_document` rewrites the asset paths of a document written before ids into
ids (a server-made edit), when its room loads.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from collab.room import Room
from dsp_core.session import Session
from dsp_core.sources import (
    Refusal,
    SourceAnswers,
    SourceRefused,
    asset_id_of,
    is_asset_id,
    legacy_asset_id,
)

from . import asset_objects
from .asset_store import AssetNotFound, AssetStore

log = logging.getLogger(__name__)


async def project_asset_id(store: AssetStore, project_id: str, source: str) -> str:
    """The id of the asset ``source`` names when it is one of ``project_id``'s assets,
    checked without fetching its audio.

    Raises :class:`SourceRefused` (saying why and what to do) for anything else;
    :class:`~dawserver.storage.StorageUnavailable` when the object store cannot be reached.
    """
    asset_id = asset_id_of(source)
    if asset_id is None:
        raise SourceRefused(
            f"{_short(source)} is not an asset id; the server plays only the project's own "
            "assets: upload the audio (POST /projects/{id}/assets) and name it by its id")
    if not await asset_objects.is_member(store, project_id, asset_id):
        raise SourceRefused(f"asset {asset_id} is not one of this project's assets; "
                            "upload the audio to this project and use the id it gets")
    return asset_id


async def local_source(store: AssetStore, project_id: str, source: str) -> str:
    """The local file of ``source`` when it names one of ``project_id``'s assets
    (:func:`project_asset_id`), fetched into the cache if absent."""
    asset_id = await project_asset_id(store, project_id, source)
    try:
        return str(await asset_objects.local_file(store, asset_id))
    except AssetNotFound:
        raise SourceRefused(f"asset {asset_id} of this project is gone; upload it again"
                            ) from None


def _short(source: str) -> str:
    return repr(source if len(source) <= 80 else source[:77] + "...")


async def playable_session(store: AssetStore, project_id: str, session: Session
                           ) -> tuple[Session, list[Refusal]]:
    """``session`` with its sources as local files of the project's assets; what was
    refused is left out and listed (:func:`dsp_core.sources.resolve_session`)."""
    answers = SourceAnswers(lambda source: local_source(store, project_id, source))
    await answers.learn(session)
    return answers.playable(session), answers.refused


class Resolver:
    """``await resolver.source(project_id, source)``: the local file of one source of a
    project in ``app`` (its region's asset store), for the engines that follow documents
    (each keeps the answers: :class:`dsp_core.sources.SourceAnswers`)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def source(self, project_id: str, source: str) -> str:
        """The local file of one source of ``project_id`` (:func:`local_source`)."""
        from .assets import assets_of
        return await local_source(await assets_of(self.app, project_id), project_id, source)


def legacy_sources(document: Any) -> dict[str, str]:
    """Clip id -> asset id for the clips of ``document`` still naming an asset path."""
    if all(is_asset_id(source) for source in document.clip_sources()):
        return {}
    return {clip_id: asset_id for clip_id, source in document.clip_source_map().items()
            if not is_asset_id(source) and (asset_id := legacy_asset_id(source))}


async def migrate_document(room: Room, store: AssetStore) -> int:
    """Rewrite the asset paths clips of ``room`` carry into asset ids, for the assets
    that belong to the project (others stay, and are refused when played); how many."""
    found = legacy_sources(room.document)
    owned = {clip_id: asset_id for clip_id, asset_id in found.items()
             if await asset_objects.is_member(store, room.project_id, asset_id)}
    if not owned:
        return 0

    def change(document: Any) -> None:
        for clip_id, asset_id in owned.items():
            if clip_id in legacy_sources(document):
                document.update_clip(clip_id, source=asset_id)

    await room.edit(change)
    log.info("project %s: %d clip sources migrated to asset ids", room.project_id, len(owned))
    return len(owned)


class DocumentMigrations:
    """A room-loaded hook that migrates each loaded document's asset paths (in a task)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self, room: Room) -> None:
        if not legacy_sources(room.document):
            return
        task = asyncio.get_running_loop().create_task(self._run(room),
                                                      name=f"migrate {room.project_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, room: Room) -> None:
        from .assets import assets_of

        try:
            await migrate_document(room, await assets_of(self.app, room.project_id))
        except Exception:  # the clips stay playable by their paths meanwhile
            log.exception("project %s: migrating clip sources failed", room.project_id)

    async def wait(self) -> None:
        """Wait for the migrations under way (tests, shutdown)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


#: The app's document migrations (tests wait on them with ``await app[MIGRATIONS].wait()``).
MIGRATIONS = web.AppKey("document_migrations", DocumentMigrations)
