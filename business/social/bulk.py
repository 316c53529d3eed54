"""CSV bulk scheduling: read a file of posts, check every row and column, export safely.

:func:`import_csv` streams the file once (no quadratic work): UTF-8 with or without a BOM
or UTF-16 with a BOM, comma, semicolon or tab delimited (taken from the header line, or an
Excel ``sep=`` line). Each row is checked (time, channel, text rules of the channel's
network through :func:`business.social.validation.validate`, duplicates) and every error
names its row, its column and what to change. :func:`export_csv` writes rows back with
spreadsheet formula injection escaped, in a form :func:`import_csv` reads back unchanged.
"""

from __future__ import annotations

import csv
import io
import mimetypes
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import cache
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from business.social.networks.base import MediaItem
from business.social.validation import ERROR, WARNING, Problem, rules_for, validate

ALL_OR_NOTHING, VALID_ROWS = "all_or_nothing", "valid_rows"
MODES = (ALL_OR_NOTHING, VALID_ROWS)
#: Same normalised text on the same channel this close in time is a duplicate.
DUPLICATE_WINDOW_S = 3 * 86400
MAX_ROWS = 50_000

#: Column names a file may use, by the column they stand for (case, spaces and dashes
#: do not matter).
ALIASES = {
    "datetime": ("datetime", "date_time", "publish_at", "scheduled_at", "when"),
    "date": ("date", "day"),
    "time": ("time", "hour"),
    "timezone": ("timezone", "time_zone", "tz", "zone"),
    "channel": ("channel", "channel_id", "account", "handle", "profile"),
    "text": ("text", "message", "post", "caption", "content"),
    "link": ("link", "url"),
    "media": ("media", "media_url", "media_urls", "asset", "asset_id", "image", "video"),
    "first_comment": ("first_comment", "comment"),
}
_COLUMN = {alias: column for column, aliases in ALIASES.items() for alias in aliases}
EXPORT_COLUMNS = ("datetime", "channel", "text", "link", "media", "first_comment")

#: A cell a spreadsheet would run as a formula starts with one of these (OWASP, CSV
#: injection).
FORMULA_START = frozenset("=+-@\t\r")
_ASSET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_DELIMITERS = (",", ";", "\t")


class BulkFileError(ValueError):
    """The file as a whole cannot be read; the message says what to do."""


