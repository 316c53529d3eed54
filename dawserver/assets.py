"""HTTP routes for project audio: upload, download and waveform peaks.

See ``docs/http-api-assets.md`` for the exact requests and answers.  Every
route takes the project token (``Authorization: Bearer`` or ``?token=``);
uploading needs the editor role, reading any role.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import numpy as np
from aiohttp import web

from collab.errors import ProjectNotFound
from collab.tokens import Role
from dsp_core.errors import AudioFileError, DspError

from .api import _error, _grant
from .asset_store import (
    Asset,
    AssetNotFound,
    AssetStore,
    AssetTooLarge,
    InvalidAudio,
)
from .keys import CONFIG, ROOMS

log = logging.getLogger(__name__)

ASSETS = web.AppKey("assets", AssetStore)
CHUNK = 1 << 16
DEFAULT_FRAMES_PER_PEAK = 1024
MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "aiff": "audio/aiff"}

routes = web.RouteTableDef()


def setup_assets(app: web.Application, max_bytes: int | None = None) -> None:
    """Add the asset store (``DATA_DIR/assets``) and its routes to ``app``."""
    store = AssetStore(app[CONFIG].data_dir / "assets")
    if max_bytes is not None:
        store.max_bytes = max_bytes
    app[ASSETS] = store
    app.router.add_routes(routes)


def _too_large(message: str, max_bytes: int, actual: int) -> web.HTTPException:
    import json

    return web.HTTPRequestEntityTooLarge(max_bytes, actual, text=json.dumps({"error": message}),
                                         content_type="application/json")


def _asset_json(request: web.Request, project_id: str, asset: Asset) -> dict:
    base = f"/projects/{project_id}/assets/{asset.id}"
    return {**asset.to_json(), "download": base, "peaks": f"{base}/peaks"}


async def _body_chunks(request: web.Request) -> tuple[AsyncIterator[bytes], str]:
    """The upload's bytes (raw body or the first file of a multipart form) and its name."""
    name = request.query.get("name", "")
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                raise _error(web.HTTPBadRequest, "the multipart form has no file part; "
                             "send the audio as a 'file' field")
            if part.filename or part.name == "file":
                break

        async def multipart_chunks() -> AsyncIterator[bytes]:
            while chunk := await part.read_chunk(CHUNK):
                yield chunk

        return multipart_chunks(), name or part.filename or ""
    return request.content.iter_chunked(CHUNK), name


@routes.post("/projects/{project_id}/assets")
async def upload_asset(request: web.Request) -> web.Response:
    """Store an uploaded WAV/FLAC/AIFF file for the project (editor)."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.EDITOR)
    store = request.app[ASSETS]
    if request.content_length is not None and request.content_length > store.max_bytes:
        raise _too_large(f"upload of {request.content_length} bytes is over the "
                         f"{store.max_bytes}-byte limit; send a smaller or compressed (FLAC) "
                         "file", store.max_bytes, request.content_length)
    chunks, name = await _body_chunks(request)
    try:
        asset = await store.ingest_stream(chunks, project_id=project_id, name=name)
    except AssetTooLarge as exc:
        raise _too_large(str(exc), store.max_bytes, store.max_bytes + 1) from None
    except InvalidAudio as exc:
        raise _error(web.HTTPUnsupportedMediaType, str(exc)) from None
    return web.json_response(_asset_json(request, project_id, asset), status=201)


@routes.get("/projects/{project_id}/assets")
async def list_assets(request: web.Request) -> web.Response:
    """The assets uploaded to (or recorded in) the project (any role)."""
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.VIEWER)
    store = request.app[ASSETS]
    rows = []
    for asset_id in store.project_assets(project_id):
        try:
            rows.append(_asset_json(request, project_id, store.asset(asset_id)))
        except AssetNotFound:
            continue
    return web.json_response(rows)


async def _project_asset(request: web.Request) -> Asset:
    project_id, asset_id = request.match_info["project_id"], request.match_info["asset_id"]
    await _grant(request, project_id, Role.VIEWER)
    store = request.app[ASSETS]
    try:
        asset = store.asset(asset_id)
    except AssetNotFound as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None
    if not store.belongs(project_id, asset_id) and asset.path not in await _sources(request):
        raise _error(web.HTTPNotFound, f"asset {asset_id} is not part of project {project_id}")
    return asset


@routes.get("/projects/{project_id}/assets/{asset_id}")
async def download_asset(request: web.Request) -> web.StreamResponse:
    """The stored audio file, as uploaded (any role)."""
    asset = await _project_asset(request)
    return _file_response(asset.path, asset.format, asset.name)


@routes.get("/projects/{project_id}/assets/{asset_id}/info")
async def asset_info(request: web.Request) -> web.Response:
    """The asset's format, rate, channels, frames and links (any role)."""
    asset = await _project_asset(request)
    return web.json_response(_asset_json(request, request.match_info["project_id"], asset))


