"""Content-addressed audio storage on local disk, with waveform peaks made at ingest.

Layout under ``root`` (``DATA_DIR/assets`` by default)::

    objects/ab/<sha256>.<wav|flac|aiff>   the audio, named by the SHA-256 of its bytes
    objects/ab/<sha256>.json              format, rate, channels, frames, first name
    objects/ab/<sha256>.peaks.npz         min/max peaks at several zoom levels
    projects/<project id>.txt             ids of the assets uploaded to that project
    projects/<project id>.names.json      the name each was uploaded to that project under
    peaks-cache/<key>.peaks.npz           peaks of other project sources, made on demand
    tmp/                                  uploads in progress (removed on any failure)

An upload is written to ``tmp/`` while its hash is computed, then checked
with soundfile (every sample decoded), and only then renamed into place, so a
rejected or aborted upload leaves nothing behind.  Identical bytes are stored
once, so the description's name is the first upload's: a project shows its own upload's
name (:meth:`AssetStore.project_name`), never another project's.  A deleted project's
index goes (:meth:`AssetStore.forget_project`), and with it each of its assets that no
other project's index lists (the audio, its description and its peaks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import soundfile as sf

from dsp_core.audio_io import MAX_IR_CHANNELS, AudioTooLong, read_audio
from dsp_core.errors import AudioFileError
from dsp_core.peaks import Peaks, compute_peaks, peaks_from_bytes

from . import asset_cache
from .atomic_files import write_atomic
from .leftovers import sweep_leftovers

if TYPE_CHECKING:
    from .storage import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = int(os.environ.get("DAW_MAX_UPLOAD_MB", "512")) << 20
EXTENSIONS = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "AIFF": "aiff", "RF64": "wav"}
_ASSET_ID = re.compile(r"^[0-9a-f]{64}$")


class AssetError(Exception):
    """Base class of asset storage errors."""


class AssetTooLarge(AssetError):
    """The upload is over the size limit, or decodes to more audio than the server
    decodes (:data:`dsp_core.audio_io.MAX_DECODED_BYTES`)."""


class InvalidAudio(AssetError):
    """The bytes are not a readable WAV/FLAC/AIFF file."""


class AssetNotFound(AssetError):
    """No asset with that id."""


@dataclass(frozen=True)
class Asset:
    """One stored audio file."""

    id: str
    path: str
    format: str
    sample_rate: int
    channels: int
    frames: int
    name: str = ""
    bytes: int = 0

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def to_json(self) -> dict:
        """The asset as the JSON the HTTP API returns (``source``: what a clip names, its id)."""
        data = asdict(self)
        del data["path"]  # a server path never leaves the server
        data["source"] = self.id
        data["duration"] = self.duration
        return data


def named(asset: Asset, name: str | None) -> Asset:
    """``asset`` under ``name`` (a project's own name of it), unchanged for None."""
    return asset if name is None else dataclasses.replace(asset, name=name)


class AssetStore:
    """Audio files on local disk, addressed by the SHA-256 of their bytes."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 objects: ObjectStore | None = None, cache_bytes: int = 2 << 30) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes
        #: The object store that holds the assets (None: this directory is the store;
        #: else the directory is a bounded cache of it, :mod:`dawserver.asset_objects`).
        self.objects = objects
        self.cache_bytes = cache_bytes
        #: Orders storing an asset for a project with deleting another project's assets.
        self._indexes = threading.Lock()
        for sub in ("objects", "projects", "peaks-cache", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        sweep_leftovers(self.root / "tmp")  # what a crash left there

    # -- ingest ----------------------------------------------------------------------------

    async def ingest_stream(self, chunks: AsyncIterator[bytes], *, project_id: str,
                            name: str = "", loop_executor=None) -> Asset:
        """Store an upload arriving as ``chunks``; raises :class:`AssetError` and keeps nothing.

        The chunks are hashed and written to a temporary file as they come;
        checking the audio and computing peaks runs in an executor.
        """
        import asyncio

        digest = hashlib.sha256()
        size = 0
        loop = asyncio.get_running_loop()
        handle, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", suffix=".upload")
        tmp = Path(tmp_name)
        try:
            # Unbuffered, each chunk written in the executor: a slow disk never holds the
            # event loop (and with it every editor's edits).
            with os.fdopen(handle, "wb", buffering=0) as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise AssetTooLarge(
                            f"upload is over the {self.max_bytes}-byte limit "
                            f"({self.max_bytes >> 20} MiB); send a smaller or compressed "
                            "(FLAC) file")
                    digest.update(chunk)
                    await loop.run_in_executor(loop_executor, _write_all, out, chunk)
            if size == 0:
                raise InvalidAudio("the upload is empty; send a WAV, FLAC or AIFF file")
            if self.objects is not None:
                return await self._ingest_remote(tmp, digest.hexdigest(), size, project_id,
                                                 name, loop_executor)
            return await loop.run_in_executor(loop_executor, self._finish, tmp,
                                              digest.hexdigest(), size, project_id, name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def ingest_file(self, path: Path, *, project_id: str, name: str = "") -> Asset:
        """Store a copy of a local file (blocking; used for recorded takes)."""
        digest = hashlib.sha256()
        handle, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", suffix=".upload")
        tmp = Path(tmp_name)
        try:
            size = 0
            with open(path, "rb") as src, os.fdopen(handle, "wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            return self._finish(tmp, digest.hexdigest(), size, project_id, name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _finish(self, tmp: Path, asset_id: str, size: int, project_id: str, name: str) -> Asset:
        ext, audio, rate = self._check(tmp, name)
        return self._place(tmp, asset_id, size, project_id, name, ext, audio, rate)

    def _check(self, tmp: Path, name: str) -> tuple[str, Any, int]:
        """The format, samples and rate of an upload (:class:`InvalidAudio` if it is none)."""
        label = name or "upload"
        try:
            fmt = sf.info(str(tmp)).format
        except (sf.LibsndfileError, RuntimeError) as exc:
            reason = str(exc).replace(f"'{tmp}'", "").replace(str(tmp), "").strip()
            raise InvalidAudio(f"{label}: not a readable WAV/FLAC/AIFF file ({reason})"
                               ) from None
        ext = EXTENSIONS.get(fmt)
        if ext is None:
            raise InvalidAudio(f"{label}: {fmt} files are not accepted; "
                               f"send WAV, FLAC or AIFF")
        try:  # up to 4 channels: a true-stereo impulse response (clips refuse more than 2)
            audio, rate = read_audio(tmp, MAX_IR_CHANNELS)
        except AudioTooLong as exc:
            raise AssetTooLarge(str(exc).replace(str(tmp), label)) from None
        except AudioFileError as exc:
            raise InvalidAudio(str(exc).replace(str(tmp), label)) from None
        if audio.shape[0] == 3:  # neither a clip source nor an impulse response
            raise InvalidAudio(f"{label}: has 3 channels; send mono or stereo audio, or a "
                               "4-channel (LL, LR, RL, RR) true-stereo impulse response")
        return ext, audio, rate

    def _place(self, tmp: Path, asset_id: str, size: int, project_id: str, name: str,
               ext: str, audio: Any, rate: int, peaks: Peaks | None = None) -> Asset:
        """Move a checked upload into ``objects/`` with its description and peaks."""
        final = self._object(asset_id, ext)
        if peaks is None and not final.exists():
            peaks = compute_peaks(audio, rate)  # outside the lock
        with self._indexes:  # a project being deleted cannot take the object away between
            final.parent.mkdir(parents=True, exist_ok=True)
            if not final.exists():
                if peaks is None:  # deleted since
                    peaks = compute_peaks(audio, rate)
                self._write_atomic(final.with_suffix(".peaks.npz"), peaks.to_bytes())
                asset = Asset(asset_id, str(final), ext, rate, audio.shape[0],
                              audio.shape[1], os.path.basename(name), size)
                meta = json.dumps(asdict(asset))
                self._write_atomic(final.with_suffix(".json"), meta.encode())
                os.replace(tmp, final)
                log.info("stored asset %s (%s, %d bytes)", asset_id, name or "upload", size)
            self._remember(project_id, asset_id, os.path.basename(name))
            return self.asset_of(project_id, asset_id)

    # -- lookup ----------------------------------------------------------------------------

    def _object(self, asset_id: str, ext: str) -> Path:
        return self.root / "objects" / asset_id[:2] / f"{asset_id}.{ext}"

    def asset(self, asset_id: str) -> Asset:
        """The stored asset ``asset_id`` (raises :class:`AssetNotFound`)."""
        if not _ASSET_ID.match(asset_id):
            raise AssetNotFound(f"{asset_id!r} is not an asset id (64 hex digits)")
        meta = self.root / "objects" / asset_id[:2] / f"{asset_id}.json"
        try:
            return Asset(**json.loads(meta.read_text()))
        except FileNotFoundError:
            raise AssetNotFound(f"no asset {asset_id}") from None

    def asset_for_source(self, source: str) -> Asset | None:
        """The asset whose file is ``source`` (a clip source path), if it is one."""
        path = Path(source)
        if path.parent.parent != self.root / "objects":
            return None
        try:
            return self.asset(path.name.split(".")[0])
        except AssetNotFound:
            return None

    def project_assets(self, project_id: str) -> list[str]:
        """Ids of the assets uploaded to ``project_id``, oldest first."""
        index = self._index(project_id)
        if not index.exists():
            return []
        seen: dict[str, None] = {}
        for line in index.read_text().split():
            seen.setdefault(line, None)
        return list(seen)

    def asset_of(self, project_id: str, asset_id: str) -> Asset:
        """:meth:`asset`, named as ``project_id`` named it (:meth:`project_name`; the
        first upload's name when none was kept)."""
        return named(self.asset(asset_id), self.project_name(project_id, asset_id))

    def project_name(self, project_id: str, asset_id: str) -> str | None:
        """The name ``asset_id`` was uploaded to ``project_id`` under (its latest upload
        there); None when this node recorded none (an upload from before names were kept
        per project, or one another node took)."""
        return self.project_names(project_id).get(asset_id)

    def project_names(self, project_id: str) -> dict[str, str | None]:
        """The names this node knows of ``project_id``'s assets, by id, read once (a list
        reads them for all its assets). None: the object store was asked and kept no name
        (an upload from before names were kept per project)."""
        try:
            return json.loads(self._names(project_id).read_text())
        except FileNotFoundError:
            return {}

    def belongs(self, project_id: str, asset_id: str) -> bool:
        """Whether ``asset_id`` was uploaded to (or recorded in) ``project_id``."""
        return asset_id in self.project_assets(project_id)

    def peaks(self, asset_id: str) -> Peaks:
        """The peaks computed when the asset was stored."""
        asset = self.asset(asset_id)
        return peaks_from_bytes(Path(asset.path).with_suffix(".peaks.npz").read_bytes())

    def peaks_of_file(self, source: str) -> Peaks:
        """Peaks of any audio file (an asset's stored peaks, or computed once and cached)."""
        asset = self.asset_for_source(source)
        if asset is not None:
            return self.peaks(asset.id)
        stat = os.stat(source)
        key = hashlib.sha256(f"{os.path.abspath(source)}|{stat.st_size}|{stat.st_mtime_ns}"
                             .encode()).hexdigest()
        cached = self.root / "peaks-cache" / f"{key}.peaks.npz"
        if cached.exists():
            return peaks_from_bytes(cached.read_bytes())
        audio, rate = read_audio(source)
        peaks = compute_peaks(audio, rate)
        self._write_atomic(cached, peaks.to_bytes())
        return peaks

    # -- deletion --------------------------------------------------------------------------

    def forget_project(self, project_id: str) -> list[Path]:
        """Delete ``project_id``'s index and every asset of it that no other project lists
        (its audio, description and peaks; blocking); the files deleted.

        An asset uploaded to several projects (stored once) stays while another still
        lists it.
        """
        removed: list[Path] = []
        with self._indexes:
            own = self._index(project_id)
            mine = self.project_assets(project_id)
            for listing in (own, self._names(project_id)):
                if listing.exists():
                    listing.unlink()
                    removed.append(listing)
            if not mine:
                return removed
            cached = asset_cache.cache_size(self)
            others: set[str] = set()
            for index in (self.root / "projects").glob("*.txt"):
                others.update(index.read_text().split())
            for asset_id in mine:
                if asset_id in others or not _ASSET_ID.match(asset_id):
                    continue
                folder = self.root / "objects" / asset_id[:2]
                for path in folder.glob(f"{asset_id}.*"):
                    cached.delete(path)
                    removed.append(path)
                # the cache lease of audio that no longer exists (asset_cache.lease); pins
                # belong to the readers that made them and go when their block ends
                lease = self.root / "pins" / f"{asset_id}.lease"
                if lease.exists():
                    lease.unlink(missing_ok=True)
                    removed.append(lease)
        log.info("deleted the assets of project %s (%d files)", project_id, len(removed))
        return removed

    # -- object storage (the methods live in asset_objects.py) ----------------------------

    async def _ingest_remote(self, tmp: Path, asset_id: str, size: int, project_id: str,
                             name: str, executor: Any) -> Asset:
        from .asset_objects import ingest_remote

        return await ingest_remote(self, tmp, asset_id, size, project_id, name, executor)

    # -- internals -------------------------------------------------------------------------

    def _index(self, project_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", project_id)
        return self.root / "projects" / f"{safe}.txt"

    def _names(self, project_id: str) -> Path:
        return self._index(project_id).with_suffix(".names.json")

    def _remember(self, project_id: str, asset_id: str, name: str | None = None) -> None:
        """List ``asset_id`` in the project's index, under ``name`` when given (the
        caller holds ``_indexes``)."""
        if asset_id not in self.project_assets(project_id):
            with open(self._index(project_id), "a") as index:
                index.write(asset_id + "\n")
        if name is not None:
            self._note_name(project_id, asset_id, name)

    def _note_name(self, project_id: str, asset_id: str, name: str | None) -> None:
        """Keep ``name`` as ``asset_id``'s in the project (None: none was kept; the
        caller holds ``_indexes``)."""
        self._note_names(project_id, {asset_id: name})

    def _note_names(self, project_id: str, found: dict[str, str | None]) -> None:
        """Keep the names ``found`` (asset id → name, as :meth:`_note_name`) in the
        project, in one rewrite and only when one changed (the caller holds
        ``_indexes``)."""
        with self._names_locked():
            names = self.project_names(project_id)
            if any(asset_id not in names or names[asset_id] != name
                   for asset_id, name in found.items()):
                self._write_atomic(self._names(project_id),
                                   json.dumps({**names, **found}).encode())

    def _forget_name(self, project_id: str, asset_id: str) -> None:
        """Take ``asset_id``'s name out of the project's names (the caller holds
        ``_indexes``)."""
        with self._names_locked():
            names = self.project_names(project_id)
            if asset_id not in names:
                return
            del names[asset_id]
            if names:
                self._write_atomic(self._names(project_id), json.dumps(names).encode())
            else:
                self._names(project_id).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _names_locked(self) -> Iterator[None]:
        """Hold the projects' names against other processes sharing this directory while
        one is read, changed and rewritten (``_indexes`` orders this process's threads
        only). The lock is on the ``projects/`` folder itself, so it leaves no file
        behind; the rewrites are small and rare."""
        folder = os.open(self.root / "projects", os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # closing it lets the lock go

    def _write_atomic(self, path: Path, data: bytes) -> None:
        write_atomic(path, data, self.root / "tmp")


def _write_all(out: Any, data: bytes) -> None:
    """Write all of ``data`` to the unbuffered file ``out`` (raw writes may be short)."""
    view = memoryview(data)
    while view:
        view = view[out.write(view):]