class MediaRefused(Exception):
    """A media reference ``resolve_media`` refuses: the row's ``media`` error ``code``
    and a message that says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ChannelLike(Protocol):
    """A channel known to the caller: its id and its network."""

    channel_id: str
    network: str


@dataclass(frozen=True)
class ChannelRef:
    """A minimal :class:`ChannelLike`."""

    channel_id: str
    network: str


@dataclass(frozen=True)
class ExistingPost:
    """A post already scheduled or published, for duplicate checks."""

    channel_id: str
    publish_at: float
    text: str


@dataclass(frozen=True)
class BulkRow:
    """One valid row, ready to schedule; ``row`` is its spreadsheet row (header = 1)."""

    row: int
    channel_id: str
    network: str
    publish_at: float            # UTC epoch seconds
    text: str
    link: str | None = None
    media: tuple[str, ...] = ()  # URLs or asset ids, as written
    first_comment: str | None = None
    #: IANA zone the row's time was written in (its ``timezone`` cell, else the
    #: default zone); ``UTC`` for a time given only with an offset.
    time_zone: str = "UTC"


@dataclass(frozen=True)
class RowError:
    """What is wrong in one cell (``column`` as the file names it) and how to fix it."""

    row: int
    column: str
    code: str
    message: str
    severity: str = ERROR


@dataclass
class BulkResult:
    """Valid rows, errors and warnings of one file, and the mode that decides the rest."""

    mode: str
    rows: list[BulkRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    total_rows: int = 0
    #: the text and time columns as the file names them (for errors found after the read)
    text_column: str = "text"
    time_column: str = "datetime"

    @property
    def ok(self) -> bool:
        """True when no row has an error."""
        return not self.errors

    @property
    def error_rows(self) -> int:
        """How many rows have at least one error."""
        return len({e.row for e in self.errors})

    @property
    def to_schedule(self) -> list[BulkRow]:
        """What to schedule: the valid rows, or none in all-or-nothing mode with errors."""
        if self.mode == ALL_OR_NOTHING and self.errors:
            return []
        return list(self.rows)


def escape_cell(value: str) -> str:
    """``value`` made safe for a spreadsheet: a leading apostrophe before a formula.

    Escaped are cells that start (after spaces) with ``= + - @``, a tab or a carriage
    return, and cells that start with an apostrophe (so that :func:`unescape_cell`
    gives back exactly what was escaped).
    """
    return "'" + value if _needs_escape(value) else value


def unescape_cell(value: str) -> str:
    """The inverse of :func:`escape_cell`."""
    if value[:1] == "'" and _needs_escape(value[1:]):
        return value[1:]
    return value


def _needs_escape(value: str) -> bool:
    first = value.lstrip(" ")[:1]
    return bool(first) and (first in FORMULA_START or first == "'")


def export_csv(rows: Iterable[BulkRow | Mapping[str, str]], *, zone: str | None = None) -> str:
    """CSV text of ``rows`` with every cell escaped against formula injection.

    Times are written in ISO 8601 with their offset (UTC, or ``zone``); channels as their
    ids. :func:`import_csv` reads the result back to the same rows (with a channel
    mapping keyed by id).
    """
    tz = ZoneInfo(zone) if zone else UTC
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        if isinstance(row, BulkRow):
            cells = [datetime.fromtimestamp(row.publish_at, tz).isoformat(timespec="seconds"),
                     row.channel_id, row.text, row.link or "", " ".join(row.media),
                     row.first_comment or ""]
        else:
            cells = [str(row.get(c) or "") for c in EXPORT_COLUMNS]
        writer.writerow([escape_cell(c) for c in cells])
    return out.getvalue()


def import_csv(data: bytes | str | BinaryIO, channels: Mapping[str, ChannelLike], *,
               mode: str = VALID_ROWS, now: float | None = None,
               existing: Iterable[ExistingPost] = (), default_zone: str | None = None,
               resolve_media: Callable[[str], MediaItem | None] | None = None,
               max_rows: int = MAX_ROWS,
               refuse: Callable[[BulkRow], RowError | None] | None = None) -> BulkResult:
    """Read and check a CSV file of posts to schedule.

    Parameters
    ----------
    data
        The file: bytes, text, or a binary file object (read as a stream).
    channels
        The caller's channels by id or handle (a leading ``@`` and case do not matter).
    mode
        ``"valid_rows"``: schedule the valid rows; ``"all_or_nothing"``: schedule nothing
        if any row has an error (see :attr:`BulkResult.to_schedule`).
    now
        Epoch seconds; rows at or before it are refused as in the past.
    existing
        Posts already scheduled or published, for duplicate checks.
    default_zone
        IANA zone for rows whose time has no offset and no ``timezone`` cell.
    resolve_media
        Asset id or URL to :class:`MediaItem` (``None``: unknown; raising
        :class:`MediaRefused`: that error) so that media types, sizes, durations and
        shapes are checked; without it, types are guessed from file names and the rest
        is checked when the media is fetched.
    refuse
        A valid row's error when the caller will not schedule it (the person's rights
        on its channel), else None; a refused row is an error, and later rows are not
        duplicates of it.

    Raises
    ------
    BulkFileError
        The file cannot be read (encoding, no header, missing columns, too many rows).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {MODES}")
    zone = _zone(default_zone) if default_zone else None
    if default_zone and zone is None:
        raise ValueError(f"unknown time zone {default_zone!r}: use an IANA name")
    checker = _RowChecker(
        channels={_key(k): v for k, v in channels.items()},
        now=time.time() if now is None else now, default_zone=zone,
        resolve_media=resolve_media, refuse=refuse)
    for post in existing:
        checker.remember(post.channel_id, post.text, post.publish_at, None)
    result = BulkResult(mode)
    with _reading(data) as lines:
        header, delimiter = _header(lines)
        columns = _columns(header)
        names = {c: name for c, (_, name) in columns.items()}
        result.text_column = names.get("text", "text")
        result.time_column = names.get("datetime") or names.get("date", "datetime")
        for row_number, record in _records(lines, delimiter, max_rows):
            result.total_rows += 1
            checker.check(row_number, record, columns, names, result)
    return result


