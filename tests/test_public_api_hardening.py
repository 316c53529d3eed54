"""Review 14's public-API findings: sealed webhook secrets, idempotency leases, If-Match
as one conditional update, and the purge of what is kept only for a while.

Store-level tests run over SQLite and PostgreSQL; the API-level ones over a real server.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from public_api_helpers import two_people
from smtp_server import SmtpServer

from collab.errors import ProjectChanged, ProjectNotFound
from database import open_database
from dawserver.keys import STORE
from dawserver.public_api.idempotency import LEASE_SECONDS, MIGRATIONS, IdempotencyStore
from dawserver.public_api.retention import purge
from dawserver.public_api.webhook_signature import new_secret
from dawserver.public_api.webhooks.sealing import SealingError, SecretBox
from dawserver.public_api.webhooks.settings import DAY, WebhookSettings
from dawserver.public_api.webhooks.store import WebhookStore

pytestmark = pytest.mark.timeout(120)
V1 = "/api/v1"
KEY = bytes(range(32))


# -- webhook secrets at rest -----------------------------------------------------------


def test_webhook_secrets_are_stored_sealed_and_clear_rows_get_sealed(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate(MIGRATIONS)
            store = WebhookStore(db, SecretBox(KEY))
            secret = new_secret()
            sub = await store.create("acct_a", url="https://example.org/h", events=["x"],
                                     description="", secret=secret, created_by="p")
            stored = await db.fetchval("SELECT secret FROM webhook_subscriptions WHERE id = ?",
                                       sub.id)
            assert secret not in stored and not stored.startswith("whsec_")
            assert (await store.get("acct_a", sub.id)).secret == secret

            # a row from before sealing: read as it is, then sealed at startup
            old = new_secret()
            await db.execute("UPDATE webhook_subscriptions SET secret = ? WHERE id = ?",
                             old, sub.id)
            assert (await store.get("acct_a", sub.id)).secret == old
            assert await store.seal_plain_secrets() == 1
            assert await store.seal_plain_secrets() == 0
            stored = await db.fetchval("SELECT secret FROM webhook_subscriptions WHERE id = ?",
                                       sub.id)
            assert old not in stored
            assert (await store.get("acct_a", sub.id)).secret == old

            # another server secret opens nothing, and says what to do
            with pytest.raises(SealingError, match="create it again"):
                await WebhookStore(db, SecretBox(bytes(32))).get("acct_a", sub.id)

            # one row sealed under another key disables that row only, with the reason
            good = await store.create("acct_a", url="https://example.org/g", events=["x"],
                                      description="", secret=new_secret(), created_by="p")
            await db.execute("UPDATE webhook_subscriptions SET secret = ? WHERE id = ?",
                             SecretBox(bytes(32)).seal(new_secret()), sub.id)
            assert [s.id for s in await store.hearing("acct_a", "x")] == [good.id]
            listed = {s.id: s for s in await store.list("acct_a")}
            assert not listed[sub.id].enabled and listed[sub.id].secret == ""
            assert "create it again" in listed[sub.id].disabled_reason
            assert listed[good.id].enabled
            enabled = await db.fetchval("SELECT enabled FROM webhook_subscriptions WHERE id = ?",
                                        sub.id)
            assert not enabled

    asyncio.run(go())


# -- idempotency leases ----------------------------------------------------------------


def test_a_dead_claim_is_taken_over_after_its_lease_by_the_same_request_only(
        db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate(MIGRATIONS)
            store = IdempotencyStore(db)
            t0 = 1_000_000.0
            assert await store.claim("acct_a", "k1", "print-1", t0) is None
            # its process died: no answer is ever kept; within the lease a retry waits
            row = await store.claim("acct_a", "k1", "print-1", t0 + LEASE_SECONDS / 2)
            assert row is not None and row["status"] is None
            # another request with the key is refused however long it waits
            later = t0 + LEASE_SECONDS + 1
            row = await store.claim("acct_a", "k1", "print-2", later)
            assert row is not None and row["fingerprint"] == "print-1"
            # of two retries racing for the dead claim, one takes it over
            results = await asyncio.gather(store.claim("acct_a", "k1", "print-1", later),
                                           store.claim("acct_a", "k1", "print-1", later))
            assert sorted(r is None for r in results) == [False, True]
            # a kept answer is never taken over
            await db.execute("UPDATE api_idempotency SET status = 201, body = '{}' WHERE "
                             "account_id = 'acct_a' AND idem_key = 'k1'")
            row = await store.claim("acct_a", "k1", "print-1", later + 10 * LEASE_SECONDS)
            assert row is not None and row["status"] == 201

    asyncio.run(go())


# -- If-Match ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_two_renames_with_the_same_etag_one_wins_one_gets_412(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        _, made, _ = await ada.call("POST", f"{V1}/projects", {"name": "Night"})
        path = f"{V1}/projects/{made['id']}"
        for round_ in range(3):
            _, _, headers = await ada.call("GET", path)
            etag = headers["ETag"]
            answers = await asyncio.gather(*[
                ada.call("PATCH", path, {"name": f"r{round_}-{n}"}, headers={"If-Match": etag})
                for n in range(2)])
            assert sorted(a[0] for a in answers) == [200, 412], answers
            winner = next(a[1] for a in answers if a[0] == 200)
            loser = next(a for a in answers if a[0] == 412)
            _, now, headers = await ada.call("GET", path)
            assert now["name"] == winner["name"]
            assert loser[1]["etag"] == headers["ETag"]  # the problem names the current ETag
        # without If-Match a rename is unconditional
        status, _, _ = await ada.call("PATCH", path, {"name": "free"})
        assert status == 200

        store = app[STORE]
        with pytest.raises(ProjectChanged):
            await store.rename_project(made["id"], "x", expected="not its name")
        assert (await store.get_project(made["id"])).name == "free"
        with pytest.raises(ProjectNotFound):
            await store.rename_project("nope-00000000", "x", expected="free")


# -- the purge ---------------------------------------------------------------------------


def test_the_purge_deletes_expired_keys_and_old_settled_deliveries_only(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate(MIGRATIONS)
            now = time.time()
            settings = WebhookSettings()
            assert settings.keep_log_s is not None
            old = now - settings.keep_log_s - DAY
            for account, key, expires in (("acct_a", "gone", now - 1),
                                          ("acct_quiet", "gone", now - 1),
                                          ("acct_a", "kept", now + 3600)):
                await db.execute("INSERT INTO api_idempotency (account_id, idem_key, "
                                 "fingerprint, created_at, expires_at) VALUES (?, ?, 'f', ?, ?)",
                                 account, key, now - DAY, expires)
            deliveries = [("d_old_ok", "delivered", old), ("d_old_failed", "failed", old),
                          ("d_old_pending", "pending", old), ("d_new_ok", "delivered", now)]
            for delivery, state, at in deliveries:
                await db.execute(
                    "INSERT INTO webhook_deliveries (account_id, id, subscription_id, event_id, "
                    "event_type, body, state, attempts, last_status, first_attempt_at, "
                    "next_attempt_at, created_at, replays) VALUES ('acct_a', ?, 'wh', ?, 't', "
                    "?, ?, 1, 200, ?, NULL, ?, 0)", delivery, delivery, json.dumps({}), state,
                    at, at)
                await db.execute(
                    "INSERT INTO webhook_attempts (account_id, delivery_id, attempt, "
                    "subscription_id, at, status, latency_ms, response, error) VALUES "
                    "('acct_a', ?, 1, 'wh', ?, 200, 1.0, '', '')", delivery, at)

            found = await purge(db, settings, now)
            assert (found.idempotency, found.deliveries, found.attempts) == (2, 2, 2)
            keys = await db.fetch("SELECT account_id, idem_key FROM api_idempotency")
            assert [(r["account_id"], r["idem_key"]) for r in keys] == [("acct_a", "kept")]
            left = sorted(r["id"] for r in await db.fetch("SELECT id FROM webhook_deliveries"))
            assert left == ["d_new_ok", "d_old_pending"]
            attempts = sorted(r["delivery_id"] for r in await db.fetch(
                "SELECT delivery_id FROM webhook_attempts"))
            assert attempts == left
            again = await purge(db, settings, now)
            assert (again.idempotency, again.deliveries, again.attempts) == (0, 0, 0)

            keep_all = WebhookSettings(keep_log_s=None)
            assert (await purge(db, keep_all, now + 100 * DAY)).deliveries == 0

    asyncio.run(go())
