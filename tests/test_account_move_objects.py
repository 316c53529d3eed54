"""Moving an account whose audio lives on object storage: every pair of local disk and
S3 (the real S3 server of the test setup, SeaweedFS on loopback), a crash mid-copy and
one mid-clean followed by a rerun, and the check before the fence.

Regions as in test_account_move_documents.py (SQLite here: the documents' move is
tested on PostgreSQL there): Uma in ``us`` owns a project with a clip of uploaded
audio and moves to ``eu``. A region on S3 has its own bucket; the audio is 6 MiB, over
the multipart threshold, so an S3 target receives it as a streamed multipart upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_account_move import Crash
from test_account_move_documents import World, a_project_in_us, files_of
from test_accounts_regions import CHEAP

from accounts.moving import AccountMover
from accounts.regions import RegionalAccountStore, RegionalSessions, open_regions
from accounts.service import AccountService, MailLog
from accounts.sessions import Sessions
from collab.regional_store import RegionalCollabStore
from collab.registry import RoomRegistry
from collab.schema import ProjectDocument
from collab.store import store_for
from database import open_database
from dawserver import asset_objects, object_moves
from dawserver.asset_store import AssetStore
from dawserver.clip_sources import local_source
from dawserver.document_moves import DocumentMoveHook
from dawserver.file_moves import AssetMoveHook, FilesNotMovable
from dawserver.storage import ObjectStore, StorageSettings, StorageUnavailable, open_object_store
from dawserver.storage.local import LocalObjectStore
from dsp_core.session import Clip, Track

pytestmark = pytest.mark.asyncio

#: (source ``us``, target ``eu``): where each region keeps its assets.
LAYOUTS = [("disk", "s3"), ("s3", "disk"), ("s3", "s3")]
SECONDS = 16  # 16 s of stereo float: 6.1 MB, two 5 MiB parts over a 1 MiB threshold


@contextlib.asynccontextmanager
async def moving_world(tmp_path: Path, s3_server, layout: tuple[str, str]  # noqa: ANN001
                       ) -> AsyncIterator[World]:
    """Regions ``default``, ``us`` and ``eu``; ``us`` and ``eu`` keep their assets as
    ``layout`` says (an S3 region: its own bucket on the test's S3 server)."""
    settings = StorageSettings(**s3_server.settings(), multipart_threshold_mb=1,
                               part_size_mb=5)
    main_url = f"sqlite://{tmp_path / 'main.sqlite3'}"
    urls = {"eu": f"sqlite://{tmp_path / 'eu.sqlite3'}",
            "us": f"sqlite://{tmp_path / 'us.sqlite3'}"}
    async with contextlib.AsyncExitStack() as stack:
        main = await stack.enter_async_context(open_database(main_url))
        databases = await stack.enter_async_context(open_regions(main, main_url, urls,
                                                                 tmp_path))
        kinds = {"default": "disk", "us": layout[0], "eu": layout[1]}
        assets: dict[str, AssetStore] = {}
        for region, kind in kinds.items():
            objects: ObjectStore | None = None
            if kind == "s3":
                objects = await stack.enter_async_context(open_object_store(
                    f"s3://move-{region}-{uuid.uuid4().hex[:10]}/assets-of-{region}",
                    settings))
                await objects.create_bucket()  # type: ignore[attr-defined]
            assets[region] = AssetStore(tmp_path / region / "assets", objects=objects)
        store = RegionalAccountStore.over(databases)
        await store.migrate()
        sessions = RegionalSessions.over(databases)
        service = AccountService(store, Sessions(sessions), MailLog(), passwords=CHEAP,
                                 regions=store.regions)
        collab = RegionalCollabStore({n: store_for(db) for n, db in databases.items()})
        await collab.start()
        stack.push_async_callback(collab.stop)
        rooms = await stack.enter_async_context(
            RoomRegistry(collab, document_type=ProjectDocument))

        async def edit(project_id: str, change) -> None:  # noqa: ANN001
            async with rooms.use(project_id) as room:
                await room.edit(change)

        hook = DocumentMoveHook(collab, databases,
                                hold=lambda p: rooms.held(p, "its document is moving (test)"))
        files = AssetMoveHook(assets, hook.projects_of, edit=edit, region_of=store.region_of)
        mover = AccountMover(store, databases, sessions=sessions, hooks=[hook, files],
                             settle_s=0.0, propagate_s=0.0)
        await mover.setup()
        yield World(service, store, databases, collab, rooms, hook, mover, assets, {})


def audio(tmp_path: Path, seed: int, seconds: float = SECONDS) -> Path:
    path = tmp_path / f"take-{seed}.wav"
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(48000 * seconds), 2))
    sf.write(path, noise.astype(np.float32), 48000, subtype="FLOAT")
    return path


