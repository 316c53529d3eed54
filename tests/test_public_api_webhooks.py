"""``/api/v1/webhooks`` over a real server: signed deliveries to a real receiver on loopback.

Covers: a published event reaching the account's subscription (verified with the
receivers' helper) and never another account's; retries after a hanging receiver,
a 500 and a 429 with ``Retry-After``; the delivery log and replay; automatic disable
with the mail arriving at the SMTP server, and re-enabling; the catalogue's refusal
of unknown events; SSRF refusals.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from public_api_helpers import Caller
from smtp_server import SmtpServer
from webhook_receiver import Receiver

from dawserver.keys import PLUGIN_CONTEXT_KEY
from dawserver.public_api.webhook_signature import verify
from dawserver.public_api.webhooks.service import deliverer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
HOOKS = "/api/v1/webhooks"
#: Fast retries for tests; the defaults are 30 s doubling to 6 h, for 3 days.
FAST = {"allow_loopback": True, "backoff_base_s": 0.2, "backoff_cap_s": 0.4,
        "timeout_s": 1.0, "disable_after_failures": 3}


@asynccontextmanager
async def hooks_server(tmp_path: Path, smtp: SmtpServer, **settings: Any
                       ) -> AsyncIterator[tuple[Any, Caller, Caller]]:
    """A server, and Ada's and Bob's keys with the ``webhooks.manage`` scope."""
    async with accounts_server(tmp_path, smtp, webhooks={**FAST, **settings}) as (
            app, config), aiohttp.ClientSession() as http:
        people, callers = [], []
        for email in ("ada@example.org", "bob@example.org"):
            person = Person(config.base_url, smtp, email)
            await person.sign_up_and_in(email.split("@")[0])
            status, key, _ = await person.call("POST", f"/accounts/{person.id}/keys", {
                "name": "hooks", "scopes": ["webhooks.manage"]})
            assert status == 201, key
            people.append(person)
            callers.append(Caller(config.base_url, key["key"], person.id, http))
        try:
            yield app, callers[0], callers[1]
        finally:
            for person in people:
                await person.close()


async def sale(app: Any, account: str, order: str = "o1") -> str:
    """Publish a ``marketplace.sale`` of ``account``; the event id."""
    return await app[PLUGIN_CONTEXT_KEY].announce("marketplace.sale", {
        "account_id": account, "order_id": order, "beat_id": "b1", "tier": "basic",
        "amount_cents": 2900, "currency": "EUR", "at": time.time()}, account_id=account)


async def heard(app: Any, timeout: float = 20.0) -> None:
    """Wait until every published event was relayed and handed to every subscriber."""
    context = app[PLUGIN_CONTEXT_KEY]
    db = context.database()
    async with asyncio.timeout(timeout):
        while await context.background.bus.pending() or await db.fetchval(
                "SELECT COUNT(*) FROM jobs WHERE queue = 'events' AND state NOT IN "
                "('done', 'dead', 'cancelled')"):
            await asyncio.sleep(0.05)


async def subscribe(caller: Caller, url: str, events: list[str] | None = None) -> dict:
    status, made, headers = await caller.call("POST", HOOKS, {
        "url": url, "events": events or ["marketplace.sale"], "description": "shop"})
    assert status == 201, made
    assert headers["Location"] == f"{HOOKS}/{made['id']}"
    return made


async def delivery_log(caller: Caller, hook: str, until: str = "", timeout: float = 20.0
                       ) -> list[dict]:
    """The hook's deliveries (each with its attempts), once the newest is ``until``."""
    async with asyncio.timeout(timeout):
        while True:
            _, page, _ = await caller.call("GET", f"{HOOKS}/{hook}/deliveries")
            if page["data"] and (not until or page["data"][0]["state"] == until):
                break
            await asyncio.sleep(0.05)
    found = []
    for item in page["data"]:
        status, detail, _ = await caller.call("GET", f"{HOOKS}/{hook}/deliveries/{item['id']}")
        assert status == 200
        found.append(detail)
    return found


