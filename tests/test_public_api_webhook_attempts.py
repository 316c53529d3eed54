"""One delivery attempt at a time, through :meth:`WebhookDeliverer.handle` (the
``webhooks.deliver`` job) over SQLite, against receivers on loopback: the disable decision
read from the subscription's row as it is when the attempt is recorded, a malformed
``Retry-After`` and any other unexpected error of an attempt, and the backoff of a
replayed delivery."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from webhook_receiver import Receiver

from database import open_database
from dawserver.public_api.idempotency import MIGRATIONS
from dawserver.public_api.webhook_signature import new_secret
from dawserver.public_api.webhooks import delivery as delivery_module
from dawserver.public_api.webhooks.delivery import (
    QUEUE,
    QUEUE_SETTINGS,
    WebhookDeliverer,
    retry_after,
)
from dawserver.public_api.webhooks.settings import WebhookSettings
from dawserver.public_api.webhooks.store import Delivery, Subscription
from events import Envelope
from jobs import JobQueue, Retry

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
#: The default retry rules, with loopback allowed for the receivers.
DEFAULTS = WebhookSettings(allow_loopback=True, timeout_s=5.0)
ACCOUNT = "acct_a"


@asynccontextmanager
async def deliverer(tmp_path: Path, owners: list[str] | None = None
                    ) -> AsyncIterator[WebhookDeliverer]:
    """A deliverer over a fresh SQLite database; ``owners`` collects whose addresses
    were asked (to mail them of a disable)."""
    async def owner_emails(account_id: str) -> list[str]:
        if owners is not None:
            owners.append(account_id)
        return ["ada@example.org"]

    async with open_database(f"sqlite://{tmp_path / 'hooks.sqlite3'}") as db:
        queue = JobQueue(db, {QUEUE: QUEUE_SETTINGS})
        await queue.setup()
        await db.migrate(MIGRATIONS)
        yield WebhookDeliverer(db, queue, DEFAULTS, sealing_key=bytes(range(32)),
                               owners=owner_emails)


async def subscribe(service: WebhookDeliverer, url: str) -> Subscription:
    return await service.store.create(ACCOUNT, url=url, events=["marketplace.sale"],
                                      description="", secret=new_secret(), created_by="p")


async def delivery_of(service: WebhookDeliverer, sub: Subscription, event_id: str
                      ) -> Delivery:
    """Publish a sale ``event_id`` to ``sub``; its delivery."""
    await service.fan_out(Envelope(event_id, "marketplace.sale", ACCOUNT, {
        "account_id": ACCOUNT, "order_id": event_id}, time.time()))
    found = [d for d in await service.store.deliveries(ACCOUNT, sub.id)
             if d.event_id == event_id]
    assert len(found) == 1
    return found[0]


def job_of(found: Delivery) -> Any:
    """What :meth:`WebhookDeliverer.handle` reads of a ``webhooks.deliver`` job."""
    return SimpleNamespace(job=SimpleNamespace(account_id=found.account_id),
                           payload={"subscription_id": found.subscription_id,
                                    "delivery_id": found.id})


async def attempt(service: WebhookDeliverer, found: Delivery) -> dict[str, Any] | Retry:
    """Run one attempt at ``found``: the job's result, or the Retry it asks for."""
    try:
        async with asyncio.timeout(20):
            return await service.handle(job_of(found))
    except Retry as retry:
        return retry


async def current(service: WebhookDeliverer, found: Delivery) -> Delivery:
    again = await service.store.delivery(found.account_id, found.subscription_id, found.id)
    assert again is not None
    return again


