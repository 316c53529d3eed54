"""Releases of an account: storage, rendered audio, the compliance gate, and packaging.

What ships is what passed the gate: :meth:`Catalog.snapshot` runs the full gate and
freezes the release data with the SHA-256 of every file, taken by the gate from the very
bytes it measured; a delivery queued with that snapshot is packaged from it, and fails
(not retried) if a file changed since. A delivery queued without a snapshot runs the
full gate again when it is packaged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import soundfile as sf

from business.distribution import artwork as art
from business.distribution.compliance import ComplianceReport, Issue, check_release
from business.distribution.ddex import ImageFile, Party, TrackFile, build_message
from business.distribution.errors import ComplianceError, ForeignFileError, NotFoundError
from business.distribution.models import Release, release_from_dict, utc_today
from business.distribution.presave import follow_release_date
from business.distribution.stores.base import DeliveryPackage, PackageFile

DEFAULT_SENDER = Party("PADPIDA2026MAXBOOSTR", "Max Booster Studio")
#: Built packages kept for retries (XML and file checksums, not the files).
PACKAGE_CACHE = 256
#: ``await on_create(tx, release_id)``: more of a release's creation, in its transaction.
Made = Callable[[Any, str], Awaitable[None]]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _changed(path: str, where: str, checked_at: float) -> Issue:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(checked_at))
    return Issue("file_changed", where,
                 f"{path} changed after the release passed the gate ({when} UTC); check "
                 "the release and deliver it again")


def _changed_since(package: DeliveryPackage, checked_at: float) -> list[Issue]:
    """A ``file_changed`` issue for each file of ``package`` whose bytes are not the ones
    it was built from (and that passed the gate) any more, or that is gone."""
    moved = []
    for item in package.files:
        try:
            same = _sha256(item.path) == item.sha256
        except OSError:
            same = False
        if not same:
            moved.append(_changed(item.path, "files", checked_at))
    return moved


def _measured_digests(report: ComplianceReport, checked_at: float) -> dict[str, str]:
    """SHA-256 of each file the gate measured, by path (ComplianceError: read twice, differing)."""
    measured = [*report.audio.values(), *([report.artwork] if report.artwork else [])]
    digests: dict[str, str] = {}
    for entry in measured:
        if digests.setdefault(entry["path"], entry["sha256"]) != entry["sha256"]:
            raise ComplianceError([_changed(entry["path"], "files", checked_at)])
    return digests


def _real(path: str) -> str | None:
    """``path`` with symlinks and ``..`` resolved (None: no path at all, e.g. a NUL)."""
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return None


def _owned(paths: dict[str, str], renders: list[str], folder: Path | None) -> list[str]:
    """The fields of ``paths`` whose file is neither one of ``renders`` nor in ``folder``
    (``folder`` itself is none of its files; both sides resolved first; whether a file
    exists plays no part)."""
    own = {r for r in map(_real, renders) if r}
    root = _real(str(folder)) if folder is not None else None
    foreign = []
    for where, path in paths.items():
        real = _real(path)
        inside = root is not None and real != root and Path(str(real)).is_relative_to(root)
        if real is None or not (real in own or inside):
            foreign.append(where)
    return foreign


class Catalog:
    """Release storage plus everything needed to turn a release into a store package.

    With ``media_root`` (the server's data directory) a release may only name files of
    its account: renders recorded for it, or files under :meth:`media_folder`.
    """

    def __init__(self, db: Any, stores: dict[str, Party] | None = None,
                 sender: Party = DEFAULT_SENDER, *,
                 media_root: str | Path | None = None) -> None:
        self.db = db
        self.stores = stores or {}
        self.sender = sender
        self.media_root = Path(media_root) if media_root is not None else None
        #: built packages by delivery, with when their gate snapshot was checked
        self._packages: OrderedDict[tuple[str, ...], tuple[DeliveryPackage, float]] = (
            OrderedDict())

    async def save_release(self, account_id: str, raw: dict[str, Any], *,
                           on_create: Made | None = None) -> Release:
        """Create or replace a release (a draft until it passes the gate); ``on_create``
        runs in the transaction that creates it (not on a replace): ``(tx, release_id)``.
        A replace that moves the release date moves its unfired pre-save campaigns too
        (:func:`~business.distribution.presave.follow_release_date`)."""
        release = release_from_dict({**raw, "release_id": raw.get("release_id")
                                     or uuid.uuid4().hex[:16]})
        await self.resolve_renders(account_id, release)
        await self.check_files(account_id, release)
        now = time.time()
        data = json.dumps(release.to_dict())
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        async with self.db.transaction() as tx:
            before = await tx.fetchrow(
                "SELECT data FROM dist_releases WHERE account_id = ? "  # noqa: S608
                f"AND release_id = ?{lock}", account_id, release.release_id)
            changed = await tx.execute(
                "UPDATE dist_releases SET data = ?, status = 'draft', report = '', "
                "updated_at = ? WHERE account_id = ? AND release_id = ?",
                data, now, account_id, release.release_id)
            if before is not None:  # its pre-save campaigns follow a new release date
                await follow_release_date(tx, account_id, release.release_id,
                                          json.loads(before["data"]).get("release_date", ""),
                                          release.release_date)
            if not changed:
                await tx.execute(
                    "INSERT INTO dist_releases (account_id, release_id, data, status, report, "
                    "created_at, updated_at) VALUES (?, ?, ?, 'draft', '', ?, ?)",
                    account_id, release.release_id, data, now, now)
                if on_create is not None:
                    await on_create(tx, release.release_id)
        return release

    def media_folder(self, account_id: str) -> Path | None:
        """The account's own folder, ``<media_root>/distribution/<account_id>`` (None
        without a media root, or for an id that is no plain folder name)."""
        if self.media_root is None or account_id in ("", ".", "..") \
                or Path(account_id).name != account_id:
            return None
        return self.media_root / "distribution" / account_id

    async def check_files(self, account_id: str, release: Release) -> None:
        """ForeignFileError (a 400) when the release names a file that is not the
        account's: not a render recorded for it, nor under its :meth:`media_folder`.
        Paths are resolved (symlinks, ``..``) first; the answer is the same whether
        such a file exists or not. Without a media root nothing is checked."""
        if self.media_root is None:
            return
        paths = {f"tracks[{i}].audio_path": t.audio_path
                 for i, t in enumerate(release.tracks) if t.audio_path}
        if release.artwork_path:
            paths["artwork_path"] = release.artwork_path
        rows = await self.db.fetch("SELECT path FROM dist_renders WHERE account_id = ?",
                                   account_id)
        foreign = await asyncio.to_thread(_owned, paths, [r["path"] for r in rows],
                                          self.media_folder(account_id))
        if foreign:
            raise ForeignFileError(
                f"{', '.join(foreign)}: not a file of this account; name a render of one "
                "of its projects (or its project_id), or a file uploaded to its distribution "
                "folder (PUT /api/distribution/files/{file_name} answers its path)")

    async def get_release(self, account_id: str, release_id: str) -> Release:
        """A stored release; NotFoundError when the account has none by that id."""
        row = await self.db.fetchrow(
            "SELECT data FROM dist_releases WHERE account_id = ? AND release_id = ?",
            account_id, release_id)
        if row is None:
            raise NotFoundError(f"release {release_id!r} does not exist for this account")
        return release_from_dict(json.loads(row["data"]))

    async def list_releases(self, account_id: str) -> list[dict[str, Any]]:
        """Id, title, status and date of every release of the account."""
        rows = await self.db.fetch(
            "SELECT release_id, data, status FROM dist_releases WHERE account_id = ? "
            "ORDER BY created_at", account_id)
        out = []
        for row in rows:
            data = json.loads(row["data"])
            out.append({"release_id": row["release_id"], "title": data["title"],
                        "status": row["status"], "release_date": data["release_date"]})
        return out

    async def status(self, account_id: str, release_id: str) -> dict[str, Any]:
        """The release's gate status and its last compliance report."""
        row = await self.db.fetchrow(
            "SELECT status, report FROM dist_releases WHERE account_id = ? AND release_id = ?",
            account_id, release_id)
        if row is None:
            raise NotFoundError(f"release {release_id!r} does not exist for this account")
        return {"status": row["status"],
                "report": json.loads(row["report"]) if row["report"] else None}

    async def record_render(self, account_id: str, project_id: str, path: str,
                            metadata: dict[str, Any]) -> None:
        """Remember the latest render of a project (tracks may reference it by project)."""
        now = time.time()
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE dist_renders SET path = ?, metadata = ?, rendered_at = ? "
                "WHERE account_id = ? AND project_id = ?",
                path, json.dumps(metadata), now, account_id, project_id)
            if not changed:
                await tx.execute(
                    "INSERT INTO dist_renders (account_id, project_id, path, metadata, "
                    "rendered_at) VALUES (?, ?, ?, ?, ?)",
                    account_id, project_id, path, json.dumps(metadata), now)

    async def forget_renders(self, project_id: str) -> int:
        """Forget the renders of a deleted project, in every account; how many."""
        return await self.db.execute("DELETE FROM dist_renders WHERE project_id = ?",
                                     project_id)

    async def resolve_renders(self, account_id: str, release: Release) -> None:
        """Fill in the audio of tracks that name a rendered project instead of a file."""
        for track in release.tracks:
            if track.project_id and not track.audio_path:
                row = await self.db.fetchrow(
                    "SELECT path FROM dist_renders WHERE account_id = ? AND project_id = ?",
                    account_id, track.project_id)
                if row:
                    track.audio_path = row["path"]

    async def check(self, account_id: str, release_id: str, today: dt.date | None = None
                    ) -> ComplianceReport:
        """Run the compliance gate (files read off the event loop) and store its result."""
        return (await self._check(account_id, release_id, today))[1]

    async def _check(self, account_id: str, release_id: str, today: dt.date | None,
                     live: bool = False) -> tuple[Release, ComplianceReport]:
        release = await self.get_release(account_id, release_id)
        await self.check_files(account_id, release)  # a release saved before the rule too
        date = release.date()
        if live and date is not None:  # a release out already: its date is no error
            today = min(today or utc_today(), date)
        report = await asyncio.to_thread(check_release, release, today=today)
        await self.db.execute(
            "UPDATE dist_releases SET status = ?, report = ?, updated_at = ? "
            "WHERE account_id = ? AND release_id = ?",
            "ready" if report.passed else "blocked", json.dumps(report.to_dict()),
            time.time(), account_id, release_id)
        return release, report

    async def snapshot(self, account_id: str, release_id: str, today: dt.date | None = None,
                       *, action: str = "new", redeliver: bool = False) -> str:
        """Run the full gate and freeze what passed (data and file checksums); its id.

        A release date in the past blocks a first delivery; an update or a re-send of a
        release delivered before (to any store) is checked as of its date.
        Each file is read once: the checksums are those of the bytes the gate
        measured. ComplianceError with every issue when the release does not pass,
        or when a file the gate read twice (one file for two tracks) changed between.
        """
        live = (action != "new" or redeliver) and await self._delivered(account_id,
                                                                         release_id)
        release, report = await self._check(account_id, release_id, today, live=live)
        if not report.passed:
            raise ComplianceError(report.errors)
        checked_at = time.time()
        digests = _measured_digests(report, checked_at)
        snapshot_id = uuid.uuid4().hex
        await self.db.execute(
            "INSERT INTO dist_snapshots (account_id, snapshot_id, release_id, data, files, "
            "checked_at) VALUES (?, ?, ?, ?, ?, ?)", account_id, snapshot_id, release_id,
            json.dumps(release.to_dict()), json.dumps(digests), checked_at)
        return snapshot_id

    async def _delivered(self, account_id: str, release_id: str) -> bool:
        """Whether a store ever took a delivery of the release."""
        return bool(await self.db.fetchval(
            "SELECT COUNT(*) FROM dist_job_events e JOIN dist_jobs j ON j.account_id = "
            "e.account_id AND j.job_id = e.job_id WHERE j.account_id = ? AND j.release_id = ? "
            "AND e.state = 'delivered'", account_id, release_id))

    async def package(self, account_id: str, release_id: str, store: str, action: str,
                      message_id: str, snapshot_id: str = "") -> DeliveryPackage:
        """The ERN message and files of one delivery (the pipeline's packager).

        With ``snapshot_id`` the package is built from what passed the gate, and a
        file whose checksum changed since is a ComplianceError (``file_changed``),
        except in a takedown (it sends no files; a file deleted since is described by
        the one the release names now in its place).
        Without, the full gate runs now (takedowns send no files and skip it). A
        message id always stands for the same content: retries reuse the package.
        """
        key = (account_id, release_id, store, action, message_id, snapshot_id)
        if key in self._packages:
            self._packages.move_to_end(key)
            package, checked_at = self._packages[key]
            if snapshot_id and action != "takedown":  # a retry: its files may have changed
                moved = await asyncio.to_thread(_changed_since, package, checked_at)
                if moved:
                    raise ComplianceError(moved)
            return package
        digests: dict[str, str] | None = None
        checked_at = 0.0
        if snapshot_id:
            row = await self.db.fetchrow(
                "SELECT release_id, data, files, checked_at FROM dist_snapshots "
                "WHERE account_id = ? AND snapshot_id = ?", account_id, snapshot_id)
            if row is None or row["release_id"] != release_id:
                raise NotFoundError(f"gate snapshot {snapshot_id!r} of release {release_id!r} "
                                    "does not exist; deliver the release again")
            release = release_from_dict(json.loads(row["data"]))
            digests, checked_at = json.loads(row["files"]), row["checked_at"]
            if action == "takedown":
                release = await self._with_files_now(account_id, release)
        else:
            release = await self.get_release(account_id, release_id)
            if action != "takedown":
                report = await asyncio.to_thread(check_release, release,
                                                 today=release.date())
                if not report.passed:
                    raise ComplianceError(report.errors)
        party = self.stores.get(store, Party(f"PADPIDA{store.upper()[:11]}", store))
        package = await asyncio.to_thread(self._build, release, party, store, action,
                                          message_id)
        if digests is not None and action != "takedown":  # a takedown sends no files
            moved = [_changed(f.path, "files", checked_at) for f in package.files
                     if digests.get(f.path) != f.sha256]
            if moved:
                raise ComplianceError(moved)
        if message_id != "preview":
            self._packages[key] = (package, checked_at)
        while len(self._packages) > PACKAGE_CACHE:
            self._packages.popitem(last=False)
        return package

    async def _with_files_now(self, account_id: str, release: Release) -> Release:
        """``release`` as delivered, each of its files deleted since replaced by the one
        the release names now in its place (a takedown describes the release as
        delivered, but its files must be read; a person may replace and delete one)."""
        paths = [t.audio_path for t in release.tracks] + [release.artwork_path]
        if all(map(os.path.exists, paths)):
            return release
        now = await self.get_release(account_id, release.release_id)
        tracks = [track if os.path.exists(track.audio_path) or i >= len(now.tracks)
                  else replace(track, audio_path=now.tracks[i].audio_path)
                  for i, track in enumerate(release.tracks)]
        artwork = (release.artwork_path if os.path.exists(release.artwork_path)
                   else now.artwork_path)
        return replace(release, tracks=tracks, artwork_path=artwork)

    def _build(self, release: Release, party: Party, store: str, action: str,
               message_id: str) -> DeliveryPackage:
        files, tracks = [], []
        for i, track in enumerate(release.tracks, start=1):
            info = sf.info(track.audio_path)
            suffix = Path(track.audio_path).suffix.lower() or ".wav"
            name = f"{release.upc}_01_{i:03d}{suffix}"
            digest = _sha256(track.audio_path)
            files.append(PackageFile(name, track.audio_path, digest))
            tracks.append(TrackFile(name, digest, info.frames / info.samplerate,
                                    "FLAC" if info.format == "FLAC" else "WAV"))
        report = art.analyze_artwork(release.artwork_path)
        cover = f"{release.upc}.{'png' if report.format == 'PNG' else 'jpg'}"
        files.append(PackageFile(cover, release.artwork_path, report.sha256))
        image = ImageFile(cover, report.sha256, report.width, report.height, report.format)
        xml = build_message(release, store=party, sender=self.sender, message_id=message_id,
                            action=action, tracks=tracks, image=image)
        return DeliveryPackage(message_id, release.release_id, store, action, xml, files)
