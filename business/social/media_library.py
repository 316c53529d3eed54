"""The account's media library as a bulk file names it: what a media id stands for.

A bulk row's ``media`` cell names media already in the account's library: an image or
video uploaded to the social plug-in (``POST /api/social/media``, ``md_...``,
:mod:`.uploads`), an asset id of one of the account's projects (``POST
/projects/{id}/assets``) or a waveform video the composer rendered (``wf_...``,
:mod:`.waveform_jobs`). :func:`describe` finds the file as dispatch will
(:func:`.waveform_jobs.media_file`: another account's id and an unknown id look the
same) and gives the media reference a composed post carries (``asset_id``, ``kind``,
``content_type``, ``size_bytes``, ``duration_s``, ``width``, ``height``): an upload's as
it was read when it was uploaded, any other file's read from the file itself (ffprobe),
so a bulk post's media meets the same per-network rules as the composer's (image types,
GIF on its own, images and videos mixed...). A project's assets are audio files (its
upload takes WAV, FLAC and AIFF), so a bulk file's pictures and videos are uploads and
rendered waveform videos. Web addresses are not fetched: the file is uploaded first.
What is refused raises :class:`.bulk.MediaRefused`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from business.social.bulk import MediaRefused
from business.social.errors import NotFoundError
from business.social.uploads import MediaUploads, is_upload, reference
from business.social.waveform import WaveformError, probe
from business.social.waveform_jobs import media_file
from dawserver.plugin_api import PluginContext

#: Content types by ffprobe's codec name, for still images.
IMAGE_TYPES = {"mjpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
               "gif": "image/gif", "bmp": "image/bmp", "tiff": "image/tiff"}
#: Content types by the first of ffprobe's format names, for audio and video.
FORMAT_TYPES = {"wav": ("audio", "audio/wav"), "flac": ("audio", "audio/flac"),
                "aiff": ("audio", "audio/aiff"), "mp3": ("audio", "audio/mpeg"),
                "ogg": ("audio", "audio/ogg"), "mov": ("video", "video/mp4"),
                "matroska": ("video", "video/webm"), "avi": ("video", "video/x-msvideo")}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _what(info: dict[str, Any], ref: str) -> tuple[str, str]:
    """``(kind, content_type)`` of a probed file."""
    streams = info.get("streams", [])
    formats = str(info.get("format", {}).get("format_name", "")).split(",")
    pictures = [s for s in streams if s.get("codec_type") == "video"
                and not (s.get("disposition") or {}).get("attached_pic")]
    still = bool(pictures) and (formats[0].endswith("_pipe") or formats[0] in ("image2",
                                                                                "gif"))
    if still:
        found = IMAGE_TYPES.get(str(pictures[0].get("codec_name")))
        if found:
            return "image", found
    elif formats[0] in FORMAT_TYPES:
        kind, content_type = FORMAT_TYPES[formats[0]]
        if kind == "video" and not pictures:  # an .m4a: sound in an MP4 box
            kind, content_type = "audio", "audio/mp4"
        if kind == "audio" or pictures:
            return kind, content_type
    raise MediaRefused("unreadable_media",
                       f"Asset {ref!r} is no image, video or audio file a network takes "
                       f"(read as {','.join(formats)}): upload the image or video "
                       "(POST /api/social/media) and use its media id.")


async def describe(context: PluginContext, account_id: str, ref: str) -> dict[str, Any]:
    """The media reference of ``ref``, an asset id of ``account_id``'s library."""
    parts = urlsplit(ref)
    if parts.scheme in ("http", "https"):
        raise MediaRefused("media_url",
                           f"{ref!r} is a web address; a bulk file's media comes from your "
                           "library: upload the file (POST /api/social/media, or the "
                           "composer's upload button) and write its media id instead.")
    path = await media_file(context, account_id, ref)
    unknown = MediaRefused("unknown_media",
                           f"No media {ref!r} in this account's uploads, projects or "
                           "rendered videos: check the id, or upload the file first "
                           "(POST /api/social/media).")
    if path is None:
        raise unknown
    if is_upload(ref):
        try:
            return reference(await MediaUploads(context.database(),
                                                context.data_dir).get(account_id, ref))
        except NotFoundError:
            raise unknown from None
    try:
        info = await probe(path)
    except WaveformError as exc:
        raise MediaRefused("unreadable_media", f"Asset {ref!r} cannot be read as media: "
                           f"{exc}") from None
    kind, content_type = _what(info, ref)
    pictures = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    width = height = None
    if pictures and kind != "audio":
        width = int(pictures[0].get("width") or 0) or None
        height = int(pictures[0].get("height") or 0) or None
    duration = None
    if kind != "image":
        duration = _number(info.get("format", {}).get("duration"))
        if duration is not None:
            duration = round(duration, 3)
    return {"asset_id": ref, "kind": kind, "content_type": content_type,
            "size_bytes": Path(path).stat().st_size, "duration_s": duration,
            "width": width, "height": height}
