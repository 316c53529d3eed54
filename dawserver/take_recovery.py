"""Placing the recording takes a crash cut short, when the server starts again.

A take records into ``tmp/NAME.take.wav`` with its journal beside it
(:mod:`dawserver.take_journal`); both go when the take ends and is placed. A process
killed meanwhile leaves them, and the audio's WAV header still says it holds no frames
(libsndfile writes the lengths on close). :func:`recover_takes` runs when the server
starts: for each journal whose audio no live process holds locked, it reads the audio
to its last whole frame, stores it as a new WAV (its header right) and places it on
the journalled tracks as the recorder would have (:func:`.recording.take_passes`),
with a marker where it begins (:data:`RECOVERED_MARKER`, in the same edit, so the
project's people see it), announces it (``take.recovered``,
:mod:`dawserver.take_events`, to the developers' webhooks of the project's owner),
then removes both files. The asset is journalled before it is placed (by recovery, and
by a recorder ending its take), and a track already holding a clip of it is left
alone, so a crash while a take is placed does not place it (nor mark it) twice.
Recovery journals that it began (``recovering``) before it places a take, and that it
placed it (``recovered_frames``) before it announces it: a take whose announcement
fails, or whose recovery was stopped on the way, is told at the next start and never
placed again; the event's id is the asset's, so it is told once. A take its recorder
had placed just before the crash (a track holds it, and no recovery began) is not
announced. A take of a project deleted since, or whose audio cannot be stored (too
long, unreadable), is dropped; one that cannot be placed or announced now (its store
or database down) is kept for the next start, as is one that fails otherwise (logged;
the other takes are recovered all the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import soundfile as sf

from collab.errors import CollabError, ProjectNotFound
from collab.registry import RoomRegistry

from .asset_store import (
    Asset,
    AssetError,
    AssetNotFound,
    AssetStore,
    AssetTooLarge,
    InvalidAudio,
)
from .recording import place_recorded, take_passes
from .take_files import JOURNAL_SUFFIX, audio_path
from .take_journal import TakeJournal, TakeLock

log = logging.getLogger(__name__)

#: Frames copied at a time from a cut-short take into its repaired file.
BLOCK_FRAMES = 1 << 16
#: The marker set where a recovered take begins, so the people of its project see it.
RECOVERED_MARKER = "Take recovered after a crash"

#: ``await announce(journal, frames)`` tells of a take placed (its asset journalled).
Announce = Callable[[TakeJournal, int], Awaitable[object]]


async def _told_nobody(journal: TakeJournal, frames: int) -> None:
    return None


async def recover_takes(assets: AssetStore, rooms: RoomRegistry,
                        announce: Announce = _told_nobody) -> list[str]:
    """Place every take in ``assets`` that a crash cut short (see the module), each
    announced once placed; the ids of the clips added. A take whose announcement fails
    is kept, journalled as placed, to be announced at the next start and never placed
    again (its clips may be deleted or moved by then)."""
    added: list[str] = []
    for journal in sorted((assets.root / "tmp").glob("*" + JOURNAL_SUFFIX)):
        try:
            added.extend(await _recover(assets, rooms, journal, announce))
        except Exception:  # one take's fault must not keep the others from their tracks
            log.exception("could not recover the take %s; it is kept for the next start",
                          audio_path(journal))
    return added


async def _recover(assets: AssetStore, rooms: RoomRegistry, journal_file: Path,
                   announce: Announce) -> list[str]:
    audio = audio_path(journal_file)
    try:
        lock = TakeLock(audio)
    except FileNotFoundError:  # its take ended (the audio goes first), or never began
        journal_file.unlink(missing_ok=True)
        return []
    try:
        if not lock.take() or not lock.still_at(audio) or not journal_file.exists():
            return []  # still recording, or placed by another process just now
        try:
            journal = TakeJournal.read(journal_file)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("the take %s was cut short, but its journal is unreadable (%s); "
                      "its audio is kept there", audio, exc)
            return []
        added: list[str] = []
        if not journal.recovered_frames:  # else placed already: only to be told
            began = journal.recovering  # a recovery before was stopped on the way
            if not began:  # journalled first: a stop while it is placed still tells
                journal.recovering = True
                journal.write(audio)
            placed = await _place(assets, rooms, audio, journal)
            if placed is None:
                return []
            added, frames, held = placed
            # a take its recorder placed before the crash is not told of; journalled
            # before it is told: a later start never places it again
            if frames and (began or not held):
                journal.recovered_frames = frames
                journal.write(audio)
        if journal.recovered_frames:
            try:
                await announce(journal, journal.recovered_frames)
            except Exception:  # its files stay, so it is told at the next start
                log.exception("project %s: the take %s is placed, but telling of it "
                              "failed; it is kept to be told at the next start",
                              journal.project_id, audio)
                return added
        audio.unlink(missing_ok=True)
        journal_file.unlink(missing_ok=True)
        return added
    finally:
        lock.release()


async def _place(assets: AssetStore, rooms: RoomRegistry, audio: Path,
                 journal: TakeJournal) -> tuple[list[str], int, bool] | None:
    """Store and place the take; its clips, its frames (0: nothing placed, it is to be
    removed) and whether a track held it already, or None if it is to be kept for
    later."""
    if await rooms.store.get_project(journal.project_id) is None:
        log.info("project %s is gone: the take %s cut short with it is removed",
                 journal.project_id, audio)
        return [], 0, False
    try:
        stored = await _stored(assets, audio, journal)
        if stored is None:
            log.info("the take %s was cut short before any audio arrived; removed", audio)
            return [], 0, False
        asset, frames = stored
        async with rooms.use(journal.project_id) as room:
            document = room.document
            held = any(c.get("source") == asset.id for track in journal.tracks
                       if track in document.track_ids() for c in document.clips_of(track))
            added = await place_recorded(assets, room, asset, journal.tracks,
                                         take_passes(journal, frames), again=True,
                                         mark=RECOVERED_MARKER)
    except ProjectNotFound:  # deleted just now
        return [], 0, False
    except (AssetTooLarge, InvalidAudio) as exc:  # as a take that ended would be
        log.error("project %s: the take %s cut short by a crash cannot be stored (%s); "
                  "removed", journal.project_id, audio, exc)
        return [], 0, False
    except (AssetError, CollabError, OSError) as exc:
        log.error("project %s: could not place the take %s cut short by a crash (%s); "
                  "it is kept for the next start", journal.project_id, audio, exc)
        return None
    log.warning("project %s: a take of %s that a crash cut short (%d frames) was placed "
                "as %s", journal.project_id, journal.user, frames, added)
    return added, frames, held


async def _stored(assets: AssetStore, audio: Path, journal: TakeJournal
                  ) -> tuple[Asset, int] | None:
    """The take's asset and its length in frames: the one its journal names (stored
    before the crash), or its audio repaired and stored now (and journalled, so a crash
    while it is placed places the same asset); None if it holds no audio."""
    loop = asyncio.get_running_loop()
    if journal.asset_id:
        with contextlib.suppress(AssetNotFound):  # its description: the file may be in S3
            asset = assets.asset(journal.asset_id)
            return asset, asset.frames
    handle, name = tempfile.mkstemp(dir=audio.parent, suffix=".recovered.wav")
    os.close(handle)
    repaired = Path(name)
    try:
        frames = await loop.run_in_executor(None, repair, audio, repaired)
        if frames == 0:
            return None
        asset = await loop.run_in_executor(None, lambda: assets.ingest_file(
            repaired, project_id=journal.project_id,
            name=f"take-{journal.user or 'guest'}.wav"))
    finally:
        repaired.unlink(missing_ok=True)
    journal.asset_id = asset.id
    journal.write(audio)
    return asset, frames


def repair(audio: Path, out: Path) -> int:
    """Copy the float samples of the cut-short take ``audio`` (a WAV whose header may
    say it is empty; libsndfile reads it to its last whole frame) into ``out``, a WAV
    with its header right; how many frames. A file with no audio yet is 0 frames."""
    try:
        source = sf.SoundFile(audio)
    except sf.LibsndfileError:  # the crash came before its header was whole
        return 0
    frames = 0
    with source, sf.SoundFile(out, "w", samplerate=source.samplerate,
                              channels=source.channels, subtype="FLOAT",
                              format="WAV") as target:
        for block in source.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
            target.write(block)
            frames += len(block)
    return frames


def recovered_takes(stores: list[AssetStore]
                    ) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A ``cleanup_ctx`` recovering the takes of ``stores`` in the background once the
    server has started (it needs the room registry, ``app[ROOMS]``, and the event bus:
    appended after the plug-ins' start); stopped on shutdown, the rest waits for the
    next start."""
    from .keys import ROOMS
    from .take_events import announce_recovered

    @contextlib.asynccontextmanager
    async def context(app: Any) -> AsyncIterator[None]:
        async def announce(journal: TakeJournal, frames: int) -> None:
            await announce_recovered(app, journal, frames)

        task = asyncio.create_task(_recover_all(stores, app[ROOMS], announce))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return context


async def _recover_all(stores: list[AssetStore], rooms: RoomRegistry,
                       announce: Announce) -> None:
    for store in stores:
        try:
            await recover_takes(store, rooms, announce)
        except Exception:  # a fault here must not take the server down
            log.exception("recovering the takes cut short in %s failed", store.root)
