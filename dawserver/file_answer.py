"""A file answer that tells, once it is over, how many of the file's bytes it sent.

:class:`CountedFileResponse` is aiohttp's file answer (conditional requests, ranges,
ETags, HEAD unchanged) whose body goes out in pieces through ``loop.sendfile`` (the
kernel's zero-copy send where the transport has one, a read-and-write copy elsewhere),
counting each piece as it is written; a piece cut short by a dropped connection counts
the bytes ``loop.sendfile`` says it sent (the file's position), one cut short by a
cancellation none of its own. When the answer is over its report
(:class:`~dawserver.declarations.FileSent`) is handed to a callback, shielded from the
request's cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_fileresponse import NOSENDFILE

from .declarations import FileSent

log = logging.getLogger(__name__)

#: The most bytes one ``loop.sendfile`` call sends: what a cancelled answer may have sent
#: without counting it.
PIECE = 1024 * 1024

_REPORTS: set[asyncio.Task[None]] = set()


class CountedFileResponse(web.FileResponse):
    """aiohttp's file answer, reporting the bytes of the file it wrote to ``on_sent``."""

    def __init__(self, path: str | Path, *, on_sent: Callable[[FileSent], Awaitable[None]],
                 headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._on_sent = on_sent
        self._first = 0
        self._length = 0
        self._sent = 0

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            return await super().prepare(request)
        finally:
            await self._report()

    async def _sendfile(self, request: web.BaseRequest, fobj: IO[Any], offset: int,
                        count: int) -> AbstractStreamWriter:
        self._first, self._length = offset, count
        writer = await web.StreamResponse.prepare(self, request)
        assert writer is not None
        if self.compression or NOSENDFILE:  # copied through the writer, counted so
            while self._sent < count:
                chunk = await asyncio.to_thread(_read, fobj, offset + self._sent,
                                                min(PIECE, count - self._sent))
                if not chunk:
                    break
                await writer.write(chunk)
                self._sent += len(chunk)
            return writer
        loop = asyncio.get_running_loop()
        while self._sent < count:
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("Connection lost")
            start = offset + self._sent
            fobj.seek(start)
            try:
                await loop.sendfile(transport, fobj, start, min(PIECE, count - self._sent))
            finally:  # loop.sendfile leaves the file just past what it sent
                self._sent += max(0, fobj.tell() - start)
        await web.StreamResponse.write_eof(self)
        return writer

    async def _report(self) -> None:
        sent = FileSent(self._first, self._length, min(self._sent, self._length))
        task = asyncio.ensure_future(self._tell(sent))
        _REPORTS.add(task)
        task.add_done_callback(_REPORTS.discard)
        await asyncio.shield(task)

    async def _tell(self, sent: FileSent) -> None:
        try:
            await self._on_sent(sent)
        except Exception:
            log.exception("a file answer's on_sent failed (%s)", self._path)


def _read(fobj: IO[Any], offset: int, size: int) -> bytes:
    fobj.seek(offset)
    return bytes(fobj.read(size))
