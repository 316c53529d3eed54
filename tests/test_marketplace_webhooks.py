"""Stripe webhooks: the fake signs and delivers them (retrying non-2xx, duplicating and
reordering on command); our endpoint verifies them with stripe-python's own check and runs
its handler once per event id, never dropping an event about an object not stored yet."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from marketplace_helpers import stripe_world

from business.marketplace.errors import WebhookRejected
from business.marketplace.fakes.stripe import FakeStripe, sign
from business.marketplace.webhooks import (
    RETRY_STATUS,
    MemoryInbox,
    Outcome,
    StripeEvent,
    receive,
    verify,
)

SECRET = "whsec_test_secret"


def run(coro):  # noqa: ANN001, ANN201
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(60):
            return await coro
    return asyncio.run(bounded())


def event_body(event_id: str = "evt_1", created: int | None = None) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": "customer.created",
                       "created": created or int(time.time()), "api_version": "x",
                       "data": {"object": {"id": "cus_1", "object": "customer"}}}).encode()


class Endpoint:
    """Our webhook endpoint as the plug-in will serve it, with a recording handler."""

    def __init__(self, known: set[str] | None = None) -> None:
        self.inbox = MemoryInbox()
        self.applied: list[tuple[str, str]] = []      # (event id, type), in order applied
        self.state: dict[str, str] = {}               # object id -> status last applied
        self.known = known                            # objects stored (None: all)
        self.outcomes: list[Outcome] = []

    async def handle(self, event: StripeEvent) -> Outcome:
        if self.known is not None and event.object_id not in self.known:
            return Outcome.RETRY
        self.applied.append((event.id, event.type))
        if "status" in event.object:
            self.state[str(event.object_id)] = event.object["status"]
        return Outcome.PROCESSED

    async def post(self, request: web.Request) -> web.Response:
        payload = await request.read()
        try:
            event = verify(payload, request.headers.get("Stripe-Signature"), SECRET)
        except WebhookRejected as exc:
            return web.Response(status=400, text=str(exc))
        outcome = await receive(self.inbox, event, self.handle)
        self.outcomes.append(outcome)
        return web.Response(status=outcome.http_status, text=outcome.value)


@asynccontextmanager
async def served(endpoint: Endpoint) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/stripe/webhook", endpoint.post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/stripe/webhook"
    finally:
        await runner.cleanup()


def test_forged_stale_missing_and_malformed_signatures_are_refused() -> None:
    body = event_body()
    assert verify(body, sign(body, SECRET), SECRET).id == "evt_1"
    cases = {
        "forged": sign(body, "whsec_someone_else"),
        "stale": sign(body, SECRET, int(time.time()) - 301),
        "malformed": "v1=abc",
        "missing": None,
    }
    for reason, header in cases.items():
        with pytest.raises(WebhookRejected) as caught:
            verify(body, header, SECRET)
        assert caught.value.reason == reason  # type: ignore[attr-defined]
    tampered = body.replace(b"cus_1", b"cus_2")
    with pytest.raises(WebhookRejected, match="forged"):
        verify(tampered, sign(body, SECRET), SECRET)
    # just inside the tolerance, and during a secret roll (old and new secrets) it passes
    assert verify(body, sign(body, SECRET, int(time.time()) - 290), SECRET).id == "evt_1"
    assert verify(body, sign(body, SECRET), ["whsec_new", SECRET]).id == "evt_1"
    with pytest.raises(WebhookRejected, match="not a Stripe event"):
        bad = b'{"object": "event", "id": "evt_2"}'
        verify(bad, sign(bad, SECRET), SECRET)


def test_a_replayed_event_is_a_duplicate_and_is_not_applied_twice() -> None:
    async def go() -> None:
        inbox, applied = MemoryInbox(), []

        async def handler(event: StripeEvent) -> Outcome:
            applied.append(event.id)
            await asyncio.sleep(0.01)
            return Outcome.PROCESSED

        event = verify(event_body(), sign(event_body(), SECRET), SECRET)
        outcomes = await asyncio.gather(*(receive(inbox, event, handler) for _ in range(5)))
        assert sorted(outcomes) == sorted([Outcome.PROCESSED] + [Outcome.DUPLICATE] * 4)
        assert applied == ["evt_1"]
    run(go())


def test_the_fake_delivers_signed_events_and_duplicates_are_absorbed() -> None:
    async def go() -> None:
        endpoint = Endpoint()
        fake = FakeStripe(webhook_secret=SECRET)
        async with stripe_world(fake) as (fake, gateway), served(endpoint) as url:
            fake.webhooks.url = url
            fake.webhooks.duplicate_next(1)
            await gateway.create_customer(idempotency_key="mbs-c", email="a@example.com")
            await fake.webhooks.settled()
            created = fake.events_of("customer.created")[0]
            assert [a.status for a in fake.webhooks.attempts] == [200, 200]
            assert endpoint.outcomes == [Outcome.PROCESSED, Outcome.DUPLICATE]
            assert endpoint.applied == [(created["id"], "customer.created")]
            assert created["request"]["idempotency_key"] == "mbs-c"
            fake.webhooks.redeliver(created)  # the Dashboard's "Resend", much later
            await fake.webhooks.settled()
            assert endpoint.outcomes[-1] is Outcome.DUPLICATE and len(endpoint.applied) == 1
    run(go())


def test_an_event_about_an_object_not_stored_yet_is_retried_not_dropped() -> None:
    async def go() -> None:
        endpoint = Endpoint(known=set())
        fake = FakeStripe(webhook_secret=SECRET, retry_delays=(0.05, 0.05, 0.05, 0.05))
        async with stripe_world(fake) as (fake, gateway), served(endpoint) as url:
            fake.webhooks.url = url
            customer = await gateway.create_customer(idempotency_key="mbs-c")
            while len(fake.webhooks.attempts) < 2:
                await asyncio.sleep(0.01)
            endpoint.known.add(customer.id)  # the order row is committed now
            await fake.webhooks.settled()
            statuses = [a.status for a in fake.webhooks.attempts]
            assert statuses[0] == RETRY_STATUS and statuses[-1] == 200
            assert [a.attempt for a in fake.webhooks.attempts] == list(
                range(1, len(statuses) + 1))
            assert len(endpoint.applied) == 1
            assert endpoint.outcomes.count(Outcome.RETRY) == len(statuses) - 1
    run(go())


def test_events_out_of_order_leave_the_newest_state() -> None:
    async def go() -> None:
        endpoint = Endpoint()
        fake = FakeStripe(webhook_secret=SECRET)
        async with stripe_world(fake) as (fake, gateway), served(endpoint) as url:
            fake.webhooks.url = url
            fake.webhooks.hold()
            intent = await gateway.create_payment_intent(
                idempotency_key="mbs-pi", amount=2000, currency="usd")
            fake.advance(5)
            await gateway.confirm_payment_intent(intent.id, idempotency_key="mbs-pi-c",
                                                 payment_method="pm_card_visa")
            fake.webhooks.release("reversed")
            await fake.webhooks.settled()
            about = [e for e in fake.event_log if e["data"]["object"]["id"] == intent.id]
            assert [e["type"] for e in about] == ["payment_intent.created",
                                                  "payment_intent.succeeded"]
            assert endpoint.state[intent.id] == "succeeded"
            assert endpoint.inbox.outcomes[about[0]["id"]] is Outcome.SUPERSEDED
            assert all(a.status == 200 for a in fake.webhooks.attempts)
    run(go())


def test_a_down_endpoint_gets_every_event_once_it_is_back() -> None:
    async def go() -> None:
        endpoint = Endpoint()
        fake = FakeStripe(webhook_secret=SECRET, retry_delays=(0.1, 0.2, 0.4))
        async with stripe_world(fake) as (fake, gateway):
            fake.webhooks.url = "http://127.0.0.1:9/nobody"  # refused at first
            await gateway.create_customer(idempotency_key="mbs-c1")
            await asyncio.sleep(0.05)
            async with served(endpoint) as url:
                fake.webhooks.url = url
                await fake.webhooks.settled()
            assert fake.webhooks.attempts[0].status == 0
            assert fake.webhooks.attempts[-1].status == 200
            assert len(endpoint.applied) == 1
    run(go())
