"""``/api/v1/webhooks``: an account's subscriptions, their delivery log, test and replay.

Every read and write names the account the request acts for, so another account's
subscription or delivery answers 404 like a missing one. A webhook made by a test-mode
key is a test-mode webhook (it hears sandbox events only); a key lists and manages only
its own mode's webhooks (the other mode's answer 404), a signed-in person both. POSTs
honour ``Idempotency-Key`` (a retried create makes one webhook, its answer kept sealed as
it holds the secret). Errors are problem details.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from ...errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from ...plugin_api import Empty, Request, Route
from ..idempotency import idempotent
from ..resources import V1, Deleted
from ..respond import answer
from ..services import rfc3339
from ..state import api_state
from ..webhook_signature import new_secret
from .delivery import TEST_EVENT, message_body
from .resources import (
    DeliveryFilter,
    EventCatalogue,
    EventType,
    NewWebhook,
    NewWebhookSecret,
    Webhook,
    WebhookAttempt,
    WebhookChange,
    WebhookDelivery,
    WebhookDeliveryDetail,
    WebhookDeliveryPage,
    WebhookFilter,
    WebhookPage,
)
from .service import WEBHOOKS_MANAGE, catalogue, deliverer
from .store import PENDING, Delivery, Subscription, delivery_id
from .targets import TargetError, check_url

WEBHOOKS = f"{V1}/webhooks"
WEBHOOK = f"{WEBHOOKS}/{{webhook_id}}"
DELIVERIES = f"{WEBHOOK}/deliveries"
DELIVERY = f"{DELIVERIES}/{{delivery_id}}"
EVENTS = f"{V1}/webhook-events"
NOT_FOR_TOKENS = ("a project token acts for one project and cannot manage webhooks; use an "
                  "API key with the webhooks.manage scope or a signed-in session")


def _time(at: float | None) -> str | None:
    return None if at is None else rfc3339(at)


def webhook_view(sub: Subscription) -> Webhook:
    """The public view of a subscription (no secret)."""
    return Webhook(id=sub.id, url=sub.url, events=sub.events, description=sub.description,
                   enabled=sub.enabled, test=sub.test_mode,
                   disabled_reason=sub.disabled_reason,
                   consecutive_failures=sub.consecutive_failures,
                   failing_since=_time(sub.failing_since), created_at=rfc3339(sub.created_at),
                   updated_at=rfc3339(sub.updated_at))


def delivery_view(found: Delivery) -> WebhookDelivery:
    """The public view of a delivery."""
    return WebhookDelivery(id=found.id, event_id=found.event_id, type=found.event_type,
                           state=found.state, attempts=found.attempts,
                           created_at=rfc3339(found.created_at),
                           next_attempt_at=_time(found.next_attempt_at),
                           last_status=found.last_status)


def _account(request: Request) -> str:
    principal = request.principal
    if principal.via == "token" or principal.admin:
        raise Forbidden(NOT_FOR_TOKENS)
    return principal.account_id


def _mode(request: Request) -> bool | None:
    """The webhooks' mode a request reaches: a key's own (True: test), None: both."""
    principal = request.principal
    return bool(principal.test) if principal.via == "key" else None


async def _subscription(request: Request) -> Subscription:
    sub_id = request.params["webhook_id"]
    found = await deliverer(request.context).store.get(_account(request), sub_id)
    mode = _mode(request)
    if found is None or mode not in (None, found.test_mode):
        raise NotFound(f"the account has no webhook {sub_id!r}; list them with GET {WEBHOOKS}")
    return found


def _check_events(request: Request, names: list[str]) -> list[str]:
    known = catalogue(request.context)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise Unprocessable(f"unknown event types {unknown}; choose from {sorted(known)} "
                            f"(GET {EVENTS})")
    return sorted(set(names))


async def _check_url(request: Request, url: str) -> str:
    try:
        await check_url(url, deliverer(request.context).settings)
    except TargetError as exc:
        raise BadRequest(str(exc)) from None
    return url


async def list_event_types(request: Request) -> web.Response:
    """The event types a webhook may subscribe to."""
    _account(request)
    return answer(request, EventCatalogue(data=[
        EventType(name=name, description=text)
        for name, text in catalogue(request.context).items()]))


async def list_webhooks(request: Request) -> web.Response:
    """The account's webhooks, oldest first; filter by mode with `test`."""
    query: WebhookFilter = request.query
    mode = _mode(request)
    found = [s for s in await deliverer(request.context).store.list(_account(request))
             if mode in (None, s.test_mode) and query.test in (None, s.test_mode)]
    page, after = api_state(request.context).cursors.page(
        "webhooks", found, lambda s: (s.created_at, s.id), query.limit, query.cursor)
    return answer(request, WebhookPage(data=[webhook_view(s) for s in page],
                                       next_cursor=after))


