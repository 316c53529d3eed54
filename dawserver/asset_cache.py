"""The local asset cache's bookkeeping: pins, takes waiting to be published, and size.

When an object store holds every asset, ``AssetStore.root/objects`` is a bounded cache
(:func:`dawserver.asset_objects.evict`). This module says which cached files eviction must
leave alone and how big the cache is, without scanning the directory each time:

- A *pin* is a lease file ``pins/<asset id>.<token>``, made for as long as a build, render
  or bounce reads the file (:func:`pinned`). Files are used across processes (bounce
  workers), so pins are files, not counters. A pin older than :data:`PIN_MAX_AGE_S` is
  left by a dead process and no longer counts.
- A *lease* ``pins/<asset id>.lease`` keeps a file just fetched or used for
  :data:`LEASE_S` (its modification time is when it ends): a caller that fetches its
  sources one by one and then renders (a bounce) does not see source k-1 evicted by the
  fetch of source k, even without a pin.
- A *pending* mark ``pending/<asset id>`` lists the projects a locally recorded take still
  has to be published for (:func:`mark_pending`); the take's audio exists only here until
  then, so it is never evicted, and :func:`dawserver.asset_objects.publish_pending`
  retries it.
- :class:`CacheSize` keeps the running total of cached audio, scanned once and then kept
  up to date by the code that adds or deletes files; it rescans every
  :data:`RESCAN_S` to pick up other processes' files.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .asset_store import AssetStore

#: What a cached file being evicted is renamed to end with (``asset_objects.evict``);
#: one a crash left there is deleted by the next scan.
EVICTING_SUFFIX = ".evicting"
#: A pin older than this was left by a process that died; it no longer protects its file.
PIN_MAX_AGE_S = 6 * 3600.0
#: Seconds a file fetched or used stays leased (not evicted) without a pin.
LEASE_S = 600.0
#: Seconds between full rescans of the cache directory.
RESCAN_S = 300.0
AUDIO_EXTENSIONS = ("wav", "flac", "aiff")


def _pins(store: AssetStore) -> Path:
    return store.root / "pins"


def _pending(store: AssetStore) -> Path:
    return store.root / "pending"


#: Guards the pending marks: they are appended on the event loop and rewritten from
#: threads (a region move), and a rewrite must not lose a mark appended meanwhile.
_PENDING_LOCK = threading.Lock()


@contextlib.contextmanager
def pinned(store: AssetStore, asset_ids: Iterable[str]) -> Iterator[None]:
    """Keep the cached audio of ``asset_ids`` from eviction inside the ``with`` block."""
    folder = _pins(store)
    folder.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    made = []
    try:
        for asset_id in set(asset_ids):
            path = folder / f"{asset_id}.{token}"
            path.touch()
            made.append(path)
        yield
    finally:
        for path in made:
            path.unlink(missing_ok=True)


def lease(store: AssetStore, asset_id: str, seconds: float | None = None) -> None:
    """Keep ``asset_id``'s cached audio from eviction for ``seconds`` from now (default
    :data:`LEASE_S`; 0 ends its lease)."""
    seconds = LEASE_S if seconds is None else seconds
    folder = _pins(store)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{asset_id}.lease"
    path.touch()
    ends = time.time() + seconds
    os.utime(path, (ends, ends))


def pinned_ids(store: AssetStore, now: float | None = None) -> set[str]:
    """Ids of the assets pinned or leased now, or waiting to be published (never
    evicted)."""
    return in_use(store, now) | set(pending(store))


def in_use(store: AssetStore, now: float | None = None) -> set[str]:
    """Ids of the assets pinned or leased now: a reader (a build, render or bounce) has
    their local files open or about to be, so no one deletes them."""
    now = time.time() if now is None else now
    ids = set()
    for path in _folder_entries(_pins(store)):
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue
        fresh = mtime > now if path.suffix == ".lease" else now - mtime < PIN_MAX_AGE_S
        if fresh:
            ids.add(path.name.split(".")[0])
        else:
            path.unlink(missing_ok=True)  # its process died with the pin
    return ids


def _folder_entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def mark_pending(store: AssetStore, asset_id: str, project_id: str) -> None:
    """Record that ``asset_id`` still has to be published for ``project_id``."""
    folder = _pending(store)
    folder.mkdir(parents=True, exist_ok=True)
    with _PENDING_LOCK, open(folder / asset_id, "a", encoding="utf-8") as marks:
        marks.write(project_id + "\n")


def clear_pending(store: AssetStore, asset_id: str) -> None:
    """``asset_id`` is published for every project that waited for it."""
    with _PENDING_LOCK:
        (_pending(store) / asset_id).unlink(missing_ok=True)


def unmark_pending(store: AssetStore, asset_id: str, projects: Iterable[str]) -> None:
    """``asset_id`` no longer waits to be published for ``projects`` (published for
    them, or they left this region); a mark appended for another project meanwhile
    stays, and a list left empty goes."""
    gone, mark = set(projects), _pending(store) / asset_id
    with _PENDING_LOCK:
        try:
            waiting = mark.read_text(encoding="utf-8").split()
        except FileNotFoundError:
            return
        rest = list(dict.fromkeys(p for p in waiting if p not in gone))
        if not rest:
            mark.unlink(missing_ok=True)
        elif len(rest) != len(waiting):
            # written beside the uploads, not among the marks (each file there is a take)
            tmp = store.root / "tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            partial = tmp / f".{asset_id}.{uuid.uuid4().hex}.pending"
            with open(partial, "w", encoding="utf-8") as out:
                out.write("".join(f"{p}\n" for p in rest))
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, mark)


def pending(store: AssetStore) -> dict[str, list[str]]:
    """Asset id → the projects it still has to be published for."""
    out = {}
    for path in _folder_entries(_pending(store)):
        with contextlib.suppress(FileNotFoundError):
            projects = path.read_text(encoding="utf-8").split()
            out[path.name] = list(dict.fromkeys(projects))
    return out


def mark_used(path: Path) -> None:
    """Record that ``path`` was used now, for the least-recently-used eviction: its
    access time, never its modification time, which decoders key their caches on
    (:class:`~dsp_core.audio_io.SourceCache`: a touched mtime made every bounce decode
    its sources again)."""
    stat = path.stat()
    os.utime(path, ns=(time.time_ns(), stat.st_mtime_ns))


def _older_than(path: Path, seconds: float) -> bool:
    """Whether ``path`` was last renamed (or written) over ``seconds`` ago."""
    try:
        return time.time() - path.stat().st_ctime > seconds
    except FileNotFoundError:
        return False


class CacheSize:
    """The cached audio files of one store with their last use (access time, see
    :func:`mark_used`) and size (thread-safe)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[Path, tuple[float, int]] = {}
        self.total = 0
        self.scanned_at = float("-inf")
        self.lock = threading.Lock()

    def scan_if_due(self, now: float | None = None) -> None:
        """Rescan the directory when the last scan is older than :data:`RESCAN_S`."""
        now = time.monotonic() if now is None else now
        if now - self.scanned_at < RESCAN_S:
            return
        files = {}
        for path in (self.root / "objects").glob("*/*"):
            if path.suffix == EVICTING_SUFFIX and _older_than(path, RESCAN_S):
                path.unlink(missing_ok=True)  # a crash cut its eviction short
            elif path.suffix.lstrip(".") in AUDIO_EXTENSIONS:
                with contextlib.suppress(FileNotFoundError):
                    stat = path.stat()
                    files[path] = (stat.st_atime, stat.st_size)
        with self.lock:
            self.files, self.scanned_at = files, now
            self.total = sum(size for _, size in files.values())

    def note(self, path: Path) -> None:
        """``path`` was added to the cache, or used (its size and time are read now)."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return self.forget(path)
        with self.lock:
            _, old = self.files.get(path, (0.0, 0))
            self.files[path] = (stat.st_atime, stat.st_size)
            self.total += stat.st_size - old

    def forget(self, path: Path) -> None:
        """``path`` left the cache."""
        with self.lock:
            _, size = self.files.pop(path, (0.0, 0))
            self.total -= size

    def delete(self, path: Path) -> None:
        """Delete ``path`` (gone already is fine) and take it out of the total."""
        path.unlink(missing_ok=True)
        self.forget(path)

    def oldest_first(self) -> list[tuple[Path, int]]:
        """The cached files, least recently used first, with their sizes."""
        with self.lock:
            ordered = sorted(self.files.items(), key=lambda item: item[1][0])
        return [(path, size) for path, (_, size) in ordered]


_SIZES: weakref.WeakKeyDictionary[AssetStore, CacheSize] = weakref.WeakKeyDictionary()
_SIZES_LOCK = threading.Lock()


def cache_size(store: AssetStore) -> CacheSize:
    """The :class:`CacheSize` of ``store`` (made on first use)."""
    with _SIZES_LOCK:
        size = _SIZES.get(store)
        if size is None:
            size = _SIZES[store] = CacheSize(store.root)
        return size
