"""Deleting a failed post whose last publish answer was lost: the network is asked first.

The last attempt's answer never came back (the fake carried the post out, then dropped
the connection), so its target ended ``failed`` though the post is out. A delete asks
the network by the target's dedupe key: a post found there is recorded published and
the delete refused (the record of a live post is kept); none found, it is deleted; a
network that cannot be asked refuses the delete until it can be.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from social_fakes import Dispatching, dispatching, until

from business.social.errors import ConflictError

pytestmark = pytest.mark.timeout(60)


async def failed(h: Dispatching, channel: str, text: str) -> Any:
    """A due post published once (``max_attempts`` 1), ended failed; its stored copy."""
    post = await h.due_post([channel], text)

    async def ended() -> bool:
        return (await h.store.post("acc", post.post_id)).state == "failed"

    async with h.worker():
        await until(ended)
    stored = await h.store.post("acc", post.post_id)
    assert [(t.state, t.attempts) for t in stored.targets] == [("failed", 1)]
    return stored


async def out_answer_lost(h: Dispatching) -> Any:
    """A post the fake X carried out and whose answer it dropped: failed, yet out."""
    channel = await h.channel("x")
    h.fake("x").lose_answers(1, "/2/tweets")
    post = await failed(h, channel, "Night Drive out now")
    assert len(h.fake("x").posts) == 1          # out, its answer lost
    return post


async def recorded_published(h: Dispatching, post_id: str) -> Any:
    """The stored post, checked to be recorded published as the fake X's one post."""
    stored = await h.store.post("acc", post_id)
    [target] = stored.targets
    [remote] = h.fake("x").posts
    assert (stored.state, target.state) == ("published", "published")
    assert target.remote_id == str(remote["id"])
    return stored


async def never_sent(h: Dispatching) -> Any:
    """A post whose one attempt X refused (503): failed, and not out."""
    channel = await h.channel("x")
    h.fake("x").fail(503, times=1)
    post = await failed(h, channel, "Never sent")
    assert h.fake("x").posts == []
    return post


def test_a_failed_post_found_on_its_network_is_recorded_not_deleted(
        tmp_path: Path) -> None:
    async def go() -> None:
        url = f"sqlite://{tmp_path / 'social.sqlite3'}"
        async with dispatching(url, ["x"], tmp_path, max_attempts=1) as h, \
                asyncio.timeout(40):
            post = await out_answer_lost(h)

            with pytest.raises(ConflictError, match="out on x"):
                await h.posts.delete("acc", post.post_id, "p_ada")
            await recorded_published(h, post.post_id)

    asyncio.run(go())


def test_a_failed_post_the_network_never_got_is_deleted_once_asked(
        tmp_path: Path) -> None:
    async def go() -> None:
        url = f"sqlite://{tmp_path / 'social.sqlite3'}"
        async with dispatching(url, ["x"], tmp_path, max_attempts=1) as h, \
                asyncio.timeout(40):
            post = await never_sent(h)

            h.fake("x").fail(503, times=5)               # cannot be asked: kept
            with pytest.raises(ConflictError, match="could not ask x"):
                await h.posts.delete("acc", post.post_id, "p_ada")
            assert (await h.store.post("acc", post.post_id)).state == "failed"

            h.fake("x").injected.clear()
            deleted = await h.posts.delete("acc", post.post_id, "p_ada")
            assert deleted.state == "cancelled"
            assert await h.store.post("acc", post.post_id) is None

    asyncio.run(go())


def test_a_failed_post_on_a_channel_let_go_is_deleted_unasked(tmp_path: Path) -> None:
    """A disconnected channel cannot be asked and its person chose to let it go: its
    failed post is deleted (and can be edited), never refused for good."""
    async def go() -> None:
        url = f"sqlite://{tmp_path / 'social.sqlite3'}"
        async with dispatching(url, ["x"], tmp_path, max_attempts=1) as h, \
                asyncio.timeout(40):
            post = await out_answer_lost(h)
            await h.channels.disconnect("acc", post.targets[0].channel_id, "p_ada")
            await h.posts.delete("acc", post.post_id, "p_ada")
            assert await h.store.post("acc", post.post_id) is None

    asyncio.run(go())