async def test_an_event_reaches_its_account_signed_and_never_another_account(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (app, ada, bob), \
            Receiver() as ada_rx, Receiver() as bob_rx:
        made = await subscribe(ada, ada_rx.url)
        assert made["secret"].startswith("whsec_") and made["enabled"] is True
        bobs = await subscribe(bob, bob_rx.url)
        status, got, _ = await ada.call("GET", f"{HOOKS}/{made['id']}")
        assert status == 200 and "secret" not in got and got["url"] == ada_rx.url

        await sale(app, bob.person_id, "bob-order")
        (bob_got,) = await bob_rx.wait_for(1)
        verify(bobs["secret"], bob_got.body, bob_got.headers)
        event_id = await sale(app, ada.person_id, "ada-order")
        (received,) = await ada_rx.wait_for(1)
        verify(made["secret"], received.body, received.headers)  # the receivers' helper
        body = json.loads(received.body)
        assert body["type"] == "marketplace.sale" and body["data"]["order_id"] == "ada-order"
        assert received.headers["Content-Type"] == "application/json"
        assert len(ada_rx.received) == 1 and len(bob_rx.received) == 1
        assert json.loads(bob_rx.received[0].body)["data"]["order_id"] == "bob-order"

        (log,) = await delivery_log(ada, made["id"], "delivered")
        assert log["id"] == received.headers["Webhook-Id"] and log["event_id"] == event_id
        assert log["body"] == received.body.decode() and log["last_status"] == 200
        (attempt,) = log["attempt_log"]
        assert attempt["status"] == 200 and attempt["error"] == ""
        assert attempt["response"] == "answer 200" and attempt["latency_ms"] >= 0

        # another account's webhook and deliveries answer 404, like missing ones
        for path in (f"{HOOKS}/{made['id']}", f"{HOOKS}/{made['id']}/deliveries",
                     f"{HOOKS}/{made['id']}/deliveries/{log['id']}"):
            status, problem, _ = await bob.call("GET", path)
            assert status == 404, path
        status, _, _ = await bob.call("POST", f"{HOOKS}/{made['id']}/deliveries/{log['id']}"
                                              "/replay")
        assert status == 404
        _, listed, _ = await bob.call("GET", HOOKS)
        assert [h["id"] for h in listed["data"]] == [bobs["id"]]

        # a test ping is signed like any delivery
        status, ping, _ = await ada.call("POST", f"{HOOKS}/{made['id']}/test")
        assert status == 202 and ping["type"] == "webhook.test"
        (_, second) = await ada_rx.wait_for(2)
        verify(made["secret"], second.body, second.headers)
        assert second.headers["Webhook-Id"] == ping["id"]


async def test_unknown_events_and_bad_urls_are_refused_with_what_to_do(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server, allow_loopback=False) as (_, ada, _bob):
        status, catalogue, _ = await ada.call("GET", "/api/v1/webhook-events")
        names = [e["name"] for e in catalogue["data"]]
        assert status == 200 and "marketplace.sale" in names and "social.post_published" in names
        status, problem, _ = await ada.call("POST", HOOKS, {
            "url": "https://example.org/hook", "events": ["marketplace.sale", "sale.made"]})
        assert status == 422 and "['sale.made']" in problem["detail"]
        assert "marketplace.sale" in problem["detail"]  # the list to choose from
        refused = {
            "http://example.org/hook": "must use https://",
            "https://10.1.2.3/hook": "10.1.2.3, a private",
            "https://172.16.0.9/hook": "172.16.0.9, a private",
            "https://192.168.1.1/hook": "192.168.1.1, a private",
            "https://169.254.169.254/latest/meta-data": "169.254.169.254, a private",
            "https://[fc00::1]/hook": "fc00::1, a private",
            "https://[::1]/hook": "::1, a loopback",
            "https://127.0.0.1:8443/hook": "127.0.0.1, a loopback",
            "https://localhost/hook": "a loopback",
            "https://user:pw@example.org/hook": "user name or password",
            "ftp://example.org/hook": "absolute https:// URL",
        }
        for url, why in refused.items():
            status, problem, _ = await ada.call("POST", HOOKS, {
                "url": url, "events": ["marketplace.sale"]})
            assert status == 400, (url, problem)
            assert why in problem["detail"], (url, problem["detail"])
        _, listed, _ = await ada.call("GET", HOOKS)
        assert listed["data"] == []


async def test_a_host_that_is_not_a_valid_idna_name_is_refused_not_a_500(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (_, ada, _bob):
        made = await subscribe(ada, "http://127.0.0.1:9/hook")
        for url in ("https://a..example.com/hook", f"https://{'x' * 64}.example.com/hook"):
            status, problem, headers = await ada.call("POST", HOOKS, {
                "url": url, "events": ["marketplace.sale"]})
            assert status == 400, (url, problem)
            assert headers["Content-Type"].startswith("application/problem+json")
            assert "invalid host name" in problem["detail"], problem
            status, problem, _ = await ada.call("PATCH", f"{HOOKS}/{made['id']}", {"url": url})
            assert status == 400 and "invalid host name" in problem["detail"], problem
        _, listed, _ = await ada.call("GET", HOOKS)
        assert [h["url"] for h in listed["data"]] == ["http://127.0.0.1:9/hook"]


async def test_a_hanging_receiver_and_a_500_are_retried_with_the_same_webhook_id(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (app, ada, _bob), Receiver() as rx:
        made = await subscribe(ada, rx.url)
        rx.plan = ["hang", (500, {}), (200, {})]
        await sale(app, ada.person_id)
        (hanging,) = await rx.wait_for(1)
        msg = hanging.headers["Webhook-Id"]
        status, problem, _ = await ada.call(
            "POST", f"{HOOKS}/{made['id']}/deliveries/{msg}/replay")
        assert status == 409 and "still pending" in problem["detail"]  # no second sender
        first, second, third = await rx.wait_for(3, timeout=30)
        ids = {r.headers["Webhook-Id"] for r in (first, second, third)}
        assert len(ids) == 1  # one message; receivers dedupe by it
        for got in (first, second, third):
            verify(made["secret"], got.body, got.headers)  # each attempt freshly signed
        assert first.body == second.body == third.body
        (log,) = await delivery_log(ada, made["id"], "delivered")
        attempts = log["attempt_log"]
        assert [a["status"] for a in attempts] == [None, 500, 200]
        assert "no answer within 1 s" in attempts[0]["error"]
        assert attempts[0]["latency_ms"] >= 900
        assert "answered 500" in attempts[1]["error"] and attempts[1]["response"] == "answer 500"
        # backoff: at least half the 0.2 s base after the 500
        assert third.at - second.at >= 0.1
        _, hook, _ = await ada.call("GET", f"{HOOKS}/{made['id']}")
        assert hook["consecutive_failures"] == 0 and hook["enabled"]


async def test_a_429_with_retry_after_is_honoured(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (app, ada, _bob), Receiver() as rx:
        made = await subscribe(ada, rx.url)
        rx.plan = [(429, {"Retry-After": "3"}), (200, {})]
        await sale(app, ada.person_id)
        first, second = await rx.wait_for(2, timeout=30)
        # the backoff alone would retry within about 1.4 s (0.4 s cap + the worker's poll)
        assert second.at - first.at >= 2.9
        (log,) = await delivery_log(ada, made["id"], "delivered")
        assert [a["status"] for a in log["attempt_log"]] == [429, 200]


async def test_a_delivery_is_replayed_with_the_same_webhook_id(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (app, ada, _bob), Receiver() as rx:
        made = await subscribe(ada, rx.url)
        await sale(app, ada.person_id)
        (first,) = await rx.wait_for(1)
        (log,) = await delivery_log(ada, made["id"], "delivered")
        status, again, _ = await ada.call(
            "POST", f"{HOOKS}/{made['id']}/deliveries/{log['id']}/replay")
        assert status == 202 and again["state"] == "pending"
        (_, second) = await rx.wait_for(2)
        assert second.headers["Webhook-Id"] == first.headers["Webhook-Id"]
        assert second.body == first.body
        verify(made["secret"], second.body, second.headers)
        (log,) = await delivery_log(ada, made["id"], "delivered")
        assert [a["attempt"] for a in log["attempt_log"]] == [1, 2]
        status, problem, _ = await ada.call(
            "POST", f"{HOOKS}/{made['id']}/deliveries/msg_nothing/replay")
        assert status == 404 and "msg_nothing" in problem["detail"]


async def test_persistent_failure_disables_the_webhook_and_mails_the_owner(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (app, ada, _bob), Receiver() as rx:
        made = await subscribe(ada, rx.url)
        rx.always = (500, {})
        await sale(app, ada.person_id)
        await rx.wait_for(3, timeout=30)
        (log,) = await delivery_log(ada, made["id"], "failed", timeout=30)
        assert [a["status"] for a in log["attempt_log"]] == [500, 500, 500]
        _, hook, _ = await ada.call("GET", f"{HOOKS}/{made['id']}")
        assert hook["enabled"] is False
        assert hook["disabled_reason"] == "3 delivery attempts in a row failed"

        async with asyncio.timeout(20):
            while not [m for m in smtp_server.messages
                       if str(m["Message-ID"]).startswith("<webhook_disabled.")]:
                await asyncio.sleep(0.05)
        (mail,) = [m for m in smtp_server.messages
                   if str(m["Message-ID"]).startswith("<webhook_disabled.")]
        assert "ada@example.org" in mail["To"]
        text = mail.get_body(("plain",)).get_content()
        assert rx.url in text and "3 delivery attempts in a row failed" in text
        assert f"/api/v1/webhooks/{made['id']}" in text

        # disabled: new events are not sent; replay and test are refused until re-enabled
        await sale(app, ada.person_id, "while-disabled")
        await heard(app)  # fanned out while disabled: to nobody
        status, problem, _ = await ada.call("POST", f"{HOOKS}/{made['id']}/test")
        assert status == 422 and "/enable" in problem["detail"]
        status, hook, _ = await ada.call("POST", f"{HOOKS}/{made['id']}/enable")
        assert status == 200 and hook["enabled"] and hook["consecutive_failures"] == 0
        rx.always = (200, {})
        status, _, _ = await ada.call(
            "POST", f"{HOOKS}/{made['id']}/deliveries/{log['id']}/replay")
        assert status == 202
        got = await rx.wait_for(4)
        assert got[3].headers["Webhook-Id"] == log["id"]
        assert all(json.loads(r.body)["data"]["order_id"] == "o1" for r in got)


async def test_webhooks_are_listed_changed_paused_and_deleted(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (app, ada, _bob), Receiver() as rx, \
            Receiver() as witness_rx:
        made = [await subscribe(ada, rx.url) for _ in range(3)]
        _, page, _ = await ada.call("GET", f"{HOOKS}?limit=2")
        assert [h["id"] for h in page["data"]] == [m["id"] for m in made[:2]]
        _, rest, _ = await ada.call("GET", f"{HOOKS}?limit=2&cursor={page['next_cursor']}")
        assert [h["id"] for h in rest["data"]] == [made[2]["id"]] and not rest["next_cursor"]

        hook = made[0]["id"]
        status, changed, _ = await ada.call("PATCH", f"{HOOKS}/{hook}", {
            "events": ["social.post_published", "marketplace.sale"], "enabled": False})
        assert status == 200 and changed["events"] == ["marketplace.sale",
                                                       "social.post_published"]
        assert changed["enabled"] is False and changed["disabled_reason"]
        status, problem, _ = await ada.call("PATCH", f"{HOOKS}/{hook}",
                                            {"url": "https://10.0.0.1/"})
        assert status == 400 and "private" in problem["detail"]
        status, problem, _ = await ada.call("PATCH", f"{HOOKS}/{hook}", {"events": ["nope"]})
        assert status == 422
        for other in made[1:]:
            status, gone, _ = await ada.call("DELETE", f"{HOOKS}/{other['id']}")
            assert status == 200 and gone == {"id": other["id"], "deleted": True}
        witness = await subscribe(ada, witness_rx.url)
        await sale(app, ada.person_id)  # the paused and deleted webhooks do not hear it
        await witness_rx.wait_for(1)
        status, _, _ = await ada.call("POST", f"{HOOKS}/{hook}/test")
        assert status == 422
        _, listed, _ = await ada.call("GET", HOOKS)
        assert [h["id"] for h in listed["data"]] == [hook, witness["id"]]
        _, log, _ = await ada.call("GET", f"{HOOKS}/{hook}/deliveries")
        assert log["data"] == [] and rx.received == []


async def test_an_erased_person_s_webhooks_and_log_are_deleted(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server, webhooks=FAST) as (app, config), \
            aiohttp.ClientSession() as http, Receiver() as rx:
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        await ada.sign_up_and_in("Ada")
        _, key, _ = await ada.call("POST", f"/accounts/{ada.id}/keys", {
            "name": "hooks", "scopes": ["webhooks.manage"]})
        made = await subscribe(Caller(config.base_url, key["key"], ada.id, http), rx.url)
        await sale(app, ada.id)
        await rx.wait_for(1)
        db = app[PLUGIN_CONTEXT_KEY].database()

        async def rows() -> int:
            return sum([await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",
                                          ada.id)
                        for table in ("webhook_subscriptions", "webhook_deliveries",
                                      "webhook_attempts")])

        async with asyncio.timeout(30):  # the receiver has it; the attempt's row follows
            while await rows() < 3:
                await asyncio.sleep(0.05)
        assert await rows() == 3
        status, _, _ = await ada.call("POST", "/me/delete", {"password": PASSWORD})
        assert status == 202
        async with asyncio.timeout(30):
            while await rows():
                await asyncio.sleep(0.1)
        assert await deliverer(app[PLUGIN_CONTEXT_KEY]).store.get(ada.id, made["id"]) is None
        await ada.close()


async def test_the_delivery_log_pages_by_seeking_never_reading_it_all(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with hooks_server(tmp_path, smtp_server) as (app, ada, _bob), Receiver() as rx:
        hook = (await subscribe(ada, rx.url))["id"]
        store = deliverer(app[PLUGIN_CONTEXT_KEY]).store
        logged = await _log_deliveries(store.db, ada.person_id, hook, count=25)
        newest_first = sorted(logged, key=lambda d: (-d[1], d[0]))
        widest = await _widest_read(store.db)

        async def walk(query: str, limit: int) -> list[str]:
            seen, cursor = [], ""
            for _ in range(30):  # 25 rows in pages of 3 or more: a loop means a bug
                status, page, _ = await ada.call(
                    "GET", f"{HOOKS}/{hook}/deliveries?limit={limit}{query}{cursor}")
                assert status == 200, page
                assert len(page["data"]) <= limit
                seen += [d["id"] for d in page["data"]]
                if not page["next_cursor"]:
                    return seen
                cursor = f"&cursor={page['next_cursor']}"
            raise AssertionError(f"the log never ended: {seen}")

        # ties of created_at come in id order, across page boundaries too
        assert await walk("", 4) == [d[0] for d in newest_first]
        assert await walk("&state=failed", 3) == [d[0] for d in newest_first
                                                  if d[2] == "failed"]
        assert max(widest) <= 5, f"a page of at most 4 read {max(widest)} rows"

        await subscribe(ada, rx.url)
        _, hooks_page, _ = await ada.call("GET", f"{HOOKS}?limit=1")
        assert hooks_page["next_cursor"]
        status, problem, _ = await ada.call(  # another list's cursor is refused
            "GET", f"{HOOKS}/{hook}/deliveries?cursor={hooks_page['next_cursor']}")
        assert status == 400 and "not one this list gave out" in problem["detail"]


async def _log_deliveries(db: Any, account: str, hook: str, count: int
                          ) -> list[tuple[str, float, str]]:
    """``count`` deliveries straight into the log, five to a timestamp, states
    alternating: ``(id, created_at, state)`` each."""
    base, made = time.time() - 3600, []
    for n in range(count):
        row = (f"msg_{(n * 7) % 10}x{n:03d}", base + n // 5 * 0.125,
               "failed" if n % 2 else "delivered")
        await db.execute(
            "INSERT INTO webhook_deliveries (account_id, id, subscription_id, event_id, "
            "event_type, body, state, attempts, last_status, first_attempt_at, "
            "next_attempt_at, created_at, replays) VALUES (?, ?, ?, ?, 'marketplace.sale', "
            "'{}', ?, 1, 200, NULL, NULL, ?, 0)", account, row[0], hook, f"evt_{n}", row[2],
            row[1])
        made.append(row)
    return made


async def _widest_read(db: Any) -> list[int]:
    """Hooks ``db.fetch`` to note how many rows each read of the delivery log returned."""
    widths: list[int] = [0]
    fetch = db.fetch

    async def noted(sql: str, *args: Any) -> Any:
        rows = await fetch(sql, *args)
        if "FROM webhook_deliveries" in sql:
            widths.append(len(rows))
        return rows

    db.fetch = noted
    return widths
