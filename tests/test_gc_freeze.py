"""``dawserver serve`` freezes what start-up made, and the LV2 catalogue once loaded."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from aiohttp import web

from dawserver.gc_freeze import freeze_after_startup
from dawserver.lv2_warmup import LV2_WARMUP


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """Leave the test process's collector as it was (frozen objects are never scanned)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_startup_objects_are_frozen_then_the_catalogues_once_loaded() -> None:
    async def go() -> tuple[int, int, int]:
        app = web.Application()
        warmup: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        app[LV2_WARMUP] = warmup
        await freeze_after_startup(app)
        at_start = gc.get_freeze_count()
        catalogue = [[f"urn:plugin:{i}"] for i in range(5000)]  # made after start (tracked)
        warmup.set_result(len(catalogue))
        await asyncio.sleep(0)  # the done callback runs on the loop
        after_load = gc.get_freeze_count()
        return at_start, after_load, len(catalogue)

    at_start, after_load, made = asyncio.run(go())
    assert at_start > 10_000  # every module, class and function imported so far
    # the catalogue's lists joined them (less a few objects the collection freed)
    assert after_load >= at_start + made - 100


def test_a_server_without_the_catalogue_load_freezes_once() -> None:
    async def go() -> int:
        await freeze_after_startup(web.Application())
        return gc.get_freeze_count()

    assert asyncio.run(go()) > 0
