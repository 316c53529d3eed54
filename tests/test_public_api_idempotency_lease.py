"""Review 15 (M6): an ``Idempotency-Key`` claim is renewed while its request runs, so a
slow request is never run twice, and a claim taken over cannot overwrite the answer of
the request that took it (SQLite; the PostgreSQL path is the same SQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web

from database import open_database
from dawserver.errors import Conflict
from dawserver.public_api.idempotency import (
    MAX_KEPT_BYTES,
    MIGRATIONS,
    IdempotencyStore,
    idempotent,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def request(key: str) -> SimpleNamespace:
    return SimpleNamespace(headers={"Idempotency-Key": key}, account_id="acct",
                           user="u1", body={"name": "Night"},
                           native=SimpleNamespace(method="POST", path="/api/v1/projects"))


async def test_a_slow_request_keeps_its_claim_past_the_lease(tmp_path: Path) -> None:
    async with open_database(f"sqlite://{tmp_path / 'idem.sqlite3'}") as db:
        await db.migrate(MIGRATIONS)
        store = IdempotencyStore(db, lease=0.3)
        runs = []

        async def create() -> web.Response:
            runs.append(1)
            await asyncio.sleep(1.2)  # four leases long
            return web.json_response({"id": len(runs)}, status=201)

        first = asyncio.create_task(idempotent(request("k"), store, create))
        await asyncio.sleep(0.8)  # past two leases: without renewal a retry would run it
        with pytest.raises(Conflict):
            await idempotent(request("k"), store, create)
        response = await first
        assert response.status == 201 and len(runs) == 1
        replay = await idempotent(request("k"), store, create)
        assert replay.headers["Idempotent-Replayed"] == "true" and len(runs) == 1


async def test_a_claim_taken_over_cannot_keep_or_release(tmp_path: Path) -> None:
    async with open_database(f"sqlite://{tmp_path / 'idem.sqlite3'}") as db:
        await db.migrate(MIGRATIONS)
        store = IdempotencyStore(db, lease=10)
        assert await store.claim("acct", "k", "p", 1000.0, "first") is None
        assert await store.claim("acct", "k", "p", 1011.0, "second") is None  # dead: taken
        assert not await store.renew("acct", "k", "first", 1012.0)
        assert not await store.keep("acct", "k", web.json_response({"n": 1}), "first")
        await store.release("acct", "k", "first")  # the second claim stays
        assert await store.keep("acct", "k", web.json_response({"n": 2}), "second")
        row = await db.fetchrow("SELECT body, status FROM api_idempotency")
        assert row["status"] == 200 and '"n": 2' in row["body"]


async def test_an_answer_that_cannot_be_replayed_is_not_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review R3: a streamed answer has no body to keep, and one over MAX_KEPT_BYTES
    would sit in the database for a day: the key is let go (a retry runs again) and the
    first answer still reaches the caller."""
    from dawserver.public_api import idempotency

    monkeypatch.setattr(idempotency, "MAX_KEPT_BYTES", 100)
    async with open_database(f"sqlite://{tmp_path / 'idem.sqlite3'}") as db:
        await db.migrate(MIGRATIONS)
        store = IdempotencyStore(db)

        async def streamed() -> web.StreamResponse:
            return web.StreamResponse(status=200)

        async def large() -> web.Response:
            return web.json_response({"rows": "x" * 500})

        for key, run in (("stream", streamed), ("large", large)):
            answer = await idempotent(request(key), store, run)
            assert answer.status == 200
            assert await db.fetchval("SELECT COUNT(*) FROM api_idempotency") == 0

        async def no_content() -> web.Response:  # a 204 is replayed as one
            return web.Response(status=204)

        assert (await idempotent(request("empty"), store, no_content)).status == 204
        replay = await idempotent(request("empty"), store, no_content)
        assert (replay.status, replay.headers["Idempotent-Replayed"]) == (204, "true")


async def test_a_success_whose_answer_cannot_be_written_is_still_answered(
        tmp_path: Path) -> None:
    async with open_database(f"sqlite://{tmp_path / 'idem.sqlite3'}") as db:
        await db.migrate(MIGRATIONS)
        store = IdempotencyStore(db)

        async def broken(*args: object) -> bool:
            raise OSError("the database went away")

        store.keep = broken  # type: ignore[method-assign]

        async def create() -> web.Response:
            return web.json_response({"id": 1}, status=201)

        answer = await idempotent(request("k"), store, create)
        assert answer.status == 201


async def test_a_large_answer_is_kept_compressed_and_replayed_whole(tmp_path: Path) -> None:
    """A social bulk upload's report of 50,000 bad rows (8 MiB) is over the 4 MiB kept
    in the database, but it compresses: it is kept and replayed byte for byte. Binary
    answers are kept too; an answer that stays over the bound compressed is not."""
    import os

    async with open_database(f"sqlite://{tmp_path / 'idem.sqlite3'}") as db:
        await db.migrate(MIGRATIONS)
        store = IdempotencyStore(db)
        errors = [{"row": n + 2, "column": "date", "code": "bad_date",
                   "message": f"'tomorrow {n}' is no date: write it as 2026-12-24 18:00, "
                              "2026-12-24T18:00+01:00 or 12/24/2026 6:00 PM"}
                  for n in range(50_000)]
        report = {"mode": "valid_rows", "total_rows": 50_000, "scheduled": 0,
                  "post_ids": [], "errors": errors, "warnings": []}
        answers = {"report": web.json_response(report, status=201),
                   "binary": web.Response(body=b"\xff\xfe" + bytes(range(256)),
                                          content_type="application/octet-stream"),
                   "noise": web.Response(body=os.urandom(5 << 20),
                                         content_type="application/octet-stream")}
        assert len(answers["report"].body) > MAX_KEPT_BYTES
        runs: list[str] = []

        def run(name: str):  # noqa: ANN202
            async def answer() -> web.Response:
                runs.append(name)
                return answers[name]
            return answer

        for name in answers:
            await idempotent(request(name), store, run(name))
        for name in ("report", "binary"):
            replay = await idempotent(request(name), store, run(name))
            assert replay.headers["Idempotent-Replayed"] == "true"
            assert (replay.status, replay.body) == (answers[name].status, answers[name].body)
            assert replay.content_type == answers[name].content_type
        kept = await db.fetchval("SELECT LENGTH(body) FROM api_idempotency "
                                 "WHERE idem_key = 'report'")
        assert kept < MAX_KEPT_BYTES
        again = await idempotent(request("noise"), store, run("noise"))  # not kept: runs
        assert "Idempotent-Replayed" not in again.headers
        assert runs == ["report", "binary", "noise", "noise"]
