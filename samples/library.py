"""An account's samples in the one database, indexed from folders incrementally.

:meth:`SampleLibrary.index_folder` walks a folder for WAV/FLAC/AIFF/OGG files. A file
whose size and modification time are unchanged is skipped without reading it; one whose
bytes hash (SHA-256) to the stored content hash is only re-stamped; others are decoded
with :func:`dsp_core.audio_io.read_audio` and analysed (:mod:`samples.analysis`) in a
worker thread. Files gone from the folder drop out of the library. Every change also
updates the in-memory :class:`~samples.search.SearchIndex` incrementally. The index is
built from the table lazily and off the event loop: :meth:`load` starts the build (the
rows read from the database, the index made in a worker thread) and the first search
awaits it (:meth:`searchable`); changes made meanwhile are replayed on it before it is
used, so none is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from database import Database, load_migrations
from dsp_core.audio_io import read_audio
from dsp_core.errors import AudioFileError

from .analysis import analyse
from .errors import BadQuery, SampleNotFound
from .records import COLUMNS, Sample
from .search import SearchIndex
from .tags import parse_name

log = logging.getLogger(__name__)

MIGRATIONS = load_migrations("samples", Path(__file__).with_name("migrations"))
EXTENSIONS = frozenset({".wav", ".flac", ".aif", ".aiff", ".ogg"})
#: ``progress(done, total, path)`` after each file.
Progress = Callable[[int, int, str], None]


@dataclass
class IndexReport:
    """What one indexing run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """The counts as JSON."""
        return dict(self.__dict__)


def sample_id(account_id: str, path: str) -> str:
    """A sample's id: stable for an account's path, unguessable from another account."""
    return hashlib.sha256(f"{account_id}\0{path}".encode()).hexdigest()[:24]