@routes.get("/projects/{project_id}/assets/{asset_id}/peaks")
async def asset_peaks(request: web.Request) -> web.StreamResponse:
    """Waveform peaks of an asset at one zoom level (any role)."""
    asset = await _project_asset(request)
    peaks = await _in_executor(request, request.app[ASSETS].peaks, asset.id)
    return _peaks_response(request, peaks)


@routes.get("/projects/{project_id}/audio")
async def download_source(request: web.Request) -> web.StreamResponse:
    """Any audio file a clip of the project uses: ``?source=<clip source>`` (any role)."""
    source = await _referenced_source(request)
    asset = request.app[ASSETS].asset_for_source(source)
    ext = asset.format if asset else source.rsplit(".", 1)[-1].lower()
    return _file_response(source, ext, source.rsplit("/", 1)[-1])


@routes.get("/projects/{project_id}/peaks")
async def source_peaks(request: web.Request) -> web.StreamResponse:
    """Waveform peaks of any clip source: ``?source=<clip source>`` (any role)."""
    source = await _referenced_source(request)
    try:
        peaks = await _in_executor(request, request.app[ASSETS].peaks_of_file, source)
    except (AudioFileError, OSError) as exc:
        raise _error(web.HTTPUnprocessableEntity, f"cannot read {source}: {exc}") from None
    return _peaks_response(request, peaks)


# -- helpers -------------------------------------------------------------------------------


async def _in_executor(request: web.Request, fn, *args):
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _sources(request: web.Request) -> frozenset[str]:
    project_id = request.match_info["project_id"]
    try:
        async with request.app[ROOMS].use(project_id) as room:
            return room.document.clip_sources()  # not to_json(): 0.2 s on 3,000 clips
    except ProjectNotFound as exc:
        raise _error(web.HTTPNotFound, str(exc)) from None


async def _referenced_source(request: web.Request) -> str:
    project_id = request.match_info["project_id"]
    await _grant(request, project_id, Role.VIEWER)
    source = request.query.get("source")
    if not source:
        raise _error(web.HTTPBadRequest, "give the clip source as ?source=...")
    if source not in await _sources(request):
        asset = request.app[ASSETS].asset_for_source(source)
        if asset is None or not request.app[ASSETS].belongs(project_id, asset.id):
            raise _error(web.HTTPNotFound,
                         f"no clip of project {project_id} uses source {source!r}")
    return source


def _file_response(path: str, ext: str, name: str) -> web.StreamResponse:
    import os

    if not os.path.isfile(path):
        raise _error(web.HTTPNotFound, f"audio file {path} is missing on the server")
    headers = {"Content-Type": MEDIA_TYPES.get(ext, "application/octet-stream"),
               "Content-Disposition": f'attachment; filename="{name or "audio." + ext}"'}
    return web.FileResponse(path, headers=headers)


def _peaks_response(request: web.Request, peaks) -> web.StreamResponse:
    try:
        size = int(request.query.get("frames_per_peak", DEFAULT_FRAMES_PER_PEAK))
        level = peaks.level(size)
    except (ValueError, DspError):
        raise _error(web.HTTPBadRequest, f"frames_per_peak must be one of "
                     f"{peaks.frames_per_peak}") from None
    try:
        start = int(request.query.get("start", 0))
        count = int(request.query.get("count", level.count))
    except ValueError:
        raise _error(web.HTTPBadRequest, "start and count must be whole numbers") from None
    if start < 0 or count < 0:
        raise _error(web.HTTPBadRequest, "start and count must be >= 0")
    lows, highs = level.min[:, start:start + count], level.max[:, start:start + count]
    header = {"sample_rate": peaks.sample_rate, "frames": peaks.frames,
              "channels": peaks.channels, "levels": peaks.frames_per_peak,
              "frames_per_peak": size, "start": start, "count": int(lows.shape[1])}
    if request.query.get("format") == "binary":
        pairs = np.stack([lows, highs], axis=2).astype("<f4")
        headers = {f"X-Peaks-{k.replace('_', '-').title()}": str(v)
                   for k, v in header.items() if k != "levels"}
        return web.Response(body=pairs.tobytes(), content_type="application/octet-stream",
                            headers=headers)
    return web.json_response({**header, "min": np.round(lows, 5).tolist(),
                              "max": np.round(highs, 5).tolist()})
