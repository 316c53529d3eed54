"""HTTP routes for project audio: upload, download and waveform peaks.

See ``docs/http-api-assets.md`` for the exact requests and answers.  Every
route takes the project token (``Authorization: Bearer`` or ``?token=``);
uploading needs the editor role, reading any role.  A project's audio lives in
its data region's storage (``STORAGE/assets``; ``DATA/assets`` for the default region,
:mod:`dawserver.regions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import Field

from accounts.models import DEFAULT_REGION
from collab.errors import StoreError
from collab.regional_store import RegionalCollabStore
from database import DatabaseError
from dsp_core.errors import AudioFileError, DspError
from dsp_core.peaks import Peaks as StoredPeaks
from dsp_core.sources import asset_id_of

from . import asset_objects, object_moves
from .access import require_project
from .asset_store import (
    Asset,
    AssetNotFound,
    AssetStore,
    AssetTooLarge,
    InvalidAudio,
)
from .errors import storage_failed
from .file_answer import FileAnswer
from .keys import ACCOUNTS, CONFIG, STORE
from .lv2_confine import confine_states
from .permissions import PROJECT_EDIT, PROJECT_READ
from .plugin_api import (
    BadRequest,
    Media,
    Model,
    NotFound,
    PayloadTooLarge,
    Query,
    Request,
    Route,
    Unavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from .regions import project_region
from .storage import ObjectNotFound, StorageError, StorageUnavailable
from .storage.base import content_disposition
from .storage.service import OBJECT_STORES, STORAGE_SETTINGS, object_response

log = logging.getLogger(__name__)

#: The default region's asset store (``DATA/assets``): the only one without regions.
ASSETS = web.AppKey("assets", AssetStore)
#: Every data region's asset store, by region name.
REGION_ASSETS = web.AppKey("region_assets", dict[str, AssetStore])
CHUNK = 1 << 16
DEFAULT_FRAMES_PER_PEAK = 1024
MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "aiff": "audio/aiff"}
AUDIO = Media(*MEDIA_TYPES.values(), "application/octet-stream")


def setup_assets(app: web.Application, max_bytes: int | None = None) -> None:
    """Add the asset stores (``DATA_DIR/assets``, and ``STORAGE/assets`` of each data
    region) to ``app`` (their routes: :data:`ROUTES`); where a region's storage is an
    object store (S3) that directory is its bounded local cache (:mod:`.asset_objects`)."""
    config = app[CONFIG]
    cache = app[STORAGE_SETTINGS].cache_mb << 20
    stores = {}
    for region in (DEFAULT_REGION, *config.regions):
        objects = app[OBJECT_STORES][region]
        stores[region] = AssetStore(config.storage_of(region) / "assets", cache_bytes=cache,
                                    objects=objects if objects.redirects else None)
    if max_bytes is not None:
        for store in stores.values():
            store.max_bytes = max_bytes
    app[ASSETS], app[REGION_ASSETS] = stores[DEFAULT_REGION], stores
    follow_projects(app)
    # a plug-in state an editor writes may name only files of these stores
    confine_states(app, (store.root for store in stores.values()))
    from .recording import kept_takes  # imported here: recording imports the live mix

    app.cleanup_ctx.append(kept_takes(stores.values()))


def recover_cut_short_takes(app: web.Application) -> None:
    """Place the takes a crash cut short once the server (its event bus too) started:
    called after the plug-ins are installed, so they are announced."""
    from .take_recovery import recovered_takes  # imported here: it imports the live mix

    app.cleanup_ctx.append(recovered_takes(list(app[REGION_ASSETS].values())))


async def assets_of(app: web.Application, project_id: str) -> AssetStore:
    """The asset store of ``project_id``'s data region."""
    stores = app[REGION_ASSETS]
    if len(stores) == 1:
        return app[ASSETS]
    return stores[await project_region(app, project_id)]


def follow_projects(app: web.Application) -> None:
    """With data regions, have every region's asset store publish its recorded takes
    into the region their project lives in then (:func:`take_region`), which another
    node may have moved it to meanwhile (:func:`asset_objects.follow_moves`)."""
    stores = app[REGION_ASSETS]
    if len(stores) > 1:
        for store in stores.values():
            asset_objects.follow_moves(store, functools.partial(take_region, app))