def media_refs(data: bytes | str, channels: Mapping[str, ChannelLike], *,
               max_rows: int = MAX_ROWS) -> list[str]:
    """The distinct media references of a bulk file that :func:`import_csv` would look
    up, in order of first use: a cheap first pass, so that the caller looks each one up
    once (on its event loop) and hands :func:`import_csv` a plain look-up.

    Left out: references that are neither a web address nor an asset id, and those of a
    row naming more media than its channel's network takes (refused without look-up).
    ``channels`` as for :func:`import_csv`; a file it cannot read raises
    :class:`BulkFileError` as :func:`import_csv` does.
    """
    keyed = {_key(k): v for k, v in channels.items()}
    found: dict[str, None] = {}
    with _reading(data) as lines:
        header, delimiter = _header(lines)
        columns = _columns(header)
        if "media" not in columns:
            return []
        for _row, record in _records(lines, delimiter, max_rows):
            cells = _cells(record, columns)
            refs = cells["media"].split()
            channel = keyed.get(_key(cells.get("channel", "")))
            if _too_many(channel, refs) is not None:
                continue
            found.update((ref, None) for ref in refs if _well_formed(ref))
    return list(found)


@contextmanager
def _reading(data: bytes | str | BinaryIO) -> Iterator[_Lines]:
    """The file's lines; its encoding and CSV errors as :class:`BulkFileError`."""
    raw, text = _open(data)
    lines = _Lines(text)
    try:
        yield lines
    except UnicodeDecodeError as exc:
        raise BulkFileError(_encoding_message(raw, exc, lines.count)) from None
    except csv.Error as exc:
        raise BulkFileError(f"Line {lines.count} cannot be read as CSV ({exc}): check its "
                            f"quotes (a quote inside a cell is written twice: \"\").") from None
    finally:
        if isinstance(text, io.TextIOWrapper):
            text.detach()  # leave the caller's file open


def _records(lines: _Lines, delimiter: str, max_rows: int) -> Iterator[tuple[int, list[str]]]:
    """The rows after the header that are not blank, with their row numbers (header = 1);
    more than ``max_rows`` of them: :class:`BulkFileError`."""
    count = 0
    for row_number, record in enumerate(csv.reader(lines, delimiter=delimiter), start=2):
        if not any(cell.strip() for cell in record):
            continue
        count += 1
        if count > max_rows:
            raise BulkFileError(
                f"The file has more than {max_rows:,} rows: split it into files of at "
                f"most {max_rows:,} rows and upload them one by one.")
        yield row_number, record


def _cells(record: list[str], columns: dict[str, tuple[int, str]]) -> dict[str, str]:
    """A row's cells by column, stripped and unescaped ("" past the row's end)."""
    return {c: unescape_cell(record[i].strip()) if i < len(record) else ""
            for c, (i, _) in columns.items()}


def _well_formed(ref: str) -> bool:
    """Whether ``ref`` is a web address or an asset id (else the row's ``bad_media``)."""
    parts = urlsplit(ref)
    return (parts.scheme in ("http", "https") and "." in parts.netloc) or bool(
        _ASSET_ID.fullmatch(ref))


def _too_many(channel: ChannelLike | None, refs: Iterable[str]) -> str | None:
    """The ``too_many_media`` message of a row naming more media than its channel's
    network takes, else None."""
    if channel is None:
        return None
    rules = rules_for(channel.network)
    total = len(list(refs))
    if total <= rules.max_media:
        return None
    return (f"{rules.name} allows {rules.max_media} media in a post; this row has {total}: "
            f"remove {total - rules.max_media}.")


