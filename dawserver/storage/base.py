"""The object store interface every backend implements, and its errors."""

from __future__ import annotations

import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

#: Keys are relative, slash-separated names without ``..`` or empty parts.
_KEY = re.compile(r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$")
CHUNK = 1 << 20


class StorageError(Exception):
    """Base class of object storage errors."""


class StorageUnavailable(StorageError):
    """The object store cannot be reached or failed; try again later."""


class ObjectNotFound(StorageError):
    """No object under that key."""


def part_file(path: Path) -> tuple[int, Path]:
    """An open descriptor and the name of a new temporary file beside ``path``, to be
    renamed over it once whole: a name of its own, so that two downloads of one file at
    once (two renders missing the same cache entry) never write into each other's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.fchmod(handle, 0o644)  # as an open() would leave it: the cache is read by others
    return handle, Path(name)


def check_key(key: str) -> str:
    """``key`` when it is a safe object key (else :class:`ValueError` quoting it)."""
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"object key {key!r} is not valid: use slash-separated names of "
                         "letters, digits, '.', '_', '=' and '-'")
    return key


def check_prefix(prefix: str) -> str:
    """``prefix`` when it starts safe object keys: empty, a key, or a key and a slash
    (else :class:`ValueError` quoting it: never a listing outside the store)."""
    if prefix:
        check_key(prefix.removesuffix("/"))
    return prefix


async def file_chunks(path: Path, size: int = CHUNK) -> AsyncIterator[bytes]:
    """A local file's bytes in chunks (each read is small: fine on the event loop)."""
    with open(path, "rb") as src:
        while chunk := src.read(size):
            yield chunk


class ObjectStore(ABC):
    """Bytes under keys: streamed writes, streamed reads, presigned GET URLs.

    An async context manager: ``async with store:`` opens its connections and closes
    them; starting twice is an error.
    """

    #: Whether :meth:`presigned_url` points outside this server (a client is redirected).
    redirects: bool = False

    async def __aenter__(self) -> ObjectStore:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections (nothing for local disk)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close connections."""

    @abstractmethod
    async def put(self, key: str, chunks: AsyncIterable[bytes] | bytes, *,
                  content_type: str = "application/octet-stream") -> int:
        """Store ``chunks`` under ``key`` (replacing it); the bytes written. A failed write
        leaves no object behind."""

    async def put_file(self, key: str, path: Path, *,
                       content_type: str = "application/octet-stream") -> int:
        """Store a local file under ``key``, streamed."""
        return await self.put(key, file_chunks(path), content_type=content_type)

    @abstractmethod
    def stream(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks (:class:`ObjectNotFound` if absent)."""

    async def get(self, key: str) -> bytes:
        """The whole object (small objects only)."""
        return b"".join([chunk async for chunk in self.stream(key)])

    async def download(self, key: str, path: Path) -> int:
        """Copy the object into the local file ``path`` (written atomically); its size."""
        handle, tmp = part_file(path)
        size = 0
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in self.stream(key):
                    out.write(chunk)
                    size += len(chunk)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return size

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object (nothing if absent)."""

    @abstractmethod
    async def keys(self, prefix: str) -> list[str]:
        """The keys that start with ``prefix``, in order."""

    @abstractmethod
    async def presigned_url(self, key: str, expires_s: int, *, filename: str = "",
                            content_type: str = "") -> str:
        """A URL anyone may GET the object from until ``expires_s`` seconds from now."""


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """``attachment`` (``inline``: shown in the browser) with ``filename`` made safe for a
    header: an ASCII ``filename=`` (quotes, backslashes, control and non-ASCII characters
    replaced) and the exact name in RFC 5987 ``filename*=``; a name with CR/LF can no
    longer break the answer."""
    name = "".join(c for c in filename if c.isprintable()).strip() or "download"
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
