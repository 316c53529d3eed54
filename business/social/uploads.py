"""The social plug-in's own media uploads: images and videos a post attaches by id.

A social media manager uploads a picture or a finished video for an account (``POST
/api/social/media``, :mod:`.uploads_routes`); the body is streamed to a file beside the
account's other social files (``social/media/<account>/<media_id><ext>`` in the
plug-in's data directory) and refused past the size limit without reading on. What the
file is comes from its content, never its name or declared type: ffprobe reads it, and an
image is decoded whole by ffmpeg, so a truncated or corrupt file is refused; an animated
WebP, which ffmpeg cannot decode, is read and decoded frame by frame by Pillow instead
(its pixels, and all its frames' together, limited before decoding). Taken are JPEG,
PNG, WebP (still or animated) and GIF images and MP4 and MOV videos; anything else is
refused as not media (415), a file of those formats that cannot be read as broken (422),
one past the limits as too large (413). The file's description (``kind``,
``content_type``, ``size_bytes``, ``width``, ``height``, ``duration_s``: a video's
length, an animated WebP's, telling it from a still one) is kept in
``social_media_uploads`` under an id ``md_<hex>``, the media reference a post carries
like a project asset's; dispatch finds the file by :func:`upload_file`, and another
account's id finds nothing, like an unknown one. A composed post's upload references are
replaced by the stored descriptions (:meth:`MediaUploads.described`), so the networks'
rules judge the file as it is, not as the caller describes it.

A file a post may still publish (a draft, or a post pending approval, approved,
scheduled, publishing or failed and retryable) is not deleted: the delete answers 409
and names the posts. Published, expired and cancelled posts no longer need it.

An account's uploads together take at most its quota (``media_uploads.quota_bytes``,
5 GiB): an upload that would pass it is refused (:class:`QuotaExceeded`, 413, saying
what is used of what) and nothing of it is kept; deleting uploads frees their bytes.
The file is served back as it was kept (:meth:`MediaUploads.content`), and as a small
WebP thumbnail made the first time it is asked for (:meth:`MediaUploads.thumbnail`, kept
beside the file until the upload is deleted): an image's by Pillow, a video's of its
poster frame (1 s in or a tenth of its length, whichever is less, else its first frame),
taken by ffmpeg, turned upright by its rotation; a video none of whose frames decodes
has none (:class:`BrokenMedia`, 422).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image, ImageOps

from business.social.errors import ConflictError, NotFoundError, SocialError
from business.social.models import (
    APPROVED,
    DRAFT,
    EXPIRED,
    FAILED,
    PENDING,
    PUBLISHING,
    SCHEDULED,
)
from business.social.waveform import WaveformError, probe

#: Media references of uploads: ``md_`` and 24 hex digits.
PREFIX = "md_"
_ID = re.compile(r"^md_[0-9a-f]{24}$")
#: Image content types by ffprobe's format name (the file read without a name).
IMAGE_FORMATS = {"jpeg_pipe": "image/jpeg", "png_pipe": "image/png",
                 "webp_pipe": "image/webp", "gif": "image/gif"}
MP4, MOV = "video/mp4", "video/quicktime"
#: Every content type an upload may be, and the extension its file is kept under.
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
              "image/gif": ".gif", MP4: ".mp4", MOV: ".mov"}
ACCEPTED = tuple(EXTENSIONS)
#: How the formats taken are named in answers.
TAKEN = "JPEG, PNG, WebP or GIF images, MP4 or MOV videos"
#: The first bytes of the formats taken (offset, bytes): a file that starts so but cannot
#: be read is broken (422), anything else is not media at all (415).
SIGNATURES = ((0, b"\xff\xd8\xff"), (0, b"\x89PNG\r\n\x1a\n"), (0, b"GIF87a"),
              (0, b"GIF89a"), (8, b"WEBP"), (4, b"ftyp"), (4, b"moov"), (4, b"mdat"),
              (4, b"wide"), (4, b"free"))
#: The most bytes of any upload (a video), and of an image, unless the settings say
#: otherwise (``media_uploads``: ``max_bytes``, ``max_image_bytes``).
MAX_BYTES = 1024 * 1024 * 1024
MAX_IMAGE_BYTES = 32 * 1024 * 1024
#: The most bytes an account's uploads take together, unless the settings say otherwise
#: (``media_uploads``: ``quota_bytes``).
QUOTA_BYTES = 5 * 1024 * 1024 * 1024
#: The first key of the advisory lock that orders one account's uploads' quota checks
#: (PostgreSQL; SQLite writes one transaction at a time).
QUOTA_LOCK = 715_302
#: A thumbnail's longest side (pixels), its type and how its file is named.
THUMBNAIL_SIDE = 320
THUMBNAIL_TYPE = "image/webp"
THUMBNAIL_SUFFIX = ".thumb.webp"
#: The most pixels an image may declare: more is refused before it is decoded (a small
#: file may declare a huge picture).
MAX_PIXELS = 100_000_000
#: The most pixels of all an animated WebP's frames together (frames x width x height):
#: more is refused before a frame is decoded (a small file may declare many big frames).
MAX_ANIMATION_PIXELS = 500_000_000
#: The longest ffmpeg may take to decode an image before it is refused as unreadable.
DECODE_TIMEOUT_S = 60.0
#: A video's poster frame is taken a tenth of its length in, at most this far (seconds).
POSTER_AT_S = 1.0
#: The longest ffmpeg may take to find and decode a video's poster frame.
POSTER_TIMEOUT_S = 30.0
#: How many uploads are read (ffprobe, ffmpeg) at once per process; the others wait.
READS_AT_ONCE = 2
#: Post states in which a post may still publish its media (an expired one may be edited
#: and submitted again, as a failed one may be retried).
LIVE_STATES = (DRAFT, PENDING, APPROVED, SCHEDULED, PUBLISHING, FAILED, EXPIRED)
COLUMNS = ("media_id, name, kind, content_type, size_bytes, width, height, duration_s, "
           "sha256, uploaded_by, created_at")


class UploadError(SocialError):
    """An upload refused; the message says what was wrong and what to send instead."""


class UploadTooLarge(UploadError):
    """The upload is past the size limit of its kind (413)."""


class QuotaExceeded(UploadTooLarge):
    """The upload would take the account's uploads past their quota (413): ``used`` bytes
    of ``limit`` are taken, the upload has ``size`` (None: not known yet)."""

    def __init__(self, used: int, limit: int, size: int | None = None) -> None:
        self.used, self.limit, self.size = used, limit, size
        free = max(0, limit - used)
        this = (f"this upload of {_size(size)} would pass the account's upload quota"
                if size is not None else
                f"the upload is past the {_size(free)} left of the account's upload quota")
        super().__init__(
            f"{this}: {_size(used)} of {_size(limit)} are used ({_size(free)} free); "
            "delete uploads no longer needed (DELETE /api/social/media/{media_id}) or send "
            "a smaller file")


class NotMedia(UploadError):
    """The file is no image or video of a format taken (415)."""


class BrokenMedia(UploadError):
    """The file looks like a format taken but cannot be read whole (422)."""


@dataclass(frozen=True)
class UploadLimits:
    """The most bytes of an upload, of an image, and of an account's uploads together."""

    max_bytes: int = MAX_BYTES
    max_image_bytes: int = MAX_IMAGE_BYTES
    quota_bytes: int = QUOTA_BYTES

    @classmethod
    def from_settings(cls, raw: dict[str, Any] | None) -> UploadLimits:
        """The ``media_uploads`` settings of the plug-in (defaults where not set)."""
        raw = raw or {}
        return cls(int(raw.get("max_bytes", MAX_BYTES)),
                   int(raw.get("max_image_bytes", MAX_IMAGE_BYTES)),
                   int(raw.get("quota_bytes", QUOTA_BYTES)))


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def is_upload(media_id: str) -> bool:
    """Whether ``media_id`` is the id of an upload (``md_...``), valid or not."""
    return media_id.startswith(PREFIX)