def recheck_duplicates(result: BulkResult, existing: Iterable[ExistingPost]) -> None:
    """Move to ``result.errors`` the valid rows of ``result`` that duplicate one of
    ``existing`` (posts stored since :func:`import_csv` checked the file).

    Cheap: no cell is read again, only each row's channel, time and text compared, so
    it can run where the file's read could not (in the transaction that stores the
    rows). Rows were already checked against each other by :func:`import_csv`."""
    checker = _RowChecker(channels={}, now=0.0, default_zone=None, resolve_media=None)
    for post in existing:
        checker.remember(post.channel_id, post.text, post.publish_at, None)
    kept = []
    for row in result.rows:
        duplicate = checker._duplicate((row.channel_id, _normalised(row.text)),
                                       row.publish_at)
        if duplicate is None:
            kept.append(row)
        else:
            result.errors.append(RowError(row.row, result.text_column, "duplicate",
                                          duplicate))
    result.rows = kept


def recheck_times(result: BulkResult, now: float) -> None:
    """Move to ``result.errors`` the valid rows of ``result`` whose time is no longer
    after ``now``: it passed while the file was checked (its media looked up, the
    account's bulk lock waited for), so one row, not the whole file, is refused."""
    kept = []
    for row in result.rows:
        if row.publish_at > now:
            kept.append(row)
        else:
            result.errors.append(RowError(
                row.row, result.time_column, "in_the_past",
                f"{_utc(row.publish_at)} passed while the file was being checked: pick a "
                "later time."))
    result.rows = kept


# -- reading the file ------------------------------------------------------------------


class _Lines:
    """Lines of a text stream, counted (the physical line number, for messages)."""

    def __init__(self, text: io.TextIOBase) -> None:
        self._text = text
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._text.readline()
        if not line:
            raise StopIteration
        self.count += 1
        return line


def _open(data: bytes | str | BinaryIO) -> tuple[BinaryIO | None, io.TextIOBase]:
    """The raw stream (for error messages) and the decoded text of ``data``."""
    if isinstance(data, str):
        return None, io.StringIO(data[1:] if data.startswith("\ufeff") else data,
                                 newline="")
    raw: BinaryIO = io.BytesIO(bytes(data)) if isinstance(data, bytes | bytearray |
                                                           memoryview) else data
    start = raw.tell() if raw.seekable() else 0
    head = raw.read(4)
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise BulkFileError("The file is UTF-32: save it as UTF-8 (in Excel: 'CSV UTF-8') "
                            "and upload it again.")
    if head.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    if raw.seekable():
        raw.seek(start)
        stream: BinaryIO = raw
    else:
        stream = io.BufferedReader(_Prefixed(head, raw))  # type: ignore[arg-type]
    return raw, io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with the bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        size = len(buffer)
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
        else:
            data = self._rest.read(size) or b""
        buffer[:len(data)] = data
        return len(data)


def _encoding_message(raw: BinaryIO | None, exc: UnicodeDecodeError, line: int) -> str:
    sample = b""
    if raw is not None and raw.seekable():
        raw.seek(0)
        sample = raw.read(1 << 20)
    where = f"near line {line}"
    if sample:
        try:
            sample.decode("utf-8")
        except UnicodeDecodeError as first:
            bad_line = sample.count(b"\n", 0, first.start) + 1
            where = f"line {bad_line} has byte 0x{sample[first.start]:02X}"
    guess = ""
    if b"\x00" in sample[:1000]:
        guess = " It looks like UTF-16 without a byte-order mark."
    elif sample:
        from charset_normalizer import from_bytes

        best = from_bytes(sample[:65536]).best()
        if best is not None and best.encoding not in ("utf_8", "ascii"):
            guess = f" (Charset detection suggests {best.encoding.replace('_', '-')}.)"
    return (f"The file is not UTF-8 ({where}, which UTF-8 does not allow).{guess} Save it "
            f"as UTF-8 (Excel: 'CSV UTF-8'; LibreOffice: character set 'Unicode (UTF-8)') "
            f"and upload it again.")


