"""Stripe webhooks: verify, parse, and the inbox rules every handler runs under.

:func:`verify` checks ``Stripe-Signature`` with stripe-python's own
:class:`stripe.WebhookSignature` (HMAC-SHA256 over ``"<t>.<payload>"``, timestamps older
than :data:`TOLERANCE` seconds refused) against each configured secret (two during a
secret roll) and parses the event. A forged, stale or malformed request raises
:class:`~business.marketplace.errors.WebhookRejected`: answer 400.

:func:`receive` runs a handler under the inbox rules:

- each event id is processed once (:attr:`Outcome.DUPLICATE` for a replay, answered 2xx
  so Stripe stops sending it);
- an event about an object older than one already applied to that object is
  :attr:`Outcome.SUPERSEDED` (order is not guaranteed; the newer state wins);
- a handler that finds the event's object not stored yet returns :attr:`Outcome.RETRY`:
  nothing is recorded, the endpoint answers :data:`RETRY_STATUS` and Stripe sends the
  event again later, so it is retried, never dropped.

Where the inbox lives is the plug-in's business (its database, later); a
:class:`WebhookInbox` says what it must keep, :class:`MemoryInbox` is the reference.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import stripe

from business.marketplace import metrics
from business.marketplace.errors import WebhookRejected

#: Seconds a signature's timestamp may be old (Stripe's recommended tolerance).
TOLERANCE = 300
#: The HTTP status for :attr:`Outcome.RETRY`: any non-2xx makes Stripe redeliver.
RETRY_STATUS = 409


class Outcome(StrEnum):
    """What became of one delivery."""

    PROCESSED = "processed"    #: the handler applied it
    IGNORED = "ignored"        #: an event type we do not act on (recorded, 2xx)
    DUPLICATE = "duplicate"    #: this event id was processed before (2xx, nothing done)
    SUPERSEDED = "superseded"  #: a newer event about the same object was applied (2xx)
    RETRY = "retry"            #: its object is not stored yet: not recorded, non-2xx

    @property
    def http_status(self) -> int:
        """What the endpoint answers Stripe."""
        return RETRY_STATUS if self is Outcome.RETRY else 200


@dataclass(frozen=True)
class StripeEvent:
    """One verified Stripe event."""

    id: str
    type: str
    created: int
    object: dict[str, Any]
    account: str | None = None
    previous_attributes: dict[str, Any] | None = None
    api_version: str | None = None

    @property
    def object_id(self) -> str | None:
        """The id of the object the event is about (a summary names its customer)."""
        return self.object.get("id") or self.object.get("customer")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StripeEvent:
        try:
            if data.get("object") != "event":
                raise KeyError("object")
            inner = data["data"]
            return cls(id=str(data["id"]), type=str(data["type"]), created=int(data["created"]),
                       object=dict(inner["object"]), account=data.get("account"),
                       previous_attributes=inner.get("previous_attributes"),
                       api_version=data.get("api_version"))
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookRejected(f"not a Stripe event (missing or bad {exc}); expected "
                                  "{'object': 'event', 'id', 'type', 'created', 'data'}"
                                  ) from exc


def verify(payload: bytes | str, signature: str | None, secrets: str | Sequence[str], *,
           tolerance: int = TOLERANCE) -> StripeEvent:
    """The event in ``payload`` if ``signature`` (the ``Stripe-Signature`` header) was made
    with one of ``secrets`` less than ``tolerance`` seconds ago; else :class:`WebhookRejected`
    (``reason``: ``missing``, ``stale``, ``forged`` or ``malformed``)."""
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    if not candidates or not all(candidates):
        raise ValueError("configure the webhook endpoint's signing secret (whsec_...)")
    if not signature:
        raise _rejected("missing", "no Stripe-Signature header: only Stripe may call this")
    failure: stripe.SignatureVerificationError | None = None
    for secret in candidates:
        try:
            stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance)
            break
        except stripe.SignatureVerificationError as exc:
            failure = exc
    else:
        assert failure is not None
        text = str(failure)
        reason = ("stale" if "tolerance" in text else "malformed"
                  if "extract" in text or "scheme" in text else "forged")
        raise _rejected(reason, f"webhook signature refused ({reason}): {text}")
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise _rejected("malformed", f"webhook body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _rejected("malformed", "webhook body is not a JSON object")
    return StripeEvent.from_dict(data)


def _rejected(reason: str, message: str) -> WebhookRejected:
    error = WebhookRejected(message)
    error.reason = reason  # type: ignore[attr-defined]
    return error


class WebhookInbox:
    """What an inbox keeps: the event ids processed, and per object the newest event
    applied. A persistent inbox must record in the transaction of the handler's effects,
    so a crash between the two cannot apply an event twice or lose it."""

    async def seen(self, event_id: str) -> bool:
        raise NotImplementedError

    async def newest(self, object_id: str) -> tuple[int, str] | None:
        """``(created, event id)`` of the newest event applied to ``object_id``."""
        raise NotImplementedError

    async def record(self, event: StripeEvent, outcome: Outcome) -> None:
        raise NotImplementedError

    def lock(self, event_id: str) -> Any:
        """An async context manager serialising deliveries of one event id."""
        raise NotImplementedError


@dataclass
class MemoryInbox(WebhookInbox):
    """The in-memory reference inbox (tests, one process)."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    applied: dict[str, tuple[int, str]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def seen(self, event_id: str) -> bool:
        return event_id in self.outcomes

    async def newest(self, object_id: str) -> tuple[int, str] | None:
        return self.applied.get(object_id)

    async def record(self, event: StripeEvent, outcome: Outcome) -> None:
        self.outcomes[event.id] = outcome
        if outcome is Outcome.PROCESSED and event.object_id:
            mark = (event.created, event.id)
            if mark > self.applied.get(event.object_id, (0, "")):
                self.applied[event.object_id] = mark

    def lock(self, event_id: str) -> asyncio.Lock:
        return self._locks.setdefault(event_id, asyncio.Lock())


Handler = Callable[[StripeEvent], Awaitable[Outcome]]


async def receive(inbox: WebhookInbox, event: StripeEvent, handler: Handler) -> Outcome:
    """Run ``handler`` on ``event`` under the inbox rules (module docstring); the outcome
    (its :attr:`Outcome.http_status` is the answer to Stripe), counted in
    :mod:`business.marketplace.metrics`."""
    return await metrics.counted(event.created, _receive(inbox, event, handler))


async def _receive(inbox: WebhookInbox, event: StripeEvent, handler: Handler) -> Outcome:
    async with inbox.lock(event.id):
        if await inbox.seen(event.id):
            return Outcome.DUPLICATE
        newest = await inbox.newest(event.object_id) if event.object_id else None
        if newest is not None and newest[0] > event.created:
            await inbox.record(event, Outcome.SUPERSEDED)
            return Outcome.SUPERSEDED
        outcome = await handler(event)
        if outcome in (Outcome.DUPLICATE, Outcome.SUPERSEDED):
            raise ValueError(f"a handler returns PROCESSED, IGNORED or RETRY, not {outcome}")
        if outcome is not Outcome.RETRY:
            await inbox.record(event, outcome)
        return outcome
