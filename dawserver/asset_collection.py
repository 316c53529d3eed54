"""The periodic collection of forgotten audio on object storage (docs/storage.md).

A deleted project's assets that no other project uses leave a tombstone
(``assets/forgotten/<id>``, :mod:`dawserver.asset_objects`); their audio and peaks go
only when :func:`~dawserver.asset_objects.collect_forgotten` finds the tombstone older
than :data:`~dawserver.asset_objects.FORGET_GRACE_S`. Besides the start of each project
deletion, it runs here: every ``config.asset_collection_seconds`` each node queues one
``assets.collect`` job per region on object storage, under the idempotency key
``REGION/WINDOW`` (:class:`~dawserver.windowed.Windowed`), so with many nodes on one
database the window's job exists once and one worker runs it. A run that fails (the
object store cannot be reached) is retried with backoff within the queue's attempts; the
tombstones stay, so the next window's run collects them anyway. The scheduling loop
logs and survives every failure (database or object store down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from jobs import JobContext, JobRecord, Permanent

from . import asset_objects
from .assets import REGION_ASSETS
from .keys import BACKGROUND, CONFIG
from .metrics import ASSET_OBJECTS_COLLECTED
from .storage import StorageError
from .windowed import SWEEP_SETTINGS, Windowed

log = logging.getLogger(__name__)

#: The job queue the collections run on.
QUEUE = "assets.collect"
#: The collections are the server's jobs, not any account's.
COLLECT_ACCOUNT = "server:assets.collect"
SETTINGS = SWEEP_SETTINGS


class AssetCollection(Windowed):
    """Queues a collection per region on object storage each window, and runs them.

    Parameters
    ----------
    app:
        The server application (its regions' asset stores, ``app[REGION_ASSETS]``, and
        its job queue, ``app[BACKGROUND]``).
    every_s:
        Seconds per window: each region is collected once per window.
    grace_s:
        How old a tombstone must be before its audio goes.
    clock:
        The time in seconds (``time.time``).
    """

    chore = "the collection of forgotten audio"

    def __init__(self, app: web.Application, every_s: float, *,
                 grace_s: float = asset_objects.FORGET_GRACE_S,
                 clock: Callable[[], float] = time.time) -> None:
        if every_s <= 0:
            raise ValueError(f"asset collection every {every_s!r} s: give seconds > 0")
        self.app = app
        self.every_s = every_s
        self.grace_s = grace_s
        self.clock = clock

    def regions(self) -> list[str]:
        """The regions whose assets live on object storage."""
        return [region for region, store in self.app[REGION_ASSETS].items()
                if store.objects is not None]

    async def schedule(self) -> list[JobRecord]:
        """Queue this window's collection of each region on object storage (once, however
        many nodes ask); the jobs."""
        window = self.window()
        queue = self.app[BACKGROUND].queue
        return [await queue.enqueue(QUEUE, {"region": region, "window": window},
                                    account_id=COLLECT_ACCOUNT,
                                    idempotency_key=f"{region}/{window}")
                for region in self.regions()]

    async def handle(self, job: JobContext) -> dict[str, Any]:
        """The ``assets.collect`` job: delete the region's forgotten audio past its grace."""
        region = job.payload.get("region")
        store = self.app[REGION_ASSETS].get(str(region))
        if store is None or store.objects is None:
            raise Permanent(f"region {region!r} keeps no assets on object storage here; "
                            f"configure its s3:// storage on every node")
        try:
            deleted = await asset_objects.collect_forgotten(store, grace_s=self.grace_s,
                                                            now=self.clock())
        except StorageError as exc:
            log.warning("could not collect forgotten audio in region %s (attempt %d): %s",
                        region, job.attempt, exc)
            raise
        ASSET_OBJECTS_COLLECTED.labels(region=region).inc(deleted)
        if deleted:
            log.info("collected %d objects of forgotten audio in region %s", deleted, region)
        return {"region": region, "deleted": deleted}


#: The server's collection of forgotten audio.
ASSET_COLLECTION = web.AppKey("asset_collection", AssetCollection)


def setup_asset_collection(app: web.Application) -> None:
    """Serve the ``assets.collect`` queue and, while the app runs on object storage, queue
    its windows' jobs. Call it after :func:`dawserver.plugins.install`, so its loop
    starts once the job queue is open."""
    collection = app[ASSET_COLLECTION] = AssetCollection(
        app, app[CONFIG].asset_collection_seconds)
    app[BACKGROUND].register(QUEUE, collection.handle, SETTINGS)
    app.cleanup_ctx.append(collection_context)


async def collection_context(app: web.Application) -> AsyncIterator[None]:
    """Run the scheduling loop while the app runs (only with object storage)."""
    collection = app[ASSET_COLLECTION]
    if not collection.regions():
        yield
        return
    task = asyncio.create_task(collection.run(), name="assets:collect-forgotten")
    log.info("forgotten audio on object storage collected every %.0f s (regions %s)",
             collection.every_s, ", ".join(collection.regions()))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
