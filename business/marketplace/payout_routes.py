"""The seller's payout routes (``/api/marketplace/payouts``): the options (balance,
instant eligibility, today's limit and fee) and asking for a payout. InsufficientFunds
answers 409 and says how much there is; nothing is booked then."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from business.marketplace.errors import (
    CatalogueInvalid,
    InsufficientFunds,
    NotFoundHere,
    PaymentError,
    StripeUnavailable,
)
from business.marketplace.ledger import format_amount
from business.marketplace.permissions import READ, SELL
from business.marketplace.services import services
from dawserver.plugin_api import (
    Conflict,
    Empty,
    Model,
    NotFound,
    Query,
    Reply,
    Request,
    Route,
    Unavailable,
    Unprocessable,
    map_errors,
)

_api = map_errors(
    (NotFoundHere, NotFound),
    (CatalogueInvalid, lambda exc: Unprocessable(str(exc), fields=exc.issues)),
    (InsufficientFunds, lambda exc: Conflict(
        f"the balance is {format_amount(exc.balance, exc.currency)}: ask for at most that "
        "(an instant payout's fee comes out of it too)")),
    (StripeUnavailable, lambda exc: Unavailable(
        f"Stripe did not answer ({exc}); try again in a minute",
        headers={"Retry-After": "60"})),
    (PaymentError, lambda exc: Unavailable(f"Stripe refused the request: {exc}")),
)


class PayoutQuery(Query):
    """Which currency's balance."""

    currency: str = Field("usd", pattern=r"^[a-z]{3}$")


class PayoutIn(Model):
    """A payout: ``auto`` is instant when allowed now, else standard."""

    amount: int = Field(gt=0, le=10**12)
    currency: str = Field("usd", pattern=r"^[a-z]{3}$")
    method: Literal["auto", "standard", "instant"] = "auto"


async def _seller(request: Request) -> tuple[Any, str]:
    module = services(request.context)
    if module.payouts is None:
        raise Conflict("payments are not configured on this server: set "
                       "plugins.marketplace.stripe.api_key")
    account = await module.store.stripe_account(request.account_id)
    if account is None:
        raise Conflict("connect a Stripe account first: POST /api/marketplace/seller/stripe")
    return module.payouts, account


@_api
async def payout_options(request: Request) -> Any:
    """The balance and today's instant payout terms."""
    payouts, account = await _seller(request)
    found = await payouts.options(request.account_id, account, request.query.currency)
    return found.as_dict()


@_api
async def create_payout(request: Request) -> Any:
    """Pay the balance out (booked first: a racing purchase or payout never overdraws)."""
    payouts, account = await _seller(request)
    body: PayoutIn = request.body
    made = await payouts.request(request.account_id, account, amount=body.amount,
                                 currency=body.currency, method=body.method)
    if made["status"] == "refused":
        raise Unprocessable(f"Stripe refused the payout ({made['note']}); nothing left the "
                            "balance", payout_id=made["payout_id"])
    return Reply(made, status=201)


@_api
async def retry_payout(request: Request) -> Any:
    """Ask Stripe again for a payout whose first call got no answer (same key)."""
    payouts, account = await _seller(request)
    return await payouts.retry(request.account_id, account, request.params["payout_id"])


@_api
async def list_payouts(request: Request) -> Any:
    payouts, _ = await _seller(request)
    return await payouts.list(request.account_id)


M = "/api/marketplace"
ROUTES = [
    Route(method="GET", path=f"{M}/payouts/options", handler=payout_options, permission=READ,
          query=PayoutQuery, response=dict[str, Any]),
    Route(method="GET", path=f"{M}/payouts", handler=list_payouts, permission=READ,
          response=list[dict[str, Any]]),
    Route(method="POST", path=f"{M}/payouts", handler=create_payout, permission=SELL,
          body=PayoutIn, response=dict[str, Any], status=201),
    Route(method="POST", path=f"{M}/payouts/{{payout_id}}/retry", handler=retry_payout,
          permission=SELL, body=Empty, response=dict[str, Any]),
]