async def take_region(app: web.Application, project_id: str) -> AssetStore | None:
    """The asset store a take recorded for ``project_id`` is published into: that of the
    one data region whose database holds the project's document, asked of every region
    (never a remembered answer); None for a project no region holds.

    :class:`StorageUnavailable` when that cannot be told now: the databases fail, or
    the document is in two regions, as from a move's copy of it (``DocumentMoveHook``)
    until the old copy is dropped after the switch. Which one the project lives in then
    changes at the switch, so the take waits for the move to end (publishing into the
    new region before the switch would leave the project, still served from the old
    one, without it)."""
    collab = app[STORE]
    try:
        if not isinstance(collab, RegionalCollabStore):
            if await collab.get_project(project_id) is None:
                return None
            return await assets_of(app, project_id)
        infos = await asyncio.gather(*(store.get_project(project_id)
                                       for store in collab.stores.values()))
    except (DatabaseError, StoreError, OSError) as exc:
        raise StorageUnavailable(f"cannot tell which data region project {project_id!r} "
                                 f"lives in now ({exc}); its takes wait") from exc
    regions = [region for region, info in zip(collab.stores, infos, strict=True)
               if info is not None]
    if len(regions) > 1:
        raise StorageUnavailable(f"project {project_id!r} is in the data regions "
                                 f"{', '.join(regions)} (its account is moving); its takes "
                                 f"wait until the move has ended")
    return app[REGION_ASSETS][regions[0]] if regions else None


async def account_asset_file(app: web.Application, account_id: str, asset_id: str
                             ) -> str | None:
    """The stored file of ``asset_id`` when it was uploaded to (or recorded in) a project
    that ``account_id`` owns (on a server without accounts, the project whose business
    account it is); None otherwise: an unknown id and another account's asset look the
    same."""
    projects = [account_id]  # plug-ins keep a project's data under its own id
    service = app.get(ACCOUNTS)
    if service is not None:
        projects += list(await service.store.projects_of([account_id]))
    found = await asyncio.to_thread(_owned_file, app[REGION_ASSETS].values(), asset_id,
                                    projects)  # reads index files: off the event loop
    for store in app[REGION_ASSETS].values():
        if store.objects is None:
            continue
        for project_id in projects if found is None else ():
            if await asset_objects.is_member(store, project_id, asset_id):
                found = "remote"
                break
        if found is not None:
            try:  # the engine and plug-ins read local files: fetch it into the cache
                return str(await asset_objects.local_file(store, asset_id))
            except AssetNotFound:
                continue
    return found


async def account_asset_link(app: web.Application, account_id: str, asset_id: str,
                             filename: str = "") -> str | None:
    """A presigned URL of ``account_id``'s asset when object storage holds the assets
    (None on local disk, and for another account's or an unknown asset)."""
    projects = [account_id]
    service = app.get(ACCOUNTS)
    if service is not None:
        projects += list(await service.store.projects_of([account_id]))
    for store in app[REGION_ASSETS].values():
        if store.objects is None:
            continue
        for project_id in projects:
            if await asset_objects.is_member(store, project_id, asset_id):
                asset = await asset_objects.pull_for(store, project_id, asset_id)
                return await store.objects.presigned_url(
                    asset_objects.object_key(asset_id, asset.format),
                    app[STORAGE_SETTINGS].presign_seconds,
                    filename=filename or asset.name, content_type=MEDIA_TYPES.get(
                        asset.format, "application/octet-stream"))
    return None


def _owned_file(stores: Any, asset_id: str, projects: list[str]) -> str | None:
    for store in stores:
        try:
            asset = store.asset(asset_id)
        except AssetNotFound:
            continue
        if any(store.belongs(project_id, asset_id) for project_id in projects):
            return asset.path
    return None


class AssetInfo(Model):
    """A stored audio file: its format and figures, and where to fetch it."""

    id: str
    source: str
    format: str
    sample_rate: int
    channels: int
    frames: int
    name: str
    bytes: int
    duration: float
    download: str
    peaks: str


class UploadQuery(Query):
    """The upload's file name (else the multipart file name)."""

    name: str = ""


class PeaksQuery(Query):
    """Which zoom level and which peaks of it, as JSON or binary float pairs."""

    frames_per_peak: int = DEFAULT_FRAMES_PER_PEAK
    start: int = Field(0, ge=0)
    count: int | None = Field(None, ge=0)
    format: str = Field("json", description="``binary``: little-endian float32 (min, max) "
                                            "pairs per channel; anything else: JSON")


class SourceQuery(Query):
    """A clip source of the project."""

    source: str = ""


