"""What the fake Stripe keeps: objects by id and owner, a clock, balance transactions and
events, lists with Stripe's pagination and ``expand``.

Every object belongs to a *scope*: :data:`PLATFORM` (the platform's own account) or a
connected account's id (requests with a ``Stripe-Account`` header). An id another scope
owns answers 404 like a missing one, as in Stripe. All mutation happens under one lock:
the HTTP handlers run in the server's thread and tests call the switches from theirs.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from business.marketplace.fakes.stripe.protocol import StripeFault, integer, missing

#: The scope of the platform's own objects.
PLATFORM = "platform"
#: The API version the fake's events and objects claim (stripe-python 16's pinned one).
API_VERSION = "2025-09-30.clover"
DAY = 86_400

#: Object type -> id prefix, and the name Stripe's 404 uses for it.
PREFIXES = {
    "customer": "cus", "product": "prod", "price": "price", "payment_intent": "pi",
    "charge": "ch", "refund": "re", "dispute": "dp", "checkout.session": "cs_test",
    "account": "acct", "account_link": "al", "transfer": "tr", "transfer_reversal": "trr",
    "payout": "po", "balance_transaction": "txn", "subscription": "sub",
    "subscription_item": "si", "invoice": "in", "event": "evt",
    "entitlements.feature": "feat", "product_feature": "prodft",
    "entitlements.active_entitlement": "ent", "payment_method": "pm",
}


@dataclass
class Call:
    """One API request as a handler sees it."""

    method: str
    path: str
    scope: str
    params: dict[str, Any]
    idempotency_key: str | None = None
    request_id: str = field(default_factory=lambda: "req_" + secrets.token_hex(7))


class StripeState:
    """Objects, balance transactions and events of the fake, under one lock."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self.offset = 0.0
        self.objects: dict[str, dict[str, Any]] = {}
        self.owner: dict[str, str] = {}
        self._serial = 0
        #: Events in the order they happened (for ``GET /v1/events`` and delivery).
        self.event_log: list[dict[str, Any]] = []
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    # -- the clock -------------------------------------------------------------------------

    def now(self) -> int:
        """The fake's time (the real clock plus what :meth:`advance_clock` added)."""
        return int(self._clock() + self.offset)

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds

    # -- objects ---------------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        self._serial += 1
        return f"{PREFIXES[kind]}_{self._serial:06d}{secrets.token_hex(6)}"

    def create(self, scope: str, kind: str, fields: dict[str, Any],
               object_id: str | None = None) -> dict[str, Any]:
        """Store a new object of ``kind`` owned by ``scope``."""
        obj = {"id": object_id or self.new_id(kind), "object": kind, "created": self.now(),
               "livemode": False, **fields}
        self.objects[obj["id"]] = obj
        self.owner[obj["id"]] = scope
        return obj

    def get(self, scope: str, kind: str, object_id: Any, param: str | None = None
            ) -> dict[str, Any]:
        """The object, or Stripe's 404 (also for another scope's object)."""
        obj = self.objects.get(str(object_id))
        if obj is None or obj["object"] != kind or self.owner[obj["id"]] != scope:
            raise missing(kind.replace("_", " ").split(".")[-1], str(object_id), param)
        return obj

    def find(self, object_id: str) -> tuple[str, dict[str, Any]] | None:
        obj = self.objects.get(object_id)
        return None if obj is None else (self.owner[object_id], obj)

    def all(self, scope: str, kind: str) -> list[dict[str, Any]]:
        """Every ``kind`` object of ``scope``, oldest first."""
        return [o for o in self.objects.values()
                if o["object"] == kind and self.owner[o["id"]] == scope]

    # -- lists -----------------------------------------------------------------------------

    def listing(self, call: Call, kind: str, url: str, filters: tuple[str, ...]
                ) -> dict[str, Any]:
        """A page of ``scope``'s ``kind`` objects, kept to those whose fields equal the
        ``filters`` parameters the call gives (Stripe's ``customer=``, ``charge=``...)."""
        items = self.all(call.scope, kind)
        for key in filters:
            if call.params.get(key):
                items = [o for o in items if o[key] == call.params[key]]
        return self.page(call, items, url)

    def page(self, call: Call, items: list[dict[str, Any]], url: str) -> dict[str, Any]:
        """Stripe's list object: newest first, ``limit`` (1-100, default 10),
        ``starting_after`` / ``ending_before`` cursors and ``has_more``."""
        limit = integer(call.params, "limit", minimum=1, maximum=100, default=10)
        assert limit is not None
        newest = list(reversed(items))
        ids = [o["id"] for o in newest]
        after, before = call.params.get("starting_after"), call.params.get("ending_before")
        if after and before:
            raise StripeFault("You may only specify one of these parameters: "
                              "ending_before, starting_after.", param="starting_after")
        if after:
            if after not in ids:
                raise missing("object", str(after), "starting_after")
            window = newest[ids.index(after) + 1:]
            data, more = window[:limit], len(window) > limit
        elif before:
            if before not in ids:
                raise missing("object", str(before), "ending_before")
            window = newest[:ids.index(before)]
            data, more = window[-limit:], len(window) > limit
        else:
            data, more = newest[:limit], len(newest) > limit
        return {"object": "list", "url": url, "has_more": more, "data": data}

    def created_filter(self, call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``created[gte]`` / ``created[lt]`` ... filters (and a plain ``created``)."""
        spec = call.params.get("created")
        if spec is None:
            return items
        if not isinstance(spec, dict):
            spec = {"eq": spec}
        ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__,
               "eq": int.__eq__}
        for op, raw in spec.items():
            if op not in ops:
                raise StripeFault(f"Received unknown parameter: created[{op}]",
                                  param=f"created[{op}]")
            bound = integer({"v": raw}, "v")
            items = [o for o in items if ops[op](o["created"], bound)]
        return items

    # -- expand ----------------------------------------------------------------------------

    def render(self, scope: str, obj: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        """A copy of ``obj`` with each ``expand`` path's id replaced by its object."""
        out = copy.deepcopy(obj)
        for index, path in enumerate(expand):
            self._expand(scope, out, str(path).split("."), f"expand[{index}]", str(path))
        return out

    def _expand(self, scope: str, node: Any, parts: list[str], param: str, path: str) -> None:
        if len(parts) > 4:
            raise StripeFault(f"You cannot expand more than 4 levels of a property. "
                              f"Property: {path}", param=param)
        head, rest = parts[0], parts[1:]
        if isinstance(node, dict) and node.get("object") == "list" and head == "data":
            for item in node["data"]:
                if rest:
                    self._expand(scope, item, rest, param, path)
            return
        if not isinstance(node, dict) or head not in node:
            raise StripeFault(f"This property cannot be expanded ({path}).", param=param)
        value = node[head]
        if isinstance(value, str):
            found = self.find(value)
            if found is None or (found[0] != scope and found[1]["object"] != "account"):
                raise StripeFault(f"This property cannot be expanded ({path}).", param=param)
            value = node[head] = copy.deepcopy(found[1])
        elif value is None:
            return
        elif not isinstance(value, dict):
            raise StripeFault(f"This property cannot be expanded ({path}).", param=param)
        if rest:
            self._expand(scope, value, rest, param, path)

    # -- balance transactions ---------------------------------------------------------------

    def balance_transaction(self, scope: str, *, amount: int, currency: str, type: str,  # noqa: A002
                            source: str | None, fee: int = 0, available_on: int | None = None,
                            description: str | None = None,
                            reporting_category: str | None = None) -> dict[str, Any]:
        """Book a balance transaction (``net = amount - fee``) on ``scope``'s balance."""
        fee_details = ([{"amount": fee, "currency": currency, "type": "stripe_fee",
                         "description": "Stripe processing fees", "application": None}]
                       if fee else [])
        return self.create(scope, "balance_transaction", {
            "amount": amount, "currency": currency, "fee": fee, "fee_details": fee_details,
            "net": amount - fee, "type": type, "source": source,
            "available_on": self.now() if available_on is None else available_on,
            "description": description, "exchange_rate": None,
            "reporting_category": reporting_category or type,
            "status": "available"})

    def refresh_statuses(self) -> None:
        now = self.now()
        for txn in self.objects.values():
            if txn["object"] == "balance_transaction":
                txn["status"] = "available" if txn["available_on"] <= now else "pending"

    def balances(self, scope: str) -> dict[str, dict[str, int]]:
        """``{currency: {"available": n, "pending": n}}`` of ``scope``, from its transactions."""
        self.refresh_statuses()
        out: dict[str, dict[str, int]] = {}
        for txn in self.all(scope, "balance_transaction"):
            entry = out.setdefault(txn["currency"], {"available": 0, "pending": 0})
            entry[txn["status"]] += txn["net"]
        return out

    # -- events ----------------------------------------------------------------------------

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def emit(self, scope: str, type: str, obj: dict[str, Any],  # noqa: A002
             previous: dict[str, Any] | None = None, call: Call | None = None
             ) -> dict[str, Any]:
        """Record an event about ``obj`` (a snapshot as it is now) and hand it to delivery."""
        event = self.create(scope, "event", {
            "api_version": API_VERSION, "type": type,
            "data": {"object": copy.deepcopy(obj),
                     **({"previous_attributes": previous} if previous else {})},
            "pending_webhooks": 1,
            "request": {"id": call.request_id if call else None,
                        "idempotency_key": call.idempotency_key if call else None}})
        if scope != PLATFORM:
            event["account"] = scope
        self.event_log.append(event)
        for listener in self._listeners:
            listener(event)
        return event