def upload_folder(data_dir: str | Path, account_id: str) -> Path | None:
    """The folder of ``account_id``'s uploads (None: the id cannot name a folder)."""
    if not re.fullmatch(r"[\w.-]+", account_id) or account_id in (".", ".."):
        return None
    return Path(data_dir) / "social" / "media" / account_id


def upload_file(data_dir: str | Path, account_id: str, media_id: str) -> Path | None:
    """The file of ``account_id``'s upload ``media_id`` (None: no such upload of theirs)."""
    folder = upload_folder(data_dir, account_id)
    if folder is None or not _ID.match(media_id):
        return None
    for extension in dict.fromkeys(EXTENSIONS.values()):
        path = folder / f"{media_id}{extension}"
        if path.is_file():
            return path
    return None


def thumbnail_file(data_dir: str | Path, account_id: str, media_id: str) -> Path | None:
    """Where the thumbnail of ``account_id``'s image ``media_id`` is kept (None: the ids
    cannot name one); the file may not be made yet."""
    folder = upload_folder(data_dir, account_id)
    if folder is None or not _ID.match(media_id):
        return None
    return folder / f"{media_id}{THUMBNAIL_SUFFIX}"


def make_thumbnail(source: Path | BinaryIO, target: Path, side: int = THUMBNAIL_SIDE) -> None:
    """Write a WebP of the image ``source`` (its first frame, turned upright by its EXIF
    orientation) at most ``side`` pixels wide and high to ``target``, whole or not at all."""
    part = target.with_name(f".{secrets.token_hex(8)}.part")
    try:
        with Image.open(source) as image:
            if image.width * image.height > MAX_PIXELS:  # (refused on upload already)
                raise ValueError(f"{image.width}x{image.height} is over {MAX_PIXELS} pixels")
            image.draft("RGB", (side, side))  # a JPEG decodes at a fraction of its size
            upright = ImageOps.exif_transpose(image)
            alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
            small = upright.convert("RGBA" if alpha else "RGB")
            small.thumbnail((side, side), Image.Resampling.LANCZOS)
            small.save(part, "WEBP", quality=80, method=4)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def poster_time(duration_s: float | None) -> float:
    """Where a video of ``duration_s`` seconds has its poster frame: 1 s in or a tenth of
    its length, whichever is less (0: its first frame)."""
    return max(0.0, min(POSTER_AT_S, (duration_s or 0.0) / 10))