async def uploaded(world: World, tmp_path: Path, song: str, seed: int = 7) -> str:
    """Audio uploaded to ``song`` in ``us`` (on S3: by another node, so this one has
    nothing of it cached) and placed as a clip by its id; the id."""
    us = world.assets["us"]
    node = us if us.objects is None else AssetStore(tmp_path / "other-node",
                                                     objects=us.objects)
    data = audio(tmp_path, seed).read_bytes()

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1 << 20):
            yield data[start:start + (1 << 20)]

    asset = await node.ingest_stream(body(), project_id=song, name="take.wav")
    assert asset.id == hashlib.sha256(data).hexdigest()

    def place(document) -> None:  # noqa: ANN001
        track = document.add_track(Track("t1", name="Vocal"))
        document.add_clip(track, Clip(asset.id, 0, 48000))

    async with world.rooms.use(song) as room:
        await room.edit(place)
    await world.rooms._unload(song)
    return asset.id


def streamed_in_parts(store: AssetStore) -> list[str]:
    """The keys ``store``'s S3 object store will take as multipart uploads (recorded)."""
    keys: list[str] = []
    objects = store.objects
    if objects is None:
        return keys
    multipart = objects._multipart  # type: ignore[attr-defined]

    async def recorded(name: str, key: str, *args) -> int:  # noqa: ANN002
        keys.append(key)
        return await multipart(name, key, *args)

    objects._multipart = recorded  # type: ignore[attr-defined]
    return keys


async def held(store: AssetStore, song: str) -> list[str]:
    """The project's assets as ``store``'s region sees them (index or memberships)."""
    return await asset_objects.project_assets(store, song)


async def plays_from(store: AssetStore, song: str, asset_id: str) -> None:
    """The clip's audio resolves in ``store`` to a local file of exactly its bytes."""
    path = Path(await local_source(store, song, asset_id))
    assert path.is_relative_to(store.root)
    assert object_moves._file_sha256(path) == asset_id


async def source_left(store: AssetStore) -> list[str]:
    """What the source keeps of any project's assets (keys, or files on disk), once the
    grace period of forgotten audio has passed."""
    if store.objects is None:
        return sorted(files_of(store))
    await asset_objects.collect_forgotten(
        store, now=time.time() + asset_objects.FORGET_GRACE_S + 1)
    return await store.objects.keys("assets/") + sorted(files_of(store))


async def source_whole(store: AssetStore, song: str, asset_id: str) -> None:
    """The source still holds the project's audio, whole."""
    assert await held(store, song) == [asset_id]
    if store.objects is None:
        assert object_moves._file_sha256(Path(store.asset(asset_id).path)) == asset_id
    else:
        key = asset_objects.object_key(asset_id, "wav")
        assert await object_moves._digest(store.objects.stream(key)) == asset_id
        assert await store.objects.exists(asset_objects.object_key(asset_id, "json"))