def _header(lines: _Lines) -> tuple[list[str], str]:
    """The header cells and the delimiter (from an Excel ``sep=`` line or the header)."""
    first = next(lines, None)
    while first is not None and not first.strip():
        first = next(lines, None)
    if first is None:
        raise BulkFileError("The file is empty: it needs a header line (datetime, channel, "
                            "text, ...) and one line per post.")
    match = re.fullmatch(r"\s*sep=(.)\s*", first)
    if match:
        delimiter = match.group(1)
        first = next(lines, "")
    else:
        counts = {d: _count_outside_quotes(first, d) for d in _DELIMITERS}
        delimiter = max(_DELIMITERS, key=lambda d: counts[d])
    return next(csv.reader([first], delimiter=delimiter)), delimiter


def _count_outside_quotes(line: str, delimiter: str) -> int:
    return sum(part.count(delimiter) for part in line.split('"')[::2])


def _canonical(name: str) -> str:
    return re.sub(r"[\s\-/]+", "_", name.strip().lower())


def _columns(header: list[str]) -> dict[str, tuple[int, str]]:
    """Column -> (index, name in the file); refuses a header that lacks what a post needs."""
    columns: dict[str, tuple[int, str]] = {}
    for index, name in enumerate(header):
        column = _COLUMN.get(_canonical(unescape_cell(name)))
        if column is not None and column not in columns:
            columns[column] = (index, name.strip())
    missing = []
    if "channel" not in columns:
        missing.append("channel")
    if "text" not in columns and "media" not in columns:
        missing.append("text")
    if "datetime" not in columns and not {"date", "time"} <= columns.keys():
        missing.append("datetime (or date and time)")
    if missing:
        found = ", ".join(repr(h) for h in header) or "nothing"
        raise BulkFileError(
            f"The header line lacks {', '.join(missing)}; it has {found}. Name the columns "
            f"datetime, channel, text, link, media, first_comment (or date, time, timezone "
            f"instead of datetime).")
    return columns


# -- checking rows -----------------------------------------------------------------------


def _key(name: str) -> str:
    return name.strip().lstrip("@").casefold()


def _normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@cache
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


class _RowError(Exception):
    def __init__(self, column: str, code: str, message: str) -> None:
        super().__init__(message)
        self.column, self.code, self.message = column, code, message


