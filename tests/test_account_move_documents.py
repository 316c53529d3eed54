"""Moving an account takes its projects' documents and audio: only the target holds
them after.

Regions as in test_account_move.py: the main database, ``eu`` (SQLite, then a real
PostgreSQL database) and ``us`` (SQLite), each with the collaboration tables and an
asset directory. A person in ``us`` owns a project edited in a live room, with a clip
of uploaded audio; she moves to ``eu`` with the server's hooks
(:class:`~dawserver.document_moves.DocumentMoveHook`, then
:class:`~dawserver.file_moves.AssetMoveHook`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from pycrdt import Map
from test_account_move import Crash
from test_accounts_regions import CHEAP, signed_up

from accounts.moving import AccountMover
from accounts.regions import RegionalAccountStore, RegionalSessions, open_regions
from accounts.service import AccountService, MailLog
from accounts.sessions import Sessions
from collab.errors import ProjectBusy
from collab.regional_store import RegionalCollabStore
from collab.registry import RoomRegistry
from collab.schema import ProjectDocument
from collab.store import StoredDocument, store_for
from database import Database, open_database
from dawserver import file_moves
from dawserver.asset_store import AssetNotFound, AssetStore
from dawserver.document_moves import COLLAB_TABLES, DocumentMoveHook, DocumentNotInSource
from dawserver.file_moves import AssetMoveHook, ObjectMoveHook, sha256
from dawserver.storage.local import LocalObjectStore
from dsp_core.session import Clip, Track


@dataclass
class World:
    service: AccountService
    store: RegionalAccountStore
    databases: dict[str, Database]
    collab: RegionalCollabStore
    rooms: RoomRegistry
    hook: DocumentMoveHook
    mover: AccountMover
    assets: dict[str, AssetStore]
    objects: dict[str, DyingObjectStore]


class DyingObjectStore(LocalObjectStore):
    """A region's local object store whose next write dies halfway when told."""

    die = False

    async def put(self, key: str, chunks, **kwargs) -> int:
        if self.die:
            self.die = False
            (self.root / ".tmp" / "half").write_bytes(b"half")  # a write cut short
            raise Crash("killed while copying objects")
        return await super().put(key, chunks, **kwargs)


class CrashingHook(DocumentMoveHook):
    """The server's hook, killed after ``left`` tables of documents were read."""

    left = -1

    async def _rows(self, region: str, table: str, project_id: str) -> list[dict]:
        if self.left == 0:
            self.left = -1
            raise Crash("killed while copying documents")
        self.left -= 1
        return await super()._rows(region, table, project_id)


async def bounce_prefixes(hook: DocumentMoveHook, account_id: str) -> list[str]:
    return [f"bounces/{project_id}/" for project_id in await hook.projects_of(account_id)]


