"""A take recorded on one node and not yet published while another node moves its
account: it is published into the region the account lives in afterwards, whole, and
nothing of it stays (or is collected away) anywhere else.

Two nodes share the regions' databases and object stores (the real S3 server of the
test setup, one bucket per region): node A is the world of
test_account_move_objects.py, which carries the move; node B has its own asset
directories (its local caches, where its takes wait) and its own collaboration store,
wired as a server wires them (:func:`dawserver.assets.follow_projects`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_account_move_documents import World, a_project_in_us, files_of
from test_account_move_objects import audio, held, moving_world, plays_from, source_left

from collab.regional_store import RegionalCollabStore
from collab.store import store_for
from dawserver import asset_cache, asset_objects, assets, object_moves
from dawserver.asset_store import AssetStore
from dawserver.keys import STORE
from dawserver.storage import StorageError

pytestmark = pytest.mark.asyncio


@dataclass
class Node:
    """Another server process: its own caches and collaboration store."""

    collab: RegionalCollabStore
    assets: dict[str, AssetStore]


class HeldPuts:
    """An object store that holds the put of one key until ``go`` is set (the rest as
    the store it wraps)."""

    def __init__(self, objects: Any, key: str) -> None:
        self.objects, self.key = objects, key
        self.reached, self.go = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.objects, name)

    async def put(self, key: str, data: Any, **kwargs: Any) -> int:
        if key == self.key:
            self.reached.set()
            await self.go.wait()
        return await self.objects.put(key, data, **kwargs)


class FailingPut:
    """An object store whose first put of one key fails (the rest as the store it
    wraps)."""

    def __init__(self, objects: Any, key: str) -> None:
        self.objects, self.key, self.failed = objects, key, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.objects, name)

    async def put(self, key: str, data: Any, **kwargs: Any) -> int:
        if key == self.key and not self.failed:
            self.failed = True
            raise StorageError(f"cannot write {key} now (test)")
        return await self.objects.put(key, data, **kwargs)


@contextlib.asynccontextmanager
async def another_node(world: World, tmp_path: Path) -> AsyncIterator[Node]:
    collab = RegionalCollabStore({n: store_for(db) for n, db in world.databases.items()})
    await collab.start()
    try:
        stores = {region: AssetStore(tmp_path / "node-b" / region / "assets",
                                     objects=store.objects)
                  for region, store in world.assets.items()}
        app: dict[Any, Any] = {STORE: collab, assets.REGION_ASSETS: stores,
                               assets.ASSETS: stores["default"]}
        assets.follow_projects(app)  # type: ignore[arg-type]
        yield Node(collab, stores)
    finally:
        await collab.stop()


async def recorded(node: Node, tmp_path: Path, song: str, seed: int = 21) -> str:
    """A take node B recorded for ``song`` (in ``us``) and keeps, not yet published."""
    assert await node.collab.get_project(song) is not None  # B serves it: routed to us
    us = node.assets["us"]
    take = await asyncio.to_thread(us.ingest_file, audio(tmp_path, seed, 0.5),
                                   project_id=song, name=f"take-bea-{seed}.wav")
    asset_objects.keep_take(us, take, song)
    return take.id


async def only_in_eu(world: World, node: Node, song: str, take: str) -> None:
    """The take is whole in ``eu`` for ``song`` (and stays so through a collection);
    nothing of it is left in ``us``, in its object store or in either node's cache."""
    us, eu = world.assets["us"], world.assets["eu"]
    assert await held(eu, song) == [take]
    await plays_from(eu, song, take)
    later = time.time() + asset_objects.FORGET_GRACE_S + 1
    await asset_objects.collect_forgotten(eu, now=later)
    keys = await eu.objects.keys(f"assets/objects/{take[:2]}/{take}.")
    assert sorted(k.split(".", 1)[1] for k in keys) == ["json", "peaks.npz", "wav"]
    key = asset_objects.object_key(take, "wav")
    assert await object_moves._digest(eu.objects.stream(key)) == take
    assert await held(us, song) == []
    assert await source_left(us) == []
    assert asset_cache.pending(node.assets["us"]) == {}
    assert files_of(node.assets["us"]) == set()