class _RowChecker:
    """Checks rows one by one, remembering texts per channel for duplicate checks."""

    def __init__(self, channels: dict[str, ChannelLike], now: float,
                 default_zone: ZoneInfo | None,
                 resolve_media: Callable[[str], MediaItem | None] | None,
                 refuse: Callable[[BulkRow], RowError | None] | None = None) -> None:
        self.refuse = refuse
        self.channels = channels
        self.now = now
        self.default_zone = default_zone
        self.resolve_media = resolve_media
        self.seen: dict[tuple[str, str], list[tuple[float, int | None]]] = {}

    def remember(self, channel_id: str, text: str, publish_at: float, row: int | None) -> None:
        self._remember_key((channel_id, _normalised(text)), publish_at, row)

    def _remember_key(self, key: tuple[str, str], publish_at: float, row: int | None) -> None:
        if key[1]:
            self.seen.setdefault(key, []).append((publish_at, row))

    def check(self, row: int, record: list[str], columns: dict[str, tuple[int, str]],
              names: dict[str, str], result: BulkResult) -> None:
        cells = _cells(record, columns)
        errors: list[RowError] = []

        def fail(column: str, code: str, message: str, severity: str = ERROR) -> None:
            target = errors if severity == ERROR else result.warnings
            target.append(RowError(row, names.get(column, column), code, message, severity))

        channel = None
        handle = cells.get("channel", "")
        if not handle:
            fail("channel", "channel_missing", "No channel: write a channel id or handle.")
        else:
            channel = self.channels.get(_key(handle))
            if channel is None:
                known = ", ".join(sorted(self.channels)[:5])
                fail("channel", "unknown_channel",
                     f"No connected channel {handle!r}: use the id or handle of one of your "
                     f"channels ({known}{', ...' if len(self.channels) > 5 else ''}), or "
                     f"connect it first.")
        publish_at = None
        try:
            publish_at = self._when(cells)
            if publish_at <= self.now:
                fail(self._time_column(cells), "in_the_past",
                     f"{_utc(publish_at)} is in the past: pick a later time.")
        except _RowError as exc:
            fail(exc.column, exc.code, exc.message)
        text = cells.get("text", "")
        link = cells.get("link") or None
        comment = cells.get("first_comment") or None
        media_refs = tuple(cells.get("media", "").split())
        too_many = _too_many(channel, media_refs) if self.resolve_media else None
        if too_many is not None:  # refused before any look-up of its media
            fail("media", "too_many_media", too_many)
            media, unchecked = [], []
        else:
            media, unchecked = self._media(media_refs, fail)
        if channel is not None:
            rules = rules_for(channel.network)
            problems = validate(channel.network, text, media, link, comment)
            if len(media) < len(media_refs):  # the other refs have their own message
                problems = [p for p in problems if p.code != "media_required"]
            if unchecked:
                total = len(media) + len(unchecked)
                if total > rules.max_media and not any(
                        p.code == "too_many_media" for p in problems):
                    problems.append(Problem(
                        "media", "too_many_media",
                        f"{rules.name} allows {rules.max_media} media in a post; this row "
                        f"has {total}: remove {total - rules.max_media}."))
            for problem in problems:
                fail(_problem_column(problem), problem.code, problem.message, problem.severity)
        key = None
        if channel is not None and publish_at is not None and not errors:
            key = (channel.channel_id, _normalised(text))
            duplicate = self._duplicate(key, publish_at)
            if duplicate is not None:
                fail("text", "duplicate", duplicate)
        if errors:
            result.errors += errors
            return
        assert channel is not None and publish_at is not None and key is not None
        written_in = _zone(cells["timezone"]) if cells.get("timezone") else self.default_zone
        valid = BulkRow(row, channel.channel_id, channel.network, publish_at, text, link,
                        media_refs, comment, written_in.key if written_in else "UTC")
        refused = self.refuse(valid) if self.refuse is not None else None
        if refused is not None:
            result.errors.append(refused)
            return
        self._remember_key(key, publish_at, row)
        result.rows.append(valid)

    def _duplicate(self, key: tuple[str, str], publish_at: float) -> str | None:
        for at, source in self.seen.get(key, ()):
            if abs(at - publish_at) <= DUPLICATE_WINDOW_S:
                where = f"row {source}" if source is not None else "a post already scheduled"
                return (f"Same text as {where} on this channel at {_utc(at)}, less than 3 days "
                        f"apart: change the text or move one of them.")
        return None

    def _media(self, refs: tuple[str, ...], fail: Callable[..., None]
               ) -> tuple[list[MediaItem], list[str]]:
        media, unchecked = [], []
        for ref in refs:
            parts = urlsplit(ref)
            is_url = parts.scheme in ("http", "https") and "." in parts.netloc
            if not _well_formed(ref):
                fail("media", "bad_media",
                     f"{ref!r} is neither a web address (https://...) nor an asset id: give "
                     f"one or the other; separate several with spaces.")
                continue
            if self.resolve_media is not None:
                try:
                    item = self.resolve_media(ref)
                except MediaRefused as exc:
                    fail("media", exc.code, str(exc))
                    continue
                if item is None:
                    fail("media", "unknown_media",
                         f"No asset or file {ref!r}: upload it to the project's assets, or "
                         f"give a web address that serves it.")
                else:
                    media.append(item)
                continue
            ctype = mimetypes.guess_type(parts.path if is_url else ref)[0] or ""
            kind = ctype.split("/")[0]
            if kind in ("image", "video", "audio"):
                media.append(MediaItem(kind, ctype, 0, ref))
            else:
                unchecked.append(ref)
                fail("media", "media_unchecked",
                     f"The type of {ref!r} cannot be told from its name; it is checked when "
                     f"the file is fetched.", WARNING)
        return media, unchecked

    @staticmethod
    def _time_column(cells: dict[str, str]) -> str:
        return "datetime" if cells.get("datetime") else "date"

    def _when(self, cells: dict[str, str]) -> float:
        zone_name = cells.get("timezone", "")
        zone = self.default_zone
        if zone_name:
            zone = _zone(zone_name)
            if zone is None:
                raise _RowError("timezone", "unknown_timezone",
                                f"Unknown time zone {zone_name!r}: use an IANA name such as "
                                f"Europe/Paris or America/New_York.")
        written = cells.get("datetime", "")
        if written:
            column = "datetime"
            try:
                if len(written) <= 10:
                    raise ValueError
                when = datetime.fromisoformat(written)
            except ValueError:
                raise _RowError(column, "bad_datetime",
                                f"{written!r} is not an ISO 8601 date and time: write e.g. "
                                f"2026-05-01T18:30:00+02:00 (or 2026-05-01 18:30 with a "
                                f"timezone column).") from None
            if when.tzinfo is not None:
                return _agreeing(when, zone if zone_name else None, zone_name, column)
        elif "date" not in cells:
            raise _RowError("datetime", "datetime_missing",
                            "No date and time: write e.g. 2026-05-01T18:30:00+02:00.")
        else:
            column = "date"
            day, hour = cells.get("date", ""), cells.get("time", "")
            if not day:
                raise _RowError("date", "date_missing",
                                "No date: write one as YYYY-MM-DD, e.g. 2026-05-01.")
            if not hour:
                raise _RowError("time", "time_missing",
                                "No time: write one as HH:MM in 24-hour time, e.g. 18:30.")
            try:
                parsed_day = date.fromisoformat(day)
            except ValueError:
                raise _RowError("date", "bad_date",
                                f"{day!r} is not a date: write YYYY-MM-DD, e.g. "
                                f"2026-05-01.") from None
            try:
                parsed_time = clock.fromisoformat(hour)
            except ValueError:
                raise _RowError("time", "bad_time",
                                f"{hour!r} is not a time: write HH:MM in 24-hour time, e.g. "
                                f"18:30.") from None
            if parsed_time.tzinfo is not None:
                return _agreeing(datetime.combine(parsed_day, parsed_time),
                                 zone if zone_name else None, zone_name, "time")
            when = datetime.combine(parsed_day, parsed_time)
        if zone is None:
            raise _RowError(column, "no_timezone",
                            f"{when:%Y-%m-%d %H:%M} has no time zone: add an offset (e.g. "
                            f"+02:00) or a timezone column with an IANA name such as "
                            f"Europe/Paris.")
        return _localise(when, zone, "datetime" if column == "datetime" else "time")


