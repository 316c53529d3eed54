"""Keep what the server built at start-up out of the garbage collector's full passes.

A running server holds a few hundred thousand objects from start to exit: modules,
routes, schemas, the plug-ins, the LV2 catalogue.  Every full (generation 2) collection
walks all of them while the event loop waits; on the 2-core test machine that is
0.2–0.35 s when idle and up to 1.1 s under load, seen as one-second stalls in the
checkout benchmark and in the tail of edit propagation.  :func:`gc.freeze` moves every
object alive at that moment into a permanent generation the collector never scans
(reference counting still frees them), so a full pass walks only what was made since.

:func:`freeze_after_startup` is an ``on_startup`` handler of ``dawserver serve``: it
freezes once the application has started, and again when the LV2 catalogue, loaded in a
thread at start (:mod:`dawserver.lv2_warmup`), is ready.  What is alive at that second
freeze (a request or a room already served in the first seconds) is frozen too, and a
reference cycle among those objects is then never collected: a one-time cost bounded by
what one moment of start-up holds, where the catalogue would otherwise be walked by
every full pass for the life of the process.
"""

from __future__ import annotations

import asyncio
import gc
import logging

from aiohttp import web

from .lv2_warmup import LV2_WARMUP

log = logging.getLogger(__name__)


def freeze_now(reason: str) -> int:
    """Collect, then freeze every object left; how many are frozen in all."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("froze %d objects (%s)", frozen, reason)
    return frozen


async def freeze_after_startup(app: web.Application) -> None:
    """Freeze what start-up made; again once the LV2 catalogue has loaded."""
    freeze_now("started")
    warmup: asyncio.Future | None = app.get(LV2_WARMUP)
    if warmup is not None and not warmup.done():
        warmup.add_done_callback(lambda _: freeze_now("LV2 catalogue loaded"))
