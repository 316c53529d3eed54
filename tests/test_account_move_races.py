"""Moving an account's audio while other work runs on its regions: an upload that ends
after the move, takes waiting to be published, the target collecting forgotten audio
or deleting another project that shares an asset, a second runner of the move.

The regions' object stores are local directories (:class:`LocalObjectStore`, the same
protocol as S3), so each race is staged exactly where it bites.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from test_account_move import World, a_person_in_us, world  # noqa: F401 - the fixture

from accounts import moving
from accounts.errors import Conflict
from accounts.moving import AccountMover
from accounts.regions import RegionalAccountStore
from dawserver import asset_cache, asset_objects, assets, object_moves
from dawserver.asset_store import Asset, AssetStore
from dawserver.errors import Unavailable
from dawserver.file_moves import AssetMoveHook
from dawserver.keys import STORE
from dawserver.storage.local import LocalObjectStore

pytestmark = pytest.mark.asyncio


def wav(seed: int) -> bytes:
    out = io.BytesIO()
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, (4800, 2)).astype(np.float32)
    sf.write(out, noise, 48000, format="WAV", subtype="FLOAT")
    return out.getvalue()


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def on_s3(root: Path, name: str) -> AssetStore:
    """A region's asset store whose assets live on an object store."""
    return AssetStore(root / name / "assets", objects=LocalObjectStore(root / f"{name}-s3"))


def on_disk(root: Path, name: str) -> AssetStore:
    return AssetStore(root / name / "assets")


async def whole(store: AssetStore, project_id: str, asset_id: str) -> None:
    """``store`` holds ``asset_id`` for ``project_id``, every file of it."""
    assert asset_id in await asset_objects.project_assets(store, project_id)
    if store.objects is None:
        assert object_moves._file_sha256(Path(store.asset(asset_id).path)) == asset_id
        return
    for suffix in ("wav", "peaks.npz", "json"):
        assert await store.objects.exists(asset_objects.object_key(asset_id, suffix))
    key = asset_objects.object_key(asset_id, "wav")
    assert await object_moves._digest(store.objects.stream(key)) == asset_id


# -- 1. an upload running while the account moves --------------------------------------

class Projects:
    """The collaboration store as the upload route asks it: the project exists."""

    async def get_project(self, project_id: str) -> object:
        return object()


def upload_request(project_id: str, data: bytes) -> SimpleNamespace:
    native = SimpleNamespace(content_length=len(data), content_type="audio/wav",
                             content=SimpleNamespace(iter_chunked=lambda n: body(data)))
    return SimpleNamespace(params={"project_id": project_id}, app={STORE: Projects()},
                           native=native, query=SimpleNamespace(name="take.wav"))


def moved_during_upload(monkeypatch: pytest.MonkeyPatch, us: AssetStore, eu: AssetStore
                        ) -> None:
    """The upload route finds the project in ``us`` as an upload begins and in ``eu`` as
    it ends: the account moved in between."""
    regions = iter([us, eu])
    monkeypatch.setattr(assets, "assets_of", lambda app, project_id: _now(next(regions)))


def failing(monkeypatch: pytest.MonkeyPatch, step: str, error: Exception) -> None:
    """``object_moves``'s ``step`` raises ``error`` whenever it is called."""

    async def fail(*args, **kwargs) -> int:  # noqa: ANN002, ANN003
        raise error

    monkeypatch.setattr(object_moves, step, fail)


async def answered_503(data: bytes) -> None:
    """Uploading ``data`` to project P is answered 503: send it again in 30 seconds."""
    with pytest.raises(Unavailable, match="send it again") as answer:
        await assets.upload_asset(upload_request("P", data))  # type: ignore[arg-type]
    assert answer.value.headers["Retry-After"] == "30"


@pytest.mark.parametrize("target", [on_s3, on_disk], ids=["to-s3", "to-disk"])
async def test_an_upload_that_ends_after_its_account_moved_is_kept_where_it_lives_now(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target) -> None:  # noqa: ANN001
    """The route resolved the region when the upload began; the move finished (clean
    step included) before it stored the audio: it answers with the audio in the region
    the project lives in now, and the old region keeps nothing of it."""
    us, eu = on_s3(tmp_path, "us"), target(tmp_path, "eu")
    moved_during_upload(monkeypatch, us, eu)
    data = wav(1)

    info = await assets.upload_asset(upload_request("P", data))  # type: ignore[arg-type]

    await whole(eu, "P", info.id)
    assert await asset_objects.project_assets(us, "P") == []
    assert not await us.objects.exists(asset_objects.object_key(info.id, "json"))


