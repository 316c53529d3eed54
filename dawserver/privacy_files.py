"""A person's own projects and sample library in their export, with the files themselves.

For each project the person owns through their own account (``owned`` in
``core/projects.json``; not their organisations'), :func:`project_content` gives

- ``projects/<id>/project.json``: the project in the project file format
  (docs/project-format.md, :func:`dsp_core.project.session_to_dict`), whose clip
  sources name the audio files beside it (``audio/<asset id>.<ext>``), so
  ``dawserver import`` reads the folder back as a project;
- ``projects/<id>/document.json``: the document's maps as ``GET /projects/{id}``
  shows them, without the comments (the person's own are in ``core/documents.json``;
  the others' are not theirs) and the server's job states;
- ``projects/<id>/assets.json``: every audio file uploaded to or recorded in it (name,
  format, rate, channels, frames, bytes, SHA-256, and its file in the archive);
- ``projects/<id>/audio/<asset id>.<ext>``: the audio, as stored.

:func:`sample_part` lists the person's sample library (``samples.json``: what was
measured, size and SHA-256) with their uploads' files (``samples/<id>-<name>``); a
sample indexed from a folder of the server is listed without its file (not theirs).

Files are taken until :data:`FILES_LIMIT` bytes in all (project audio first, then
samples); what does not fit is listed in ``manifest.json`` (``files.left_out``) with its
size and SHA-256 and stays downloadable from the project or library.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from collab.errors import CollabError
from collab.schema import ProjectDocument
from collab.scrub import stored_doc
from dsp_core.errors import DspError
from dsp_core.project import session_to_dict
from dsp_core.sources import asset_id_of, resolve_session
from samples.records import COLUMNS, Sample

from . import asset_objects
from .asset_store import Asset, AssetNotFound, AssetStore
from .assets import assets_of
from .keys import ROOMS, STORE
from .sample_routes import MAX_UPLOAD_BYTES
from .sample_service import SAMPLES
from .storage import ObjectNotFound

log = logging.getLogger(__name__)

#: The most bytes of files (project audio, sample uploads) one export holds.
FILES_LIMIT = 2 << 30
#: A sample upload larger than this is listed, not included (the upload limit).
SAMPLE_FILE_LIMIT = MAX_UPLOAD_BYTES
#: Document maps left out of ``document.json``: others' comments, the server's job states.
NOT_EXPORTED = ("comments", "jobs")
OVER_LIMIT = ("over the export's limit of {limit} bytes of files; download it from the "
              "project or the sample library, or export again after removing files")
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._#()+-]+")


@dataclass
class ExportFiles:
    """The files one export holds (name in ``component`` → file on disk), within
    ``limit`` bytes; what did not fit is listed. Files only in object storage are
    downloaded into ``scratch`` (the job deletes it)."""

    limit: int
    scratch: Path
    component: str = "core"
    chosen: dict[str, Path] = field(default_factory=dict)
    used: int = 0
    left_out: list[dict[str, Any]] = field(default_factory=list)

    def fits(self, size: int) -> bool:
        """Whether ``size`` more bytes stay within the limit."""
        return self.used + size <= self.limit

    def add(self, name: str, path: Path, size: int) -> str:
        """Hold ``path`` as ``name``; its path in the archive."""
        self.chosen[name], self.used = path, self.used + size
        return f"{self.component}/{name}"

    def leave_out(self, name: str, size: int, sha256: str, why: str) -> None:
        """List a file of the person's that the archive does not hold."""
        self.left_out.append({"file": f"{self.component}/{name}", "bytes": size,
                              "sha256": sha256, "why": why})

    def manifest(self) -> dict[str, Any]:
        """The manifest's ``files`` entry: the limit, what is held and what is not."""
        return {"limit_bytes": self.limit, "included_bytes": self.used,
                "included": len(self.chosen), "left_out": self.left_out}


async def _document(app: web.Application, project_id: str) -> ProjectDocument | None:
    """The project's document: the live room's, else as the store holds it."""
    room = app[ROOMS].loaded(project_id)
    if room is not None and isinstance(room.document, ProjectDocument):
        return room.document
    try:
        return ProjectDocument(room.doc if room is not None
                               else await stored_doc(app[STORE], project_id))
    except CollabError as exc:
        log.warning("export: cannot read project %s: %s", project_id, exc)
        return None


