"""The object stores in the server: one per data region, opened with the app, and the
answers that hand a stored object to a client (a redirect to a presigned URL on S3, the
file itself on local disk), plus the route that serves local presigned links."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field

from accounts.models import DEFAULT_REGION
from collab.tokens import SECRET_FILE, TokenSigner

from ..declarations import PUBLIC
from ..file_answer import FileAnswer
from ..keys import CONFIG
from ..plugin_api import BadRequest, Forbidden, Media, NotFound, Query, Request, Route
from ..regions import account_region, project_region
from .base import ObjectNotFound, ObjectStore, content_disposition
from .local import ROUTE_PREFIX, LinkRefused, LocalObjectStore
from .settings import StorageSettings, open_object_store

log = logging.getLogger(__name__)

#: Every data region's object store, by region name (started while the app runs).
OBJECT_STORES = web.AppKey("object_stores", dict[str, ObjectStore])
#: The storage settings (S3 endpoint, link lifetime, cache bound).
STORAGE_SETTINGS = web.AppKey("storage_settings", StorageSettings)


def link_key(data_dir: Path) -> bytes:
    """The key local presigned links are signed with (derived from the server's secret)."""
    TokenSigner.from_data_dir(data_dir)
    secret = (Path(data_dir) / SECRET_FILE).read_text().strip().encode("ascii")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"maxbooster storage links").derive(secret)


def setup_storage(app: web.Application) -> None:
    """Make each region's object store (started by a ``cleanup_ctx``); the route of local
    presigned links (``GET /storage/<key>``) is in :data:`ROUTES`."""
    config = app[CONFIG]
    settings = StorageSettings.from_mapping(config.storage_options)
    key = link_key(config.data_dir)
    stores: dict[str, ObjectStore] = {}
    for region in (DEFAULT_REGION, *config.regions):
        location = config.object_storage_of(region) or config.storage_of(region)
        stores[region] = open_object_store(location, settings, link_key=key,
                                           base_url=config.base_url)
    app[OBJECT_STORES], app[STORAGE_SETTINGS] = stores, settings
    app.cleanup_ctx.append(storage_context)


async def storage_context(app: web.Application) -> AsyncIterator[None]:
    """Open every region's object store; close them on shutdown."""
    started: list[ObjectStore] = []
    try:
        for store in app[OBJECT_STORES].values():
            await store.start()
            started.append(store)
        remote = [repr(s) for s in started if s.redirects]
        if remote:
            log.info("object storage: %s", ", ".join(remote))
        yield
    finally:
        for store in reversed(started):
            await store.stop()


async def project_objects(app: web.Application, project_id: str) -> ObjectStore:
    """The object store of ``project_id``'s data region."""
    stores = app[OBJECT_STORES]
    if len(stores) == 1:
        return stores[DEFAULT_REGION]
    return stores[await project_region(app, project_id)]


def account_objects(app: web.Application, account_id: str) -> ObjectStore:
    """The object store of ``account_id``'s data region."""
    return app[OBJECT_STORES][account_region(app, account_id)]


async def object_response(app: web.Application, store: ObjectStore, key: str, *,
                          filename: str, content_type: str) -> web.StreamResponse:
    """A stored object for a client: a 302 to a presigned URL when the store is remote,
    else the file (:class:`ObjectNotFound` when there is none)."""
    if store.redirects:
        if not await store.exists(key):
            raise ObjectNotFound(f"no object {key!r}")
        url = await store.presigned_url(key, app[STORAGE_SETTINGS].presign_seconds,
                                        filename=filename, content_type=content_type)
        return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
    assert isinstance(store, LocalObjectStore)
    path = store.path(key)
    if not path.is_file():
        raise ObjectNotFound(f"no object {key!r}")
    return FileAnswer(path, headers={
        "Content-Type": content_type, "Content-Disposition": content_disposition(filename)})


class LinkQuery(Query):
    """A local presigned link's expiry, signature and the file name to save as."""

    expires: int = 0
    signature: str = Field("", max_length=128)
    filename: str = Field("", max_length=255)


async def local_link(request: Request) -> web.StreamResponse:
    """A stored object through a presigned link (local disk; S3 serves its own)."""
    key, query = request.params["key"], request.query
    if not query.expires or not query.signature:
        raise BadRequest("a storage link carries expires=<unix time> and signature=...: "
                         "ask the route that gave it for a new one")
    for store in request.app[OBJECT_STORES].values():
        if not isinstance(store, LocalObjectStore):
            continue
        try:
            path = store.check_link(key, query.expires, query.signature, query.filename)
        except LinkRefused as exc:
            raise Forbidden(str(exc)) from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if path.is_file():
            return FileAnswer(path, headers={
                "Content-Disposition": content_disposition(query.filename or path.name)})
    raise NotFound("the object of this link is gone")


ROUTES = [
    Route(method="GET", path=ROUTE_PREFIX + r"{key:[\s\S]+}", handler=local_link,
          permission=PUBLIC, query=LinkQuery, response=Media("application/octet-stream")),
]