async def test_an_upload_that_cannot_follow_its_account_is_answered_503_and_not_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    us, eu = on_s3(tmp_path, "us"), on_s3(tmp_path, "eu")
    moved_during_upload(monkeypatch, us, eu)
    failing(monkeypatch, "copy_asset",
            object_moves.StorageError("eu's object store refused the copy"))

    await answered_503(wav(1))

    assert await asset_objects.project_assets(us, "P") == []


@pytest.mark.parametrize(("target", "error"), [
    (on_s3, object_moves.StorageError("eu's object store refused the audio")),
    (on_disk, OSError(errno.ENOSPC, "No space left on device")),
], ids=["s3-refuses", "disk-full"])
async def test_an_upload_whose_copy_fails_midway_is_kept_in_neither_region(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target, error) -> None:  # noqa: ANN001
    """The copy wrote the new region's membership (or index entry) before its audio
    failed: the answer is 503 and neither region lists the upload."""
    us, eu = on_s3(tmp_path, "us"), target(tmp_path, "eu")
    moved_during_upload(monkeypatch, us, eu)
    failing(monkeypatch, "_copy_file", error)

    await answered_503(wav(1))

    assert await asset_objects.project_assets(us, "P") == []
    assert await asset_objects.project_assets(eu, "P") == []
    if eu.objects is not None:
        assert await eu.objects.keys("assets/members/") == []


async def test_an_upload_already_in_the_project_keeps_it_when_its_copy_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bytes, moved with the project before: a failed copy takes nothing back."""
    us, eu = on_s3(tmp_path, "us"), on_s3(tmp_path, "eu")
    data = wav(1)
    asset_id = (await eu.ingest_stream(body(data), project_id="P", name="a.wav")).id
    moved_during_upload(monkeypatch, us, eu)
    failing(monkeypatch, "_check_whole",
            object_moves.StorageError("eu's object store refused the audio"))

    await answered_503(data)

    await whole(eu, "P", asset_id)


async def _now(store: AssetStore) -> AssetStore:
    return store


async def test_the_clean_step_waits_for_an_upload_still_writing_its_audio(
        tmp_path: Path) -> None:
    """A membership without a description yet (an upload between the two) makes the
    drop fail, to be retried; the upload then ends and the retry carries it."""
    us, eu = on_s3(tmp_path, "us"), on_s3(tmp_path, "eu")
    data = wav(2)
    asset_id = object_moves.hashlib.sha256(data).hexdigest()
    await asset_objects.add_member(us.objects, "P", asset_id)  # the upload's first write

    async def projects_of(account_id: str) -> list[str]:
        return ["P"]

    hook = AssetMoveHook({"us": us, "eu": eu}, projects_of, region_of=lambda a: "eu")
    with pytest.raises(object_moves.UploadInFlight, match="still being written"):
        await hook.drop("uma", "us")
    assert await asset_objects.project_assets(us, "P") == [asset_id]

    await us.ingest_stream(body(data), project_id="P", name="late.wav")  # it ends
    await hook.drop("uma", "us")

    await whole(eu, "P", asset_id)
    assert await asset_objects.project_assets(us, "P") == []
    assert await us.objects.keys("assets/moving/") == []


async def test_the_clean_step_forgets_an_upload_that_never_ended(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crashed upload's membership does not hold the account for ever."""
    us, eu = on_s3(tmp_path, "us"), on_s3(tmp_path, "eu")
    asset_id = "ab" * 32
    await asset_objects.add_member(us.objects, "P", asset_id)
    with pytest.raises(object_moves.UploadInFlight):
        await object_moves.copy_project(us, eu, "P", cleaning=True)

    later = time.time() + object_moves.UPLOAD_IN_FLIGHT_S + 1
    monkeypatch.setattr(object_moves.time, "time", lambda: later)
    done = await object_moves.copy_project(us, eu, "P", cleaning=True)
    await object_moves.forget_source(us, "P")

    assert done.missing == 1
    # marked forgotten with the project: any audio it left goes with the collection
    assert await us.objects.keys("assets/") == [f"assets/forgotten/{asset_id}"]
    await asset_objects.collect_forgotten(us, now=later + asset_objects.FORGET_GRACE_S)
    assert await us.objects.keys("assets/") == []