@pytest.mark.parametrize("layout", LAYOUTS, ids="-to-".join)
async def test_a_moved_accounts_audio_is_copied_checked_and_then_only_in_the_target(
        s3_server, tmp_path: Path, layout: tuple[str, str]) -> None:  # noqa: ANN001
    async with moving_world(tmp_path, s3_server, layout) as world:
        uma, song = await a_project_in_us(world)
        asset_id = await uploaded(world, tmp_path, song)
        files = next(h for h in world.mover.hooks if isinstance(h, AssetMoveHook))
        notes: list[str] = []
        parts = streamed_in_parts(world.assets["eu"])

        with files.watch(uma, notes.append):
            await world.mover.move(uma, "eu")

        us, eu = world.assets["us"], world.assets["eu"]
        assert world.store.region_of(uma) == "eu"
        assert await held(eu, song) == [asset_id]
        await plays_from(eu, song, asset_id)
        assert (await asset_objects.pull(eu, asset_id)).frames == 48000 * SECONDS
        async with world.rooms.use(song) as room:  # the clip still names its audio
            assert room.document.clip_sources() == {asset_id}
        if eu.objects is not None:  # a whole asset there: audio, peaks, description
            keys = await eu.objects.keys(f"assets/objects/{asset_id[:2]}/{asset_id}.")
            assert sorted(k.split(".", 1)[1] for k in keys) == ["json", "peaks.npz", "wav"]
        if eu.objects is not None:  # the audio went up in parts, never whole in memory
            assert parts == [f"assets/objects/{asset_id[:2]}/{asset_id}.wav"]
        assert await held(us, song) == []
        assert await source_left(us) == []
        # the job's note said how the copy went: every file, the audio's 5.9 MiB (the
        # clean step's second pass then found all three there already)
        assert len(notes) >= 3 and "3 files checked in eu" in notes[-1]
        assert max(float(n.split(", ")[1].split(" MiB")[0]) for n in notes) >= 5.8
        assert notes[-1].endswith(", 0.0 MiB copied")


