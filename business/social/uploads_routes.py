"""HTTP routes of the social plug-in's media uploads (:mod:`.uploads`).

``POST /api/social/media`` takes the file itself as the body (``Content-Type`` one of
:data:`~.uploads.ACCEPTED`; what it is is read from its content) and ``?name=`` its file
name; 201 and the upload, whose ``media`` is the reference to attach to a post or to
name (``media_id``) in a bulk file. ``GET /api/social/media`` lists the account's
uploads, ``GET``/``DELETE /api/social/media/{media_id}`` one (409 while a post that may
still publish uses it). Composing uploads and deletes (``social.compose``); reading lists
(``social.read``). Another account's id answers 404 like an unknown one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from business.social.errors import ConflictError, NotFoundError, SocialError
from business.social.permissions import COMPOSE, READ
from business.social.routes import BASE, _person
from business.social.schemas import MediaRef
from business.social.services import PLUGIN_NAME
from business.social.uploads import (
    ACCEPTED,
    READS_AT_ONCE,
    BrokenMedia,
    MediaUploads,
    NotMedia,
    UploadLimits,
    UploadTooLarge,
    reference,
)
from dawserver.plugin_api import (
    BadRequest,
    Conflict,
    Media,
    Model,
    NotFound,
    PayloadTooLarge,
    Query,
    Reply,
    Request,
    Route,
    Unprocessable,
    UnsupportedMediaType,
    map_errors,
)

MEDIA = f"{BASE}/media"

#: The uploads' errors as HTTP errors; a refused upload's body may be unread, so the
#: connection closes after a 413 rather than read on into it.
_api = map_errors(
    (UploadTooLarge, lambda exc: PayloadTooLarge(str(exc), headers={"Connection": "close"})),
    (NotMedia, UnsupportedMediaType),
    (BrokenMedia, Unprocessable),
    (NotFoundError, NotFound),
    (ConflictError, Conflict),
    (SocialError, BadRequest),
)


class UploadQuery(Query):
    """The uploaded file's name (as shown in the media list)."""

    name: str = Field("", max_length=200)


class UploadOut(Model):
    """An uploaded image or video: its id, file name, who uploaded it when, its SHA-256,
    and ``media``, the reference a post attaches."""

    media_id: str
    name: str
    uploaded_by: str
    created_at: float
    sha256: str
    media: MediaRef


#: Where the process's turns at reading uploads live in the plug-in context's state.
_READS = "social.upload_reads"


def uploads(request: Request) -> MediaUploads:
    """The account's uploads, with the plug-in's ``media_uploads`` limits; the process's
    uploads take turns at being read (:data:`~.uploads.READS_AT_ONCE`)."""
    context = request.context
    limits = UploadLimits.from_settings(context.settings_for(PLUGIN_NAME).get("media_uploads"))
    reads = context.state.setdefault(_READS, asyncio.Semaphore(READS_AT_ONCE))
    return MediaUploads(context.database(), context.data_dir, limits, reads=reads)


def upload_out(row: dict[str, Any]) -> dict[str, Any]:
    """An upload as the API shows it."""
    return {"media_id": row["media_id"], "name": row["name"],
            "uploaded_by": row["uploaded_by"], "created_at": row["created_at"],
            "sha256": row["sha256"], "media": reference(row)}


@_api
async def upload_media(request: Request) -> Reply:
    """Upload an image (JPEG, PNG, WebP, GIF) or a video (MP4, MOV) for the account's
    posts: the body is the file. 413 past the size limit, 415 for a file that is no such
    image or video, 422 for a damaged or truncated one."""
    length = request.headers.get("Content-Length")
    row = await uploads(request).receive(
        request.account_id, _person(request), request.query.name, request.chunks(),
        int(length) if length and length.isdigit() else None)
    return Reply(upload_out(row), status=201,
                 headers={"Location": f"{MEDIA}/{row['media_id']}"})


@_api
async def list_media(request: Request) -> Any:
    """The account's uploaded images and videos, newest first."""
    return [upload_out(r) for r in await uploads(request).list(request.account_id)]


@_api
async def get_media(request: Request) -> Any:
    """One uploaded image or video of the account."""
    return upload_out(await uploads(request).get(request.account_id,
                                                 request.params["media_id"]))


@_api
async def delete_media(request: Request) -> Any:
    """Delete an uploaded image or video; 409 while a post that may still publish (a
    draft, pending, approved, scheduled or failed post) uses it."""
    return upload_out(await uploads(request).delete(request.account_id,
                                                    request.params["media_id"]))


UPLOAD_ROUTES = [
    Route(method="POST", path=MEDIA, handler=upload_media, permission=COMPOSE,
          query=UploadQuery, body=Media(*ACCEPTED, stream=True), response=UploadOut,
          status=201),
    Route(method="GET", path=MEDIA, handler=list_media, permission=READ,
          response=list[UploadOut]),
    Route(method="GET", path=f"{MEDIA}/{{media_id}}", handler=get_media, permission=READ,
          response=UploadOut),
    Route(method="DELETE", path=f"{MEDIA}/{{media_id}}", handler=delete_media,
          permission=COMPOSE, response=UploadOut),
]
