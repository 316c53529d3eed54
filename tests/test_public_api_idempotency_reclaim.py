"""``Idempotency-Key``: a claim released by a failed first request between a retry's
insert and its read is claimed by the retry, whose answer is then kept (SQLite)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from database import open_database
from dawserver.public_api.idempotency import MIGRATIONS, IdempotencyStore, idempotent

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def request(key: str) -> SimpleNamespace:
    return SimpleNamespace(headers={"Idempotency-Key": key}, account_id="acct",
                           user="u1", body={"name": "Night"},
                           native=SimpleNamespace(method="POST", path="/api/v1/projects"))


async def test_a_claim_released_during_a_retry_s_claim_is_claimed_and_kept(
        tmp_path: Path) -> None:
    async with open_database(f"sqlite://{tmp_path / 'idem.sqlite3'}") as db:
        await db.migrate(MIGRATIONS)
        store = IdempotencyStore(db)
        # the first request holds the claim ...
        assert await store.claim("acct", "k", "first-print", time.time(), "first") is None
        execute = db.execute

        async def first_fails_meanwhile(sql: str, *args: Any) -> Any:
            done = await execute(sql, *args)
            if sql.startswith("INSERT INTO api_idempotency") and not done:
                await store.release("acct", "k", "first")  # ... and fails (an error)
            return done

        db.execute = first_fails_meanwhile  # type: ignore[method-assign]
        runs: list[int] = []

        async def create() -> web.Response:
            runs.append(1)
            return web.json_response({"id": len(runs)}, status=201)

        answered = await idempotent(request("k"), store, create)
        db.execute = execute  # type: ignore[method-assign]
        assert answered.status == 201 and runs == [1]
        row = await db.fetchrow("SELECT status, body FROM api_idempotency")
        assert row is not None and row["status"] == 201 and row["body"] == '{"id": 1}'
        # the retry after a lost answer replays it instead of running it again
        again = await idempotent(request("k"), store, create)
        assert again.headers["Idempotent-Replayed"] == "true" and runs == [1]
        assert again.body == answered.body
