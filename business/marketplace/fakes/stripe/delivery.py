"""Signed webhook delivery, as Stripe does it, with duplicates and disorder on command.

Each event is POSTed as JSON to the configured endpoint with a ``Stripe-Signature``
header ``t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload" under the endpoint secret>``.
A non-2xx answer (or no answer) is retried after :attr:`WebhookDelivery.retry_delays`
seconds (Stripe waits up to three days; tests want fractions of a second), then given up.
Switches: :meth:`duplicate_next` (the next events are sent twice), :meth:`redeliver` (send
an event again, as the Dashboard's "Resend"), :meth:`hold` / :meth:`release` (queue events
and let them go reversed or shuffled).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send with ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class Attempt:
    """One POST of one event: its answer's status (0: no answer) and attempt number."""

    event_id: str
    type: str
    attempt: int
    status: int


@dataclass
class _Pending:
    event: dict[str, Any]
    attempt: int
    due: float


class WebhookDelivery:
    """Sends events to one endpoint from the fake server's event loop."""

    def __init__(self, secret: str, *, url: str | None = None,
                 retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8),
                 timeout: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.url = url
        self.retry_delays = retry_delays
        self.timeout = timeout
        self.clock = clock
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._queue: collections.deque[_Pending] = collections.deque()
        self._held: list[dict[str, Any]] = []
        self._holding = False
        self._duplicates = 0
        self._busy = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # -- switches --------------------------------------------------------------------------

    def duplicate_next(self, count: int = 1) -> None:
        """The next ``count`` events are delivered twice each."""
        with self._lock:
            self._duplicates += count

    def hold(self) -> None:
        """Keep new events back until :meth:`release`."""
        with self._lock:
            self._holding = True

    def release(self, order: str = "reversed", seed: int = 0) -> None:
        """Send the held events ``reversed``, ``shuffled`` (by ``seed``) or ``in_order``."""
        if order not in ("reversed", "shuffled", "in_order"):
            raise ValueError("order must be 'reversed', 'shuffled' or 'in_order'")
        with self._lock:
            held, self._held, self._holding = self._held, [], False
        if order == "reversed":
            held.reverse()
        elif order == "shuffled":
            random.Random(seed).shuffle(held)
        for event in held:
            self._enqueue(event)

    def redeliver(self, event: dict[str, Any]) -> None:
        """Send ``event`` again (a replay of a delivery already made)."""
        self._enqueue(event)

    # -- the queue -------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        """The state's listener: queue a new event (from any thread)."""
        with self._lock:
            if self.url is None:
                return
            if self._holding:
                self._held.append(event)
                return
            twice = self._duplicates > 0
            self._duplicates -= twice
        self._enqueue(event)
        if twice:
            self._enqueue(event)

    def _enqueue(self, event: dict[str, Any], attempt: int = 1, delay: float = 0.0) -> None:
        with self._lock:
            self._queue.append(_Pending(json.loads(json.dumps(event)), attempt,
                                        self.clock() + delay))
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def idle(self) -> bool:
        """Nothing queued (but held events) and nothing in flight."""
        with self._lock:
            return not self._queue and not self._busy

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait (in the server's loop) until every queued delivery and retry is done."""
        async with asyncio.timeout(timeout):
            while not self.idle:
                await asyncio.sleep(0.01)

    # -- the sender ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                item = self._next_due()
                if item is None:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await self._wake.wait()
                    continue
                try:
                    await self._send(session, item)
                finally:
                    with self._lock:
                        self._busy -= 1

    def _next_due(self) -> _Pending | None:
        now = self.clock()
        with self._lock:
            for index, item in enumerate(self._queue):
                if item.due <= now:
                    del self._queue[index]
                    self._busy += 1
                    return item
        return None

    async def _send(self, session: aiohttp.ClientSession, item: _Pending) -> None:
        payload = json.dumps(item.event, indent=2).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Stripe-Signature": sign(payload, self.secret),
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
        status = 0
        try:
            async with session.post(str(self.url), data=payload, headers=headers) as answer:
                status = answer.status
                await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("webhook %s to %s: %s", item.event["id"], self.url, exc)
        self.attempts.append(Attempt(item.event["id"], item.event["type"], item.attempt,
                                     status))
        if not 200 <= status < 300 and item.attempt <= len(self.retry_delays):
            self._enqueue(item.event, item.attempt + 1, self.retry_delays[item.attempt - 1])
