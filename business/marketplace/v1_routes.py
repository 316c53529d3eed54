"""The marketplace's routes in the public REST API, declared relative to ``/api/v1``.

Thin adapters over the module's store: the account's beats (its storefront catalogue,
scope ``marketplace.read``), the orders of its beats (its sales, ``marketplace.read``)
and the licences it bought (``marketplace.library``). Another account's ids answer 404.

One write, for test mode only: ``POST /api/v1/orders`` (scope ``marketplace.sandbox``,
``Idempotency-Key``) makes a sandbox sale of one of the account's beats
(:mod:`.sandbox_sales`): a paid order and its licence, marked sandbox objects in the
transaction that makes them (:func:`~dawserver.plugin_api.mark_sandbox`), so only
test-mode keys reach them, and ``marketplace.sale`` for test-mode webhooks. Real
orders come only from a buyer's paid checkout, so any other caller gets 403.
"""

from __future__ import annotations

from typing import Any

from business.marketplace.errors import CatalogueInvalid, NotForSale, NotFoundHere
from business.marketplace.models import Beat as BeatRow
from business.marketplace.models import Licence as LicenceRow
from business.marketplace.models import Order as OrderRow
from business.marketplace.permissions import LIBRARY, READ, SANDBOX
from business.marketplace.sandbox_sales import SandboxSales
from business.marketplace.services import PLUGIN_NAME, services
from business.marketplace.v1_resources import (
    Beat,
    BeatFilter,
    BeatPage,
    Licence,
    LicencePage,
    LicenceTier,
    NewOrder,
    Order,
    OrderFilter,
    OrderPage,
)
from dawserver.plugin_api import (
    Conflict,
    Forbidden,
    NotFound,
    PublicListing,
    PublicOne,
    Request,
    Route,
    Unprocessable,
    answer_one,
    answer_page,
    answer_seeked,
    key_sandbox,
    map_errors,
    mark_sandbox,
    page_after,
    rfc3339,
)

#: The domain's errors as problem answers (as the module's own routes map them).
_api = map_errors(
    (NotFoundHere, NotFound),
    (CatalogueInvalid, lambda exc: Unprocessable(str(exc), fields=exc.issues)),
    (NotForSale, Conflict),
)
#: Why ``POST /api/v1/orders`` refuses a live key (or a signed-in person).
LIVE_ORDERS = ("only a test-mode key (mbk_test_...) makes orders through the API: they are "
               "sandbox sales, paid in simulation. Real orders come from a buyer's paid "
               "checkout; read them with GET /api/v1/orders")


def _time(at: float | None) -> str | None:
    return None if at is None else rfc3339(at)


def _beat(row: BeatRow) -> Beat:
    return Beat(id=row.beat_id, title=row.title, bpm=row.bpm, key=row.key, genre=row.genre,
                mood=row.mood, tags=row.tags, currency=row.currency, status=row.status,
                created_at=rfc3339(row.created_at),
                tiers=[LicenceTier.model_validate(t.to_json()) for t in row.tiers])


def _licence(row: LicenceRow) -> Licence:
    return Licence(id=row.licence_id, seller=row.account_id, beat_id=row.beat_id,
                   order_id=row.order_id, tier=row.tier, title=row.title, rights=row.rights,
                   exclusive=row.exclusive, downloads=row.downloads,
                   download_limit=row.download_limit, status=row.status,
                   granted_at=rfc3339(row.granted_at))


def _order(row: OrderRow, licence_id: str | None) -> Order:
    return Order(id=row.order_id, beat_id=row.beat_id, tier=row.tier, amount=row.amount,
                 currency=row.currency, exclusive=row.exclusive, status=row.status,
                 created_at=rfc3339(row.created_at), paid_at=_time(row.paid_at),
                 refunded_at=_time(row.refunded_at), licence_id=licence_id)


async def _licence_ids(request: Request, order_ids: list[str]) -> dict[str, str]:
    """The licence each of the seller's ``order_ids`` granted, by order id, in one query."""
    return await services(request.context).store.licence_ids_of_orders(request.account_id,
                                                                       order_ids)


async def list_beats(request: Request) -> Any:
    """The account's beats, newest first, with every licence tier; filter with `status`."""
    status = request.query.status
    rows = [b for b in await services(request.context).store.beats_of(request.account_id)
            if status is None or b.status == status]
    made = {b.beat_id: b.created_at for b in rows}
    return answer_page(request, BeatPage, [_beat(b) for b in rows],
                       lambda b: (-made[b.id], b.id))