async def _audio(store: AssetStore, asset: Asset, files: ExportFiles, name: str) -> str | None:
    """Hold the asset's audio as ``name``; its archive path (None: gone, not held)."""
    if store.objects is None:
        path = Path(asset.path)
        return files.add(name, path, asset.bytes) if path.is_file() else None
    path = files.scratch / f"{asset.id}.{asset.format}"
    try:
        await store.objects.download(asset_objects.object_key(asset.id, asset.format), path)
    except ObjectNotFound:
        return None
    return files.add(name, path, asset.bytes)


async def _assets(app: web.Application, project_id: str, files: ExportFiles
                  ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The project's assets as listed in ``assets.json``, and the archive path (relative
    to the project's folder) of each asset held."""
    store = await assets_of(app, project_id)
    listed: list[dict[str, Any]] = []
    held: dict[str, str] = {}
    names = await asyncio.to_thread(store.project_names, project_id)
    for asset_id in await asset_objects.project_assets(store, project_id):
        try:
            asset = await asset_objects.pull_for(store, project_id, asset_id, names)
        except AssetNotFound:
            continue
        relative = f"audio/{asset.id}.{asset.format}"
        name = f"projects/{project_id}/{relative}"
        entry = {k: v for k, v in asset.to_json().items() if k != "source"} | {
            "sha256": asset.id, "file": None}
        if files.fits(asset.bytes):
            entry["file"] = await _audio(store, asset, files, name)
            if entry["file"] is not None:
                held[asset.id] = relative
        else:
            files.leave_out(name, asset.bytes, asset.id, OVER_LIMIT.format(limit=files.limit))
        listed.append(entry)
    return listed, held


def _project_file(document: ProjectDocument, held: dict[str, str], project_id: str
                  ) -> dict[str, Any] | None:
    """The project in the project file format, its audio named by its archive path."""
    try:
        session, _ = resolve_session(document.to_session(), lambda source: held.get(
            asset_id_of(source) or source, source))
        return session_to_dict(session)
    except (CollabError, DspError, ValueError, KeyError, TypeError) as exc:
        log.warning("export: project %s has no project file: %s", project_id, exc)
        return None


async def project_content(app: web.Application, projects: list[dict[str, Any]],
                          files: ExportFiles) -> dict[str, Any]:
    """The parts of each project the person owns (see the module docstring); the audio
    files are held in ``files``."""
    parts: dict[str, Any] = {}
    for entry in projects:
        if not entry["owned"]:
            continue
        project_id = entry["id"]
        if await app[STORE].get_project(project_id) is None:
            continue
        document = await _document(app, project_id)
        listed, held = await _assets(app, project_id, files)
        folder = f"projects/{project_id}"
        parts[f"{folder}/assets"] = listed
        if document is None:
            continue
        parts[f"{folder}/document"] = {name: value for name, value in
                                       document.to_json().items() if name not in NOT_EXPORTED}
        project = _project_file(document, held, project_id)
        if project is not None:
            parts[f"{folder}/project"] = project
    return parts


def _sample_entry(sample: Sample) -> dict[str, Any]:
    return {**sample.to_json(), "size": sample.size, "sha256": sample.content_hash,
            "analysis": sample.analysis, "indexed_at": sample.indexed_at}


async def sample_part(app: web.Application, person_id: str, files: ExportFiles
                      ) -> list[dict[str, Any]]:
    """The person's samples by name; their uploads' files are held in ``files``."""
    service = app[SAMPLES]
    rows = await service.library.database.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM samples WHERE account_id = ? "  # noqa: S608
        "ORDER BY name, id", person_id)
    uploads = (service.uploads / person_id).resolve()
    listed: list[dict[str, Any]] = []
    for sample in map(Sample.from_row, rows):
        entry = _sample_entry(sample)
        path = Path(sample.path).resolve()
        entry["uploaded"] = uploads in path.parents
        entry["file"] = None
        if not entry["uploaded"]:
            entry["why_no_file"] = ("indexed from a folder of the server: the file is not "
                                    "the person's upload")
        elif not path.is_file():
            entry["why_no_file"] = "the uploaded file is gone from the server"
        else:
            entry["path"] = path.relative_to(uploads).as_posix()
            size = path.stat().st_size
            name = f"samples/{sample.id}-{_UNSAFE.sub('_', sample.name)}"
            why = (f"larger than {SAMPLE_FILE_LIMIT} bytes" if size > SAMPLE_FILE_LIMIT
                   else None if files.fits(size) else OVER_LIMIT.format(limit=files.limit))
            if why is None:
                entry["file"] = files.add(name, path, size)
            else:
                entry["why_no_file"] = why
                files.leave_out(name, size, sample.content_hash, why)
        listed.append(entry)
    return listed