def _agreeing(when: datetime, zone: ZoneInfo | None, zone_name: str, column: str) -> float:
    """The instant of ``when`` (written with an offset), checked against the row's
    ``timezone`` cell when it has one: an offset that zone did not have then is a
    contradiction, and which of the two the author meant cannot be told."""
    if zone is not None:
        theirs = when.astimezone(zone).utcoffset()
        if theirs != when.utcoffset():
            raise _RowError(column, "offset_contradicts_timezone",
                            f"{when:%Y-%m-%d %H:%M} is written with the offset "
                            f"{_offset(when.utcoffset())}, but {zone_name} is at "
                            f"{_offset(theirs)} then: drop the offset to mean {zone_name}'s "
                            f"time, or the timezone cell to mean the offset.")
    return when.timestamp()


def _localise(naive: datetime, zone: ZoneInfo, column: str) -> float:
    """Epoch seconds of a wall-clock time in ``zone``; refuses DST gaps and repeated hours."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.timestamp()
    back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    before, after = _offset(first.utcoffset()), _offset(second.utcoffset())
    if back != naive:
        raise _RowError(column, "dst_gap",
                        f"{naive:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks go "
                        f"forward that night (from {before} to {after}). Pick a time outside "
                        f"the gap, e.g. {back:%H:%M}.")
    raise _RowError(column, "dst_ambiguous",
                    f"{naive:%Y-%m-%d %H:%M} happens twice in {zone.key}: the clocks go back "
                    f"that night (from {before} to {after}). Write the offset you mean, e.g. "
                    f"{naive:%Y-%m-%dT%H:%M}{before} (the first) or {after} (the second).")


def _problem_column(problem: Problem) -> str:
    if problem.field.startswith("media"):
        return "media"
    if problem.field in ("link", "first_comment"):
        return problem.field
    return "text"
