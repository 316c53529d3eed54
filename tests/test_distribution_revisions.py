"""What reaches a store: a takedown of the release as delivered, and the newest
revision last when an earlier one was still being sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from distribution_helpers import TODAY, make_art, make_audio, release_dict
from lxml import etree
from test_distribution_delivery import (
    FAST,
    _connectors,
    _pipeline,
    _run_once,
    _setup,
    _states,
    _until,
    _worker,
)

from business.distribution.ddex import Party
from business.distribution.delivery import DeliveryPipeline, PipelineSettings
from business.distribution.stores.base import DeliveryPackage, Receipt
from jobs import JobContext, JobQueue


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_art(tmp_path_factory.mktemp("art") / "cover.jpg")


def _release(root: Path, art: Path) -> dict[str, Any]:
    """A release with the shared cover and a short track of its own under ``root``."""
    audio = make_audio(root / "song.wav", seconds=1.0)
    return release_dict(root, art=art, audio=[audio])


def _edited_in_place(root: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """A new title, and the delivered audio file written over."""
    make_audio(root / "song.wav", seconds=1.0, freq=880.0)
    return {**raw, "title": "Night Drive (edited)"}


def _replaced_and_deleted(root: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """A new title, and the delivered audio file replaced by another, then deleted."""
    other = make_audio(root / "song2.wav", seconds=1.0, freq=880.0)
    (root / "song.wav").unlink()
    return {**raw, "title": "Night Drive (edited)",
            "tracks": [{**raw["tracks"][0], "audio_path": str(other)}]}


@pytest.mark.parametrize("edit", [_edited_in_place, _replaced_and_deleted])
def test_a_takedown_describes_the_release_as_delivered_not_as_edited_since(
        tmp_path: Path, art: Path, edit: Callable[[Path, dict[str, Any]], dict[str, Any]]
) -> None:
    """The takedown keeps the delivered revision's gate snapshot (routes send none): a
    file changed since does not stop it (a takedown sends no files), and one replaced
    and deleted since is described by the file that took its place, rather than fail
    for good."""
    async def go() -> None:
        async with _setup(tmp_path) as (db, store, catalog):
            raw = _release(tmp_path, art)
            await catalog.save_release("acc", raw)
            pipeline = _pipeline(db, _connectors(store, ["alpha"]), catalog)
            snapshot = await catalog.snapshot("acc", "rel-1", today=TODAY)
            await pipeline.enqueue("acc", "rel-1", ["alpha"], snapshot_id=snapshot)
            await _run_once(pipeline)
            await catalog.save_release("acc", edit(tmp_path, raw))
            [takedown] = await pipeline.enqueue("acc", "rel-1", ["alpha"], "takedown")
            assert takedown["snapshot_id"] == snapshot
            await _run_once(pipeline)
            [job] = await pipeline.jobs("acc")
            assert (job["state"], job["revision"]) == ("delivered", 2), job["last_error"]
            assert [(v["action"], v["title"]) for v in store.accepted.values()] == [
                ("new", "Night Drive"), ("takedown", "Night Drive")]

    asyncio.run(go())


class HoldsTheFirst:
    """A store that holds the first message it is sent until :attr:`let_go` is set (a
    newer message sent meanwhile sets it) and lists the titles that land, in order."""

    name = "alpha"
    party = Party("PADPIDAALPHA", "alpha")

    def __init__(self) -> None:
        self.landed: list[str] = []
        self.holding = asyncio.Event()
        self.let_go = asyncio.Event()

    async def deliver(self, package: DeliveryPackage) -> Receipt:
        if not self.holding.is_set():
            self.holding.set()
            await self.let_go.wait()
        else:  # a newer revision, sent while the first is held, lands before it
            self.let_go.set()
        root = etree.fromstring(package.xml)
        self.landed.append(root.findtext("ReleaseList/Release/DisplayTitleText") or "")
        return Receipt(package.message_id, duplicate=False)


class Watched(DeliveryPipeline):
    """A pipeline that lets the store go once an attempt waits for an earlier one."""

    store: HoldsTheFirst

    async def _earlier_running(self, record: dict[str, Any], job: JobContext) -> bool:
        running = await super()._earlier_running(record, job)
        if running:
            self.store.let_go.set()
        return running


def test_an_update_sent_while_the_first_revision_is_in_flight_lands_after_it(
        tmp_path: Path, art: Path) -> None:
    """Re-armed while its first revision is being sent, a delivery waits for that
    attempt to end, so the store ends with the edited release."""
    async def go() -> None:
        async with _setup(tmp_path) as (db, _, catalog):
            raw = _release(tmp_path, art)
            await catalog.save_release("acc", raw)
            store = HoldsTheFirst()
            pipeline = Watched(db, JobQueue(db), [store], catalog.package,
                               settings=PipelineSettings(**FAST))
            pipeline.store = store
            first = await catalog.snapshot("acc", "rel-1", today=TODAY)
            [new] = await pipeline.enqueue("acc", "rel-1", ["alpha"], snapshot_id=first)
            async with _worker(pipeline), asyncio.timeout(30):
                await store.holding.wait()
                await catalog.save_release("acc", {**raw, "title": "Night Drive (edited)"})
                edited = await catalog.snapshot("acc", "rel-1", today=TODAY,
                                                action="update")
                [update] = await pipeline.enqueue("acc", "rel-1", ["alpha"], "update",
                                                  snapshot_id=edited)

                async def both_done() -> bool:
                    runs = await pipeline.queue.find(
                        ids=[new["run_id"], update["run_id"]], states=("done",))
                    return len(runs) == 2
                await _until(both_done, describe=lambda: _states(pipeline))
            assert store.landed == ["Night Drive", "Night Drive (edited)"]
            assert (await pipeline.queue.get("acc", new["run_id"])).result == {
                "outcome": "superseded"}
            [job] = await pipeline.jobs("acc")
            assert (job["state"], job["revision"]) == ("delivered", 2)

    asyncio.run(go())
