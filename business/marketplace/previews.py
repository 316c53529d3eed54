"""Tagged previews: the seller's voice tag, and each beat's preview rendered as a job.

A seller sets a **voice tag** (an audio asset of theirs, its gain, the first second and
the interval it repeats at). Each beat on sale then wants a preview whose **version** is
a digest of the tag's settings and the beat's source file (its ``wav``, else its
``mp3``): a beat created, or the tag changed, queues the ``marketplace.preview`` job for
that version (an idempotency key per version, so asking twice queues once). The job
decodes, mixes and encodes in a thread (:mod:`.preview_audio`), reporting progress, and
stores the MP3 only if its version is still the one wanted (a tag changed meanwhile
leaves the newer job to write). The served preview is only ever this rendered MP3 or
the seller's own uploaded ``tagged_mp3``: the untagged files are never served.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from business.marketplace.delivery import AssetFile
from business.marketplace.errors import CatalogueInvalid, NotFoundHere
from business.marketplace.models import ON_SALE, Beat
from business.marketplace.preview_audio import Progress, TagSettings, render_preview
from business.marketplace.store import MarketStore

logger = logging.getLogger(__name__)
#: The job that renders one beat's tagged preview.
PREVIEW_JOB = "marketplace.preview"
#: Source kinds a preview is rendered from, best first.
SOURCES = ("wav", "mp3")
#: ``await enqueue(seller, beat_id, version) -> job id``.
Enqueue = Callable[[str, str, str], Awaitable[str]]

RENDERING, READY, FAILED = "rendering", "ready", "failed"


@dataclass(frozen=True)
class VoiceTag:
    """A seller's voice tag and where it goes in their previews."""

    asset_id: str
    gain_db: float
    interval_s: float
    first_s: float

    @property
    def settings(self) -> TagSettings:
        return TagSettings(self.gain_db, self.interval_s, self.first_s)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def source_of(beat: Beat) -> Any:
    """The file a beat's preview is rendered from (None: the beat has no wav or mp3)."""
    for kind in SOURCES:
        found = next((f for f in beat.files if f.kind == kind), None)
        if found is not None:
            return found
    return None