async def _frame_png(source: Path, at_s: float, side: int) -> tuple[bytes, str]:
    """The frame of the video ``source`` at ``at_s`` seconds as a PNG, upright (ffmpeg
    turns it by its rotation), square-pixelled and at most ``side`` pixels a side (empty:
    none decoded there), and what ffmpeg said; :class:`TimeoutError` past
    :data:`POSTER_TIMEOUT_S`."""
    fit = (f"scale=iw*sar:ih,setsar=1,scale=w='min({side},iw)':h='min({side},ih)':"
           "force_original_aspect_ratio=decrease")
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-ss", f"{at_s:.3f}", "-i", str(source),
        "-map", "0:V:0", "-frames:v", "1", "-vf", fit, "-f", "image2pipe", "-c:v", "png",
        "-", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(POSTER_TIMEOUT_S):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return (out if proc.returncode == 0 else b""), err.decode(errors="replace")


def _first_error(said: str, path: Path, name: str) -> str:
    """The first thing ffmpeg said, without its decoder's address, naming ``name``."""
    lines = [line.strip() for line in said.replace(str(path), name).splitlines()]
    first = next((line for line in lines if line), "no picture")
    return re.sub(r"^\[[^\]]*\]\s*", "", first)[:200]


async def make_poster(source: Path, target: Path, duration_s: float | None, name: str,
                      side: int = THUMBNAIL_SIDE) -> None:
    """Write a WebP of the video ``source``'s poster frame (at :func:`poster_time`, else
    its first frame) at most ``side`` pixels a side to ``target``, whole or not at all;
    :class:`BrokenMedia` when no frame decodes, :class:`FileNotFoundError` when the file
    is gone."""
    said = ""
    for at_s in dict.fromkeys((poster_time(duration_s), 0.0)):
        try:
            png, said = await _frame_png(source, at_s, side)
        except TimeoutError:
            raise BrokenMedia(f"no frame of {name!r} was decoded within "
                              f"{POSTER_TIMEOUT_S:.0f} s: its content is still "
                              "served") from None
        if png:
            await asyncio.to_thread(make_thumbnail, io.BytesIO(png), target, side)
            return
    if not await asyncio.to_thread(source.is_file):
        raise FileNotFoundError(str(source))
    raise BrokenMedia(f"no frame of {name!r} could be decoded for a thumbnail "
                      f"({_first_error(said, source, name)}): the video is damaged; its "
                      "content is still served")