async def get_beat(request: Request) -> Any:
    """One beat of the account and its licence tiers."""
    beat_id = request.params["beat_id"]
    found = await services(request.context).store.beat(request.account_id, beat_id)
    if found is None:
        raise NotFound(f"no beat {beat_id!r} in this account")
    return answer_one(request, _beat(found))


async def list_licences(request: Request) -> Any:
    """The licences the account bought, newest first."""
    rows = await services(request.context).store.licences_of_buyer(request.account_id)
    granted = {lic.licence_id: lic.granted_at for lic in rows}
    return answer_page(request, LicencePage, [_licence(lic) for lic in rows],
                       lambda lic: (-granted[lic.id], lic.id))


async def get_licence(request: Request) -> Any:
    """One licence the account bought."""
    licence_id = request.params["licence_id"]
    found = await services(request.context).store.licence(licence_id)
    if found is None or found.buyer_account != request.account_id:
        raise NotFound(f"the account bought no licence {licence_id!r}")
    return answer_one(request, _licence(found))


async def list_orders(request: Request) -> Any:
    """The orders of the account's beats (its sales), oldest first; filter with `status`.

    Each names the licence it granted (`licence_id`), read for the whole page at once.
    """
    query: OrderFilter = request.query
    rows = await services(request.context).store.orders_page(
        request.account_id, limit=query.limit + 1, status=query.status,
        sandbox=key_sandbox(request), after=page_after(request, ((int, float), str)))
    made = {o.order_id: o.created_at for o in rows}
    licences = await _licence_ids(request, list(made))
    return answer_seeked(request, OrderPage,
                         [_order(o, licences.get(o.order_id)) for o in rows],
                         lambda o: (made[o.id], o.id))


async def get_order(request: Request) -> Any:
    """One order of one of the account's beats."""
    order_id = request.params["order_id"]
    found = await services(request.context).store.order(request.account_id, order_id)
    if found is None:
        raise NotFound(f"no order {order_id!r} of this account's beats")
    licences = await _licence_ids(request, [order_id])
    return answer_one(request, _order(found, licences.get(order_id)))


@_api
async def create_order(request: Request) -> Any:
    """Make a sandbox sale of one of the account's beats (test-mode keys only).

    One licence tier of a beat on sale, paid in simulation; a live key (or a signed-in
    person) gets 403, as real orders come only from a paid checkout. No request reaches
    Stripe, no money moves, nothing is paid out, and live data is left as it was (an
    exclusive tier leaves the beat on sale; no lease is counted; sales reports leave
    it out). The order (`paid`) and its licence, whose buyer is the account itself, are
    sandbox objects: test-mode keys see them in `GET /api/v1/orders` and
    `GET /api/v1/licences`, live keys never do. `marketplace.sale` goes to test-mode
    webhooks only. 404 for a beat the account does not have, 422 for a tier it does
    not offer now, 409 for a beat sold with exclusive rights.

    Send `Idempotency-Key` to make retries safe: the same key and body answer the first
    request's order again.
    """
    if not request.test_mode:
        raise Forbidden(LIVE_ORDERS)
    body: NewOrder = request.body
    account_id, context = request.account_id, request.context

    async def sandboxed(tx: Any, object_id: str) -> None:
        await mark_sandbox(context, PLUGIN_NAME, account_id, object_id, tx=tx)

    module = services(context)
    sale = await SandboxSales(module.store, module.fulfilment).sell(
        account_id, body.beat_id, body.tier, mark=sandboxed, buyer_email=body.buyer_email,
        buyer_reference=body.buyer_reference)
    found = _order(sale.order, sale.licence.licence_id)
    return answer_one(request, found, status=201,
                      headers={"Location": f"/api/v1/orders/{found.id}"})


ROUTES = [
    Route(method="GET", path="/beats", handler=list_beats, permission=READ,
          response=BeatPage, query=BeatFilter),
    Route(method="GET", path="/beats/{beat_id}", handler=get_beat, permission=READ,
          response=Beat, query=PublicOne),
    Route(method="GET", path="/licences", handler=list_licences, permission=LIBRARY,
          response=LicencePage, query=PublicListing),
    Route(method="GET", path="/licences/{licence_id}", handler=get_licence,
          permission=LIBRARY, response=Licence, query=PublicOne),
    Route(method="GET", path="/orders", handler=list_orders, permission=READ,
          response=OrderPage, query=OrderFilter),
    Route(method="POST", path="/orders", handler=create_order, permission=SANDBOX,
          body=NewOrder, response=Order, status=201, idempotent=True),
    Route(method="GET", path="/orders/{order_id}", handler=get_order, permission=READ,
          response=Order, query=PublicOne),
]
