"""The marketplace's read routes in the public REST API, declared relative to ``/api/v1``.

Thin adapters over the module's store: the account's beats (its storefront catalogue,
scope ``marketplace.read``), the orders of its beats (its sales, ``marketplace.read``)
and the licences it bought (``marketplace.library``). Another account's ids answer 404.
"""

from __future__ import annotations

from typing import Any

from business.marketplace.models import Beat as BeatRow
from business.marketplace.models import Licence as LicenceRow
from business.marketplace.models import Order as OrderRow
from business.marketplace.permissions import LIBRARY, READ
from business.marketplace.services import services
from business.marketplace.v1_resources import (
    Beat,
    BeatFilter,
    BeatPage,
    Licence,
    LicencePage,
    LicenceTier,
    Order,
    OrderFilter,
    OrderPage,
)
from dawserver.plugin_api import (
    NotFound,
    PublicListing,
    PublicOne,
    Request,
    Route,
    answer_one,
    answer_page,
    rfc3339,
)


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


def _order(row: OrderRow) -> Order:
    return Order(id=row.order_id, beat_id=row.beat_id, tier=row.tier, amount=row.amount,
                 currency=row.currency, exclusive=row.exclusive, status=row.status,
                 created_at=rfc3339(row.created_at), paid_at=_time(row.paid_at),
                 refunded_at=_time(row.refunded_at))


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
    """The orders of the account's beats (its sales), oldest first; filter with `status`."""
    status = request.query.status
    rows = [o for o in await services(request.context).store.orders_of(request.account_id)
            if status is None or o.status == status]
    made = {o.order_id: o.created_at for o in rows}
    return answer_page(request, OrderPage, [_order(o) for o in rows],
                       lambda o: (made[o.id], o.id))


async def get_order(request: Request) -> Any:
    """One order of one of the account's beats."""
    order_id = request.params["order_id"]
    found = await services(request.context).store.order(request.account_id, order_id)
    if found is None:
        raise NotFound(f"no order {order_id!r} of this account's beats")
    return answer_one(request, _order(found))


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
    Route(method="GET", path="/orders/{order_id}", handler=get_order, permission=READ,
          response=Order, query=PublicOne),
]