async def create_webhook(request: Request) -> web.Response:
    """Subscribe an https endpoint to event types; the answer holds the signing secret,
    shown this once."""
    account = _account(request)
    body: NewWebhook = request.body
    store = deliverer(request.context).store

    async def run() -> web.Response:  # a retry replays without resolving the URL again
        events = _check_events(request, body.events)
        url = await _check_url(request, body.url)
        sub = await store.create(
            account, url=url, events=events, description=body.description,
            secret=new_secret(), created_by=request.principal.user,
            test_mode=_mode(request) is True)  # a test-mode key's webhook: sandbox events
        made = NewWebhookSecret(**webhook_view(sub).model_dump(), secret=sub.secret)
        return answer(request, made, status=201,
                      headers={"Location": f"{WEBHOOKS}/{sub.id}"})

    return await idempotent(request, api_state(request.context).idempotency, run,
                            sealer=store.box)


async def get_webhook(request: Request) -> web.Response:
    """One webhook (without its secret)."""
    return answer(request, webhook_view(await _subscription(request)))


async def update_webhook(request: Request) -> web.Response:
    """Change a webhook's URL, events or description; `enabled` pauses or re-enables it."""
    sub = await _subscription(request)
    body: WebhookChange = request.body
    changes: dict[str, Any] = {"description": body.description}
    if body.events is not None:
        changes["events"] = _check_events(request, body.events)
    if body.url is not None:
        changes["url"] = await _check_url(request, body.url)
    if body.enabled is True and not sub.enabled:
        changes["enabled"] = True
    elif body.enabled is False and sub.enabled:
        changes.update(enabled=0, disabled_reason="paused through the API")
    store = deliverer(request.context).store
    updated = await store.update(sub.account_id, sub.id, **changes)
    if updated is None:
        raise NotFound(f"webhook {sub.id!r} was deleted meanwhile")
    return answer(request, webhook_view(updated))


async def enable_webhook(request: Request) -> web.Response:
    """Re-enable a disabled webhook: its failure count starts afresh (replay what it
    missed from its delivery log)."""
    sub = await _subscription(request)
    updated = await deliverer(request.context).store.update(sub.account_id, sub.id,
                                                            enabled=True)
    if updated is None:
        raise NotFound(f"webhook {sub.id!r} was deleted meanwhile")
    return answer(request, webhook_view(updated))


async def delete_webhook(request: Request) -> web.Response:
    """Delete a webhook and its delivery log; nothing more is sent to it."""
    sub = await _subscription(request)
    await deliverer(request.context).store.delete(sub.account_id, sub.id)
    return answer(request, Deleted(id=sub.id, deleted=True))


async def test_webhook(request: Request) -> web.Response:
    """Send a signed `webhook.test` event to the webhook now; follow it in the log."""
    service = deliverer(request.context)

    async def run() -> web.Response:  # a retry replays its answer, even once paused
        sub = await _enabled(request)
        event_id = uuid.uuid4().hex
        body = message_body(TEST_EVENT, time.time(), {"webhook_id": sub.id,
                                                       "account_id": sub.account_id},
                            test=sub.test_mode)
        await service.enqueue(sub, event_id, TEST_EVENT, body)
        found = await service.store.delivery(sub.account_id, sub.id,
                                             delivery_id(event_id, sub.id))
        if found is None:
            raise NotFound(f"webhook {sub.id!r} was deleted meanwhile")
        return answer(request, delivery_view(found), status=202, headers={
            "Location": f"{DELIVERIES.format(webhook_id=sub.id)}/{found.id}"})

    return await idempotent(request, api_state(request.context).idempotency, run)