def file_hash(path: str) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def audio_files(folder: Path) -> list[Path]:
    """The sample files under ``folder``, sorted (hidden files and folders skipped)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in sorted(files)
                  if not f.startswith(".") and Path(f).suffix.lower() in EXTENSIONS]
    return found


def analyse_file(account_id: str, folder: str, path: str, content_hash: str) -> Sample:
    """Decode, measure and tag one file (blocking)."""
    stat = os.stat(path)
    audio, rate = read_audio(path)
    measured = analyse(audio, rate)
    tags = parse_name(path, folder)
    kind = tags.kind or measured.kind
    instrument, confidence = measured.instrument, measured.instrument_confidence
    if tags.instrument:
        instrument, confidence = tags.instrument, 0.9
    analysis = measured.to_dict() | {"name_bpm": tags.bpm,
                                     "name_key": list(tags.key) if tags.key else None}
    return Sample(account_id=account_id, id=sample_id(account_id, path), folder=folder,
                  path=path, name=Path(path).name, content_hash=content_hash,
                  size=stat.st_size, mtime_ns=stat.st_mtime_ns, words=tags.words,
                  duration=measured.duration, loudness_lufs=measured.loudness_lufs,
                  peak_db=measured.peak_db, bpm=measured.bpm or _name_bpm(tags.bpm, kind),
                  bpm_confidence=measured.bpm_confidence,
                  key=measured.key or tags.key, key_confidence=measured.key_confidence,
                  kind=kind, instrument=instrument, instrument_confidence=confidence,
                  analysis=analysis, indexed_at=time.time())


def _name_bpm(bpm: float | None, kind: str) -> float | None:
    """A BPM from the name counts for loops only (a one-shot has no tempo)."""
    return bpm if kind == "loop" else None


class SampleLibrary:
    """Every account's samples: the ``samples`` table and its in-memory search index."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._index: SearchIndex | None = None
        self._build: asyncio.Task[SearchIndex] | None = None
        #: Changes made while the index is being built: ("add", Sample) / ("remove", id).
        self._pending: list[tuple[str, object]] = []

    async def load(self, *, wait: bool = False) -> int:
        """Migrate the table and start building the search index from it (``wait``:
        until it is built); the number of samples."""
        await self.database.migrate(MIGRATIONS)
        count = int(await self.database.fetchval("SELECT COUNT(*) FROM samples") or 0)
        if self._build is not None and not self._build.done():
            self._build.cancel()  # an earlier load's build: replaced by this one
        self._index, self._pending = None, []
        self._build = asyncio.create_task(self._built(), name="samples: search index")
        if wait:
            await self.searchable()
        return count

    async def _built(self) -> SearchIndex:
        rows = await self.database.fetch(f"SELECT {', '.join(COLUMNS)} FROM samples")
        index = await asyncio.to_thread(_index_of, rows)
        if asyncio.current_task() is not self._build:  # replaced by a later load
            return index
        for change, value in self._pending:  # on the loop: nothing changes under it
            if change == "add":
                index.add(value)  # type: ignore[arg-type]
            else:
                index.remove(value)  # type: ignore[arg-type]
        self._pending = []
        self._index = index
        log.info("sample search index built: %d samples", len(index))
        return index

    async def searchable(self) -> SearchIndex:
        """The search index, once built (the build starts here when :meth:`load` was not
        called)."""
        while True:
            if self._index is not None:
                return self._index
            build = self._build
            if build is None or (build.done() and (build.cancelled() or build.exception())):
                build = self._build = asyncio.create_task(self._built(),
                                                          name="samples: search index")
            try:
                return await asyncio.shield(build)
            except asyncio.CancelledError:
                if build is self._build or not build.cancelled():
                    raise  # this caller was cancelled
                # the build was replaced by a later load(): wait for that one

    @property
    def index(self) -> SearchIndex:
        """The built search index (:meth:`searchable` waits for it)."""
        if self._index is None:
            raise RuntimeError("the sample search index is still being built: await "
                               "library.searchable()")
        return self._index

    def _changed(self, change: str, value: Sample | str) -> None:
        if self._index is not None:
            if change == "add":
                self._index.add(value)  # type: ignore[arg-type]
            else:
                self._index.remove(value)  # type: ignore[arg-type]
        elif self._build is not None:
            self._pending.append((change, value))

    async def get(self, account_id: str, sid: str) -> Sample:
        """One of the account's samples; another account's id is not found like a missing one."""
        rows = await self.database.fetch(
            f"SELECT {', '.join(COLUMNS)} FROM samples WHERE account_id = ? AND id = ?",
            account_id, sid)
        if not rows:
            raise SampleNotFound(f"no sample {sid!r} in this account's library")
        return Sample.from_row(rows[0])

    async def index_folder(self, account_id: str, folder: str | os.PathLike[str], *,
                           progress: Progress | None = None) -> IndexReport:
        """Index ``folder`` for ``account_id`` incrementally (see the module docstring)."""
        root = Path(folder).resolve()
        if not root.is_dir():
            raise BadQuery(f"{os.fspath(folder)!r} is not a folder; give a folder of samples")
        started = time.perf_counter()
        report = IndexReport()
        known = {row["path"]: row for row in await self.database.fetch(
            "SELECT id, path, size, mtime_ns, content_hash FROM samples "
            "WHERE account_id = ? AND folder = ?", account_id, str(root))}
        files = await asyncio.to_thread(audio_files, root)
        present = set()
        for done, path in enumerate(files, 1):
            name = str(path)
            present.add(name)
            await self._index_one(account_id, str(root), name, known.get(name), report)
            if progress is not None:
                progress(done, len(files), name)
        gone = [row for path, row in known.items() if path not in present]
        for row in gone:
            await self.database.execute("DELETE FROM samples WHERE account_id = ? AND id = ?",
                                        account_id, row["id"])
            self._changed("remove", row["id"])
        report.removed = len(gone)
        report.seconds = time.perf_counter() - started
        log.info("indexed %s for %s: %s", root, account_id, report.to_dict())
        return report

    async def index_file(self, account_id: str, folder: str | os.PathLike[str],
                         path: str | os.PathLike[str]) -> Sample:
        """Index one file of ``folder`` (an upload) and return it as stored."""
        root, name = Path(folder).resolve(), str(Path(path).resolve())
        rows = await self.database.fetch(
            "SELECT id, path, size, mtime_ns, content_hash FROM samples "
            "WHERE account_id = ? AND path = ?", account_id, name)
        report = IndexReport()
        failure = await self._index_one(account_id, str(root), name, rows[0] if rows else None,
                                        report)
        if failure is not None:
            raise BadQuery(f"{Path(name).name}: could not be indexed as a sample ({failure})")
        return await self.get(account_id, sample_id(account_id, name))

    async def _index_one(self, account_id: str, folder: str, path: str, row, report
                         ) -> str | None:
        """Index one file into ``report``; why it failed (counted, logged), or None."""
        try:
            stat = os.stat(path)
            if row is not None and row["size"] == stat.st_size and \
                    row["mtime_ns"] == stat.st_mtime_ns:
                report.unchanged += 1
                return None
            digest = await asyncio.to_thread(file_hash, path)
            if row is not None and row["content_hash"] == digest:
                await self.database.execute(
                    "UPDATE samples SET size = ?, mtime_ns = ? WHERE account_id = ? AND id = ?",
                    stat.st_size, stat.st_mtime_ns, account_id, row["id"])
                report.unchanged += 1
                return None
        except OSError as exc:
            log.warning("skipped %s: %s", path, exc)
            report.failed += 1
            return "not readable"
        try:
            sample = await asyncio.to_thread(analyse_file, account_id, folder, path, digest)
        except (AudioFileError, OSError) as exc:
            log.warning("skipped %s: %s", path, exc)
            report.failed += 1
            return "not a readable WAV/FLAC/AIFF/OGG file"
        except Exception:  # an analysis fault: this file fails, the rest of the folder goes on
            log.exception("could not analyse %s", path)
            report.failed += 1
            return "its audio could not be analysed"
        await self.save(sample)
        if row is None:
            report.added += 1
        else:
            report.updated += 1
        return None

    async def forget_account(self, account_id: str) -> int:
        """Drop every sample of an account (its erasure); the number dropped."""
        rows = await self.database.fetch("SELECT id FROM samples WHERE account_id = ?",
                                         account_id)
        await self.database.execute("DELETE FROM samples WHERE account_id = ?", account_id)
        for row in rows:
            self._changed("remove", row["id"])
        return len(rows)

    async def save(self, sample: Sample) -> None:
        """Store (or replace) one sample and put it in the search index."""
        async with self.database.transaction() as tx:
            await tx.execute("DELETE FROM samples WHERE account_id = ? AND id = ?",
                             sample.account_id, sample.id)
            marks = ", ".join("?" for _ in COLUMNS)
            await tx.execute(f"INSERT INTO samples ({', '.join(COLUMNS)}) VALUES ({marks})",
                             *sample.row())
        self._changed("add", sample)


def _index_of(rows: list) -> SearchIndex:
    """A search index of ``rows`` (blocking: run in a worker thread)."""
    index = SearchIndex()
    index.add_many(Sample.from_row(row) for row in rows)
    return index
