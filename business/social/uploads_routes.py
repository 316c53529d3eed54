"""HTTP routes of the social plug-in's media uploads (:mod:`.uploads`).

``POST /api/social/media`` takes the file itself as the body (``Content-Type`` one of
:data:`~.uploads.ACCEPTED`; what it is is read from its content) and ``?name=`` its file
name; 201 and the upload, whose ``media`` is the reference to attach to a post or to
name (``media_id``) in a bulk file. ``GET /api/social/media`` lists the account's
uploads (with ``Quota-Used-Bytes`` and ``Quota-Limit-Bytes``: the account's upload
quota), ``GET``/``DELETE /api/social/media/{media_id}`` one (409 while a post that may
still publish uses it); ``GET /api/social/media/{media_id}/content`` its bytes and
``/thumbnail`` a small WebP of an image or of a video's poster frame, made the first
time it is asked for (both streamed, with ETags and ranges:
:class:`~dawserver.plugin_api.FileReply`). Composing uploads and deletes
(``social.compose``); reading lists and downloads (``social.read``). Another account's id
answers 404 like an unknown one.
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
    THUMBNAIL_TYPE,
    BrokenMedia,
    MediaUploads,
    NotMedia,
    QuotaExceeded,
    UploadLimits,
    UploadTooLarge,
    reference,
)
from dawserver.plugin_api import (
    BadRequest,
    Conflict,
    FileReply,
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
#: The headers of the list answer that tell the account's upload quota (bytes).
USED_HEADER, LIMIT_HEADER = "Quota-Used-Bytes", "Quota-Limit-Bytes"
#: Downloads are the account's alone: a shared cache keeps none, and a browser asks again
#: each time (a 304 while its ETag holds).
DOWNLOAD_HEADERS = {"Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}

#: The uploads' errors as HTTP errors; a refused upload's body may be unread, so the
#: connection closes after a 413 rather than read on into it.
_api = map_errors(
    (QuotaExceeded, lambda exc: PayloadTooLarge(
        str(exc), headers={"Connection": "close"}, used_bytes=exc.used,
        limit_bytes=exc.limit, **({} if exc.size is None else {"upload_bytes": exc.size}))),
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
    ``media``, the reference a post attaches, where its bytes are (``content_url``) and its
    thumbnail (``thumbnail_url``: a small WebP of the image or of the video's poster
    frame)."""

    media_id: str
    name: str
    uploaded_by: str
    created_at: float
    sha256: str
    media: MediaRef
    content_url: str
    thumbnail_url: str | None


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
    at = f"{MEDIA}/{row['media_id']}"
    return {"media_id": row["media_id"], "name": row["name"],
            "uploaded_by": row["uploaded_by"], "created_at": row["created_at"],
            "sha256": row["sha256"], "media": reference(row),
            "content_url": f"{at}/content",
            "thumbnail_url": f"{at}/thumbnail" if row["kind"] in ("image", "video")
            else None}


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
    """The account's uploaded images and videos, newest first; the headers
    ``Quota-Used-Bytes`` and ``Quota-Limit-Bytes`` tell how much of the account's upload
    quota they take."""
    found = uploads(request)
    usage = await found.usage(request.account_id)
    return Reply([upload_out(r) for r in await found.list(request.account_id)],
                 headers={USED_HEADER: str(usage["used_bytes"]),
                          LIMIT_HEADER: str(usage["limit_bytes"])})


@_api
async def get_media(request: Request) -> Any:
    """One uploaded image or video of the account."""
    return upload_out(await uploads(request).get(request.account_id,
                                                 request.params["media_id"]))


@_api
async def media_content(request: Request) -> Any:
    """The bytes of an uploaded image or video as they were uploaded, with their type:
    streamed, with an ETag (304 to a current If-None-Match) and ranges (206; 416 for one
    past the end), for previews and video seeking."""
    path, row = await uploads(request).content(request.account_id,
                                               request.params["media_id"])
    return FileReply(path, row["content_type"], filename=row["name"],
                     headers=DOWNLOAD_HEADERS)


@_api
async def media_thumbnail(request: Request) -> Any:
    """A small WebP of an uploaded image, or of an uploaded video's poster frame (1 s in
    or a tenth of its length, whichever is less), at most 320 pixels a side and upright,
    made the first time it is asked for; 422 for a video none of whose frames decodes."""
    path, row = await uploads(request).thumbnail(request.account_id,
                                                 request.params["media_id"])
    stem = row["name"].rsplit(".", 1)[0] or "thumbnail"
    return FileReply(path, THUMBNAIL_TYPE, filename=f"{stem}.webp", headers=DOWNLOAD_HEADERS)


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
    Route(method="GET", path=f"{MEDIA}/{{media_id}}/content", handler=media_content,
          permission=READ, response=Media(*ACCEPTED), statuses=(206,)),
    Route(method="GET", path=f"{MEDIA}/{{media_id}}/thumbnail", handler=media_thumbnail,
          permission=READ, response=Media(THUMBNAIL_TYPE), statuses=(206,)),
    Route(method="DELETE", path=f"{MEDIA}/{{media_id}}", handler=delete_media,
          permission=COMPOSE, response=UploadOut),
]
