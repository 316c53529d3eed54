"""Review 15 (M7): the storefront render pool admits renders per store and in all, and a
template that keeps running past its limit is paused by a circuit breaker (real pebble
workers; the slow template burns CPU in C, which the sandbox's budget never sees)."""

from __future__ import annotations

import asyncio
import time

import pytest

from business.marketplace.render_pool import (
    RenderBusy,
    RenderLimits,
    RenderPool,
    TemplateTimedOut,
)
from business.marketplace.sandbox import TemplateRefused

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

# str.title() works in a buffer of 12 bytes a character: 4 MB of text keeps each step near
# 50 MB, well inside a worker's 256 MB allowance (20 MB needed ~260 MB: a MemoryError in
# some workers instead of a time-out), and 30 rounds still take seconds of C time
SLOW = '{{ "a".ljust(4 * 10**6)' + ".title().upper().lower()" * 30 + " | length }}"
QUICK = "{{ store }}"


async def test_a_template_timing_out_twice_is_paused_until_it_is_edited() -> None:
    pool = RenderPool(RenderLimits(workers=1, timeout_s=0.4, breaker_timeouts=2))
    try:
        for _ in range(2):
            with pytest.raises(TemplateTimedOut):
                await pool.render(SLOW, {}, key="shop-a")
        started = time.monotonic()
        with pytest.raises(TemplateRefused, match="paused"):
            await pool.render(SLOW, {}, key="shop-a")
        assert time.monotonic() - started < 0.2  # refused without using a worker
        # the seller saved another template: the breaker is keyed by its text
        assert await pool.render(QUICK, {"store": "a"}, key="shop-a") == "a"
        # and another store's identical template has its own breaker
        with pytest.raises(TemplateTimedOut):
            await pool.render(SLOW, {}, key="shop-b")
    finally:
        await pool.close()


async def test_a_busy_store_is_turned_away_while_other_stores_render() -> None:
    pool = RenderPool(RenderLimits(workers=2, timeout_s=1.5, per_store=1, per_store_queue=1,
                                   breaker_timeouts=99, retry_after_s=7))
    try:
        assert await pool.render(QUICK, {"store": "warm"}, key="w") == "warm"
        slow = [asyncio.create_task(pool.render(SLOW, {}, key="shop-a")) for _ in range(2)]
        await asyncio.sleep(0.1)
        with pytest.raises(RenderBusy) as busy:  # one runs, one waits: the third is refused
            await pool.render(SLOW, {}, key="shop-a")
        assert busy.value.retry_after == 7
        # shop-a holds one worker at most: shop-b renders on the other meanwhile
        async with asyncio.timeout(1.0):
            assert await pool.render(QUICK, {"store": "b"}, key="shop-b") == "b"
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)
    finally:
        await pool.close()


async def test_the_queue_in_all_is_bounded() -> None:
    pool = RenderPool(RenderLimits(workers=1, timeout_s=1.5, queue=1, breaker_timeouts=99))
    try:
        first = asyncio.create_task(pool.render(SLOW, {}, key="shop-a"))
        await asyncio.sleep(0.05)
        with pytest.raises(RenderBusy):
            await pool.render(QUICK, {"store": "b"}, key="shop-b")
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert await pool.render(QUICK, {"store": "b"}, key="shop-b") == "b"
    finally:
        await pool.close()
