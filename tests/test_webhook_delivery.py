"""The delivery engine on the job queue: fan-out, at-least-once, retry window, disabling.

Runs :class:`WebhookDeliverer` over a real database (SQLite and PostgreSQL) with a
:class:`jobs.JobWorker`, as the server does, against a real receiver on loopback;
includes a worker process killed with SIGKILL between its POST and its record.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from webhook_receiver import Receiver

from database import open_database
from dawserver.public_api.idempotency import MIGRATIONS
from dawserver.public_api.webhook_signature import new_secret, verify
from dawserver.public_api.webhooks.delivery import QUEUE, QUEUE_SETTINGS, WebhookDeliverer
from dawserver.public_api.webhooks.settings import DAY, WebhookSettings
from dawserver.public_api.webhooks.store import Subscription
from dawserver.public_api.webhooks.targets import PublicResolver, TargetError
from events import Envelope
from jobs import JobQueue, JobWorker

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[1]
KEY = bytes(range(32))
FAST = WebhookSettings(allow_loopback=True, backoff_base_s=0.1, backoff_cap_s=0.2,
                       timeout_s=1.0)


@asynccontextmanager
async def deliverer(url: str, settings: WebhookSettings = FAST, lease_s: float = 60.0
                    ) -> AsyncIterator[WebhookDeliverer]:
    async with open_database(url) as db:
        queue = JobQueue(db, {QUEUE: QUEUE_SETTINGS.__class__(
            **{**QUEUE_SETTINGS.__dict__, "lease_s": lease_s})})
        await queue.setup()
        await db.migrate(MIGRATIONS)
        yield WebhookDeliverer(db, queue, settings, sealing_key=KEY)


@asynccontextmanager
async def working(service: WebhookDeliverer, worker_id: str = "w") -> AsyncIterator[None]:
    async with JobWorker(service.queue, {QUEUE: service.handle}, worker_id=worker_id,
                         poll_s=0.05):
        yield


async def hook(service: WebhookDeliverer, account: str, url: str) -> Subscription:
    return await service.store.create(account, url=url, events=["marketplace.sale"],
                                      description="", secret=new_secret(), created_by="p")


def sale(account: str, event_id: str = "e1") -> Envelope:
    return Envelope(event_id, "marketplace.sale", account, {"account_id": account,
                                                            "order_id": "o1"}, time.time())


async def until(check: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


def test_an_event_heard_twice_is_delivered_once_and_only_to_its_account(db_url: str) -> None:
    async def go() -> None:
        async with deliverer(db_url) as service, Receiver() as rx, Receiver() as other_rx:
            mine = await hook(service, "acct_a", rx.url)
            await hook(service, "acct_b", other_rx.url)
            await service.store.create("acct_a", url=rx.url, events=["presave.saved"],
                                       description="", secret=new_secret(), created_by="p")
            assert await service.fan_out(sale("acct_a")) == 1
            assert await service.fan_out(sale("acct_a")) == 0  # the bus may repeat it
            async with working(service):
                (got,) = await rx.wait_for(1)
                await until(lambda: _state(service, mine, "delivered"))
            verify(mine.secret, got.body, got.headers)
            jobs = await service.db.fetch("SELECT account_id FROM jobs WHERE queue = ?", QUEUE)
            assert [j["account_id"] for j in jobs] == ["acct_a"]
            assert other_rx.received == [] and len(rx.received) == 1

    asyncio.run(go())


async def _state(service: WebhookDeliverer, sub: Subscription, state: str) -> bool:
    found = await service.store.deliveries(sub.account_id, sub.id)
    return bool(found) and found[0].state == state


WORKER = textwrap.dedent("""
    import asyncio, sys
    from database import open_database
    from dawserver.public_api.webhooks.delivery import QUEUE, WebhookDeliverer
    from dawserver.public_api.webhooks.settings import WebhookSettings
    from jobs import JobQueue, JobWorker, QueueSettings

    KEY = bytes(range(32))

    async def main(db_url):
        async with open_database(db_url) as db:
            queue = JobQueue(db, {QUEUE: QueueSettings(max_attempts=100, lease_s=1.0)})
            service = WebhookDeliverer(db, queue, WebhookSettings(allow_loopback=True),
                                       sealing_key=KEY)
            async with JobWorker(queue, {QUEUE: service.handle}, worker_id="doomed",
                                 poll_s=0.05):
                print("ready", flush=True)
                await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1]))
