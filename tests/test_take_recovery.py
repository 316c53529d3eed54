"""A take that a crash cut short is placed when the server starts again, once.

The takes are recorded by a real :class:`dawserver.recording.TakeRecorder` (the harness
of test_recording_seek.py) in a child process killed with SIGKILL mid-take; what it
leaves in the asset store's ``tmp/`` is recovered into a real store's project.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from test_recording_seek import FRAME, RATE, Studio

from collab.registry import RoomRegistry
from collab.schema import ProjectDocument
from collab.store import Store, open_store
from collab.takes import TakeSegment
from dawserver import take_recovery
from dawserver.asset_store import AssetStore
from dawserver.take_files import journal_path
from dawserver.take_journal import TakeJournal
from dawserver.take_recovery import RECOVERED_MARKER, recover_takes
from dsp_core.session import Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

#: Records 10 frames at 1 s, seeks to 5 s, records 10 more, and is killed mid-take.
KILLED_MID_TAKE = textwrap.dedent("""
    import asyncio, os, signal, sys
    from pathlib import Path
    from test_recording_seek import RATE, Studio

    async def main() -> None:
        studio = Studio(Path(sys.argv[1]))
        studio.mix.move(playing=True, recording=True, position=RATE)
        await studio.play(10)
        studio.mix.move(position=5 * RATE)
        await studio.play(10)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
""")
#: Where the killed take's clips belong: (position, offset, length), as if it had ended.
PLACED = [(RATE, 0, 10 * FRAME), (5 * RATE, 10 * FRAME, 10 * FRAME)]


def killed_mid_take(under: Path) -> Path:
    """Record a take into ``under/assets`` in a process killed mid-take; its audio."""
    before = set((under / "assets" / "tmp").glob("*.take.wav"))
    done = subprocess.run([sys.executable, "-c", KILLED_MID_TAKE, str(under)],
                          cwd=Path(__file__).parent, timeout=60, capture_output=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    [audio] = set((under / "assets" / "tmp").glob("*.take.wav")) - before
    return audio


def take_files(assets: AssetStore) -> list[str]:
    return sorted(p.name for p in (assets.root / "tmp").glob("*.take.*"))


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(None, tmp_path / "db") as store:
        document = ProjectDocument.from_session(Session(tracks=[Track("vox")]))
        await store.create_project("p", "P", document.doc.get_update())
        yield store


async def clips_and_audio(registry: RoomRegistry, assets: AssetStore
                          ) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    async with registry.use("p") as room:
        clips = room.document.clips_of("vox")
    [source] = {c["source"] for c in clips}
    audio, rate = sf.read(assets.asset(source).path, dtype="float32")
    assert rate == RATE
    placed = sorted((int(c["position"]), int(c["offset"]), int(c["length"])) for c in clips)
    return placed, np.round(audio * 32768).astype(int)


class Told:
    """An ``announce`` for :func:`recover_takes` that keeps what it is told (asset,
    tracks, frames), and fails while ``failing``."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, list[str], int]] = []
        self.failing = False

    async def __call__(self, journal: TakeJournal, frames: int) -> None:
        if self.failing:
            raise ConnectionError("the database is down")
        self.heard.append((journal.asset_id, journal.tracks, frames))


async def test_a_take_killed_mid_recording_is_placed_where_it_was_heard(
        tmp_path: Path, store: Store) -> None:
    audio = killed_mid_take(tmp_path)
    assert sf.info(str(audio)).frames == 20 * FRAME  # libsndfile reads past its header
    assert b"data\x00\x00\x00\x00" in audio.read_bytes()[:100]  # which says it is empty
    assets = AssetStore(tmp_path / "assets")  # opening it sweeps leftovers: not takes
    told = Told()
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        added = await recover_takes(assets, registry, told)
        assert len(added) == 2
        placed, samples = await clips_and_audio(registry, assets)
        async with registry.use("p") as room:
            [source] = {c["source"] for c in room.document.clips_of("vox")}
            markers = room.document.markers()
    assert placed == PLACED
    assert told.heard == [(source, ["vox"], 20 * FRAME)]
    assert [(m["name"], m["position"]) for m in markers] == [(RECOVERED_MARKER, RATE)]
    assert len(samples) == 20 * FRAME
    assert samples[0] == 100 and samples[10 * FRAME] == 1100  # frames 0 and 10
    assert take_files(assets) == []
    # its stored file is a whole WAV: the header says how long it is
    stored = Path(assets.asset(source).path).read_bytes()
    assert b"data\x00\x00\x00\x00" not in stored[:100] and b"data" in stored[:100]


