"""Editing a failed post whose last publish answer was lost: the network is asked first.

The last attempt's answer never came back (the fake carried the post out, then dropped
the connection), so its target ended ``failed`` though the post is out. An edit, like a
delete, asks the network by the target's dedupe key: a post found there is recorded
published and the edit refused, so a new text is never sent as a second post.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from social_fakes import dispatching
from test_social_delete_lost_answer import never_sent, out_answer_lost, recorded_published

from business.social.errors import ConflictError, NotAllowedError

pytestmark = pytest.mark.timeout(60)


def test_editing_a_failed_post_found_on_its_network_records_it_and_sends_nothing(
        tmp_path: Path) -> None:
    async def go() -> None:
        url = f"sqlite://{tmp_path / 'social.sqlite3'}"
        async with dispatching(url, ["x"], tmp_path, max_attempts=1) as h, \
                asyncio.timeout(40):
            post = await out_answer_lost(h)

            later = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
            with pytest.raises(ConflictError, match="published"):
                await h.posts.edit("acc", post.post_id, "p_ada",
                                   {"text": "Night Drive out now!", "publish_at": later})
            stored = await recorded_published(h, post.post_id)
            assert stored.text == "Night Drive out now"

    asyncio.run(go())


def test_editing_a_failed_post_the_network_never_got_works_once_asked(
        tmp_path: Path) -> None:
    async def go() -> None:
        url = f"sqlite://{tmp_path / 'social.sqlite3'}"
        async with dispatching(url, ["x"], tmp_path, max_attempts=1) as h, \
                asyncio.timeout(40):
            post = await never_sent(h)

            edited = await h.posts.edit("acc", post.post_id, "p_ada",
                                        {"text": "Never sent, take two"})
            assert edited.state == "draft"
            assert [t.attempts for t in edited.targets] == [1]  # asks before its next send

    asyncio.run(go())


def test_a_person_who_may_only_view_the_channel_is_refused_before_it_is_asked(
        tmp_path: Path) -> None:
    """The network is asked (and a post found there recorded) only for someone who may
    edit the post: one who may only view its channel is refused first."""
    async def go() -> None:
        url = f"sqlite://{tmp_path / 'social.sqlite3'}"
        async with dispatching(url, ["x"], tmp_path, max_attempts=1) as h, \
                asyncio.timeout(40):
            post = await out_answer_lost(h)
            [target] = post.targets
            await h.store.set_rights("acc", target.channel_id,
                                     [{"person": "p_eve", "access": "view"}], time.time())
            asked = h.fake("x").stats.requests
            with pytest.raises(NotAllowedError, match="only view"):
                await h.posts.edit("acc", post.post_id, "p_eve", {"text": "Hijacked"})
            assert h.fake("x").stats.requests == asked
            assert (await h.store.post("acc", post.post_id)).state == "failed"

    asyncio.run(go())