class SourcePeaksQuery(PeaksQuery):
    """A clip source of the project and the zoom level of its peaks."""

    source: str = ""


class Peaks(Model):
    """Waveform peaks: per channel, the minimum and maximum of each ``frames_per_peak``."""

    sample_rate: int
    frames: int
    channels: int
    levels: list[int]
    frames_per_peak: int
    start: int
    count: int
    min: list[list[float]]
    max: list[list[float]]


def _asset_json(project_id: str, asset: Asset) -> AssetInfo:
    base = f"/projects/{project_id}/assets/{asset.id}"
    return AssetInfo(**asset.to_json(), download=base, peaks=f"{base}/peaks")


async def _body_chunks(request: web.Request, name: str) -> tuple[AsyncIterator[bytes], str]:
    """The upload's bytes (raw body or the first file of a multipart form) and its name."""
    if request.content_type.startswith("multipart/"):
        try:
            reader = await request.multipart()
        except ValueError as exc:  # no boundary in the Content-Type
            raise BadRequest(f"cannot read the multipart form: {exc}") from None
        while True:
            part = await _next_part(reader)
            if part is None:
                raise BadRequest("the multipart form has no file part; "
                                 "send the audio as a 'file' field")
            if part.filename or part.name == "file":
                break

        async def multipart_chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await part.read_chunk(CHUNK):
                    yield chunk
            except (ValueError, HttpProcessingError) as exc:
                raise BadRequest(f"cannot read the multipart form: {exc}") from None

        return multipart_chunks(), name or part.filename or ""
    return request.content.iter_chunked(CHUNK), name


async def _next_part(reader: Any) -> Any:
    try:
        return await reader.next()
    except (ValueError, HttpProcessingError) as exc:  # a malformed form
        raise BadRequest(f"cannot read the multipart form: {exc}") from None


async def upload_asset(request: Request) -> AssetInfo:
    """Store an uploaded WAV/FLAC/AIFF file for the project (editor).

    The body is the file itself, or a multipart form with the file as its first
    file part.
    """
    project_id = request.params["project_id"]
    store = await assets_of(request.app, project_id)
    native = request.native
    if native.content_length is not None and native.content_length > store.max_bytes:
        raise PayloadTooLarge(f"upload of {native.content_length} bytes is over the "
                              f"{store.max_bytes}-byte limit; send a smaller or compressed "
                              "(FLAC) file")
    if await request.app[STORE].get_project(project_id) is None:
        raise NotFound(f"there is no project {project_id!r}")
    chunks, name = await _body_chunks(native, request.query.name)
    try:
        asset = await store.ingest_stream(chunks, project_id=project_id, name=name)
    except AssetTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except InvalidAudio as exc:
        raise UnsupportedMediaType(str(exc)) from None
    except StorageError as exc:  # nothing was recorded: the upload may simply be sent again
        raise storage_failed(exc, "the upload could not be stored") from None
    if await request.app[STORE].get_project(project_id) is None:  # deleted meanwhile
        await asyncio.to_thread(store.forget_project, project_id)
        raise NotFound(f"project {project_id!r} was deleted during the upload")
    moved_to = await assets_of(request.app, project_id)
    if moved_to is not store:  # its account moved to another region during the upload
        asset = await _follow_move(store, moved_to, project_id, asset)
    return _asset_json(project_id, asset)


#: Seconds an upload that could not follow its account's move is told to wait.
MOVED_RETRY_AFTER_S = 30


async def _follow_move(old: AssetStore, new: AssetStore, project_id: str,
                       asset: Asset) -> Asset:
    """Put an upload stored in the region its project's account left into the region it
    lives in now (the move's clean step may be over) and take it out of the old one;
    503 with ``Retry-After`` (nothing kept, in either region) if that fails."""
    joined = False  # whether a membership in the new region would be this upload's
    try:
        joined = not await asset_objects.is_member(new, project_id, asset.id)
        try:
            await object_moves.copy_asset(old, new, project_id, asset.id)
        except AssetNotFound:  # the move's clean step copied it and deleted it here
            if not await asset_objects.is_member(new, project_id, asset.id):
                raise
        moved = await asset_objects.pull_for(new, project_id, asset.id)
    except (AssetNotFound, StorageError, OSError) as exc:  # OSError: a disk target full
        # the copy writes the new region's membership (or index entry) first: take it
        # back unless the project used these bytes there before this upload
        stores = [new, old] if joined else [old]
        for store in stores:
            with contextlib.suppress(StorageError, OSError):
                await object_moves.forget_asset(store, project_id, asset.id)
        raise Unavailable(
            f"the project's account moved to another data region during the upload and "
            f"the audio could not follow it ({exc}); nothing was kept, send it again",
            headers={"Retry-After": str(MOVED_RETRY_AFTER_S)}) from None
    try:
        await object_moves.forget_asset(old, project_id, asset.id)
    except (StorageError, OSError) as exc:  # kept in the new region; the old copy reported
        log.warning("asset %s of project %s stays in %s after its account moved (%s); "
                    "delete it there", asset.id, project_id, old.root, exc)
    return moved