# -- 2. takes waiting to be published ----------------------------------------------------

def a_waiting_take(tmp_path: Path, us: AssetStore, seed: int, projects: tuple[str, ...] = ("P",)
                   ) -> Asset:
    """The take ``wav(seed)``, stored by the recorder on ``us``'s disk for each of
    ``projects`` (the object store failing) and waiting to be published for them."""
    local = AssetStore(us.root)
    data = wav(seed)  # encoded once: a float WAV's PEAK chunk holds the time
    [take, *_] = [local.ingest_file(_file(tmp_path, data), project_id=project_id)
                  for project_id in projects]
    for project_id in projects:
        asset_objects.keep_take(us, take, project_id)
    return take


async def test_a_take_waiting_for_two_projects_is_never_published_again_for_the_moved_one(
        tmp_path: Path) -> None:
    us = on_s3(tmp_path, "us")
    take = a_waiting_take(tmp_path, us, 3, projects=("P", "Q"))

    await object_moves.forget_source(us, "P")
    assert asset_cache.pending(us) == {take.id: ["Q"]}
    await asset_objects.publish_pending(us)

    assert not await us.objects.exists(asset_objects.member_key("P", take.id))
    assert await us.objects.exists(asset_objects.member_key("Q", take.id))


async def test_the_clean_step_collects_forgotten_audio_outside_the_publishing_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection over every marker never holds up publishing takes."""
    us = on_s3(tmp_path, "us")
    await us.ingest_stream(body(wav(5)), project_id="P", name="take.wav")
    collect, held = asset_objects.collect_forgotten, []

    async def watched(store: AssetStore, **kwargs: object) -> int:
        held.append(asset_objects.publishing(store).locked())
        return await collect(store, **kwargs)

    monkeypatch.setattr(asset_objects, "collect_forgotten", watched)
    await object_moves.forget_source(us, "P")
    assert held == [False]


async def test_a_move_waits_for_a_publish_under_way_and_it_is_not_undone(
        tmp_path: Path) -> None:
    """A publish that read P's mark before the move took P out: the move waits for it,
    then forgets what it wrote; the publish, once under way, never re-creates P."""
    us = on_s3(tmp_path, "us")
    take = a_waiting_take(tmp_path, us, 4)
    put, writing, go_on = us.objects.put, asyncio.Event(), asyncio.Event()

    async def slow_put(key: str, data, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if key == asset_objects.member_key("P", take.id):
            writing.set()
            await go_on.wait()
        return await put(key, data, **kwargs)

    us.objects.put = slow_put
    publishing = asyncio.create_task(asset_objects.publish_pending(us))
    async with asyncio.timeout(30):
        await writing.wait()
    moving = asyncio.create_task(object_moves.forget_source(us, "P"))
    await asyncio.wait({moving}, timeout=0.5)
    assert not moving.done()  # held by the publish under way
    go_on.set()
    await asyncio.gather(publishing, moving)
    assert not await us.objects.exists(asset_objects.member_key("P", take.id))
    assert asset_cache.pending(us) == {}
    await asset_objects.publish_pending(us)
    assert not await us.objects.exists(asset_objects.member_key("P", take.id))


async def test_a_take_marked_for_another_project_during_a_publish_still_waits(
        tmp_path: Path) -> None:
    us = on_s3(tmp_path, "us")
    take = a_waiting_take(tmp_path, us, 5)
    put = us.objects.put

    async def mark_q_meanwhile(key: str, data, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if key == asset_objects.member_key("P", take.id):
            asset_objects.keep_take(us, take, "Q")
        return await put(key, data, **kwargs)

    us.objects.put = mark_q_meanwhile
    await asset_objects.publish_pending(us)
    assert asset_cache.pending(us) == {take.id: ["Q"]}  # not cleared with P's
    us.objects.put = put
    await asset_objects.publish_pending(us)
    assert await us.objects.exists(asset_objects.member_key("Q", take.id))
    assert asset_cache.pending(us) == {}


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"take-{len(list(tmp_path.glob('take-*')))}.wav"
    path.write_bytes(data)
    return path


# -- 3. the target changing under the copy ------------------------------------------------

async def shared_with_q(us: AssetStore, eu: AssetStore, seed: int) -> Asset:
    """P's audio ``wav(seed)`` in ``us``, and the same bytes in project Q of ``eu``: P's
    asset."""
    data = wav(seed)
    asset = await us.ingest_stream(body(data), project_id="P", name="a.wav")
    await eu.ingest_stream(body(data), project_id="Q", name="a.wav")
    return asset


async def test_audio_collected_as_forgotten_in_the_target_is_written_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target holds the same audio but no description (forgotten, in its grace
    period): a collection that checked it before the membership deletes it after the
    copy read it; the copy writes it again rather than keep it."""
    us, eu = on_s3(tmp_path, "us"), on_s3(tmp_path, "eu")
    asset = await shared_with_q(us, eu, 4)
    await asset_objects.forget_project(eu, "Q")  # described no more, audio kept a while
    read = object_moves._target_digest

    async def collected_after_reading(target: AssetStore, asset_id: str, suffix: str
                                      ) -> str | None:
        digest = await read(target, asset_id, suffix)
        await target.objects.delete(asset_objects.object_key(asset_id, suffix))
        return digest

    monkeypatch.setattr(object_moves, "_target_digest", collected_after_reading)
    await object_moves.copy_project(us, eu, "P")

    await whole(eu, "P", asset.id)