""")


def test_the_log_seeks_a_page_after_a_position_with_ties(db_url: str) -> None:
    async def go() -> None:
        async with deliverer(db_url) as service:
            sub = await hook(service, "acct_a", "https://example.org/hook")
            at = time.time()  # three share one instant, as a burst of events can
            for n, (name, when, state) in enumerate([
                    ("msg_c", at, "failed"), ("msg_a", at, "delivered"),
                    ("msg_b", at, "failed"), ("msg_d", at - 1, "failed")]):
                await service.db.execute(
                    "INSERT INTO webhook_deliveries (account_id, id, subscription_id, "
                    "event_id, event_type, body, state, attempts, created_at, replays) "
                    "VALUES (?, ?, ?, ?, 'marketplace.sale', '{}', ?, 0, ?, 0)",
                    "acct_a", name, sub.id, f"e{n}", state, when)
            store = service.store

            async def ids(**how: Any) -> list[str]:
                return [d.id for d in await store.deliveries("acct_a", sub.id, **how)]

            assert await ids() == ["msg_a", "msg_b", "msg_c", "msg_d"]
            assert await ids(limit=2) == ["msg_a", "msg_b"]
            assert await ids(after=(at, "msg_a"), limit=2) == ["msg_b", "msg_c"]
            assert await ids(after=(at, "msg_c")) == ["msg_d"]
            assert await ids(after=(at, "msg_a"), state="failed") == ["msg_b", "msg_c",
                                                                     "msg_d"]
            assert await ids(after=(at - 1, "msg_d")) == []
            assert await store.deliveries("acct_b", sub.id) == []

    asyncio.run(go())


def test_a_worker_killed_between_send_and_record_loses_no_delivery(
        db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)

    async def go() -> None:
        async with deliverer(db_url, lease_s=1.0) as service, Receiver() as rx:
            sub = await hook(service, "acct_a", rx.url)
            rx.plan = ["hang"]  # the first POST arrives, and its answer never comes
            await service.fan_out(sale("acct_a"))
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(script), db_url, cwd=ROOT, env=env, stdout=subprocess.PIPE)
            try:
                assert proc.stdout is not None
                async with asyncio.timeout(60):
                    assert (await proc.stdout.readline()).strip() == b"ready"
                (sent,) = await rx.wait_for(1)
            finally:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
            (pending,) = await service.store.deliveries("acct_a", sub.id)
            assert pending.state == "pending" and pending.attempts == 0  # sent, not recorded
            async with working(service, "heir"):  # claims it once the lease has run out
                await until(lambda: _state(service, sub, "delivered"))
            again = rx.received[1]
            assert again.headers["Webhook-Id"] == sent.headers["Webhook-Id"] == pending.id
            assert again.body == sent.body
            verify(sub.secret, again.body, again.headers)
            (done,) = await service.store.deliveries("acct_a", sub.id)
            assert done.attempts == 1 and done.last_status == 200

    asyncio.run(go())


def test_retries_stop_when_the_retry_window_closes(tmp_path: Path) -> None:
    async def go() -> None:
        settings = WebhookSettings(allow_loopback=True, backoff_base_s=0.2, backoff_cap_s=0.2,
                                   retry_for_s=1.5, timeout_s=1.0)
        async with deliverer(f"sqlite://{tmp_path / 'h.sqlite3'}", settings) as service, \
                Receiver() as rx:
            sub = await hook(service, "acct_a", rx.url)
            rx.always = (503, {})
            await service.fan_out(sale("acct_a"))
            async with working(service):
                await until(lambda: _state(service, sub, "failed"))
                await asyncio.sleep(0.5)  # nothing more is sent once it failed
            (found,) = await service.store.deliveries("acct_a", sub.id)
            attempts = await service.store.attempts("acct_a", found.id)
            assert len(attempts) >= 2 and len(attempts) == len(rx.received)
            # within the window: a retry is scheduled only while first + delay <= 1.5 s
            # (when a busy worker runs it is not the test's business): the first attempt
            # and at most one retry per delay in it, each delay at least 0.1 s (equal
            # jitter: half the 0.2 s ceiling plus a random share of the other half)
            assert len(attempts) <= 1 + int(1.5 / 0.1)
            assert all(a.status == 503 for a in attempts) and found.next_attempt_at is None
            assert (await service.store.get("acct_a", sub.id)).enabled  # below the thresholds

    asyncio.run(go())


def test_a_subscription_failing_for_three_days_is_disabled(tmp_path: Path) -> None:
    async def go() -> None:
        async with deliverer(f"sqlite://{tmp_path / 'h.sqlite3'}") as service, \
                Receiver() as rx:
            sub = await hook(service, "acct_a", rx.url)
            # the endpoint has failed every attempt since three days ago
            await service.db.execute(
                "UPDATE webhook_subscriptions SET failing_since = ?, consecutive_failures = 7 "
                "WHERE id = ?", time.time() - 3 * DAY, sub.id)
            rx.always = (502, {})
            await service.fan_out(sale("acct_a"))
            async with working(service):
                await until(lambda: _state(service, sub, "failed"))
            after = await service.store.get("acct_a", sub.id)
            assert after is not None and not after.enabled
            assert after.disabled_reason == "every delivery attempt failed for 72 hours " \
                                            "(8 attempts)"
            assert len(rx.received) == 1
            # a disabled subscription hears no more events
            assert await service.fan_out(sale("acct_a", "e2")) == 0
            assert len(await service.store.deliveries("acct_a", sub.id)) == 1

    asyncio.run(go())


def test_a_name_that_resolves_to_a_private_address_is_refused_at_send_time(
        tmp_path: Path) -> None:
    async def go() -> None:
        strict = WebhookSettings(timeout_s=1.0)
        with pytest.raises(TargetError, match="resolves to 127.0.0.1, a loopback"):
            await PublicResolver(strict).resolve("localhost", 443)
        async with deliverer(f"sqlite://{tmp_path / 'h.sqlite3'}", strict) as service, \
                Receiver() as rx:
            # made while loopback was allowed; the server's rules changed since
            sub = await hook(service, "acct_a", rx.url.replace("127.0.0.1", "localhost"))
            await service.fan_out(sale("acct_a"))
            (found,) = await service.store.deliveries("acct_a", sub.id)
            attempt, _ = await service.send(sub, found, 1)
            assert attempt.status is None and "must use https://" in attempt.error
            https = Subscription(**{**sub.__dict__, "url": f"https://localhost:{rx.port}/"})
            attempt, _ = await service.send(https, found, 1)
            assert "a loopback address" in attempt.error and rx.received == []

    asyncio.run(go())


def test_the_body_is_standard_webhooks_json() -> None:
    from dawserver.public_api.webhooks.delivery import message_body, retry_after

    body = json.loads(message_body("presave.saved", 1_800_000_000.5, {"slug": "x"}))
    assert body == {"type": "presave.saved", "timestamp": "2027-01-15T08:00:00.500Z",
                    "test": False, "data": {"slug": "x"}}
    sandbox = json.loads(message_body("presave.saved", 0.0, {}, test=True))
    assert sandbox["test"] is True  # about sandbox data, sent to test-mode webhooks
    assert retry_after("120", 0) == 120
    assert retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 30) == 30
    assert retry_after("soon", 0) is None and retry_after(None, 0) is None