async def _enabled(request: Request) -> Subscription:
    sub = await _subscription(request)
    if not sub.enabled:
        raise Unprocessable(f"webhook {sub.id!r} is disabled ({sub.disabled_reason}); "
                            f"re-enable it first with POST {WEBHOOKS}/{sub.id}/enable")
    return sub


async def list_deliveries(request: Request) -> web.Response:
    """The webhook's deliveries, newest first; filter with `state`."""
    sub = await _subscription(request)
    query: DeliveryFilter = request.query
    store, cursors = deliverer(request.context).store, api_state(request.context).cursors
    scope = f"webhook-deliveries:{sub.id}"
    seen = cursors.after(scope, query.cursor, ((int, float), str))
    found = await store.deliveries(
        sub.account_id, sub.id, state=query.state, limit=query.limit + 1,
        after=None if seen is None else (-seen[0], seen[1]))
    page, after = cursors.cut(scope, found, lambda d: (-d.created_at, d.id), query.limit)
    return answer(request, WebhookDeliveryPage(data=[delivery_view(d) for d in page],
                                               next_cursor=after))


async def _delivery(request: Request) -> tuple[Subscription, Delivery]:
    sub = await _subscription(request)
    wanted = request.params["delivery_id"]
    found = await deliverer(request.context).store.delivery(sub.account_id, sub.id, wanted)
    if found is None:
        raise NotFound(f"webhook {sub.id!r} has no delivery {wanted!r}")
    return sub, found


async def get_delivery(request: Request) -> web.Response:
    """One delivery: the body it sends and every attempt (status, latency, answer, error)."""
    sub, found = await _delivery(request)
    attempts = await deliverer(request.context).store.attempts(sub.account_id, found.id)
    log = [WebhookAttempt(attempt=a.attempt, at=rfc3339(a.at), status=a.status,
                          latency_ms=a.latency_ms, response=a.response, error=a.error)
           for a in attempts]
    return answer(request, WebhookDeliveryDetail(**delivery_view(found).model_dump(),
                                                 body=found.body, attempt_log=log))


async def replay_delivery(request: Request) -> web.Response:
    """Send a delivery again (same `Webhook-Id`, newly signed) with a fresh retry window."""
    async def run() -> web.Response:
        await _enabled(request)
        sub, found = await _delivery(request)
        if found.state == PENDING:
            raise Conflict(f"delivery {found.id!r} is still pending (next attempt "
                           f"{_time(found.next_attempt_at) or 'now'}); replay it once it "
                           "is delivered or failed")
        service = deliverer(request.context)
        await service.replay(found)
        again = await service.store.delivery(sub.account_id, sub.id, found.id)
        return answer(request, delivery_view(again or found), status=202)

    return await idempotent(request, api_state(request.context).idempotency, run)


def _route(method: str, path: str, handler: Any, response: Any, **extra: Any) -> Route:
    return Route(method=method, path=path, handler=handler, permission=WEBHOOKS_MANAGE,
                 response=response, problem=True, name=f"v1_{handler.__name__}", **extra)


ROUTES = [
    _route("GET", EVENTS, list_event_types, EventCatalogue),
    _route("GET", WEBHOOKS, list_webhooks, WebhookPage, query=WebhookFilter),
    _route("POST", WEBHOOKS, create_webhook, NewWebhookSecret, body=NewWebhook, status=201),
    _route("GET", WEBHOOK, get_webhook, Webhook),
    _route("PATCH", WEBHOOK, update_webhook, Webhook, body=WebhookChange),
    _route("DELETE", WEBHOOK, delete_webhook, Deleted),
    _route("POST", f"{WEBHOOK}/enable", enable_webhook, Webhook, body=Empty),
    _route("POST", f"{WEBHOOK}/test", test_webhook, WebhookDelivery, body=Empty,
           status=202),
    _route("GET", DELIVERIES, list_deliveries, WebhookDeliveryPage, query=DeliveryFilter),
    _route("GET", DELIVERY, get_delivery, WebhookDeliveryDetail),
    _route("POST", f"{DELIVERY}/replay", replay_delivery, WebhookDelivery,
           body=Empty, status=202),
]
