"""HTTP routes of memberships (``/api/marketplace/...``): sellers define plans and see their
members; fans join through Stripe Checkout, cancel at the period's end or resume, and
take their free downloads. A fan's membership is scoped by the caller's account (another
account's ids answer 404); a seller's plans and members by ``request.account_id``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from business.marketplace.errors import NotForSale, NotFoundHere, PaymentError, StripeUnavailable
from business.marketplace.memberships import Memberships
from business.marketplace.permissions import BUY, LIBRARY, READ, SELL
from business.marketplace.routes import _licence_out
from business.marketplace.schemas import LicenceOut, TierName
from business.marketplace.services import services
from dawserver.plugin_api import (
    Conflict,
    Empty,
    Model,
    NotFound,
    Reply,
    Request,
    Route,
    Unavailable,
    Unprocessable,
    map_errors,
)

M = "/api/marketplace"

_api = map_errors(
    (NotFoundHere, NotFound),
    (NotForSale, Conflict),
    (ValueError, lambda exc: Unprocessable(str(exc))),
    (StripeUnavailable, lambda exc: Unavailable(
        f"Stripe did not answer ({exc}); try again in a minute",
        headers={"Retry-After": "60"})),
    (PaymentError, lambda exc: Unavailable(f"Stripe refused the request: {exc}")),
)


class PlanIn(Model):
    """A membership plan: a recurring price and its perks."""

    name: str = Field(min_length=1, max_length=100)
    amount: int = Field(gt=0, description="the price per period in minor units")
    currency: str = Field(min_length=3, max_length=3)
    interval: Literal["month", "year"]
    free_downloads: int = Field(0, ge=0, le=1000, description="free licences per period")
    free_tier: TierName | None = Field(None, description="the licence tier they grant")
    discount_percent: float = Field(0.0, ge=0, le=90, description="off every other purchase "
                                    "in the store")


class PlanOut(Model):
    seller: str
    plan_id: str
    name: str
    amount: int
    currency: str
    interval: str
    free_downloads: int
    free_tier: str | None
    discount_percent: float
    active: bool


class MembershipOut(Model):
    """A membership as Stripe last said it (``access``: its perks are usable now)."""

    seller: str
    membership_id: str
    plan_id: str
    status: str
    access: bool
    period_end: int | None
    cancel_at_period_end: bool
    free_downloads_used: int
    created_at: float
    plan: PlanOut | None = None
    free_downloads_left: int | None = None


class JoinIn(Model):
    """Which plan of which seller to join."""

    seller: str = Field(min_length=1, max_length=200)
    plan_id: str = Field(min_length=1, max_length=100)
    success_url: str | None = Field(None, max_length=2000,
                                    description="{MEMBERSHIP_ID} is replaced")
    cancel_url: str | None = Field(None, max_length=2000)
    email: str | None = Field(None, max_length=320)


class JoinOut(Model):
    """The pending membership and the Stripe Checkout page to pay it on (it becomes
    active when Stripe's webhook says so)."""

    membership: MembershipOut
    checkout_url: str


def _module(request: Request) -> Memberships:
    found = services(request.context).memberships
    if found is None:
        raise Conflict("memberships are not available on this server")
    return found


async def _with_plans(module: Memberships, items: list[Any]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.append(item.to_json(await module.plan(item.account_id, item.plan_id)))
    return out


@_api
async def create_plan(request: Request) -> Any:
    """A new membership plan (its Product and recurring Price on the seller's Stripe)."""
    body: PlanIn = request.body
    plan = await _module(request).create_plan(request.account_id, **body.model_dump())
    return Reply(plan.to_json(), status=201)


@_api
async def list_plans(request: Request) -> Any:
    """The account's membership plans."""
    return [p.to_json() for p in await _module(request).plans(request.account_id)]


@_api
async def list_members(request: Request) -> Any:
    """The account's members (every state but pending checkouts), newest first."""
    module = _module(request)
    return await _with_plans(module, await module.members(request.account_id))


@_api
async def join(request: Request) -> Any:
    """Join a seller's plan: a pending membership and its Stripe Checkout page."""
    body: JoinIn = request.body
    module = _module(request)
    joined = await module.join(request.account_id, body.seller, body.plan_id,
                               success_url=body.success_url, cancel_url=body.cancel_url,
                               email=body.email)
    return Reply({"membership": joined.membership.to_json(),
                  "checkout_url": joined.url}, status=201)


@_api
async def my_memberships(request: Request) -> Any:
    """The account's memberships as a fan, with each plan and the free downloads left."""
    module = _module(request)
    return await _with_plans(module, await module.mine(request.account_id))


async def _set_cancel(request: Request, cancel: bool) -> Any:
    module = _module(request)
    changed = await module.set_cancel(request.account_id, request.params["membership_id"],
                                      cancel)
    return changed.to_json(await module.plan(changed.account_id, changed.plan_id))


@_api
async def cancel(request: Request) -> Any:
    """Cancel at the end of the paid period (the perks last until then)."""
    return await _set_cancel(request, True)


@_api
async def resume(request: Request) -> Any:
    """Undo a cancellation before the period ends."""
    return await _set_cancel(request, False)


@_api
async def free_download(request: Request) -> Any:
    """Take one of the period's free downloads: a licence, as a purchase grants."""
    module = services(request.context)
    licence = await _module(request).free_download(
        request.account_id, request.params["membership_id"], request.params["beat_id"])
    return Reply(_licence_out(licence, module.delivery.links(licence)), status=201)


ROUTES = [
    Route(method="POST", path=f"{M}/membership-plans", handler=create_plan, permission=SELL,
          body=PlanIn, response=PlanOut, status=201),
    Route(method="GET", path=f"{M}/membership-plans", handler=list_plans, permission=READ,
          response=list[PlanOut]),
    Route(method="GET", path=f"{M}/members", handler=list_members, permission=READ,
          response=list[MembershipOut]),
    Route(method="POST", path=f"{M}/memberships", handler=join, permission=BUY, body=JoinIn,
          response=JoinOut, status=201),
    Route(method="GET", path=f"{M}/memberships", handler=my_memberships, permission=LIBRARY,
          response=list[MembershipOut]),
    Route(method="POST", path=f"{M}/memberships/{{membership_id}}/cancel", handler=cancel,
          permission=BUY, body=Empty, response=MembershipOut),
    Route(method="POST", path=f"{M}/memberships/{{membership_id}}/resume", handler=resume,
          permission=BUY, body=Empty, response=MembershipOut),
    Route(method="POST", path=f"{M}/memberships/{{membership_id}}/downloads/{{beat_id}}",
          handler=free_download, permission=BUY, body=Empty, response=LicenceOut,
          status=201),
]
