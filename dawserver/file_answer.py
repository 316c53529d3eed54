"""The server's file answers: aiohttp's, with ``If-Range`` as HTTP says, and one that
tells, once it is over, how many of the file's bytes it sent.

:class:`FileAnswer` is aiohttp's file answer (conditional requests, ranges, ETags, HEAD)
but for two things: aiohttp reads ``If-Range`` only as a date, and serves the range for an
entity tag whatever it is. A download resumed with the ETag of a file that has changed
since would then join two different files. Here a ``Range`` applies only while its
``If-Range`` holds (:func:`if_range_holds`); else the whole file is sent (RFC 9110,
13.1.5). And aiohttp answers 416 to a ``Range`` of several ranges, which it cannot send
(no ``multipart/byteranges``): here such a ``Range`` is ignored and the whole file sent,
as HTTP lets a server do (RFC 9110, 14.2); 416 stays for a range the file cannot satisfy.
Every file the server answers goes through it. :class:`Preconditions` tells
beforehand whether it will answer 304 or 412 (no body), for a route that charges for
what it sends.

:class:`CountedFileResponse` is a :class:`FileAnswer` of the file itself (never a
compressed ``.gz``/``.br`` sibling aiohttp would pick by ``Accept-Encoding``: what is
counted, and :class:`Preconditions`, judge that file) whose body goes out in pieces
through ``loop.sendfile`` (the
kernel's zero-copy send where the transport has one, a read-and-write copy elsewhere),
counting each piece as it is written; a piece cut short by a dropped connection counts
the bytes ``loop.sendfile`` says it sent (the file's position), one cut short by a
cancellation none of its own. When the answer is over its report
(:class:`~dawserver.declarations.FileSent`) is handed to a callback, shielded from the
request's cancellation.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate
from pathlib import Path
from typing import IO, Any

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_fileresponse import NOSENDFILE

from .declarations import FileSent

log = logging.getLogger(__name__)

#: The most bytes one ``loop.sendfile`` call sends: what a cancelled answer may have sent
#: without counting it.
PIECE = 1024 * 1024

_REPORTS: set[asyncio.Task[None]] = set()


def entity_tag(stat: os.stat_result) -> str:
    """The strong ETag (quoted) aiohttp's file answer gives a file of this ``stat``."""
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


def if_range_holds(if_range: str | None, stat: os.stat_result) -> bool:
    """Whether a request's ``If-Range`` (None: it has none) lets its ``Range`` apply to
    the file of ``stat``: an HTTP date not before the file's modification (aiohttp's own
    comparison), or the file's entity tag itself (a strong match: never a weak one)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == entity_tag(stat)
    when = _date(value)  # None: neither an entity tag nor a date, nothing it could match
    return when is not None and stat.st_mtime <= when


#: One entity tag of a list (RFC 9110, 8.8.3): optionally weak, then quoted; or garbage,
#: which ends the list.
_LISTED_TAG = re.compile(r'(W/)?"([!\x23-\x7E\x80-\xff]+)"(?:\s*,\s*|$)|(.)')


def _tags(header: str | None) -> tuple[tuple[bool, str], ...] | None:
    """An ``If-Match``/``If-None-Match`` list as (weak, opaque tag) pairs, ``*`` as
    ``(False, "*")``; None for no header. Garbage ends the list (aiohttp's reading)."""
    if not header:
        return None
    if header == "*":
        return ((False, "*"),)
    tags = []
    for found in _LISTED_TAG.finditer(header):
        weak, tag, garbage = found.groups()
        if garbage:
            break
        tags.append((bool(weak), tag))
    return tuple(tags)


def _date(header: str | None) -> float | None:
    parsed = parsedate(header) if header is not None else None
    if parsed is None:
        return None
    try:
        return datetime.datetime(*parsed[:6], tzinfo=datetime.UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Preconditions:
    """A request's ``If-Match``, ``If-Unmodified-Since``, ``If-None-Match`` and
    ``If-Modified-Since``: whether the file answer will send the file, or answer 304 or
    412 with no body (:meth:`answer`), decided as aiohttp's file answer decides it (RFC
    9110, 13.2.2), so a caller can tell before it answers."""

    if_match: str | None = None
    if_unmodified_since: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Preconditions:
        """The preconditions of a request's headers."""
        return cls(headers.get(hdrs.IF_MATCH), headers.get(hdrs.IF_UNMODIFIED_SINCE),
                   headers.get(hdrs.IF_NONE_MATCH), headers.get(hdrs.IF_MODIFIED_SINCE))

    def answer(self, stat: os.stat_result) -> int | None:
        """412 or 304 where the file answer for the file of ``stat`` sends no body; None
        where it sends the file (or a range of it)."""
        tag = entity_tag(stat).strip('"')
        if_match = _tags(self.if_match)
        if if_match is not None and not _matches(tag, if_match, weak=False):
            return 412
        since = _date(self.if_unmodified_since)
        if since is not None and if_match is None and stat.st_mtime > since:
            return 412
        if_none_match = _tags(self.if_none_match)
        if if_none_match is not None and _matches(tag, if_none_match, weak=True):
            return 304
        since = _date(self.if_modified_since)
        if since is not None and if_none_match is None and stat.st_mtime <= since:
            return 304
        return None


def _matches(tag: str, tags: tuple[tuple[bool, str], ...], *, weak: bool) -> bool:
    if tags == ((False, "*"),):
        return True
    return any(value == tag for is_weak, value in tags if weak or not is_weak)


class FileAnswer(web.FileResponse):
    """aiohttp's file answer, whose ``Range`` applies only while its ``If-Range`` holds,
    and only when it asks for one range (several: the whole file, 200)."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if "," in request.headers.get(hdrs.RANGE, ""):  # several ranges
            request = _without(request, hdrs.RANGE)
        if_range = request.headers.get(hdrs.IF_RANGE)
        if if_range is not None and hdrs.RANGE in request.headers:
            try:
                stat = await asyncio.to_thread(os.stat, self._path)
            except OSError:
                stat = None  # aiohttp answers the missing file itself
            if stat is not None and not if_range_holds(if_range, stat):
                request = _without(request, hdrs.RANGE)
        return await super().prepare(request)


class CountedFileResponse(FileAnswer):
    """A file answer reporting the bytes of the file it wrote to ``on_sent``."""

    def __init__(self, path: str | Path, *, on_sent: Callable[[FileSent], Awaitable[None]],
                 headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._on_sent = on_sent
        self._first = 0
        self._length = 0
        self._sent = 0

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if hdrs.ACCEPT_ENCODING in request.headers:  # the file itself, never a .gz/.br
            request = _without(request, hdrs.ACCEPT_ENCODING)  # beside it: what is counted
            # (and Preconditions) judge that file
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


def _without(request: web.BaseRequest, header: str) -> web.BaseRequest:
    """``request`` as if it had come without ``header``."""
    headers = request.headers.copy()
    del headers[header]
    return request.clone(headers=headers)


def _read(fobj: IO[Any], offset: int, size: int) -> bytes:
    fobj.seek(offset)
    return bytes(fobj.read(size))