async def test_deleting_a_target_project_sharing_the_asset_during_the_copy_keeps_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local-disk target: project Q there has the same audio; it is deleted while P's
    copy writes the description: P's index is there already, so the audio stays."""
    us, eu = on_s3(tmp_path, "us"), on_disk(tmp_path, "eu")
    asset = await shared_with_q(us, eu, 5)
    describe = object_moves._put_description

    async def q_deleted_meanwhile(target: AssetStore, asset_id: str, meta: dict) -> int:
        await asyncio.to_thread(target.forget_project, "Q")
        return await describe(target, asset_id, meta)

    monkeypatch.setattr(object_moves, "_put_description", q_deleted_meanwhile)
    await object_moves.copy_project(us, eu, "P")

    await whole(eu, "P", asset.id)


# -- 4., 5. durability, and a second runner ----------------------------------------------

async def test_a_disk_target_syncs_its_folders_and_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    us, eu = on_s3(tmp_path, "us"), on_disk(tmp_path, "eu")
    asset = await us.ingest_stream(body(wav(6)), project_id="P", name="a.wav")
    synced: list[str] = []
    fsync = os.fsync

    def recorded(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(object_moves.os, "fsync", recorded)
    await object_moves.copy_project(us, eu, "P")

    assert str(eu.root / "objects" / asset.id[:2]) in synced
    assert str(eu._index("P")) in synced and str(eu.root / "projects") in synced


async def test_a_disk_target_copy_never_touches_another_runners_temporary_file(
        tmp_path: Path) -> None:
    us, eu = on_s3(tmp_path, "us"), on_disk(tmp_path, "eu")
    asset = await us.ingest_stream(body(wav(7)), project_id="P", name="a.wav")
    folder = eu.root / "objects" / asset.id[:2]
    folder.mkdir(parents=True)
    theirs = folder / f".{asset.id}.wav.moving"  # the name every runner used to share
    theirs.write_bytes(b"half of another runner's copy")

    await object_moves.copy_project(us, eu, "P")

    assert theirs.read_bytes() == b"half of another runner's copy"
    await whole(eu, "P", asset.id)


async def a_move_and_a_second_runner(world: World, monkeypatch: pytest.MonkeyPatch  # noqa: F811
                                     ) -> tuple[str, list[float], AccountMover]:
    """Uma's move to eu begun, leases renewed every 10 ms, and a second runner of it; both
    runners read the clock ``now[0]``, which only a test moves. Uma, the clock, the
    second runner."""
    monkeypatch.setattr(moving, "RENEW_S", 0.01)
    uma, _ = await a_person_in_us(world)
    await world.mover.begin(uma, "eu")
    now = [time.time()]
    world.mover._clock = lambda: now[0]
    second = AccountMover(RegionalAccountStore.over(world.databases), world.databases,
                          settle_s=0.0, propagate_s=0.0, clock=lambda: now[0])
    return uma, now, second


class LongHook:
    """A move hook whose ``copy`` (each test's own) outlasts the lease; it checks
    nothing."""

    name = "long"

    async def check(self, account_id: str, source: str, target: str) -> None:
        return None


async def test_a_hook_working_past_the_lease_keeps_the_move_from_a_second_runner(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    uma, now, second = await a_move_and_a_second_runner(world, monkeypatch)
    main = world.databases["default"]
    renewed = asyncio.Event()
    execute = main.execute

    async def spied(sql: str, *args: object) -> int:
        done = await execute(sql, *args)
        # a renewal that read the clock as the copy moved it (one in flight before would
        # leave the lease behind the clock, and the second runner would claim the move)
        if sql.startswith("UPDATE account_moves SET lease_until") and (
                args[0] >= now[0] + moving.LEASE_S):
            renewed.set()
        return done

    monkeypatch.setattr(main, "execute", spied)
    refused: list[str] = []

    class Long(LongHook):
        async def copy(self, account_id: str, source: str, target: str) -> None:
            now[0] += moving.LEASE_S + 1  # a copy of many files: past the lease
            renewed.clear()
            async with asyncio.timeout(10):
                await renewed.wait()
            with pytest.raises(Conflict, match="carried by another runner") as second_run:
                await second.run(account_id)
            refused.append(str(second_run.value))

        async def drop(self, account_id: str, region: str) -> None:
            """Nothing kept."""

    world.mover.hooks.append(Long())
    assert (await world.mover.run(uma)).target == "eu"
    assert len(refused) == 1


async def test_a_hook_whose_lease_another_runner_took_is_stopped_and_the_move_ends(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The runner's renewals stall past its lease (the database away) and a second
    runner claims the move mid-hook: the first's hook is cancelled and its run answers
    :class:`Conflict`; the second carries the move to its end, every row and file moved."""
    uma, now, second = await a_move_and_a_second_runner(world, monkeypatch)
    main = world.databases["default"]
    execute = main.execute
    renewing = asyncio.Event()  # cleared: every renewal waits (the database away)
    renewing.set()
    taken = asyncio.Event()

    async def spied(sql: str, *args: object) -> int:
        if sql.startswith("UPDATE account_moves SET lease_until"):
            await renewing.wait()
        done = await execute(sql, *args)
        if sql.startswith("UPDATE account_moves SET runner = ?,") and done:
            taken.set()
        return done

    monkeypatch.setattr(main, "execute", spied)
    first_stopped = asyncio.Event()
    calls: list[str] = []
    taking: list[asyncio.Task] = []

    class Long(LongHook):
        async def copy(self, account_id: str, source: str, target: str) -> None:
            if calls:  # the second runner: it copies once the first has stopped
                async with asyncio.timeout(10):
                    await first_stopped.wait()
                calls.append("copied")
                return
            calls.append("began")
            renewing.clear()
            now[0] += moving.LEASE_S + 1  # past the lease, no renewal through
            taken.clear()  # set by this runner's own claim: wait for the second's
            taking.append(asyncio.create_task(second.run(account_id)))
            async with asyncio.timeout(10):
                await taken.wait()
            renewing.set()  # the next renewal finds the move taken
            try:
                async with asyncio.timeout(10):
                    await asyncio.Event().wait()  # a copy of many files
            except asyncio.CancelledError:
                calls.append("cancelled")
                raise

        async def drop(self, account_id: str, region: str) -> None:
            calls.append(f"dropped {region}")

    world.mover.hooks.append(Long())
    second.hooks = world.mover.hooks  # the same server's hooks, the files' and this one
    with pytest.raises(Conflict, match="taken over by another runner"):
        await world.mover.run(uma)
    first_stopped.set()
    assert (await taking[0]).target == "eu"

    assert calls == ["began", "cancelled", "copied", "dropped us"]
    assert await world.mover.move_of(uma) is None
    await world.mover.load()  # as this server does every REFRESH_S
    assert world.store.region_of(uma) == "eu"
    assert (await world.store.require_account(uma)).region == "eu"
    assert (world.files.folder("eu", uma) / "take.wav").read_bytes() == b"RIFF...."
