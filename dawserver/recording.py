"""Recording takes from a musician's WebRTC microphone track into armed tracks.

A :class:`TakeRecorder` reads one connection's incoming audio track for as
long as it lives.  While the shared transport is playing *and* recording and
at least one track is armed, it writes the audio as float32 (mono, 48 kHz)
to a temporary file; when recording stops the file goes into the asset store
and a clip is added to every armed track through the room
(:meth:`collab.room.Room.edit`; older clips under it are cut away, see
:mod:`collab.takes`), so every client sees the new take like any other
edit.  The take starts on the timeline where the live playhead was when its
first frame arrived, minus the latency the client declared last before the take
ended (a client may measure its round trip over the take and declare it then).

The recorder follows the live playhead through the take: when it jumps (a seek) or the
loop changes, the take is split there (:class:`collab.takes.TakeSegment`), and the audio
recorded after the jump is placed where the playhead was when it arrived, not where
the playhead would have got to had it played on. A segment after a jump begins the
declared latency later in the take (the musician heard the jump that much later).

A take's placement is journalled beside its audio as it records
(:mod:`dawserver.take_journal`), so one that a crash cut short is placed when the server
starts again (:mod:`dawserver.take_recovery`).

With an object store, the take is placed first (its local file plays on this node) and
then published in the background; while the object store fails it stays in this node's
cache, never evicted, and is retried (:func:`dawserver.asset_objects.keep_take`), so an
S3 outage at the end of a performance loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from collab.errors import CollabError
from collab.schema import ProjectDocument
from collab.takes import Loop, Pass, TakeSegment, place_passes, segment_passes

from . import asset_cache, asset_objects
from .asset_store import Asset, AssetError, AssetStore
from .live_mix import LiveMix, MixFrame
from .take_files import AUDIO_SUFFIX, journal_path
from .take_journal import TakeJournal, TakeLock

log = logging.getLogger(__name__)

#: One background task per asset store publishing the takes it keeps (strong references).
_PUBLISHERS: dict[int, asyncio.Task[None]] = {}


def kept_takes(stores: Iterable[AssetStore]
               ) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A ``cleanup_ctx`` that publishes the takes a previous run of this node kept in
    ``stores`` (S3 was down when they were recorded); on shutdown it stops retrying (they
    stay kept for the next run)."""
    stores = list(stores)

    @contextlib.asynccontextmanager
    async def context(app: Any) -> AsyncIterator[None]:
        tasks = [publish_soon(store) for store in stores
                 if store.objects is not None and asset_cache.pending(store)]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return context


def publish_soon(assets: AssetStore) -> asyncio.Task[None]:
    """Publish the takes ``assets`` keeps into its object store in the background,
    retrying while the object store fails (:func:`asset_objects.publish_until_done`)."""
    task = _PUBLISHERS.get(id(assets))
    if task is None or task.done():
        task = asyncio.create_task(asset_objects.publish_until_done(assets))
        _PUBLISHERS[id(assets)] = task
        task.add_done_callback(lambda done: _PUBLISHERS.pop(id(assets), None)
                               if _PUBLISHERS.get(id(assets)) is done else None)
    return task


@dataclass
class Take:
    """A take being written."""

    path: Path
    writer: sf.SoundFile
    heard_at: int  # where the live playhead was when its first frame arrived
    tracks: list[str]
    journal: TakeJournal  # where it goes, also on disk (a crash cut it short)
    lock: TakeLock  # held while it records
    frames: int = 0
    resampler: Any = None  # an av.AudioResampler, once a frame came at another rate
    loop: tuple[int, int] | None = None  # the transport's loop as it began (session frames)
    next_tick: int | None = None  # the RTP timestamp the next frame should carry
    jumps: list[TakeSegment] = field(default_factory=list)  # where the playhead jumped
    seen: MixFrame | None = None  # the live mix's last frame the take saw
    seen_loop: Loop | None = None  # the live playhead's loop then (render frames)

    def segments(self) -> list[TakeSegment]:
        """The take's segments as heard: offsets in the take's frames, positions in
        session frames (no latency applied)."""
        return [TakeSegment(0, self.heard_at, self.loop), *self.jumps]