async def list_assets(request: Request) -> list[AssetInfo]:
    """The assets uploaded to (or recorded in) the project (any role)."""
    project_id = request.params["project_id"]
    await require_project(request.app, project_id)
    store = await assets_of(request.app, project_id)
    rows = []
    names = await asyncio.to_thread(store.project_names, project_id)  # once for the list
    async with _storage_errors():
        for asset_id in await asset_objects.project_assets(store, project_id):
            try:
                rows.append(_asset_json(project_id, await asset_objects.pull_for(
                    store, project_id, asset_id, names)))
            except AssetNotFound:
                continue
    return rows


async def project_asset(request: Request) -> Asset:
    """The asset in the request's path, when it belongs to the project (else 404)."""
    project_id, asset_id = request.params["project_id"], request.params["asset_id"]
    store = await assets_of(request.app, project_id)
    async with _storage_errors():
        if not await asset_objects.is_member(store, project_id, asset_id):
            raise NotFound(f"no asset {asset_id} in project {project_id}")
        try:
            return await asset_objects.pull_for(store, project_id, asset_id)
        except AssetNotFound as exc:
            raise NotFound(str(exc)) from None


def _is_local(store: AssetStore, asset_id: str) -> bool:
    try:
        store.asset(asset_id)
    except AssetNotFound:
        return False
    return True


@contextlib.asynccontextmanager
async def _storage_errors() -> AsyncIterator[None]:
    """A missing object as the HTTP API's 404 (the router answers the store's other
    failures: 503, with ``Retry-After`` while it is unreachable)."""
    try:
        yield
    except ObjectNotFound as exc:
        raise NotFound(str(exc)) from None


async def download_asset(request: Request) -> web.StreamResponse:
    """The stored audio file, as uploaded (any role)."""
    asset = await project_asset(request)
    store = await assets_of(request.app, request.params["project_id"])
    if store.objects is not None:  # a presigned URL: the bytes never pass through us
        async with _storage_errors():
            return await object_response(
                request.app, store.objects, asset_objects.object_key(asset.id, asset.format),
                filename=asset.name or f"{asset.id}.{asset.format}",
                content_type=MEDIA_TYPES.get(asset.format, "application/octet-stream"))
    return _file_response(asset.path, asset.format, asset.name)


async def asset_info(request: Request) -> AssetInfo:
    """The asset's format, rate, channels, frames and links (any role)."""
    asset = await project_asset(request)
    return _asset_json(request.params["project_id"], asset)


async def asset_peaks(request: Request) -> Any:
    """Waveform peaks of an asset at one zoom level (any role)."""
    asset = await project_asset(request)
    store = await assets_of(request.app, request.params["project_id"])
    return _peaks_response(request.query, await _stored_peaks(store, asset))


async def download_source(request: Request) -> web.StreamResponse:
    """The audio of a clip source of the project: ``?source=<asset id>`` (any role)."""
    store, asset = await _referenced_asset(request)
    if store.objects is not None:
        async with _storage_errors():
            return await object_response(
                request.app, store.objects, asset_objects.object_key(asset.id, asset.format),
                filename=asset.name or f"{asset.id}.{asset.format}",
                content_type=MEDIA_TYPES.get(asset.format, "application/octet-stream"))
    return _file_response(asset.path, asset.format, asset.name or f"{asset.id}.{asset.format}")


async def source_peaks(request: Request) -> Any:
    """Waveform peaks of a clip source: ``?source=<asset id>`` (any role)."""
    store, asset = await _referenced_asset(request, named=False)
    try:
        peaks = await _stored_peaks(store, asset)
    except (AudioFileError, OSError) as exc:
        raise Unprocessable(f"cannot read the peaks of asset {asset.id}: {exc}") from None
    return _peaks_response(request.query, peaks)


# -- helpers -------------------------------------------------------------------------------


