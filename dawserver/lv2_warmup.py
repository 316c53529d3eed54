"""Load the LV2 catalogue in a thread when the server starts.

lilv's first load reads every installed bundle's Turtle (a second or more with many
plug-ins). Done lazily it would happen on the event loop, in the first room load whose
document holds an ``lv2`` effect; :func:`lv2_warmup_context` does it in a worker thread
at start instead, so that room load finds the catalogue ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from dsp_core import lv2_catalog
from dsp_core.errors import DspError

log = logging.getLogger(__name__)
#: The catalogue load under way (a future), for whoever waits for it (dawserver.gc_freeze).
LV2_WARMUP = web.AppKey("lv2_warmup", asyncio.Future)


def warm_catalogue() -> int:
    """Describe every installed plug-in once; the number found (0 without liblilv)."""
    try:
        return len(lv2_catalog.plugins())
    except (DspError, OSError) as exc:  # no liblilv here: lv2 effects refused
        log.info("LV2 catalogue not loaded: %s", exc)
        return 0


async def lv2_warmup_context(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx``: start the catalogue load in a thread, wait for it at shutdown."""
    task = asyncio.create_task(asyncio.to_thread(warm_catalogue))
    app[LV2_WARMUP] = task
    yield
    with contextlib.suppress(asyncio.CancelledError):
        found = await task  # a thread cannot be cancelled: let the load finish
        log.debug("LV2 catalogue held %d plug-ins", found)