def _looks_like_media(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(16)
    return any(head[at:at + len(magic)] == magic for at, magic in SIGNATURES)


def _animated_webp(path: Path) -> bool:
    """Whether the WebP ``path`` says it is animated (its ``VP8X`` animation flag)."""
    with open(path, "rb") as handle:
        head = handle.read(21)
    return head[12:16] == b"VP8X" and len(head) == 21 and bool(head[20] & 0x02)


def _read_animation(path: Path, name: str) -> dict[str, Any]:
    """The animated WebP ``path`` decoded frame by frame by Pillow (ffmpeg cannot): its
    description, its ``duration_s`` the sum of its frames'; :class:`BrokenMedia` if it
    is damaged or too large to decode."""
    try:
        with Image.open(path, formats=["WEBP"]) as image:
            width, height, frames = image.width, image.height, image.n_frames
            _check_animation(name, width, height, frames)
            total_ms = 0
            for index in range(frames):
                image.seek(index)
                image.load()
                total_ms += int(image.info.get("duration") or 0)
    except Image.DecompressionBombError:
        raise BrokenMedia(f"{name!r} declares over {MAX_PIXELS:,} pixels: scale it "
                          "down") from None
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise BrokenMedia(f"{name!r} is a damaged or truncated animated WebP ({exc}): "
                          "export it again and upload the whole file") from None
    still = frames < 2
    return {"kind": "image", "content_type": "image/webp", "width": width, "height": height,
            "duration_s": None if still else round(total_ms / 1000, 3)}


def _check_animation(name: str, width: int, height: int, frames: int) -> None:
    """Refuse an animation whose frame or whole would take too much to decode."""
    if width * height > MAX_PIXELS:
        raise BrokenMedia(f"{name!r} is {width}x{height}, over {MAX_PIXELS:,} pixels: "
                          "scale it down")
    if frames * width * height > MAX_ANIMATION_PIXELS:
        raise BrokenMedia(f"{name!r} has {frames:,} frames of {width}x{height}, over "
                          f"{MAX_ANIMATION_PIXELS:,} pixels in all: make it shorter or "
                          "smaller, or send it as a video")


async def _decode(path: Path, name: str) -> None:
    """Decode every frame of the image ``path``; :class:`BrokenMedia` on any error."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(DECODE_TIMEOUT_S):
            _, err = await proc.communicate()
    except TimeoutError:
        raise BrokenMedia(f"{name!r} could not be decoded within {DECODE_TIMEOUT_S:.0f} s: "
                          "send a smaller image") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    said = err.decode(errors="replace").replace(str(path), name).strip()
    if proc.returncode or said:
        raise BrokenMedia(f"{name!r} is a damaged or truncated image ({said[-200:]}): "
                          "export it again and upload the whole file")


def _picture_size(stream: dict[str, Any]) -> tuple[int | None, int | None]:
    width = int(stream.get("width") or 0) or None
    height = int(stream.get("height") or 0) or None
    rotation = 0
    for side in stream.get("side_data_list") or []:
        with contextlib.suppress(TypeError, ValueError):
            rotation = int(float(side.get("rotation", 0)))
    if abs(rotation) % 180 == 90:  # a phone video filmed upright
        width, height = height, width
    return width, height


async def identify(path: Path, name: str) -> dict[str, Any]:
    """What the file ``path`` is, from its content: ``kind``, ``content_type``, ``width``,
    ``height``, ``duration_s``; :class:`NotMedia` or :class:`BrokenMedia` if refused."""
    try:
        info = await probe(path)
    except WaveformError:
        if await asyncio.to_thread(_looks_like_media, path):
            raise BrokenMedia(f"{name!r} starts like an image or video but cannot be read "
                              "(truncated or damaged): export it again and upload the "
                              "whole file") from None
        raise NotMedia(f"{name!r} is no image or video: upload {TAKEN}") from None
    form = info.get("format") or {}
    first = str(form.get("format_name", "")).split(",")[0]
    pictures = [s for s in info.get("streams", []) if s.get("codec_type") == "video"
                and not (s.get("disposition") or {}).get("attached_pic")]
    if first in IMAGE_FORMATS and pictures:
        if first == "webp_pipe" and await asyncio.to_thread(_animated_webp, path):
            return await asyncio.to_thread(_read_animation, path, name)
        width, height = _picture_size(pictures[0])
        if width is None or height is None:
            raise BrokenMedia(f"{name!r} has no picture size: export it again")
        if width * height > MAX_PIXELS:
            raise BrokenMedia(f"{name!r} is {width}x{height}, over {MAX_PIXELS:,} pixels: "
                              "scale it down")
        await _decode(path, name)
        return {"kind": "image", "content_type": IMAGE_FORMATS[first], "width": width,
                "height": height, "duration_s": None}
    if first == "mov":
        if not pictures:
            raise NotMedia(f"{name!r} holds sound but no picture: upload {TAKEN}, or "
                           "render a waveform video of the audio")
        brand = str((form.get("tags") or {}).get("major_brand", "")).strip()
        try:
            duration = float(form.get("duration"))
        except (TypeError, ValueError):
            duration = 0.0
        if duration <= 0:
            raise BrokenMedia(f"{name!r} has no length: export the video again")
        width, height = _picture_size(pictures[0])
        return {"kind": "video", "content_type": MOV if brand == "qt" else MP4,
                "width": width, "height": height, "duration_s": round(duration, 3)}
    raise NotMedia(f"{name!r} was read as {first or 'unknown'}, which is not taken: "
                   f"upload {TAKEN}")


def reference(row: dict[str, Any]) -> dict[str, Any]:
    """The media reference a post attaches (the shape of a project asset's)."""
    return {"asset_id": row["media_id"], "kind": row["kind"],
            "content_type": row["content_type"], "size_bytes": int(row["size_bytes"]),
            "duration_s": row["duration_s"], "width": row["width"], "height": row["height"]}


def _safe_name(name: str) -> str:
    """The file name as the person gave it, without folders or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable()).strip()[:200]


class MediaUploads:
    """An account's uploads: received, listed, found, deleted.

    ``db`` is the plug-in's database, ``data_dir`` the plug-in context's data directory,
    ``reads`` the process's turns at reading an upload (:data:`READS_AT_ONCE`).
    """

    def __init__(self, db: Any, data_dir: str | Path, limits: UploadLimits | None = None,
                 *, reads: asyncio.Semaphore | None = None, clock: Any = time.time) -> None:
        self.db = db
        self.data_dir = Path(data_dir)
        self.limits = limits or UploadLimits()
        self.reads = reads or asyncio.Semaphore(READS_AT_ONCE)
        self.clock = clock

    async def receive(self, account_id: str, person: str, name: str,
                      chunks: AsyncIterator[bytes], length: int | None) -> dict[str, Any]:
        """Stream ``chunks`` to the account's folder, identify and keep it; its row.

        ``length`` is the declared body length (None: not declared); one past the limit
        is refused before a byte is read.
        """
        name = _safe_name(name) or "upload"
        limit, quota = self.limits.max_bytes, self.limits.quota_bytes
        if length is not None and length > limit:
            raise UploadTooLarge(f"the upload has {_size(length)}; uploads take at most "
                                 f"{_size(limit)}: send a smaller file")
        used = await self.used(account_id)
        if length is not None and used + length > quota:
            raise QuotaExceeded(used, quota, length)
        folder = upload_folder(self.data_dir, account_id)
        if folder is None:
            raise SocialError(f"account id {account_id!r} cannot name a folder")
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        part = folder / f".{secrets.token_hex(8)}.part"
        room = max(0, quota - used)
        if room < limit:  # the quota is what stops a body that runs on
            limit = room

            def too_large(_seen: int) -> UploadError:
                return QuotaExceeded(used, quota)
        else:
            def too_large(_seen: int) -> UploadError:
                return UploadTooLarge(f"the upload is past {_size(limit)}, the most an "
                                      "upload takes: send a smaller file")
        try:
            size, digest = await self._write(part, chunks, limit, too_large)
            if size == 0:
                raise BrokenMedia(f"{name!r} is empty: send the file's bytes as the body")
            async with self.reads:
                found = await identify(part, name)
            if found["kind"] == "image" and size > self.limits.max_image_bytes:
                raise UploadTooLarge(
                    f"{name!r} is an image of {_size(size)}; images take at most "
                    f"{_size(self.limits.max_image_bytes)}: make it smaller")
            media_id = PREFIX + secrets.token_hex(12)
            final = folder / f"{media_id}{EXTENSIONS[found['content_type']]}"
            await asyncio.to_thread(os.replace, part, final)
        finally:
            await asyncio.to_thread(part.unlink, missing_ok=True)
        row = {"media_id": media_id, "name": name, **found, "size_bytes": size,
               "sha256": digest, "uploaded_by": person, "created_at": self.clock()}
        try:
            async with self.db.transaction() as tx:
                await tx.hold_lock(QUOTA_LOCK, account_id)
                used = await self.used(account_id, tx)
                if used + size > quota:  # others' uploads arrived meanwhile
                    raise QuotaExceeded(used, quota, size)
                await tx.execute(
                    f"INSERT INTO social_media_uploads (account_id, {COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", account_id,
                    *(row[c.strip()] for c in COLUMNS.split(",")))
        except BaseException:
            await asyncio.to_thread(final.unlink, missing_ok=True)
            raise
        return row

    @staticmethod
    async def _write(part: Path, chunks: AsyncIterator[bytes], limit: int,
                     too_large: Callable[[int], UploadError]) -> tuple[int, str]:
        size, digest = 0, hashlib.sha256()
        handle = await asyncio.to_thread(open, part, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise too_large(size)
                digest.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        return size, digest.hexdigest()

    async def used(self, account_id: str, tx: Any = None) -> int:
        """How many bytes the account's uploads take together (thumbnails not counted)."""
        return int(await (tx or self.db).fetchval(
            "SELECT COALESCE(SUM(size_bytes), 0) FROM social_media_uploads "
            "WHERE account_id = ?", account_id) or 0)

    async def usage(self, account_id: str) -> dict[str, int]:
        """``used_bytes`` of the account's quota, ``limit_bytes``."""
        return {"used_bytes": await self.used(account_id),
                "limit_bytes": self.limits.quota_bytes}

    async def list(self, account_id: str) -> list[dict[str, Any]]:
        """The account's uploads, newest first."""
        return [dict(r) for r in await self.db.fetch(
            f"SELECT {COLUMNS} FROM social_media_uploads WHERE account_id = ? "
            "ORDER BY created_at DESC, media_id", account_id)]

    async def get(self, account_id: str, media_id: str) -> dict[str, Any]:
        """The account's upload ``media_id``; :class:`NotFoundError` for an unknown id
        and for another account's alike."""
        row = await self.db.fetchrow(
            f"SELECT {COLUMNS} FROM social_media_uploads WHERE account_id = ? AND "
            "media_id = ?", account_id, media_id)
        if row is None:
            raise NotFoundError(f"there is no uploaded media {media_id!r} in this account: "
                                "check the id (GET /api/social/media lists them)")
        return dict(row)

    async def content(self, account_id: str, media_id: str) -> tuple[Path, dict[str, Any]]:
        """The file of the account's upload ``media_id`` and its row; :class:`NotFoundError`
        for an unknown id and another account's alike."""
        row = await self.get(account_id, media_id)
        path = upload_file(self.data_dir, account_id, media_id)
        if path is None:
            raise NotFoundError(f"the file of uploaded media {media_id!r} is gone from the "
                                "server: upload it again")
        return path, row

    async def thumbnail(self, account_id: str, media_id: str) -> tuple[Path, dict[str, Any]]:
        """The thumbnail file of the account's image or video ``media_id`` (made the first
        time: :data:`THUMBNAIL_SIDE`, WebP; a video's poster frame) and its row;
        :class:`NotFoundError` for an unknown id and another account's alike,
        :class:`BrokenMedia` when none can be made."""
        source, row = await self.content(account_id, media_id)
        if row["kind"] not in ("image", "video"):
            raise NotFoundError(f"uploaded media {media_id!r} is a {row['kind']}: thumbnails "
                                "are made of images and videos only (GET its content)")
        target = thumbnail_file(self.data_dir, account_id, media_id)
        assert target is not None  # (the same ids named its file)
        if not await asyncio.to_thread(target.is_file):
            async with self.reads:
                await self._make_thumbnail(source, target, row)
            if upload_file(self.data_dir, account_id, media_id) is None:  # deleted meanwhile
                await asyncio.to_thread(target.unlink, missing_ok=True)
                raise NotFoundError(f"uploaded media {media_id!r} was deleted")
        return target, row

    @staticmethod
    async def _make_thumbnail(source: Path, target: Path, row: dict[str, Any]) -> None:
        """Make the thumbnail of the upload ``row`` (its file ``source``) at ``target``."""
        try:
            if row["kind"] == "video":
                await make_poster(source, target, row["duration_s"], row["name"])
            else:
                await asyncio.to_thread(make_thumbnail, source, target)
        except FileNotFoundError:
            raise NotFoundError(f"uploaded media {row['media_id']!r} was deleted") from None
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise BrokenMedia(f"no thumbnail could be made of {row['name']!r} "
                              f"({exc}): its content is still served") from None

    async def described(self, account_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` (a post as composed: ``media`` and ``targets``' ``media``) with each
        upload among its media described as it was read when uploaded, whatever the
        caller said of it; :class:`NotFoundError` for an upload that is not the
        account's (another account's alike)."""
        lists = [fields.get("media")] + [t.get("media") for t in fields.get("targets") or []]
        for media in lists:
            for index, ref in enumerate(media or []):
                if is_upload(str(ref.get("asset_id", ""))):
                    media[index] = reference(await self.get(account_id, ref["asset_id"]))
        return fields

    async def users(self, account_id: str, media_id: str, tx: Any = None) -> list[str]:
        """The posts that may still publish upload ``media_id`` (as a post's media or a
        channel's variant)."""
        states = ", ".join("?" for _ in LIVE_STATES)
        needle = f'%"{media_id}"%'
        rows = await (tx or self.db).fetch(
            "SELECT p.post_id FROM social_posts p WHERE p.account_id = ? AND p.deleted = 0 "
            f"AND p.state IN ({states}) AND (p.media LIKE ? OR EXISTS (SELECT 1 FROM "
            "social_post_targets t WHERE t.account_id = p.account_id AND "
            "t.post_id = p.post_id AND t.media LIKE ?)) ORDER BY p.post_id",
            account_id, *LIVE_STATES, needle, needle)
        return [r["post_id"] for r in rows]

    async def delete(self, account_id: str, media_id: str) -> dict[str, Any]:
        """Delete the upload and its file; :class:`ConflictError` while a post that may
        still publish uses it."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                f"SELECT {COLUMNS} FROM social_media_uploads WHERE account_id = ? AND "
                "media_id = ?", account_id, media_id)
            if row is None:
                raise NotFoundError(f"there is no uploaded media {media_id!r} in this "
                                    "account: check the id")
            users = await self.users(account_id, media_id, tx)
            if users:
                raise ConflictError(f"uploaded media {media_id!r} is attached to posts that "
                                    f"may still publish ({', '.join(users)}): remove it from "
                                    "them or delete them first")
            await tx.execute("DELETE FROM social_media_uploads WHERE account_id = ? AND "
                             "media_id = ?", account_id, media_id)
        for path in (upload_file(self.data_dir, account_id, media_id),
                     thumbnail_file(self.data_dir, account_id, media_id)):
            if path is not None:
                await asyncio.to_thread(path.unlink, missing_ok=True)
        return dict(row)


def erase_uploads(data_dir: str | Path, account_id: str) -> int:
    """Delete every uploaded file of ``account_id`` (an erased account); how many."""
    folder = upload_folder(data_dir, account_id)
    if folder is None or not folder.is_dir():
        return 0
    count = sum(1 for p in folder.iterdir() if _ID.match(p.stem))
    shutil.rmtree(folder)
    return count