@asynccontextmanager
async def held_receiver(held_id: str) -> AsyncIterator[tuple[str, asyncio.Event,
                                                             asyncio.Event]]:
    """A receiver that answers 200 at once, except to the delivery ``held_id``: that one
    it answers 500 once ``release`` is set. Yields its URL, ``arrived`` (set when the held
    request came in) and ``release``."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("Webhook-Id") != held_id:
            return web.Response(status=200)
        arrived.set()
        await release.wait()
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", arrived, release
    finally:
        release.set()
        await runner.cleanup()


async def test_a_success_recorded_meanwhile_keeps_a_late_failure_from_disabling(
        tmp_path: Path) -> None:
    owners: list[str] = []
    async with deliverer(tmp_path, owners) as service:
        sub = await subscribe(service, "http://127.0.0.1:9/hook")
        first = await delivery_of(service, sub, "e1")
        late = await delivery_of(service, sub, "e2")
        async with held_receiver(late.id) as (url, arrived, release):
            await service.store.update(ACCOUNT, sub.id, url=url)
            # one failure short of disabling (100 in a row, by default)
            await service.db.execute("UPDATE webhook_subscriptions SET consecutive_failures "
                                     "= 99 WHERE id = ?", sub.id)
            failing = asyncio.create_task(attempt(service, late))  # reads 99 failures
            async with asyncio.timeout(20):
                await arrived.wait()
            assert await attempt(service, first) == {"state": "delivered", "status": 200,
                                                     "attempts": 1}
            release.set()  # the late attempt fails after the success reset the streak
            async with asyncio.timeout(20):
                outcome = await failing
        assert isinstance(outcome, Retry)  # retried, not given up
        after = await service.store.get(ACCOUNT, sub.id)
        assert after is not None and after.enabled and after.disabled_reason == ""
        assert after.consecutive_failures == 1
        again = await current(service, late)
        assert again.state == "pending" and again.next_attempt_at is not None
        assert owners == []  # nobody was told of a disable
        mails = await service.db.fetchval("SELECT COUNT(*) FROM jobs WHERE queue <> ?", QUEUE)
        assert mails == 0


async def test_a_unicode_digit_in_retry_after_is_a_logged_failed_attempt(
        tmp_path: Path) -> None:
    assert retry_after("\u00b2", time.time()) is None  # "²".isdigit() is true
    assert retry_after("7", time.time()) == 7.0
    async with deliverer(tmp_path) as service, Receiver() as rx:
        rx.always = (503, {"Retry-After": "\u00b2"})
        sub = await subscribe(service, rx.url)
        found = await delivery_of(service, sub, "e1")
        outcome = await attempt(service, found)
        assert isinstance(outcome, Retry)
        (logged,) = await service.store.attempts(ACCOUNT, found.id)
        assert logged.status == 503 and "answered 503" in logged.error
        again = await current(service, found)
        assert again.state == "pending" and again.attempts == 1
        assert again.next_attempt_at is not None
        counted = await service.store.get(ACCOUNT, sub.id)
        assert counted is not None and counted.consecutive_failures == 1


async def test_any_unexpected_error_of_an_attempt_is_a_logged_failed_attempt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    async def broken_check(url: str, settings: WebhookSettings) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(delivery_module, "check_url", broken_check)
    async with deliverer(tmp_path) as service:
        sub = await subscribe(service, "http://127.0.0.1:9/hook")
        found = await delivery_of(service, sub, "e1")
        with caplog.at_level(logging.ERROR, logger=delivery_module.__name__):
            outcome = await attempt(service, found)
        assert isinstance(outcome, Retry)
        (logged,) = await service.store.attempts(ACCOUNT, found.id)
        assert logged.status is None and "RuntimeError" in logged.error
        assert "a bug" not in logged.error  # the server's own detail stays in its log
        assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)
        again = await current(service, found)
        assert again.state == "pending" and again.next_attempt_at is not None


async def test_a_replayed_delivery_backs_off_from_its_new_window(tmp_path: Path) -> None:
    async with deliverer(tmp_path) as service, Receiver() as rx:
        rx.always = (500, {})
        sub = await subscribe(service, rx.url)
        found = await delivery_of(service, sub, "e1")
        for _ in range(20):  # twenty failed attempts in its first window
            await service.db.execute("UPDATE webhook_deliveries SET next_attempt_at = NULL "
                                     "WHERE id = ?", found.id)
            assert isinstance(await attempt(service, await current(service, found)), Retry)
        await service.db.execute("UPDATE webhook_deliveries SET state = 'failed', "
                                 "next_attempt_at = NULL WHERE id = ?", found.id)
        tried = await current(service, found)
        assert tried.attempts == 20
        await service.replay(tried)
        replayed = await current(service, tried)
        assert replayed.state == "pending" and replayed.first_attempt_at is None
        outcome = await attempt(service, replayed)
        assert isinstance(outcome, Retry)
        again = await current(service, replayed)
        assert again.attempts == 21 and again.state == "pending"
        # the first failure of a new window waits 15 to 30 s (30 s base), not 3 to 6 h
        assert again.next_attempt_at is not None
        assert again.next_attempt_at - time.time() <= 60
