"""An approval of a post that waited over 90 days, before the expiry sweep's turn: the
post expires at once (its author told) and never reaches the schedule."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from test_social_approvals import _app, _setup, _submitted, as_, soon

from business.social.services import services

pytestmark = pytest.mark.timeout(60)


def test_approving_a_post_pending_over_90_days_expires_it(tmp_path: Path) -> None:
    async def go() -> None:
        db_url = f"sqlite://{tmp_path / 'social.sqlite3'}"
        async with _app(tmp_path, db_url) as (client, context):
            channel = await _setup(client, [[{"person": "p_bo"}]])
            fresh = await _submitted(client, channel, publish_at=soon(24 * 200))
            stale = await _submitted(client, channel, publish_at=soon(24 * 200))
            approvals = services(context).approvals

            approvals.clock = lambda: time.time() + 89 * 86_400
            done = await client.post(f"/api/social/posts/{fresh}/approve",
                                     headers=as_("p_bo"), json={})
            assert done.status == 200 and (await done.json())["state"] == "scheduled"

            approvals.clock = lambda: time.time() + 91 * 86_400  # no sweep ran since
            late = await client.post(f"/api/social/posts/{stale}/approve",
                                     headers=as_("p_bo"), json={})
            body = await late.json()
            assert late.status == 409 and "90 days" in str(body), body
            found = await (await client.get(f"/api/social/posts/{stale}",
                                            headers=as_("p_ada"))).json()
            assert found["state"] == "expired"
            assert {t["state"] for t in found["targets"]} == {"expired"}
            rows = await context.database().fetch(
                "SELECT payload FROM events_outbox WHERE name = 'social.post_expired'")
            assert len(rows) == 1 and "90 days" in rows[0]["payload"]
            assert await approvals.expire_due() == 0

    asyncio.run(go())