@pytest_asyncio.fixture
async def world(collab_database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    main_url = f"sqlite://{tmp_path / 'main.sqlite3'}"
    urls = {"eu": collab_database_url, "us": f"sqlite://{tmp_path / 'us.sqlite3'}"}
    async with (
        open_database(main_url) as main,
        open_regions(main, main_url, urls, tmp_path) as databases,
    ):
        store = RegionalAccountStore.over(databases)
        await store.migrate()
        sessions = RegionalSessions.over(databases)
        service = AccountService(
            store, Sessions(sessions), MailLog(), passwords=CHEAP, regions=store.regions
        )
        collab = RegionalCollabStore({n: store_for(db) for n, db in databases.items()})
        await collab.start()
        try:
            async with RoomRegistry(collab, document_type=ProjectDocument) as rooms:

                def hold(project_id: str):  # noqa: ANN202
                    return rooms.held(project_id, "its document is moving (test)")

                async def edit(project_id: str, change) -> None:
                    async with rooms.use(project_id) as room:
                        await room.edit(change)

                hook = CrashingHook(collab, databases, hold=hold)
                assets = {n: AssetStore(tmp_path / n / "assets") for n in databases}
                files = AssetMoveHook(
                    assets, hook.projects_of, edit=edit, region_of=store.region_of
                )
                objects = {n: DyingObjectStore(tmp_path / n / "files") for n in databases}
                bounces = ObjectMoveHook(
                    "bounces",
                    objects,
                    lambda account_id: bounce_prefixes(hook, account_id),
                    store.region_of,
                )
                mover = AccountMover(
                    store,
                    databases,
                    sessions=sessions,
                    hooks=[hook, files, bounces],
                    settle_s=0.0,
                    propagate_s=0.0,
                )
                await mover.setup()
                yield World(service, store, databases, collab, rooms, hook, mover, assets, objects)
        finally:
            await collab.stop()


async def a_project_in_us(world: World) -> tuple[str, str]:
    """Uma in ``us`` owning a renamed, compacted project; her id and its id."""
    uma = (await signed_up(world.service, "uma@example.com", "us")).person.account_id
    await world.collab.create_project_in("us", "song-1", "Song", None)
    await world.store.own_project(uma, "song-1")
    async with world.rooms.use("song-1") as room:
        for name in ("Demo", "Demo 2", "Demo 3"):
            await room.edit(lambda d, n=name: d.rename(n))
        await room.compact()
        await room.edit(lambda d: d.rename("Final"))
    await world.rooms._unload("song-1")  # its final snapshot written
    return uma, "song-1"


async def held_by(world: World, project_id: str) -> dict[str, set[str]]:
    """``{region: tables holding the project}``, every region's database read raw."""
    held: dict[str, set[str]] = {}
    for region, database in world.databases.items():
        for table in COLLAB_TABLES:
            if await database.fetch(f"SELECT 1 FROM {table} WHERE project_id = ?", project_id):
                held.setdefault(region, set()).add(table)
    return held


def content(document: StoredDocument) -> tuple:
    return (document.snapshot, document.snapshot_seq, document.updates, document.last_seq)


@pytest.mark.asyncio
async def test_a_moved_accounts_document_is_only_in_the_target_and_the_same(world: World) -> None:
    uma, song = await a_project_in_us(world)
    before = content(await world.collab.in_region("us").load(song))
    assert set(await held_by(world, song)) == {"us"}

    async with world.rooms.use(song) as room:  # open in a live room while it moves
        await world.mover.move(uma, "eu")
        assert world.rooms.loaded(song) is None  # unloaded: it reloads from eu

    assert set(await held_by(world, song)) == {"eu"}
    assert {"collab_projects", "collab_snapshots"} <= (await held_by(world, song))["eu"]
    assert content(await world.collab.load(song)) == before
    assert await world.collab.region_of(song) == "eu"
    # another process (its own store, nothing remembered) finds it in eu
    other = RegionalCollabStore({n: store_for(db) for n, db in world.databases.items()})
    assert (await other.get_project(song)).name == "Song"
    assert await other.region_of(song) == "eu"
    # edits after the move land in eu, and the room shows what was written before
    async with world.rooms.use(song) as room:
        assert room.doc.get("meta", type=Map)["name"] == "Final"
        assert room.last_seq == before[3]
        await room.edit(lambda d: d.rename("After"))
    assert set(await held_by(world, song)) == {"eu"}
    assert (await world.collab.load(song)).last_seq == before[3] + 1


@pytest.mark.asyncio
async def test_a_live_room_edit_between_copy_and_clean_is_moved_not_lost(world: World) -> None:
    uma, song = await a_project_in_us(world)
    hook = world.hook

    async def edit_after_copy(account_id: str, source: str, target: str) -> None:
        await DocumentMoveHook.copy(hook, account_id, source, target)
        async with world.rooms.use(song) as room:  # a peer's edit in the open room
            await room.edit(lambda d: d.rename("During"))

    hook.copy = edit_after_copy  # type: ignore[method-assign]
    await world.mover.move(uma, "eu")

    assert set(await held_by(world, song)) == {"eu"}
    async with world.rooms.use(song) as room:
        assert room.doc.get("meta", type=Map)["name"] == "During"


@pytest.mark.asyncio
@pytest.mark.parametrize("killed_after", [0, 1, 2, 4, 6])
async def test_a_move_killed_while_copying_documents_resumes_to_the_same_end(
    world: World, killed_after: int
) -> None:
    uma, song = await a_project_in_us(world)
    before = content(await world.collab.in_region("us").load(song))
    world.hook.left = killed_after
    await world.mover.begin(uma, "eu")
    with pytest.raises(Crash):
        await world.mover.run(uma)
    assert set(await held_by(world, song)) >= {"us"}  # nothing lost at the crash

    await world.mover.run(uma)

    assert set(await held_by(world, song)) == {"eu"}
    assert content(await world.collab.load(song)) == before


async def a_clip_of_audio(world: World, tmp_path: Path, song: str) -> tuple[str, str]:
    """A second of noise uploaded to ``song`` in ``us`` and placed as a clip; its id and
    its SHA-256 (the file's)."""
    wav = tmp_path / "take.wav"
    sf.write(wav, np.random.default_rng(7).uniform(-0.5, 0.5, (48000, 2)), 48000)
    asset = world.assets["us"].ingest_file(wav, project_id=song, name="take.wav")
    source = world.assets["us"].root / "objects" / asset.id[:2] / f"{asset.id}.wav"
    assert source.is_file()

    def place(document) -> None:
        track = document.add_track(Track("t1", name="Vocal"))
        document.add_clip(track, Clip(str(source), 0, 48000))

    async with world.rooms.use(song) as room:
        await room.edit(place)
    await world.rooms._unload(song)
    return asset.id, sha256(source)


def files_of(store: AssetStore) -> set[str]:
    return {
        str(p.relative_to(store.root))
        for p in store.root.rglob("*")
        if p.is_file() and ("objects" in p.parts or "projects" in p.parts)
    }


async def audio_moved(world: World, song: str, asset_id: str, digest: str) -> None:
    """The audio, its index and the clip are all in eu now, and nothing of it in us."""
    assert files_of(world.assets["us"]) == set()
    assert world.assets["eu"].project_assets(song) == [asset_id]
    with pytest.raises(AssetNotFound):
        world.assets["us"].asset(asset_id)
    moved = world.assets["eu"].asset(asset_id)
    assert Path(moved.path).is_relative_to(world.assets["eu"].root)
    assert sha256(Path(moved.path)) == digest
    async with world.rooms.use(song) as room:
        (source,) = room.document.clip_sources()
    assert Path(source).is_relative_to(world.assets["eu"].root)
    assert sha256(Path(source)) == digest == asset_id


@pytest.mark.asyncio
async def test_a_moved_accounts_audio_is_only_in_the_target_and_clips_play_from_there(
    world: World, tmp_path: Path
) -> None:
    uma, song = await a_project_in_us(world)
    asset_id, digest = await a_clip_of_audio(world, tmp_path, song)
    before = files_of(world.assets["us"])
    assert len(before) >= 3  # the audio, its description and peaks, the index

    await world.mover.move(uma, "eu")

    assert files_of(world.assets["eu"]) == before
    await audio_moved(world, song, asset_id, digest)


@pytest.mark.asyncio
@pytest.mark.parametrize("killed_after", [0, 1, 2])
async def test_a_move_killed_while_copying_audio_resumes_to_the_same_end(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_after: int
) -> None:
    uma, song = await a_project_in_us(world)
    asset_id, digest = await a_clip_of_audio(world, tmp_path, song)
    before = files_of(world.assets["us"])
    copy_file, left = file_moves.copy_file, [killed_after]

    def dying_copy(source: Path, target: Path) -> bool:
        if left[0] == 0:
            partial = target.with_name(f".{target.name}.moving")
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(source.read_bytes()[:100])  # died halfway through a file
            raise Crash("killed while copying files")
        left[0] -= 1
        return copy_file(source, target)

    monkeypatch.setattr(file_moves, "copy_file", dying_copy)
    await world.mover.begin(uma, "eu")
    with pytest.raises(Crash):
        await world.mover.run(uma)
    assert files_of(world.assets["us"]) == before  # nothing lost at the crash
    assert world.assets["eu"].project_assets(song) == []  # no index before its files

    monkeypatch.setattr(file_moves, "copy_file", copy_file)
    await world.mover.run(uma)

    assert files_of(world.assets["eu"]) == before
    await audio_moved(world, song, asset_id, digest)


@pytest.mark.asyncio
@pytest.mark.parametrize("killed", [False, True])
async def test_a_projects_bounces_move_to_the_target_store_resuming_after_a_crash(
    world: World, killed: bool
) -> None:
    uma, song = await a_project_in_us(world)
    bounce = np.random.default_rng(3).bytes(3 << 20)  # more than one chunk
    await world.objects["us"].put(f"bounces/{song}/j1.wav", bounce)
    await world.objects["us"].put(f"bounces/{song}/j1.snapshot", b"{}")
    await world.objects["us"].put("bounces/someone-else/j2.wav", b"theirs")

    await world.mover.begin(uma, "eu")
    if killed:
        world.objects["eu"].die = True
        with pytest.raises(Crash):
            await world.mover.run(uma)
        assert await world.objects["us"].get(f"bounces/{song}/j1.wav") == bounce
    await world.mover.run(uma)

    assert await world.objects["us"].keys("bounces/") == ["bounces/someone-else/j2.wav"]
    assert await world.objects["eu"].keys("bounces/") == [
        f"bounces/{song}/j1.snapshot",
        f"bounces/{song}/j1.wav",
    ]
    assert await world.objects["eu"].get(f"bounces/{song}/j1.wav") == bounce


@pytest.mark.asyncio
async def test_a_drop_run_again_keeps_the_moved_document(world: World) -> None:
    """The clean step run a second time (a crash before it was recorded) finds the
    project gone from the source: the target's copy must stay as it is."""
    uma, song = await a_project_in_us(world)
    before = content(await world.collab.in_region("us").load(song))
    await world.mover.move(uma, "eu")
    assert set(await held_by(world, song)) == {"eu"}

    await world.hook.drop(uma, "us")  # the resumed clean step

    assert set(await held_by(world, song)) == {"eu"}
    assert content(await world.collab.load(song)) == before
    assert await world.collab.region_of(song) == "eu"
    with pytest.raises(DocumentNotInSource):  # never copies an absent original
        await world.hook._copy_exactly(song, "us", "eu")
    assert content(await world.collab.in_region("eu").load(song)) == before


@pytest.mark.asyncio
async def test_a_drop_failing_after_one_project_resumes_without_losing_it(world: World) -> None:
    uma, song = await a_project_in_us(world)
    await world.collab.create_project_in("us", "song-2", "Other", None)
    await world.store.own_project(uma, "song-2")
    async with world.rooms.use("song-2") as room:
        await room.edit(lambda d: d.rename("Second"))
    await world.rooms._unload("song-2")
    before = {p: content(await world.collab.in_region("us").load(p)) for p in (song, "song-2")}
    hold, failed = world.hook.hold, []

    @contextlib.asynccontextmanager
    async def failing_hold(project_id: str):  # noqa: ANN202
        if project_id == "song-2" and not failed:
            failed.append(project_id)
            raise Crash("killed while dropping the second project")
        async with hold(project_id):
            yield

    world.hook.hold = failing_hold
    await world.mover.begin(uma, "eu")
    with pytest.raises(Crash):
        await world.mover.run(uma)
    assert set(await held_by(world, song)) == {"eu"}  # the first was dropped already
    assert set(await held_by(world, "song-2")) == {"us", "eu"}

    await world.mover.run(uma)

    for project_id in (song, "song-2"):
        assert set(await held_by(world, project_id)) == {"eu"}
        assert content(await world.collab.load(project_id)) == before[project_id]


@pytest.mark.asyncio
async def test_audio_recorded_during_the_move_is_moved_not_deleted(
    world: World, tmp_path: Path
) -> None:
    """A take ingested into the source between the copy and the clean steps (the
    project is still routed there) goes to the target before the source forgets it."""
    uma, song = await a_project_in_us(world)
    first_id, _ = await a_clip_of_audio(world, tmp_path, song)
    files = next(h for h in world.mover.hooks if isinstance(h, AssetMoveHook))
    late = tmp_path / "late.wav"
    sf.write(late, np.random.default_rng(11).uniform(-0.5, 0.5, (24000, 2)), 48000)
    late_bytes = late.read_bytes()
    ingested = []

    async def record_after_copy(account_id: str, source: str, target: str) -> None:
        await AssetMoveHook.copy(files, account_id, source, target)
        ingested.append(world.assets["us"].ingest_file(late, project_id=song, name="late.wav"))

    files.copy = record_after_copy  # type: ignore[method-assign]
    await world.mover.move(uma, "eu")

    (take,) = ingested
    assert files_of(world.assets["us"]) == set()
    assert world.assets["eu"].project_assets(song) == [first_id, take.id]
    moved = world.assets["eu"].asset(take.id)  # found, as a download finds it
    assert Path(moved.path).is_relative_to(world.assets["eu"].root)
    assert Path(moved.path).read_bytes() == late_bytes
    assert sha256(Path(moved.path)) == take.id


@pytest.mark.asyncio
async def test_a_bounce_written_while_objects_drop_is_not_deleted_uncopied(world: World) -> None:
    uma, song = await a_project_in_us(world)
    await world.objects["us"].put(f"bounces/{song}/j1.wav", b"first")
    bounces = next(h for h in world.mover.hooks if isinstance(h, ObjectMoveHook))
    copy = bounces._copy

    async def bounce_after_copy(account_id: str, source: str, target: str) -> list[str]:
        checked = await copy(account_id, source, target)
        if source == "us" and world.store.region_of(account_id) == "eu":  # in the drop
            await world.objects["us"].put(f"bounces/{song}/j2.wav", b"late")
        return checked

    bounces._copy = bounce_after_copy  # type: ignore[method-assign]
    await world.mover.move(uma, "eu")

    assert await world.objects["eu"].get(f"bounces/{song}/j1.wav") == b"first"
    assert await world.objects["us"].keys("bounces/") == [f"bounces/{song}/j2.wav"]
    assert await world.objects["us"].get(f"bounces/{song}/j2.wav") == b"late"  # kept


@pytest.mark.asyncio
async def test_a_room_cannot_reopen_from_the_source_while_its_document_is_dropped(
    world: World,
) -> None:
    """Between the last copy and the source's deletion the project's room is held
    closed: a reconnecting peer or an API call is told to try again, not served (and
    written to) from the source, whose rows are about to go."""
    uma, song = await a_project_in_us(world)
    hook, refused = world.hook, []

    async def copy_then_try_to_open(project_id: str, source: str, target: str) -> None:
        await DocumentMoveHook._copy_exactly(hook, project_id, source, target)
        switched = world.store.region_of(uma) == "eu"  # the drop, after the switch
        if switched and await world.collab.region_of(project_id) == "us":  # not relocated
            with pytest.raises(ProjectBusy, match="moving") as busy:
                async with world.rooms.use(project_id):
                    pass
            refused.append(busy.value.retry_after)

    hook._copy_exactly = copy_then_try_to_open  # type: ignore[method-assign]
    async with world.rooms.use(song):  # open in this process while it moves
        await world.mover.move(uma, "eu")

    assert refused and refused[-1] > 0  # the drop's last copy ran with the room held
    assert set(await held_by(world, song)) == {"eu"}
    async with world.rooms.use(song) as room:  # released: it opens, from eu
        assert room.doc.get("meta", type=Map)["name"] == "Final"