async def _in_executor(fn, *args):  # noqa: ANN001, ANN202 - any blocking function
    return await asyncio.to_thread(fn, *args)  # in the request's context, as every thread


async def _stored_peaks(store: AssetStore, asset: Asset) -> StoredPeaks:
    """The peaks stored with ``asset``; 404, as for a missing asset, when its description
    or peaks file went since it was looked up (a deletion racing the read)."""
    try:
        return await _in_executor(store.peaks, asset.id)
    except (AssetNotFound, FileNotFoundError):
        raise NotFound(f"no asset {asset.id} (it was deleted)") from None


async def _referenced_asset(request: Request, *, named: bool = True
                            ) -> tuple[AssetStore, Asset]:
    """The asset ``?source=`` names (its id; a document written before ids: its store
    path), when it is one of the project's; 404 for anything else, never a file read.
    ``named``: with the name the project gave it (a download's file name), which peaks
    do not need."""
    project_id, source = request.params["project_id"], request.query.source
    if not source:
        raise BadRequest("give the clip source (an asset id) as ?source=...")
    store = await assets_of(request.app, project_id)
    asset_id = asset_id_of(source)
    async with _storage_errors():
        if asset_id is None or not await asset_objects.is_member(store, project_id, asset_id):
            raise NotFound(f"no asset of project {project_id} is {source!r}; clips name "
                           "audio by the id of one of the project's assets")
        try:
            if not named:
                return store, await asset_objects.pull(store, asset_id)
            return store, await asset_objects.pull_for(store, project_id, asset_id)
        except AssetNotFound as exc:
            raise NotFound(str(exc)) from None


def _file_response(path: str, ext: str, name: str) -> web.StreamResponse:
    if not os.path.isfile(path):
        raise NotFound(f"audio file {path} is missing on the server")
    headers = {"Content-Type": MEDIA_TYPES.get(ext, "application/octet-stream"),
               "Content-Disposition": content_disposition(name or "audio." + ext)}
    return FileAnswer(path, headers=headers)


def _peaks_response(query: PeaksQuery, peaks) -> Any:  # noqa: ANN001 - dsp_core Peaks
    size = query.frames_per_peak
    try:
        level = peaks.level(size)
    except DspError:
        raise BadRequest(f"frames_per_peak must be one of {peaks.frames_per_peak}") from None
    start = query.start
    count = level.count if query.count is None else query.count
    lows, highs = level.min[:, start:start + count], level.max[:, start:start + count]
    header = {"sample_rate": peaks.sample_rate, "frames": peaks.frames,
              "channels": peaks.channels, "levels": peaks.frames_per_peak,
              "frames_per_peak": size, "start": start, "count": int(lows.shape[1])}
    if query.format == "binary":
        pairs = np.stack([lows, highs], axis=2).astype("<f4")
        headers = {f"X-Peaks-{k.replace('_', '-').title()}": str(v)
                   for k, v in header.items() if k != "levels"}
        return web.Response(body=pairs.tobytes(), content_type="application/octet-stream",
                            headers=headers)
    return Peaks(**header, min=np.round(lows, 5).tolist(), max=np.round(highs, 5).tolist())


PROJECT = "/projects/{project_id}"
ASSET = f"{PROJECT}/assets/{{asset_id}}"

ROUTES = [
    Route(method="POST", path=f"{PROJECT}/assets", handler=upload_asset,
          permission=PROJECT_EDIT, query=UploadQuery, response=AssetInfo, status=201,
          body=Media(*AUDIO.types, "multipart/form-data", stream=True)),
    Route(method="GET", path=f"{PROJECT}/assets", handler=list_assets,
          permission=PROJECT_READ, response=list[AssetInfo]),
    Route(method="GET", path=ASSET, handler=download_asset, permission=PROJECT_READ,
          response=AUDIO),
    Route(method="GET", path=f"{ASSET}/info", handler=asset_info, permission=PROJECT_READ,
          response=AssetInfo),
    Route(method="GET", path=f"{ASSET}/peaks", handler=asset_peaks, permission=PROJECT_READ,
          query=PeaksQuery, response=Peaks, media=("application/octet-stream",)),
    Route(method="GET", path=f"{PROJECT}/audio", handler=download_source,
          permission=PROJECT_READ, query=SourceQuery, response=AUDIO),
    Route(method="GET", path=f"{PROJECT}/peaks", handler=source_peaks,
          permission=PROJECT_READ, query=SourcePeaksQuery, response=Peaks,
          media=("application/octet-stream",)),
]
