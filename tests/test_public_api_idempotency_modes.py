"""Test mode and ``Idempotency-Key``: a key's kept answers are kept per key mode.

Over a real server: a person's test-mode key and live key sending the same
``Idempotency-Key`` and body each run the request in their own mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from public_api_helpers import ids, key_of, signed_in
from smtp_server import SmtpServer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
V1 = "/api/v1"


async def test_idempotency_keys_are_kept_apart_by_mode(tmp_path: Path,
                                                      smtp_server: SmtpServer) -> None:
    """A person's live key sending the key and body their test-mode key sent makes a
    live project: it is never answered the sandbox's (nor the other way)."""
    scopes = ["account.read", "projects.create", "project.read"]
    async with signed_in(tmp_path, smtp_server, "ada@example.org") as (
            app, (ada_person, ada)):
        live = await key_of(ada_person, ada, scopes)
        test = await key_of(ada_person, ada, scopes, test=True)
        made = []
        for caller in (test, live):
            status, project, headers = await caller.call(
                "POST", f"{V1}/projects", {"name": "Same"}, headers={"Idempotency-Key": "k1"})
            assert status == 201 and "Idempotent-Replayed" not in headers, project
            made.append(project)
        assert made[0]["id"] != made[1]["id"]
        assert await ids(test, f"{V1}/projects") == [made[0]["id"]]
        assert await ids(live, f"{V1}/projects") == [made[1]["id"]]
        # each mode's retry still replays its own answer
        for caller, project in zip((test, live), made, strict=True):
            status, again, headers = await caller.call(
                "POST", f"{V1}/projects", {"name": "Same"}, headers={"Idempotency-Key": "k1"})
            assert status == 201 and headers["Idempotent-Replayed"] == "true"
            assert again == project