def version_of(tag: VoiceTag, beat: Beat) -> str | None:
    """The digest naming the preview ``tag`` and ``beat``'s source make (None: no source)."""
    source = source_of(beat)
    if source is None:
        return None
    text = f"{tag.asset_id}|{tag.gain_db}|{tag.interval_s}|{tag.first_s}|{source.asset_id}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Previews:
    """Voice tags and the previews rendered with them."""

    def __init__(self, store: MarketStore, asset_file: AssetFile,
                 asset_exists: Callable[[str, str], Awaitable[bool]]) -> None:
        self.store = store
        self.db = store.db
        self.asset_file = asset_file
        self.asset_exists = asset_exists
        #: Set by the services once the job queue is known.
        self.enqueue: Enqueue | None = None

    # -- the voice tag -----------------------------------------------------------------------

    async def tag(self, account_id: str) -> VoiceTag | None:
        row = await self.db.fetchrow("SELECT * FROM mkt_voice_tags WHERE account_id = ?",
                                     account_id)
        return None if row is None else VoiceTag(row["asset_id"], float(row["gain_db"]),
                                                  float(row["interval_s"]),
                                                  float(row["first_s"]))

    async def set_tag(self, account_id: str, data: dict[str, Any]) -> tuple[VoiceTag,
                                                                              list[str]]:
        """Set the seller's voice tag and queue every beat's preview again; the tag and the
        jobs queued. An asset that is not the seller's is a :class:`CatalogueInvalid`."""
        tag = VoiceTag(str(data["asset_id"]), float(data["gain_db"]),
                       float(data["interval_s"]), float(data["first_s"]))
        if not await self.asset_exists(account_id, tag.asset_id):
            raise CatalogueInvalid(f"asset {tag.asset_id!r} is not one of this account's: "
                                   "upload the voice tag to one of your projects first",
                                   [{"path": "asset_id", "message": "unknown asset"}])
        now = time.time()
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE mkt_voice_tags SET asset_id = ?, gain_db = ?, interval_s = ?, "
                "first_s = ?, updated_at = ? WHERE account_id = ?", tag.asset_id, tag.gain_db,
                tag.interval_s, tag.first_s, now, account_id)
            if not changed:
                await tx.execute(
                    "INSERT INTO mkt_voice_tags (account_id, asset_id, gain_db, interval_s, "
                    "first_s, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    account_id, tag.asset_id, tag.gain_db, tag.interval_s, tag.first_s, now)
        jobs = []
        for beat in await self.store.beats_of(account_id):
            if beat.status == ON_SALE:
                job = await self.request(beat, tag)
                if job:
                    jobs.append(job)
        return tag, jobs

    # -- rendering ---------------------------------------------------------------------------

    async def request(self, beat: Beat, tag: VoiceTag | None = None) -> str | None:
        """Queue the beat's preview for the current tag (once per version); the job's id,
        None when there is no tag or no source file."""
        tag = tag or await self.tag(beat.account_id)
        version = version_of(tag, beat) if tag else None
        if tag is None or version is None or self.enqueue is None:
            return None
        job_id = await self.enqueue(beat.account_id, beat.beat_id, version)
        now = time.time()
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE mkt_previews SET wanted = ?, job_id = ?, status = CASE WHEN "
                "version = ? THEN ? ELSE ? END, error = '', updated_at = ? "
                "WHERE account_id = ? AND beat_id = ?", version, job_id, version, READY,
                RENDERING, now, beat.account_id, beat.beat_id)
            if not changed:
                await tx.execute(
                    "INSERT INTO mkt_previews (account_id, beat_id, wanted, job_id, status, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    beat.account_id, beat.beat_id, version, job_id, RENDERING, now)
        return job_id

    async def render(self, account_id: str, beat_id: str, version: str,
                     progress: Progress | None = None) -> dict[str, Any]:
        """The job's work: render and keep the preview of ``version`` if still wanted."""
        beat = await self.store.beat(account_id, beat_id)
        tag = await self.tag(account_id)
        if beat is None or tag is None or version_of(tag, beat) != version:
            return {"skipped": "the beat or its voice tag changed; a newer job renders it"}
        source = source_of(beat)
        beat_path = await self.asset_file(account_id, source.asset_id)
        tag_path = await self.asset_file(account_id, tag.asset_id)
        if not beat_path or not tag_path:
            raise NotFoundHere(f"the beat's {source.kind} or the voice tag is not on this "
                               "server: upload it again")
        mp3, duration = await asyncio.to_thread(render_preview, beat_path, tag_path,
                                                tag.settings, progress)
        digest = hashlib.sha256(mp3).hexdigest()
        async with self.db.transaction() as tx:
            kept = await tx.execute(
                "UPDATE mkt_previews SET version = ?, mp3 = ?, sha256 = ?, duration_s = ?, "
                "status = ?, error = '', updated_at = ? WHERE account_id = ? AND "
                "beat_id = ? AND wanted = ?", version, mp3, digest, duration, READY,
                time.time(), account_id, beat_id, version)
            if kept:
                await tx.execute("UPDATE mkt_beats SET preview_sha256 = ? WHERE "
                                 "account_id = ? AND beat_id = ?", digest, account_id, beat_id)
        return {"beat_id": beat_id, "sha256": digest, "bytes": len(mp3),
                "duration_s": duration, "kept": bool(kept)}

    async def failed(self, account_id: str, beat_id: str, version: str, error: str) -> None:
        """Record a render that cannot succeed (shown to the seller)."""
        await self.db.execute("UPDATE mkt_previews SET status = ?, error = ?, updated_at = ? "
                              "WHERE account_id = ? AND beat_id = ? AND wanted = ?", FAILED,
                              error[:2000], time.time(), account_id, beat_id, version)

    # -- reading -----------------------------------------------------------------------------

    async def status(self, account_id: str, beat_id: str) -> dict[str, Any]:
        """The beat's preview: status (``none``, ``rendering``, ``ready``, ``failed``),
        the job, the error, the rendered file's digest and length."""
        if await self.store.beat(account_id, beat_id) is None:
            raise NotFoundHere(f"no beat {beat_id!r} in this account")
        row = await self.db.fetchrow(
            "SELECT wanted, job_id, status, error, version, sha256, duration_s FROM "
            "mkt_previews WHERE account_id = ? AND beat_id = ?", account_id, beat_id)
        if row is None:
            return {"status": "none", "job_id": None, "error": "", "sha256": None,
                    "duration_s": None, "current": False}
        return {"status": row["status"], "job_id": row["job_id"], "error": row["error"],
                "sha256": row["sha256"], "duration_s": row["duration_s"],
                "current": row["version"] == row["wanted"]}

    async def mp3(self, account_id: str, beat_id: str) -> tuple[bytes, str]:
        """The rendered preview of a beat on sale and its digest (:class:`NotFoundHere`
        otherwise: never another file in its place)."""
        row = await self.db.fetchrow(
            "SELECT p.mp3, p.sha256 FROM mkt_previews p JOIN mkt_beats b ON "
            "b.account_id = p.account_id AND b.beat_id = p.beat_id WHERE p.account_id = ? "
            "AND p.beat_id = ? AND b.status = ? AND p.mp3 IS NOT NULL", account_id, beat_id,
            ON_SALE)
        if row is None:
            raise NotFoundHere(f"beat {beat_id!r} has no tagged preview (yet)")
        return bytes(row["mp3"]), str(row["sha256"])
