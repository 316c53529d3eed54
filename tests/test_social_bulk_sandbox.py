"""Bulk uploads and test mode: a sandbox post (made with a test-mode key) is no
duplicate of a live upload's row, while a live post of the same text still is."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from social_helpers import InTestNetwork, connect, social_app
from test_social_bulk_routes import ADA, at, upload

from business.social.services import PLUGIN_NAME, services
from dawserver.plugin_api import mark_sandbox

pytestmark = pytest.mark.timeout(120)


def test_a_sandbox_post_is_no_duplicate_of_a_live_uploads_row(tmp_path: Path,
                                                               db_url: str) -> None:
    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, context):
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            posts = services(context).posts

            async def sandboxed(tx: Any, post_id: str) -> None:
                await mark_sandbox(context, PLUGIN_NAME, "acc", post_id, tx=tx)

            # as POST /api/v1/social-posts does with a test-mode key
            await posts.schedule("acc", "p_dee", {
                "text": "Tour dates out now", "publish_at": at(2),
                "targets": [{"channel_id": x_id}]}, on_create=sandboxed)
            await posts.schedule("acc", "p_dee", {
                "text": "Live single out now", "publish_at": at(2),
                "targets": [{"channel_id": x_id}]})

            csv = (f"datetime,channel,text\n{at(2)},{x_id},Tour dates out now\n"
                   f"{at(2)},{x_id},Live single out now\n")
            answer = await upload(client, csv, ADA)
            report = await answer.json()
            assert answer.status == 200, report
            assert [(e["row"], e["code"]) for e in report["errors"]] == [(3, "duplicate")]
            assert report["scheduled"] == 1

    asyncio.run(go())
