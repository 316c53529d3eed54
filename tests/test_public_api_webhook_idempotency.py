"""``Idempotency-Key`` on the webhooks' POSTs, over a real server: a retried create makes
one webhook (so no event is delivered twice to it), its kept answer sealed since it holds
the signing secret; a retried test or replay sends once more at most."""

from __future__ import annotations

from pathlib import Path

import pytest
from smtp_server import SmtpServer
from test_public_api_webhooks import HOOKS, delivery_log, hooks_server, sale
from webhook_receiver import Receiver

from dawserver.keys import PLUGIN_CONTEXT_KEY
from dawserver.public_api.idempotency import SEALED
from dawserver.public_api.webhook_signature import verify

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def test_a_retried_create_makes_one_webhook_and_keeps_its_secret_sealed(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (app, ada, _bob), Receiver() as rx:
        body = {"url": rx.url, "events": ["marketplace.sale"]}
        key = {"Idempotency-Key": "create-1"}
        status, made, headers = await ada.call("POST", HOOKS, body, headers=key)
        assert status == 201 and "Idempotent-Replayed" not in headers, made
        status, again, headers = await ada.call("POST", HOOKS, body, headers=key)
        assert status == 201 and headers["Idempotent-Replayed"] == "true"
        assert again == made and headers["Location"] == f"{HOOKS}/{made['id']}"
        _, page, _ = await ada.call("GET", HOOKS)
        assert [hook["id"] for hook in page["data"]] == [made["id"]]
        status, _, _ = await ada.call("POST", HOOKS, {**body, "description": "other"},
                                      headers=key)
        assert status == 422
        # the kept answer holds the secret: never in clear in the database
        db = app[PLUGIN_CONTEXT_KEY].database()
        row = await db.fetchrow("SELECT body, body_encoding FROM api_idempotency WHERE "
                                "idem_key = 'create-1'")
        assert row["body_encoding"] == SEALED and made["secret"] not in row["body"]

        # so an event reaches the endpoint once
        await sale(app, ada.person_id)
        (received,) = await rx.wait_for(1)
        verify(made["secret"], received.body, received.headers)
        (log,) = await delivery_log(ada, made["id"], "delivered")
        replay = f"{HOOKS}/{made['id']}/deliveries/{log['id']}/replay"
        status, first, _ = await ada.call("POST", replay, headers={"Idempotency-Key": "r1"})
        assert status == 202 and first["state"] == "pending"
        status, second, headers = await ada.call("POST", replay,
                                                 headers={"Idempotency-Key": "r1"})
        assert status == 202 and headers["Idempotent-Replayed"] == "true"
        assert second == first


async def test_a_retried_test_event_is_sent_once(tmp_path: Path,
                                                 smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (_app, ada, _bob), Receiver() as rx:
        status, made, _ = await ada.call("POST", HOOKS, {
            "url": rx.url, "events": ["marketplace.sale"]})
        assert status == 201, made
        sent = []
        for _ in range(2):
            status, delivery, _ = await ada.call("POST", f"{HOOKS}/{made['id']}/test",
                                                 headers={"Idempotency-Key": "t1"})
            assert status == 202, delivery
            sent.append(delivery["id"])
        assert sent[0] == sent[1]
        _, page, _ = await ada.call("GET", f"{HOOKS}/{made['id']}/deliveries")
        assert [item["id"] for item in page["data"]] == [sent[0]]
        # paused since, the retry still gets the kept answer (a new key is refused)
        status, _, _ = await ada.call("PATCH", f"{HOOKS}/{made['id']}", {"enabled": False})
        assert status == 200
        status, delivery, headers = await ada.call("POST", f"{HOOKS}/{made['id']}/test",
                                                   headers={"Idempotency-Key": "t1"})
        assert status == 202 and headers["Idempotent-Replayed"] == "true", delivery
        assert delivery["id"] == sent[0]
        status, _, _ = await ada.call("POST", f"{HOOKS}/{made['id']}/test",
                                      headers={"Idempotency-Key": "t2"})
        assert status == 422
