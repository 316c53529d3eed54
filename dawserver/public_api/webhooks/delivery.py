"""Delivering events to webhook subscriptions: fan-out, one signed POST per attempt, retries.

:meth:`WebhookDeliverer.fan_out` hears every event of the bus: for each enabled
subscription *of the event's account and mode* to its type it writes one delivery and queues
one job (``webhooks.deliver``), both in one transaction and keyed by event id and
subscription, so an event heard twice is delivered once. :meth:`WebhookDeliverer.handle`
runs one attempt: the same body and ``Webhook-Id`` every time, freshly signed
(Standard Webhooks, :mod:`..webhook_signature`), 10 s at most. A 2xx answer delivers
it; anything else is logged and retried with exponential backoff (or the receiver's
``Retry-After`` on 429 and 503) until :attr:`WebhookSettings.retry_for_s` after the
first attempt. A subscription whose attempts keep failing (``disable_after_failures``
in a row, or every attempt for ``disable_after_s``) is disabled and its owners are
mailed through the platform's mail queue, in the same transaction.

An event is a sandbox event when the project its payload names (``project_id``) is a
sandbox project (:mod:`..sandbox`), or, for a plug-in's event ``{plugin}.{name}``, when
an id its payload names (``release_id``...) is one of that plug-in's sandbox objects of
the event's account: test-mode subscriptions hear only those, live ones never do.

Delivery is at least once: a worker that dies between the POST and its record leaves
the job's lease to expire, and the next worker sends the same message again (same
``Webhook-Id``; receivers dedupe by it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from database import Database
from events import Envelope
from jobs import JobContext, JobQueue, QueueSettings, Retry, backoff_delay

from ...account_mail import MAIL_ACCOUNT, mail_payload
from ...account_mail import QUEUE as MAIL_QUEUE
from ..sandbox import Sandbox
from ..webhook_signature import sign
from .sealing import SecretBox
from .settings import WebhookSettings
from .store import DELIVERED, FAILED, PENDING, Attempt, Delivery, Subscription, WebhookStore
from .targets import PublicResolver, TargetError, check_url

log = logging.getLogger(__name__)

#: The job queue of deliveries.
QUEUE = "webhooks.deliver"
#: Retries are scheduled by the handler (``Retry(after=...)``) within ``retry_for_s``;
#: the attempt count only guards against a job whose worker dies again and again.
QUEUE_SETTINGS = QueueSettings(max_attempts=10_000, backoff_base=30.0, backoff_cap=6 * 3600.0,
                               lease_s=60.0, concurrency=8)
USER_AGENT = "MaxBoosterStudio-Webhooks/1"
#: The event type of ``POST /api/v1/webhooks/{id}/test``.
TEST_EVENT = "webhook.test"

#: ``await owners(account_id)``: the addresses told when a subscription is disabled.
Owners = Callable[[str], Awaitable[list[str]]]


def message_body(event_type: str, created_at: float, payload: dict[str, Any], *,
                 test: bool = False) -> str:
    """The JSON body every attempt of a delivery sends (Standard Webhooks' shape), with
    the event's mode (``test``: about sandbox data, sent to test-mode webhooks)."""
    when = datetime.fromtimestamp(created_at, UTC).isoformat(timespec="milliseconds")
    return json.dumps({"type": event_type, "timestamp": when.replace("+00:00", "Z"),
                       "test": test, "data": payload}, separators=(",", ":"),
                      sort_keys=True)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delay seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": isdigit alone takes any digit
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class WebhookDeliverer:
    """Fans events out to subscriptions and runs the delivery jobs."""

    def __init__(self, db: Database, queue: JobQueue, settings: WebhookSettings, *,
                 sealing_key: bytes, owners: Owners | None = None, links_base: str = "",
                 rng: random.Random | None = None, sandbox: Sandbox | None = None) -> None:
        self.db, self.queue, self.settings = db, queue, settings
        self.sandbox = sandbox
        self.store = WebhookStore(db, SecretBox(sealing_key))
        self.owners = owners
        self.links_base = links_base
        self._rng = rng or random.Random()

    # -- fan-out ---------------------------------------------------------------------------

    async def fan_out(self, event: Envelope) -> int:
        """Queue ``event`` to every enabled subscription of its account and mode; how many
        are new."""
        test = await self.from_sandbox(event)
        subs = await self.store.hearing(event.account_id, event.name, test_mode=test)
        body = message_body(event.name, event.created_at, event.payload, test=test)
        new = 0
        for sub in subs:
            new += await self.enqueue(sub, event.id, event.name, body)
        return new

    async def from_sandbox(self, event: Envelope) -> bool:
        """Whether ``event`` is about sandbox data: the project it names is a sandbox one,
        or an object of the plug-in that names the event (``distribution.*``: its
        ``release_id``...) is one of that plug-in's sandbox objects under the account."""
        if self.sandbox is None:
            return False
        project_id = event.payload.get("project_id")
        if isinstance(project_id, str) and project_id \
                and project_id in await self.sandbox.sandboxed([project_id]):
            return True
        plugin = event.name.partition(".")[0]
        named = [f"{plugin}:{value}" for name, value in event.payload.items()
                 if name.endswith("_id") and name not in ("account_id", "project_id")
                 and isinstance(value, str) and value]
        if not named or not event.account_id:
            return False
        return bool(await self.sandbox.marked(event.account_id, named))

    async def enqueue(self, sub: Subscription, event_id: str, event_type: str, body: str
                      ) -> int:
        """One delivery and its job (idempotent per event and subscription); 1 if new."""
        async with self.db.transaction() as tx:
            found, added = await self.store.add_delivery(sub, event_id, event_type, body,
                                                         tx=tx)
            await self.queue.enqueue(QUEUE, {"subscription_id": sub.id, "delivery_id": found},
                                     account_id=sub.account_id,
                                     idempotency_key=f"{event_id}/{sub.id}", tx=tx)
        self.queue.wake(QUEUE)
        return int(added)

    async def replay(self, found: Delivery) -> None:
        """Send a delivery again from scratch (same ``Webhook-Id``, a new retry window)."""
        async with self.db.transaction() as tx:
            number = await self.store.replay(found, tx=tx)
            await self.queue.enqueue(
                QUEUE, {"subscription_id": found.subscription_id, "delivery_id": found.id},
                account_id=found.account_id,
                idempotency_key=f"{found.event_id}/{found.subscription_id}/replay-{number}",
                tx=tx)
        self.queue.wake(QUEUE)

    # -- one attempt -----------------------------------------------------------------------

    async def send(self, sub: Subscription, found: Delivery, number: int
                   ) -> tuple[Attempt, float | None]:
        """POST the delivery once; the attempt (for the log) and any ``Retry-After``."""
        at = time.time()
        started = time.monotonic()
        headers = {**sign(sub.secret, found.id, found.body, timestamp=at),
                   "Content-Type": "application/json", "User-Agent": USER_AGENT}
        status: int | None = None
        excerpt, error, wait = "", "", None
        try:
            await check_url(sub.url, self.settings)
            connector = aiohttp.TCPConnector(resolver=PublicResolver(self.settings))
            async with asyncio.timeout(self.settings.timeout_s), \
                    aiohttp.ClientSession(connector=connector) as http, \
                    http.post(sub.url, data=found.body.encode(), headers=headers,
                              allow_redirects=False) as answer:
                status = answer.status
                raw = await answer.content.read(self.settings.excerpt_bytes)
                excerpt = raw.decode("utf-8", "replace")
                if status in (429, 503):
                    wait = retry_after(answer.headers.get("Retry-After"), time.time())
        except TimeoutError:
            error = f"no answer within {self.settings.timeout_s:g} s"
        except TargetError as exc:
            error = str(exc)
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # anything else is a failed attempt too, never a lost job
            log.exception("webhook %s: attempt %d at %s failed unexpectedly", sub.id, number,
                          found.id)
            error = f"the attempt failed unexpectedly ({type(exc).__name__})"
        if status is not None and not 200 <= status < 300:
            error = f"the endpoint answered {status}; 2xx means delivered"
        latency = (time.monotonic() - started) * 1000
        return Attempt(number, at, status, round(latency, 1), excerpt, error), wait

    def _next_delay(self, number: int, wait: float | None) -> float:
        if wait is not None:
            return min(wait, self.settings.retry_for_s)
        return backoff_delay(number, self.settings.backoff_base_s, self.settings.backoff_cap_s,
                             self._rng)

    async def _in_window(self, found: Delivery) -> int:
        """The number of the attempt being recorded within the delivery's current retry
        window (a replay starts a new one), which sets its backoff."""
        if found.first_attempt_at is None:
            return 1
        return await self.store.attempts_since(found, found.first_attempt_at) + 1

    def _disable_reason(self, counted: Subscription, now: float) -> str | None:
        """Why a subscription is disabled after a failed attempt (None: it is not), from
        its row with that attempt already counted (:meth:`WebhookStore.outcome`)."""
        failures = counted.consecutive_failures
        if failures >= self.settings.disable_after_failures:
            return f"{failures} delivery attempts in a row failed"
        since = counted.failing_since
        if since is not None and now - since >= self.settings.disable_after_s:
            return (f"every delivery attempt failed for {(now - since) / 3600:.0f} hours "
                    f"({failures} attempts)")
        return None

    async def handle(self, job: JobContext) -> dict[str, Any]:
        """The ``webhooks.deliver`` job: one attempt at one delivery."""
        account = job.job.account_id
        sub_id, delivery = job.payload["subscription_id"], job.payload["delivery_id"]
        found = await self.store.delivery(account, sub_id, delivery)
        sub = await self.store.get(account, sub_id)
        if found is None or sub is None:
            return {"state": "gone"}  # the subscription was deleted with its log
        if found.state != PENDING:
            return {"state": found.state}  # a repeat of a job that finished already
        if not sub.enabled:
            async with self.db.transaction() as tx:
                await self.store.settle(found, FAILED, tx=tx)
            return {"state": FAILED, "why": "the subscription is disabled"}
        attempt, wait = await self.send(sub, found, found.attempts + 1)
        return await self._record(sub, found, attempt, wait)

    async def _record(self, sub: Subscription, found: Delivery, attempt: Attempt,
                      wait: float | None) -> dict[str, Any]:
        ok = not attempt.error
        now = time.time()
        delay = None if ok else self._next_delay(await self._in_window(found), wait)
        first = found.first_attempt_at or attempt.at
        if ok:
            state, next_at = DELIVERED, None
        elif now + (delay or 0) - first > self.settings.retry_for_s:
            state, next_at = FAILED, None
        else:
            state, next_at = PENDING, now + (delay or 0)
        told: list[str] | None = None
        try:
            reason, disabled = await self._settle(sub, found, attempt, state, next_at, now,
                                                  told)
        except _OwnersNeeded:  # rolled back: ask the owners' addresses, then again
            told = await self.owners(sub.account_id) if self.owners else []
            reason, disabled = await self._settle(sub, found, attempt, state, next_at, now,
                                                  told)
        if disabled:
            log.warning("webhook %s of %s disabled: %s", sub.id, sub.account_id, reason)
        if reason is not None:
            return {"state": FAILED, "disabled": reason}
        if state == PENDING:
            raise Retry(f"attempt {attempt.attempt}: {attempt.error}", after=delay or 0.0)
        return {"state": state, "status": attempt.status, "attempts": attempt.attempt}

    async def _settle(self, sub: Subscription, found: Delivery, attempt: Attempt, state: str,
                      next_at: float | None, now: float, told: list[str] | None
                      ) -> tuple[str | None, bool]:
        """In one transaction: count the attempt on the subscription's current row, log
        it, and disable the subscription (mailing ``told``) if that row says so; the
        reason and whether this call disabled it. :class:`_OwnersNeeded` (rolled back)
        when it must disable but ``told`` is None and there are owners to tell."""
        async with self.db.transaction() as tx:
            counted = await self.store.outcome(sub, not attempt.error, now, tx=tx)
            reason = self._disable_reason(counted, now) if attempt.error else None
            if reason is not None and told is None and self.owners is not None:
                raise _OwnersNeeded
            await self.store.record(found, attempt, state if reason is None else FAILED,
                                    None if reason else next_at, tx=tx)
            disabled = reason is not None and await self.store.disable(sub, reason, tx=tx)
            for to in (told or []) if disabled else []:
                mail = mail_payload("webhook_disabled", to, url=sub.url, reason=reason,
                                    link=f"{self.links_base}/api/v1/webhooks/{sub.id}")
                await self.queue.enqueue(MAIL_QUEUE, mail, account_id=MAIL_ACCOUNT,
                                         idempotency_key=mail["mail_id"], tx=tx)
        return reason, disabled


class _OwnersNeeded(Exception):
    """A failed attempt disables its subscription, whose owners' addresses are not known
    yet (they are asked outside the transaction, which is then run again)."""