@pytest.mark.parametrize("layout", LAYOUTS, ids="-to-".join)
async def test_a_move_killed_mid_copy_loses_nothing_and_a_rerun_finishes_it(
        s3_server, tmp_path: Path, layout: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    async with moving_world(tmp_path, s3_server, layout) as world:
        uma, song = await a_project_in_us(world)
        asset_id = await uploaded(world, tmp_path, song)
        read, chunks = object_moves._read, []

        async def dying_read(store, file):  # noqa: ANN001, ANN202 - the real reader, cut
            async for chunk in read(store, file):
                chunks.append(len(chunk))
                yield chunk
                if sum(chunks) > 2 << 20:  # past the first 2 MiB of the audio
                    raise Crash("killed while streaming the audio to the target")

        monkeypatch.setattr(object_moves, "_read", dying_read)
        await world.mover.begin(uma, "eu")
        with pytest.raises(Crash):
            await world.mover.run(uma)

        us, eu = world.assets["us"], world.assets["eu"]
        assert world.store.region_of(uma) == "us"  # not switched: still played from us
        await source_whole(us, song, asset_id)
        await plays_from(us, song, asset_id)
        # nothing in the target looks whole: no description, no audio (its membership
        # or index entry, written first, names an asset that does not exist there yet)
        assert await object_moves._target_digest(eu, asset_id, "wav") is None
        assert await object_moves._target_digest(eu, asset_id, "json") is None

        monkeypatch.setattr(object_moves, "_read", read)
        await world.mover.run(uma)

        assert world.store.region_of(uma) == "eu"
        assert await world.mover.move_of(uma) is None
        await plays_from(eu, song, asset_id)
        assert await held(us, song) == []
        assert await source_left(us) == []


@pytest.mark.parametrize("layout", [("s3", "s3"), ("s3", "disk")], ids="-to-".join)
async def test_a_move_killed_while_cleaning_keeps_the_switched_audio_and_finishes(
        s3_server, tmp_path: Path, layout: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    async with moving_world(tmp_path, s3_server, layout) as world:
        uma, song = await a_project_in_us(world)
        asset_id = await uploaded(world, tmp_path, song)
        forget = object_moves.forget_source

        async def dying_forget(store: AssetStore, project_id: str) -> int:
            raise Crash("killed before the source's audio was deleted")

        monkeypatch.setattr(object_moves, "forget_source", dying_forget)
        with pytest.raises(Crash):
            await world.mover.move(uma, "eu")

        us, eu = world.assets["us"], world.assets["eu"]
        assert world.store.region_of(uma) == "eu"  # switched: it plays from eu already
        await plays_from(eu, song, asset_id)
        await source_whole(us, song, asset_id)  # nothing deleted before the drop ran

        monkeypatch.setattr(object_moves, "forget_source", forget)
        await world.mover.run(uma)

        await plays_from(eu, song, asset_id)
        assert await source_left(us) == []


async def test_a_take_uploaded_during_the_move_goes_too(s3_server, tmp_path: Path  # noqa: ANN001
                                                        ) -> None:
    """Audio uploaded to the S3 source between the copy and the switch (the project is
    still routed there) is copied by the clean step before the source forgets it."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world:
        uma, song = await a_project_in_us(world)
        first = await uploaded(world, tmp_path, song)
        files = next(h for h in world.mover.hooks if isinstance(h, AssetMoveHook))
        late: list[str] = []
        data = audio(tmp_path, 11, 0.5).read_bytes()

        async def upload_after_copy(account_id: str, source: str, target: str) -> None:
            await AssetMoveHook.copy(files, account_id, source, target)

            async def body() -> AsyncIterator[bytes]:
                yield data

            late.append((await world.assets["us"].ingest_stream(
                body(), project_id=song, name="late.wav")).id)

        files.copy = upload_after_copy  # type: ignore[method-assign]
        await world.mover.move(uma, "eu")

        eu = world.assets["eu"]
        assert sorted(await held(eu, song)) == sorted([first, *late])
        for asset_id in (first, *late):
            await plays_from(eu, song, asset_id)
        assert await source_left(world.assets["us"]) == []


class Unreachable(LocalObjectStore):
    """An object store whose every call fails as a store that does not answer."""

    async def exists(self, key: str) -> bool:
        raise StorageUnavailable("object storage cannot be reached (refused); try again")


async def test_a_move_to_a_region_whose_object_store_does_not_answer_is_refused_up_front(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    async with moving_world(tmp_path, s3_server, ("disk", "disk")) as world:
        uma, song = await a_project_in_us(world)
        asset_id = await uploaded(world, tmp_path, song)
        world.assets["eu"].objects = Unreachable(tmp_path / "eu-objects")

        with pytest.raises(FilesNotMovable, match="'eu' cannot be reached.*not begun"):
            await world.mover.begin(uma, "eu")

        assert await world.mover.move_of(uma) is None
        await world.mover.refuse_if_moving(uma)  # writes to the account still go through
        await source_whole(world.assets["us"], song, asset_id)


async def test_two_regions_on_one_object_store_location_are_refused_up_front(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Copying onto itself and then deleting the source would delete the only copy."""
    async with moving_world(tmp_path, s3_server, ("s3", "disk")) as world:
        uma, song = await a_project_in_us(world)
        asset_id = await uploaded(world, tmp_path, song)
        world.assets["eu"].objects = world.assets["us"].objects

        with pytest.raises(FilesNotMovable, match="same object store location"):
            await world.mover.begin(uma, "eu")

        assert await world.mover.move_of(uma) is None
        await source_whole(world.assets["us"], song, asset_id)


async def test_a_server_moves_an_account_from_local_disk_to_s3_and_serves_it_from_there(
        s3_server, tmp_path: Path, smtp_server) -> None:  # noqa: ANN001
    """The server's own wiring: regions ``us`` on local disk and ``eu`` on S3; an
    administrator's ``accounts.move`` job takes a person's project audio to eu's bucket,
    and the server then serves it, byte for byte, from there."""
    import asyncio

    from accounts_helpers import Person, accounts_server
    from test_regions_documents import files_under, signed_up_in, tone, upload
    from test_storage_http import make_bucket

    from dawserver.assets import REGION_ASSETS
    from dawserver.config import RegionConfig
    from dawserver.keys import TOKENS

    bucket = await make_bucket(s3_server)
    regions = {"eu": RegionConfig(f"sqlite://{tmp_path / 'eu.sqlite3'}", f"s3://{bucket}/eu"),
               "us": RegionConfig(f"sqlite://{tmp_path / 'us.sqlite3'}",
                                  str(tmp_path / "us-files"))}
    async with accounts_server(tmp_path, smtp_server, regions=regions,
                               storage_options=s3_server.settings()) as (app, config):
        sam = Person(config.base_url, smtp_server, "sam@example.com")
        try:
            await signed_up_in(sam, "us")
            status, project, _ = await sam.call("POST", f"/accounts/{sam.id}/projects",
                                                {"name": "Song"})
            assert status == 201, project
            data = tone(330)
            asset = await upload(sam, project["id"], data)
            eu = app[REGION_ASSETS]["eu"]
            assert eu.objects is not None and not await held(eu, project["id"])

            root = {"Authorization": f"Bearer {app[TOKENS].issue('*', 'owner', 'root')}"}
            url = f"/admin/accounts/{sam.id}/region-move"
            status, view, _ = await sam.call("POST", url, {"region": "eu"}, headers=root)
            assert status == 202, view  # not refused up front any more
            async with asyncio.timeout(120):
                while (await sam.call("GET", url, headers=root))[1]["moving"]:
                    await asyncio.sleep(0.1)
            status, view, _ = await sam.call("GET", url, headers=root)
            assert view["region"] == "eu" and view["state"] == "done", view

            assert await held(eu, project["id"]) == [asset["id"]]
            status, assets, _ = await sam.call("GET", f"/projects/{project['id']}/assets")
            assert status == 200 and [a["id"] for a in assets] == [asset["id"]]
            status, audio, _ = await sam.call("GET", assets[0]["download"])  # via S3's link
            assert status == 200 and audio == data
        finally:
            await sam.close()
    assert files_under(tmp_path / "us-files" / "assets", asset["id"], project["id"]) == []


async def test_the_move_job_notes_how_far_the_audio_copy_is(s3_server, tmp_path: Path  # noqa: ANN001
                                                            ) -> None:
    """The server's ``accounts.move`` job passes the hook's notes on, at the fraction
    the mover reached, so ``GET .../region-move`` shows the copy going."""
    from dawserver.account_moves import MoveJob
    from dawserver.accounts_setup import ACCOUNT_MOVER

    class Job:
        payload: dict[str, str]
        seen: list[tuple[float, str | None]]

        def progress(self, fraction: float, note: str | None = None) -> None:
            self.seen.append((fraction, note))

    async with moving_world(tmp_path, s3_server, ("s3", "disk")) as world:
        uma, song = await a_project_in_us(world)
        await uploaded(world, tmp_path, song)
        await world.mover.begin(uma, "eu")
        job = Job()
        job.payload, job.seen = {"account_id": uma}, []

        done = await MoveJob({ACCOUNT_MOVER: world.mover})(job)  # type: ignore[arg-type]

        assert done == {"region": "eu"}
        audio = [(f, n) for f, n in job.seen if n and "files checked in eu" in n]
        assert audio and any(float(n.split(", ")[1].split(" MiB")[0]) >= 5.8
                             for _, n in audio)
        fractions = [f for f, _ in job.seen]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert job.seen[-1][1] == "moved to eu"