async def test_recovering_again_after_a_crash_mid_recovery_places_nothing_twice(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    killed_mid_take(tmp_path)
    assets = AssetStore(tmp_path / "assets")
    place = take_recovery.place_recorded

    async def placed_then_killed(*args: Any, **kwargs: Any) -> list[str]:
        await place(*args, **kwargs)
        raise RuntimeError("killed before the take's files went")

    told = Told()
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        monkeypatch.setattr(take_recovery, "place_recorded", placed_then_killed)
        assert await recover_takes(assets, registry, told) == []  # placed, files kept
        assert told.heard == []  # killed before it was announced
        monkeypatch.setattr(take_recovery, "place_recorded", place)
        assert len(take_files(assets)) == 2
        # a second later: a float WAV written again differs (libsndfile's PEAK chunk
        # holds the time), so only the journalled asset tells the take placed already
        await asyncio.sleep(1.1)
        [journal] = (assets.root / "tmp").glob("*.take.json")
        stored = Path(assets.asset(TakeJournal.read(journal).asset_id).path)
        stored.rename(tmp_path / "away")  # evicted from an object store's cache meanwhile
        assert await recover_takes(assets, registry, told) == []
        (tmp_path / "away").rename(stored)
        placed, _ = await clips_and_audio(registry, assets)
        async with registry.use("p") as room:
            markers = room.document.markers()
    assert placed == PLACED and take_files(assets) == []
    assert [m["name"] for m in markers] == [RECOVERED_MARKER]  # marked once
    # it journalled that it began before placing: told at last, by the second
    assert told.heard == [(stored.stem, ["vox"], 20 * FRAME)]


async def test_a_take_whose_tracks_are_gone_is_stored_and_told_of(
        tmp_path: Path, store: Store) -> None:
    audio = killed_mid_take(tmp_path)
    journal = TakeJournal.read(journal_path(audio))
    journal.tracks = ["deleted-since"]
    journal.write(audio)
    assets = AssetStore(tmp_path / "assets")
    told = Told()
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        assert await recover_takes(assets, registry, told) == []  # no track to hold it
    [(asset_id, tracks, frames)] = told.heard
    assert tracks == ["deleted-since"] and frames == 20 * FRAME
    assert assets.asset(asset_id).frames == 20 * FRAME and take_files(assets) == []


async def test_a_take_whose_announcement_fails_is_announced_at_the_next_start(
        tmp_path: Path, store: Store) -> None:
    """... and never placed again, though its clips and marker were deleted meanwhile."""
    audio = killed_mid_take(tmp_path)
    journal_before = journal_path(audio).read_text()
    assets = AssetStore(tmp_path / "assets")
    told = Told()
    told.failing = True
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        assert len(await recover_takes(assets, registry, told)) == 2  # placed
        assert len(take_files(assets)) == 2  # but kept: nobody was told
        [journal] = (assets.root / "tmp").glob("*.take.json")
        assert TakeJournal.read(journal).recovered_frames == 20 * FRAME
        assert "recovered_frames" not in journal_before  # written once set, only
        async with registry.use("p") as room:
            [source] = {c["source"] for c in room.document.clips_of("vox")}

            def tidy(document: ProjectDocument) -> None:  # the musicians clear it away
                for clip in document.clips_of("vox"):
                    document.remove_clip(clip["id"])
                for marker in document.markers():
                    document.remove_marker(marker["id"])

            await room.edit(tidy)
        told.failing = False
        assert await recover_takes(assets, registry, told) == []  # told, not placed
        async with registry.use("p") as room:
            assert room.document.clips_of("vox") == [] and room.document.markers() == []
    assert take_files(assets) == []
    assert told.heard == [(source, ["vox"], 20 * FRAME)]


async def test_a_take_its_recorder_placed_before_the_crash_is_not_announced(
        tmp_path: Path, store: Store) -> None:
    """Killed between placing its take and removing its files: the recorder's take is
    on its track already; recovery removes the files and tells nobody."""
    audio = killed_mid_take(tmp_path)
    shutil.copy2(audio, tmp_path / "left")
    journal = TakeJournal.read(journal_path(audio))
    assets = AssetStore(tmp_path / "assets")
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        assert len(await recover_takes(assets, registry)) == 2  # as the recorder did
        async with registry.use("p") as room:
            [source] = {c["source"] for c in room.document.clips_of("vox")}
        shutil.copy2(tmp_path / "left", audio)  # what the recorder left: its audio, and
        journal.asset_id = source  # its journal naming the asset it placed
        journal.write(audio)
        told = Told()
        assert await recover_takes(assets, registry, told) == []
        placed, _ = await clips_and_audio(registry, assets)
    assert placed == PLACED and told.heard == [] and take_files(assets) == []


async def test_a_take_names_its_asset_in_its_journal_before_it_is_placed(
        tmp_path: Path) -> None:
    """So a crash while a recorder places its take leaves a journal that recovery
    knows the placed take by."""
    studio = Studio(tmp_path)
    seen: list[str] = []
    edit = studio.mix.room.edit

    async def journal_then_edit(change: Any) -> None:
        [journal] = (studio.assets.root / "tmp").glob("*.take.json")
        seen.append(TakeJournal.read(journal).asset_id)
        await edit(change)

    studio.mix.room.edit = journal_then_edit
    studio.mix.move(playing=True, recording=True, position=RATE)
    await studio.play(10)
    studio.mix.move(recording=False)
    await studio.play(1)
    [source] = {c["source"] for c in studio.document.clips_of("vox")}
    assert seen == [source] and take_files(studio.assets) == []


async def test_a_take_still_recording_is_left_to_its_recorder(
        tmp_path: Path, store: Store) -> None:
    studio = Studio(tmp_path)  # this process records: the take is locked
    studio.mix.move(playing=True, recording=True, position=RATE)
    await studio.play(10)
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        assert await recover_takes(studio.assets, registry) == []
        assert len(take_files(studio.assets)) == 2  # its audio and journal
        studio.mix.move(recording=False)
        await studio.play(1)  # the take ends: its recorder places it, and both files go
        assert take_files(studio.assets) == []
        assert await recover_takes(studio.assets, registry) == []
    assert studio.clips() == [(RATE, 0, 10 * FRAME)]


async def test_takes_that_cannot_be_placed_are_dropped_or_kept_as_they_deserve(
        tmp_path: Path, store: Store) -> None:
    tmp = tmp_path / "assets" / "tmp"
    gone = killed_mid_take(tmp_path)  # of a project deleted since: dropped
    TakeJournal("deleted", "ana", ["vox"], RATE, RATE,
                TakeJournal.read(journal_path(gone)).segments).write(gone)
    empty = tmp / "empty.take.wav"  # killed before any audio came: dropped
    sf.SoundFile(empty, "w", samplerate=RATE, channels=1, subtype="FLOAT").close()
    empty.write_bytes(empty.read_bytes()[:20])
    TakeJournal("p", "ana", ["vox"], RATE, RATE, [TakeSegment(0, RATE)]).write(empty)
    (tmp / "lone.take.json").write_text("{}")  # its audio went, the journal did not
    unreadable = tmp / "bad.take.wav"  # a journal we cannot read: its audio is kept
    shutil.copy2(gone, unreadable)
    journal_path(unreadable).write_text("{not json")
    failing = tmp / "a-zero-rate.take.wav"  # one that fails on the way: kept, the rest go on
    shutil.copy2(gone, failing)
    TakeJournal("p", "ana", ["vox"], 0, RATE, [TakeSegment(0, RATE)]).write(failing)
    assert killed_mid_take(tmp_path).name > failing.name  # recovered after it
    assets = AssetStore(tmp_path / "assets")
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        assert len(await recover_takes(assets, registry)) == 2
        placed, _ = await clips_and_audio(registry, assets)
    assert placed == PLACED
    assert take_files(assets) == ["a-zero-rate.take.json", "a-zero-rate.take.wav",
                                  "bad.take.json", "bad.take.wav"]
    assert not list(tmp.glob("*.recovered.wav"))
    deleted = [p for p in assets.root.rglob("*.json") if "deleted" in p.read_text()]
    assert deleted == []  # nothing of the deleted project's take was stored


async def test_a_take_the_store_refuses_is_dropped(tmp_path: Path, store: Store) -> None:
    """As a take that ended would be: audio the store refuses (NaN samples here, or
    longer than it takes) will never be stored, so it is not kept to be tried again."""
    audio = killed_mid_take(tmp_path)
    whole = bytearray(audio.read_bytes())
    start = whole.index(b"data") + 8
    whole[start:] = np.full((len(whole) - start) // 4, np.nan, np.float32).tobytes()
    audio.write_bytes(bytes(whole))
    assets = AssetStore(tmp_path / "assets")
    async with RoomRegistry(store, document_type=ProjectDocument) as registry:
        assert await recover_takes(assets, registry) == []
        async with registry.use("p") as room:
            assert room.document.clips_of("vox") == []
    assert take_files(assets) == []


async def test_a_server_places_a_killed_take_when_it_starts_and_tells_its_owner(
        tmp_path: Path) -> None:
    from loopback import free_port
    from nodepeer import running_server

    from accounts.models import AccountKind
    from dawserver.config import ServerConfig
    from dawserver.keys import ACCOUNTS, BACKGROUND, ROOMS, STORE
    from dawserver.take_events import RECOVERED_NAME

    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app:
        document = ProjectDocument.from_session(Session(tracks=[Track("vox")]))
        await app[STORE].create_project("p", "P", document.doc.get_update())
        owner = await app[ACCOUNTS].store.create_account(AccountKind.PERSON, "Ana",
                                                          email="ana@example.org")
        await app[ACCOUNTS].store.own_project(owner.account_id, "p")
    audio = killed_mid_take(tmp_path / "data")
    journal = TakeJournal.read(journal_path(audio))
    journal.user = owner.account_id  # recorded by the owner, signed in
    journal.write(audio)
    async with running_server(config) as app, asyncio.timeout(60):
        while not (events := await app[BACKGROUND].bus.db.fetch(
                "SELECT account_id, id, payload FROM events_outbox WHERE name = ?",
                RECOVERED_NAME)):
            await asyncio.sleep(0.05)
        async with app[ROOMS].use("p") as room:  # placed before it was announced
            clips = room.document.clips_of("vox")
    assert sorted((int(c["position"]), int(c["offset"]), int(c["length"]))
                  for c in clips) == PLACED
    [source] = {c["source"] for c in clips}
    [event] = events
    assert event["account_id"] == owner.account_id
    assert event["id"] == f"{RECOVERED_NAME}/p/{source}"
    assert json.loads(event["payload"]) == {
        "account_id": owner.account_id, "project_id": "p", "asset_id": source,
        "recorded_by": owner.account_id, "tracks": ["vox"], "frames": 20 * FRAME,
        "duration_s": round(20 * FRAME / RATE, 3)}