def _always() -> bool:
    return True


#: RTP timestamps are 32 bits and wrap around.
RTP_WRAP = 1 << 32
#: A longer jump of the timestamps is a sender starting over, not lost packets.
MAX_LOSS_S = 5.0


#: A playhead this far (seconds) from where playing on would have put it jumped.
SEEK_TOLERANCE_S = 0.005


def continued(position: int, frames: int, loop: Loop | None) -> int:
    """Where a playhead at ``position`` is after playing ``frames`` frames on over
    ``loop`` (start, end), as :meth:`dsp_core.playhead.Playhead.advance` moves it."""
    ahead = position + frames
    if loop is None or loop[1] <= loop[0] or position >= loop[1] or ahead < loop[1]:
        return ahead
    return loop[0] + (ahead - loop[1]) % (loop[1] - loop[0])


def jumped(seen: MixFrame, now: MixFrame, frame: int, loop: Loop | None,
           tolerance: int) -> bool:
    """Whether the live mix's frame ``now`` is not where its frame ``seen`` played on
    (``frame`` frames a frame, over ``loop``) would have put it: a seek came between."""
    if seen.timeline is None or now.timeline is None:
        return False
    expected = continued(seen.timeline, (now.index - seen.index) * frame, loop)
    return abs(now.timeline - expected) > tolerance


def take_passes(journal: TakeJournal, frames: int) -> list[Pass]:
    """Where a take of ``frames`` frames of audio described by ``journal`` goes: one
    ``(position, offset, length)`` in session frames per loop pass and segment."""
    def session(count: int) -> int:
        return int(round(count * journal.session_rate / journal.sample_rate))

    heard = [TakeSegment(session(part.offset), part.position, part.loop)
             for part in journal.segments]
    return segment_passes(placed_segments(heard, journal.latency_frames),
                          max(1, session(frames)))


async def place_recorded(assets: AssetStore, room: Any, asset: Asset, tracks: list[str],
                         passes: list[Pass], *, again: bool = False, mark: str = "") -> list[str]:
    """Put the stored take ``asset`` on ``tracks`` of ``room``'s project (those still
    there) as ``passes``; with an object store it is kept on this node and published in
    the background first. ``again``: a track already holding a clip of ``asset`` is left
    as it is (the take was placed before a crash stopped its recovery). ``mark``: the
    name of a timeline marker set where the take begins, in the same edit, when it
    placed a clip. The new clips."""
    added: list[str] = []

    def place(document: ProjectDocument) -> None:
        for track_id in tracks:
            if track_id not in document.track_ids():
                continue
            if again and any(c.get("source") == asset.id
                             for c in document.clips_of(track_id)):
                continue
            added.extend(place_passes(document, track_id, asset.id, passes))
        if mark and added:
            document.add_marker(min(position for position, _, _ in passes), mark)

    if assets.objects is not None:  # kept here until the object store has it
        asset_objects.keep_take(assets, asset, room.project_id)
        publish_soon(assets)  # in the background, retried while S3 fails
    await room.edit(place)  # the local file plays on this node meanwhile
    return added


def placed_segments(heard: list[TakeSegment], latency: int) -> list[TakeSegment]:
    """Where the parts of a take go given the client's round trip ``latency`` (frames).

    The first part starts ``latency`` earlier than heard (not before 0). A later part was
    heard from the frame that arrived as the playhead jumped, but the musician heard the
    jump ``latency`` later: it begins that much later in the take, at the position the
    playhead jumped to.
    """
    first, *later = heard
    return [TakeSegment(0, max(0, first.position - latency), first.loop),
            *(TakeSegment(part.offset + latency, part.position, part.loop)
              for part in later)]