async def test_a_take_kept_on_another_node_through_a_move_is_published_where_it_lives_now(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Node B could not publish its take before node A moved the account (copy,
    switch, clean: none of it sees B's cache); B publishes it into ``eu`` after."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        uma, song = await a_project_in_us(world)
        take = await recorded(node, tmp_path, song)

        await world.mover.move(uma, "eu")
        assert await asset_objects.publish_pending(node.assets["us"]) == 1

        await only_in_eu(world, node, song, take)


async def test_a_take_published_home_while_its_account_moved_follows_it(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Node B found the project in ``us`` and began publishing there; node A's whole
    move ran before B wrote anything: once published, B sees the project moved and the
    take follows it to ``eu``."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        uma, song = await a_project_in_us(world)
        take = await recorded(node, tmp_path, song)
        us = node.assets["us"]
        held_puts = HeldPuts(us.objects, asset_objects.member_key(song, take))
        us.objects = held_puts  # type: ignore[assignment]

        publishing = asyncio.create_task(asset_objects.publish_pending(us))
        await asyncio.wait_for(held_puts.reached.wait(), 30)
        await world.mover.move(uma, "eu")
        held_puts.go.set()
        assert await asyncio.wait_for(publishing, 60) == 1

        await only_in_eu(world, node, song, take)


async def test_a_take_half_described_in_the_region_it_left_is_published_from_the_node(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """``us``'s bucket describes the take but lacks its audio (a collection cut short,
    a deletion racing): B copies it into ``eu`` from its own files, which a waiting
    take always has, not from that bucket."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        uma, song = await a_project_in_us(world)
        take = await recorded(node, tmp_path, song)
        us, eu = world.assets["us"], world.assets["eu"]
        description = Path(node.assets["us"].asset(take).path).with_suffix(".json")
        await us.objects.put(asset_objects.object_key(take, "json"),
                             description.read_bytes())

        await world.mover.move(uma, "eu")
        assert await asset_objects.publish_pending(node.assets["us"]) == 1

        assert await held(eu, song) == [take]
        await plays_from(eu, song, take)
        assert await held(us, song) == []
        assert asset_cache.pending(node.assets["us"]) == {}


async def test_a_take_that_fails_leaves_the_others_published_and_is_retried(
        s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """One take's copy fails with an error that is not the object store's (here an
    OSError): the other take is published meanwhile, and the failing one is tried
    again, with the retries' delays, until it is published."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        uma, song = await a_project_in_us(world)
        broken = await recorded(node, tmp_path, song, seed=22)
        fine = await recorded(node, tmp_path, song, seed=23)
        copy_asset, failing = object_moves.copy_asset, asyncio.Event()
        failing.set()

        async def copy(source, target, project_id, asset_id, *rest):  # noqa: ANN001, ANN002, ANN202
            if asset_id == broken and failing.is_set():
                raise OSError(f"cannot read {asset_id} now (test)")
            return await copy_asset(source, target, project_id, asset_id, *rest)

        monkeypatch.setattr(object_moves, "copy_asset", copy)
        await world.mover.move(uma, "eu")
        us = node.assets["us"]
        retrying = asyncio.create_task(asset_objects.publish_until_done(
            us, delays=(0.01, 0.05)))
        for _ in range(600):
            if list(asset_cache.pending(us)) == [broken]:
                break
            await asyncio.sleep(0.05)
        assert asset_cache.pending(us) == {broken: [song]}
        await asyncio.sleep(0.2)
        assert not retrying.done()  # still trying, not dead
        failing.clear()
        await asyncio.wait_for(retrying, 60)

        assert sorted(await held(world.assets["eu"], song)) == sorted([broken, fine])
        assert await held(world.assets["us"], song) == []


async def test_a_take_waits_while_its_project_is_in_two_regions(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Node B (restarted: it remembers no project's region) publishes while node A's
    move has copied the document to ``eu`` but not yet switched: the project still
    lives in ``us``, so the take waits rather than go to ``eu`` and leave ``us``; once
    the move has ended it is published into ``eu``."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        uma, song = await a_project_in_us(world)
        take = await recorded(node, tmp_path, song)
        us = node.assets["us"]

        async with another_node(world, tmp_path) as restarted:
            await world.hook.copy(uma, "us", "eu")  # the move's copy, before its switch
            assert await asset_objects.publish_pending(restarted.assets["us"]) == 0
        assert asset_cache.pending(us) == {take: [song]}
        assert await held(world.assets["eu"], song) == []
        assert await world.assets["eu"].objects.keys("assets/") == []

        await world.mover.move(uma, "eu")
        assert await asset_objects.publish_pending(us) == 1
        await only_in_eu(world, node, song, take)


async def test_a_published_take_a_render_reads_keeps_its_files_on_the_node(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """A render on node B has the take pinned while B publishes it into ``eu``: the take
    leaves ``us`` (its membership and B's index entry) but its files stay while pinned,
    then go as any cached audio does."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        uma, song = await a_project_in_us(world)
        take = await recorded(node, tmp_path, song)
        us = node.assets["us"]
        audio_file = Path(us.asset(take).path)

        await world.mover.move(uma, "eu")
        with asset_cache.pinned(us, [take]):
            assert await asset_objects.publish_pending(us) == 1
            assert audio_file.is_file()
            assert audio_file.read_bytes()  # the render can go on reading it
        assert us.project_assets(song) == []
        assert await held(world.assets["us"], song) == []
        assert await held(world.assets["eu"], song) == [take]

        us.cache_bytes = 0
        assert await asyncio.to_thread(asset_objects.evict, us) == [audio_file]


async def test_a_take_that_followed_a_move_and_failed_ends_only_where_it_lives(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Node B copies its take into ``eu``, where the project went; before the copy
    lands, node A moves the account back to ``us`` (its clean step over in ``eu``). B
    follows it home, but that publish fails: the retry publishes it in ``us`` and takes
    it out of ``eu``, which the failed round had copied it into."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        uma, song = await a_project_in_us(world)
        take = await recorded(node, tmp_path, song)
        us, eu = node.assets["us"], node.assets["eu"]
        await world.mover.move(uma, "eu")
        key = asset_objects.member_key(song, take)
        held_puts = HeldPuts(eu.objects, key)
        eu.objects = held_puts  # type: ignore[assignment]
        us.objects = FailingPut(us.objects, key)  # type: ignore[assignment]

        publishing = asyncio.create_task(asset_objects.publish_pending(us))
        await asyncio.wait_for(held_puts.reached.wait(), 30)
        await world.mover.move(uma, "us")
        held_puts.go.set()
        assert await asyncio.wait_for(publishing, 60) == 0  # its publish home failed
        assert asset_cache.pending(us) == {take: [song]}
        assert await held(world.assets["eu"], song) == [take]  # the failed round's copy

        assert await asset_objects.publish_pending(us) == 1

        assert await held(world.assets["us"], song) == [take]
        await plays_from(world.assets["us"], song, take)
        assert await held(world.assets["eu"], song) == []
        assert await source_left(world.assets["eu"]) == []
        assert asset_cache.pending(us) == {}
        assert not (us.root / "away").exists() or not any((us.root / "away").iterdir())


async def test_a_take_whose_project_was_deleted_is_published_nowhere(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Node A deleted the project while node B's take waited: no region holds it, so B
    publishes the take nowhere, stops waiting to, and frees its files as a deleted
    project's."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        _, song = await a_project_in_us(world)
        take = await recorded(node, tmp_path, song)
        us = node.assets["us"]

        assert await world.collab.delete_project(song)
        assert asset_cache.pending(us) == {take: [song]}
        assert await asset_objects.publish_pending(us) == 0

        assert asset_cache.pending(us) == {}
        for region in ("us", "eu"):
            assert await held(world.assets[region], song) == []
            assert await source_left(world.assets[region]) == []
        assert files_of(us) == set()


async def test_a_take_whose_project_was_deleted_while_it_was_copied_is_taken_back(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Node B was copying its take into ``eu``, where the project had moved, when node
    A deleted the project: once the copy has landed, B finds the project gone and takes
    the take back out of ``eu``."""
    async with moving_world(tmp_path, s3_server, ("s3", "s3")) as world, \
            another_node(world, tmp_path) as node:
        uma, song = await a_project_in_us(world)
        take = await recorded(node, tmp_path, song)
        us, eu = node.assets["us"], node.assets["eu"]
        await world.mover.move(uma, "eu")
        held_puts = HeldPuts(eu.objects, asset_objects.member_key(song, take))
        eu.objects = held_puts  # type: ignore[assignment]

        publishing = asyncio.create_task(asset_objects.publish_pending(us))
        await asyncio.wait_for(held_puts.reached.wait(), 30)
        assert await world.collab.delete_project(song)
        held_puts.go.set()
        assert await asyncio.wait_for(publishing, 60) == 0

        assert asset_cache.pending(us) == {}
        for region in ("us", "eu"):
            assert await held(world.assets[region], song) == []
            assert await source_left(world.assets[region]) == []
        assert files_of(us) == set()
