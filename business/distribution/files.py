"""An account's own distribution files: cover art and audio uploaded for its releases.

They live in the account's folder (:meth:`.catalog.Catalog.media_folder`), the one place
besides its renders that a release may name. A file is written whole or not at all (a
hidden part file, then a rename), under a plain name of the uploader's choosing, and
only when its first bytes say it is something the gate reads: JPEG or PNG art, WAV or
FLAC audio.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from business.distribution.errors import DistributionError, NotFoundError

#: The most bytes of one file (a long 24-bit/96 kHz WAV fits).
MAX_FILE_BYTES = 200 * 1024 * 1024
#: The most characters of a file name.
MAX_NAME = 200
#: Media types a client may send the body as (what it is, is read from its bytes).
MEDIA_TYPES = ("image/jpeg", "image/png", "audio/wav", "audio/x-wav", "audio/wave",
               "audio/flac", "audio/x-flac", "application/octet-stream")
#: Bytes of the start that :func:`kind_of` reads.
_HEAD = 12


class FileNameError(DistributionError):
    """A file name that is not a plain name (a folder, ``..``, hidden, empty)."""


class FileTooLargeError(DistributionError):
    """A file over :data:`MAX_FILE_BYTES`."""


class NotMediaError(DistributionError):
    """A file the gate cannot use: not JPEG/PNG art, nor WAV/FLAC audio."""


def kind_of(head: bytes) -> str | None:
    """``artwork`` or ``audio`` by a file's first bytes; None for anything else."""
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "artwork"
    if head.startswith(b"fLaC") or (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
        return "audio"
    return None


def safe_name(name: str) -> str:
    """``name`` when it is a plain file name; FileNameError otherwise."""
    if (not name or len(name) > MAX_NAME or name.startswith(".") or name != name.strip()
            or any(c in name for c in "/\\") or not name.isprintable()):
        raise FileNameError(f"file name {name[:MAX_NAME]!r}: give a plain name such as "
                            "cover.jpg (no folders, no leading dot, at most "
                            f"{MAX_NAME} characters)")
    return name


def _listing(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
            found.append({"name": entry.name, "size": entry.stat().st_size,
                          "path": str(folder.resolve() / entry.name)})
    return found


class AccountFiles:
    """The files of one account's folder: write, list, delete."""

    def __init__(self, folder: Path | None) -> None:
        if folder is None:
            raise DistributionError("this server keeps no distribution files for the account")
        self.folder = folder

    def path(self, name: str) -> Path:
        """Where file ``name`` is (resolved: the path a release names)."""
        return self.folder.resolve() / safe_name(name)

    async def write(self, name: str, chunks: AsyncIterator[bytes],
                    length: int | None = None) -> tuple[dict[str, Any], bool]:
        """Store ``chunks`` as file ``name`` (replacing one of that name); its listing
        entry and whether it replaced a file. ``length``: the declared size, refused
        before a byte is read when over :data:`MAX_FILE_BYTES`."""
        target = self.path(name)
        if length is not None and length > MAX_FILE_BYTES:
            raise FileTooLargeError(_too_large(length))
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        part = self.folder / f".{secrets.token_hex(8)}.part"
        try:
            size = await _save(part, chunks)
            replaced = await asyncio.to_thread(os.path.lexists, target)
            await asyncio.to_thread(os.replace, part, target)
        finally:
            await asyncio.to_thread(part.unlink, missing_ok=True)
        return {"name": target.name, "size": size, "path": str(target)}, replaced

    async def list(self) -> list[dict[str, Any]]:
        """The account's files by name: name, size in bytes and the path to name."""
        return await asyncio.to_thread(_listing, self.folder)

    async def delete(self, name: str) -> dict[str, Any]:
        """Delete file ``name``; its listing entry. NotFoundError when there is none."""
        target = self.path(name)
        try:
            size = (await asyncio.to_thread(target.lstat)).st_size
            await asyncio.to_thread(target.unlink)
        except FileNotFoundError:
            raise NotFoundError(f"there is no file {name!r}") from None
        return {"name": target.name, "size": size, "path": str(target)}


def _too_large(size: int) -> str:
    return (f"the file has {size:,} bytes; a file takes at most {MAX_FILE_BYTES:,} "
            "(200 MiB): send FLAC, or a shorter file")


async def _save(part: Path, chunks: AsyncIterator[bytes]) -> int:
    """Write ``chunks`` to ``part`` once their start is art or audio; the bytes written."""
    size, head = 0, b""
    handle = await asyncio.to_thread(open, part, "xb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise FileTooLargeError(_too_large(size))
            if len(head) < _HEAD:
                head += chunk[:_HEAD - len(head)]
                if len(head) >= _HEAD and kind_of(head) is None:
                    raise NotMediaError(_not_media())
            await asyncio.to_thread(handle.write, chunk)
        if kind_of(head) is None:
            raise NotMediaError(_not_media())
        await asyncio.to_thread(os.fsync, handle.fileno())
    finally:
        await asyncio.to_thread(handle.close)
    return size


def _not_media() -> str:
    return ("the file is not JPEG or PNG artwork nor WAV or FLAC audio (read from its "
            "bytes): export it as one of those")