def _lost_seconds(take: Take, frame: Any) -> float:
    """Seconds of audio lost before ``frame`` (its RTP timestamp, ``pts``, is ahead of
    where the previous frame ended); 0 for a frame that follows on, or one without a
    timestamp. A late, repeated or restarted stream's frame only moves the expectation."""
    if frame.pts is None or frame.time_base is None:
        return 0.0
    tick = int(frame.pts)
    duration = round(frame.samples / frame.sample_rate / frame.time_base)  # in ticks
    expected, take.next_tick = take.next_tick, (tick + duration) % RTP_WRAP
    if expected is None:
        return 0.0
    ahead = (tick - expected) % RTP_WRAP
    seconds = float(ahead * frame.time_base)
    return seconds if 0 < seconds <= MAX_LOSS_S else 0.0


@dataclass
class TakeRecorder:
    """Writes takes from ``track`` (an aiortc audio track) while the transport records.

    ``allowed()`` says whether the sender may be recorded now (asked on every frame,
    so a role lowered mid-take ends the take).
    """

    mix: LiveMix
    track: object
    assets: AssetStore
    user: str = ""
    allowed: Callable[[], bool] = _always
    target_track: str | None = None
    latency_frames: int = 0
    clips: list[str] = field(default_factory=list)
    frames_received: int = 0
    _take: Take | None = None
    _next_try: float = 0.0

    @property
    def can_record(self) -> bool:
        """Whether the sender's audio is recorded now."""
        return self.allowed()

    @property
    def room(self):
        """The room the takes go into."""
        return self.mix.room

    async def run(self) -> None:
        """Read the track until it ends; the last take is finished on the way out."""
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                try:
                    frame = await self.track.recv()
                except MediaStreamError:
                    return
                self.frames_received += 1
                if self.can_record:
                    await self._consume(frame)
                elif self._take is not None:  # the role was lowered during a take
                    await self._finish()
        finally:
            if self._take is not None:
                await self._finish()

    async def _consume(self, frame) -> None:
        recording = self.mix.playhead.playing and self.mix.playhead.recording
        if self._take is None and recording:
            self._open()
        elif self._take is not None and not recording:
            await self._finish()
            return
        if self._take is None:
            return
        lost = _lost_seconds(self._take, frame)
        if lost:  # packets lost on the way: silence where they were, the rest in place
            self._write(self._take, np.zeros(round(lost * self.mix.sample_rate), np.float32))
        self._follow(self._take)
        if self._take.journal.latency_frames != self.latency_frames:  # declared anew
            self._journal(self._take)
        if frame.sample_rate != self.mix.sample_rate:  # not Opus: PCMU is 8 kHz, G.722 16
            self._write(self._take, self._resampled(self._take, frame))
            return
        data = frame.to_ndarray()
        channels = len(frame.layout.channels)
        samples = data.reshape(-1, channels) if frame.format.is_packed else data.T
        mono = samples.astype(np.float32).mean(axis=1)
        if data.dtype == np.int16:
            mono /= 32768.0
        self._write(self._take, mono)

    def _resampled(self, take: Take, frame: Any) -> np.ndarray:
        """``frame`` (None: what is left) as mono float samples at the mix's rate."""
        if take.resampler is None:
            if frame is None:
                return np.zeros(0, np.float32)
            import av

            take.resampler = av.AudioResampler(format="flt", layout="mono",
                                               rate=self.mix.sample_rate)
        out = [f.to_ndarray().reshape(-1) for f in take.resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    @staticmethod
    def _write(take: Take, mono: np.ndarray) -> None:
        take.writer.write(mono)
        take.frames += len(mono)

    def _follow(self, take: Take) -> None:
        """Start a new segment of ``take`` here if the live playhead jumped or its loop
        changed since the take last looked."""
        head, now = self.mix.playhead, self.mix.last_frame
        if now is None or now.timeline is None:
            return
        seen, loop = take.seen, take.seen_loop
        take.seen, take.seen_loop = now, head.loop
        tolerance = round(SEEK_TOLERANCE_S * self.mix.sample_rate)
        moved = (seen is not None and now.index != seen.index
                 and jumped(seen, now, self.mix.frame, loop, tolerance))
        if not moved and head.loop == loop:
            return
        position = self.mix.timeline_now()
        if position is None:
            return
        take.jumps.append(TakeSegment(take.frames, position, _session_loop(head)))
        self._journal(take)
        log.info("project %s: the playhead %s during the take of %s; from frame %d of "
                 "the take it goes at %d", self.room.project_id,
                 "jumped" if moved else "changed its loop", self.user, take.frames, position)

    def _armed(self) -> list[str]:
        document: ProjectDocument = self.room.document
        armed = [t for t in document.track_ids() if document.track(t).get("arm")]
        if self.target_track is not None:
            armed = [t for t in armed if t == self.target_track]
        return armed

    def _open(self) -> None:
        now = time.monotonic()
        if now < self._next_try:  # reading the armed tracks is not free on big projects
            return
        self._next_try = now + 0.2
        tracks = self._armed()
        position = self.mix.timeline_now()
        if not tracks or position is None:
            return
        handle, name = tempfile.mkstemp(dir=self.assets.root / "tmp", suffix=AUDIO_SUFFIX)
        os.close(handle)
        writer = sf.SoundFile(name, "w", samplerate=self.mix.sample_rate, channels=1,
                              subtype="FLOAT", format="WAV")
        lock = TakeLock(Path(name))  # before its journal: recovery reads journals only
        lock.take()  # a new file: nobody else holds it
        head = self.mix.playhead
        journal = TakeJournal(self.room.project_id, self.user, tracks, self.mix.sample_rate,
                              head.session_rate)
        self._take = Take(Path(name), writer, position, tracks, journal, lock,
                          loop=_session_loop(head), seen=self.mix.last_frame,
                          seen_loop=head.loop)
        self._journal(self._take)
        log.info("project %s: recording %s into %s, heard from frame %d", self.room.project_id,
                 self.user, tracks, position)

    def _journal(self, take: Take) -> None:
        """Write down where ``take`` goes as it stands (for a crash to leave it placeable)."""
        take.journal.segments = take.segments()
        take.journal.latency_frames = self.latency_frames
        try:
            take.journal.write(take.path)
        except OSError as exc:  # a full disk: the take records on, unjournalled
            log.warning("project %s: could not journal the take of %s: %s",
                        self.room.project_id, self.user, exc)

    async def _finish(self) -> None:
        take, self._take = self._take, None
        assert take is not None
        try:
            self._write(take, self._resampled(take, None))
            take.writer.close()
            if take.frames == 0:
                return
            loop = asyncio.get_running_loop()
            asset = await loop.run_in_executor(
                None, lambda: self.assets.ingest_file(
                    take.path, project_id=self.room.project_id,
                    name=f"take-{self.user or 'guest'}.wav"))
            take.journal.asset_id = asset.id  # a crash from here on places this asset
            self._journal(take)
            passes = take_passes(take.journal, take.frames)  # one clip per pass, segment
            added = await place_recorded(self.assets, self.room, asset, take.tracks, passes)
            self.clips.extend(added)
            log.info("project %s: take of %d frames added as %s", self.room.project_id,
                     take.frames, added)
        except (AssetError, CollabError, OSError) as exc:
            log.error("project %s: could not keep the take of %s: %s", self.room.project_id,
                      self.user, exc)
        except Exception:  # a fault placing this take must not stop the microphone's next
            log.exception("project %s: could not place the take of %s (its audio is an "
                          "asset of the project)", self.room.project_id, self.user)
        finally:
            for path in (take.path, journal_path(take.path)):  # a journal alone is dropped
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            take.lock.release()


def _session_loop(head: Any) -> Loop | None:
    """The loop of ``head`` (a :class:`dsp_core.playhead.Playhead`) in session frames."""
    return None if head.loop is None else (head.to_session(head.loop[0]),
                                           head.to_session(head.loop[1]))
