"""A network that reports no quota but answers that one is spent (TikTok's daily cap):
the channel waits until it frees instead of sending its posts into it again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from social_fakes import dispatching, media_ref, until

from business.social.dispatch import PUBLISH
from business.social.pacing import Pacer

pytestmark = pytest.mark.timeout(60)


def test_tiktoks_daily_cap_holds_the_channel_instead_of_failing_its_posts(
        tmp_path: Path) -> None:
    async def go() -> None:
        url = f"sqlite://{tmp_path / 'social.sqlite3'}"
        async with dispatching(url, ["tiktok"], tmp_path, concurrency=1) as h, \
                asyncio.timeout(40):
            channel = await h.channel("tiktok")
            fake = h.fake("tiktok")
            fake.fail(kind="quota", times=100)             # the day's cap is reached
            clip = media_ref(h.media["video"], "clip")
            posts = [await h.due_post([channel], f"clip {n}", media=[clip])
                     for n in range(2)]

            async def both_wait() -> bool:
                jobs = await h.queue.find(queue=PUBLISH, states=["retrying"])
                return len(jobs) == 2 and all(j.run_at > time.time() + 80_000 for j in jobs)

            async with h.worker():
                await until(both_wait, timeout=10)
            assert fake.stats.injected == 1                 # asked once, then held
            states = [[(t.state, t.attempts) for t in
                       (await h.store.post("acc", p.post_id)).targets] for p in posts]
            assert sorted(states) == [[("scheduled", 0)], [("scheduled", 1)]]

    asyncio.run(go())


def test_a_spent_answer_holds_a_network_without_quota_until_it_frees() -> None:
    async def go() -> None:
        now = [1000.0]
        pacer = Pacer(clock=lambda: now[0])
        assert await pacer.quota_wait("tiktok", "acc/ch", None, "") == (0.0, None)
        pacer.spent("tiktok", "acc/ch", 600.0)
        pacer.give_back("tiktok", "acc/ch")               # a failed attempt gives nothing
        wait, quota = await pacer.quota_wait("tiktok", "acc/ch", None, "")
        assert wait == 600.0 and quota is not None and quota.left == 0
        assert (await pacer.quota_wait("tiktok", "acc/other", None, ""))[0] == 0.0
        now[0] += 600.0
        assert await pacer.quota_wait("tiktok", "acc/ch", None, "") == (0.0, None)

    asyncio.run(go())
