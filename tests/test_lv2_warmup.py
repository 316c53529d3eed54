"""The LV2 catalogue is loaded in a worker thread when the server starts."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aiohttp import web

from dawserver import lv2_warmup
from dsp_core import lv2_catalog
from dsp_core.errors import DspError

pytestmark = pytest.mark.timeout(60)


@pytest.mark.asyncio
async def test_the_catalogue_loads_off_the_event_loop(monkeypatch) -> None:
    seen: list[threading.Thread] = []

    def plugins() -> list:
        seen.append(threading.current_thread())
        return []

    monkeypatch.setattr(lv2_catalog, "plugins", plugins)
    app = web.Application()
    context = lv2_warmup.lv2_warmup_context(app)
    await anext(context)
    load = app[lv2_warmup.LV2_WARMUP]  # for whoever waits for it (the collector's freeze)
    with pytest.raises(StopAsyncIteration):
        await anext(context)
    assert len(seen) == 1 and seen[0] is not threading.main_thread()
    assert load.done() and load.result() == 0


@pytest.mark.asyncio
async def test_a_host_without_lilv_starts_anyway(monkeypatch) -> None:
    def plugins() -> list:
        raise DspError("install the Debian package liblilv-0-0")

    monkeypatch.setattr(lv2_catalog, "plugins", plugins)
    assert await asyncio.to_thread(lv2_warmup.warm_catalogue) == 0


def test_the_installed_catalogue_is_found() -> None:
    try:
        lv2_catalog.plugins()
    except DspError as exc:
        pytest.skip(f"liblilv missing: {exc}")
    assert lv2_warmup.warm_catalogue() == len(lv2_catalog.plugins()) > 0
