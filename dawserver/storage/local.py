"""The local-disk object store: files under a directory, and signed links served by us.

An object is the file ``ROOT/<key>``; writes go to a temporary file first and are renamed
into place, so a failed write leaves nothing. A presigned URL is the server's own route
``GET /storage/<key>?expires=<unix time>&signature=<hex>`` (:mod:`dawserver.storage.routes`)
signed with HMAC-SHA256 under a key derived from the server's secret, as an S3 presigned
URL is signed by the object store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlencode

from .base import CHUNK, ObjectNotFound, ObjectStore, check_key, check_prefix, part_file

#: The route that serves presigned local objects.
ROUTE_PREFIX = "/storage/"


class LinkRefused(Exception):
    """A local presigned link was changed, or has expired."""


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; presigned URLs signed with ``link_key``."""

    def __init__(self, root: Path, *, link_key: bytes = b"", base_url: str = "") -> None:
        self.root = Path(root).resolve()
        self.link_key = link_key
        self.base_url = base_url.rstrip("/")
        (self.root / ".tmp").mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file of ``key`` (which need not exist)."""
        return self.root / check_key(key)

    async def put(self, key: str, chunks: AsyncIterable[bytes] | bytes, *,
                  content_type: str = "application/octet-stream") -> int:
        """Write to a temporary file, then rename it into place."""
        final = self.path(key)
        handle, tmp = tempfile.mkstemp(dir=self.root / ".tmp")
        size = 0
        try:
            with os.fdopen(handle, "wb") as out:
                if isinstance(chunks, bytes):
                    out.write(chunks)
                    size = len(chunks)
                else:
                    async for chunk in chunks:
                        out.write(chunk)
                        size += len(chunk)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return size

    async def put_file(self, key: str, path: Path, *,
                       content_type: str = "application/octet-stream") -> int:
        """Copy a local file in a thread (large files)."""
        return await asyncio.to_thread(self._copy, Path(path), self.path(key))

    def _copy(self, src: Path, final: Path) -> int:
        handle, tmp = tempfile.mkstemp(dir=self.root / ".tmp")
        try:
            with os.fdopen(handle, "wb") as out, open(src, "rb") as source:
                size = 0
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            return size
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    async def download(self, key: str, path: Path) -> int:
        """Copy the file in a thread (large files), written atomically."""
        source = self.path(key)
        if not source.is_file():
            raise ObjectNotFound(f"no object {key!r}")
        handle, tmp = part_file(Path(path))
        os.close(handle)
        try:
            await asyncio.to_thread(shutil.copyfile, source, tmp)
            size = tmp.stat().st_size
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return size

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        """The file's bytes in 1 MiB chunks."""
        try:
            source = open(self.path(key), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key!r}") from None
        with source:
            while chunk := source.read(CHUNK):
                yield chunk

    async def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self.path(key).is_file()

    async def delete(self, key: str) -> None:
        """Remove the file."""
        self.path(key).unlink(missing_ok=True)

    async def keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a folder prefix or the start of a name); the folders
        are walked in a thread (a big tree would hold the event loop)."""
        folder = check_prefix(prefix).rpartition("/")[0]
        return await asyncio.to_thread(self._keys, prefix, folder)

    def _keys(self, prefix: str, folder: str) -> list[str]:
        base = self.root / folder if folder else self.root
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.startswith(".tmp/"):
                found.append(key)
        return sorted(found)

    # -- presigned links -----------------------------------------------------------------

    def signature(self, key: str, expires: int, filename: str = "") -> str:
        """The HMAC-SHA256 of ``key``, ``expires`` and the name to save as under the link
        key (so a link's holder cannot change the saved name)."""
        message = f"{key}\n{expires}\n{filename}".encode()
        return hmac.new(self.link_key, message, hashlib.sha256).hexdigest()

    async def presigned_url(self, key: str, expires_s: int, *, filename: str = "",
                            content_type: str = "") -> str:
        """``BASE/storage/<key>?expires=...&signature=...`` (served by the storage route)."""
        check_key(key)
        expires = int(time.time()) + int(expires_s)
        query = {"expires": expires, "signature": self.signature(key, expires, filename)}
        if filename:
            query["filename"] = filename
        return f"{self.base_url}{ROUTE_PREFIX}{quote(key)}?{urlencode(query)}"

    def check_link(self, key: str, expires: int, signature: str, filename: str = "",
                   now: float | None = None) -> Path:
        """The file a link we signed names; :class:`LinkRefused` when changed (its key,
        expiry or file name) or expired."""
        good = self.signature(key, expires, filename)
        if not self.link_key or not hmac.compare_digest(good.encode(), signature.lower().encode()):
            raise LinkRefused("this storage link is not one we signed; ask for a new one")
        if (time.time() if now is None else now) > expires:
            raise LinkRefused("this storage link has expired; ask for a new one")
        return self.path(key)
