"""A beat's collaborator split (``/api/marketplace/beats/{beat_id}/split``): who shares its
sales and in what parts. Each collaborator is an account that has connected Stripe
(``POST /seller/stripe``); their connected account is looked up, never taken from the
body. A beat with a split is sold through the cart (:mod:`.split_sales`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from business.marketplace.errors import CatalogueInvalid, NotFoundHere
from business.marketplace.permissions import READ, SELL
from business.marketplace.services import services
from business.marketplace.splits import MAX_SHARES, WHOLE, Share
from dawserver.plugin_api import (
    Model,
    NotFound,
    Request,
    Route,
    Unprocessable,
    map_errors,
)

_api = map_errors(
    (NotFoundHere, NotFound),
    (CatalogueInvalid, lambda exc: Unprocessable(str(exc), fields=exc.issues)),
)


class ShareIn(Model):
    """One collaborator's part of every sale, in basis points (100 = 1 %)."""

    collaborator: str = Field(min_length=1, max_length=200)
    basis_points: int = Field(gt=0, le=WHOLE)


class SplitIn(Model):
    """The whole split (parts summing to 10 000), or none: ``[]`` ends the split."""

    shares: list[ShareIn] = Field(max_length=MAX_SHARES)


class SplitOut(Model):
    """A beat's split (empty: the seller is paid alone)."""

    beat_id: str
    shares: list[ShareIn]


async def _beat(request: Request) -> str:
    beat_id = request.params["beat_id"]
    if await services(request.context).store.beat(request.account_id, beat_id) is None:
        raise NotFoundHere(f"no beat {beat_id!r} in this account")
    return beat_id


def _out(beat_id: str, shares: list[Share]) -> dict[str, Any]:
    return {"beat_id": beat_id, "shares": [{"collaborator": s.collaborator,
                                            "basis_points": s.basis_points} for s in shares]}


@_api
async def get_split(request: Request) -> Any:
    """The beat's split."""
    beat_id = await _beat(request)
    splits = services(request.context).splits
    return _out(beat_id, await splits.of(request.account_id, beat_id) if splits else [])


@_api
async def put_split(request: Request) -> Any:
    """Replace the beat's split; each collaborator must have connected Stripe."""
    beat_id = await _beat(request)
    module = services(request.context)
    if module.splits is None:
        raise CatalogueInvalid("payments are not configured on this server: set "
                               "plugins.marketplace.stripe.api_key")
    body: SplitIn = request.body
    shares = []
    for part in body.shares:
        account = await module.store.stripe_account(part.collaborator)
        if not account:
            raise CatalogueInvalid(f"{part.collaborator!r} has not connected a Stripe "
                                   "account: they call POST /api/marketplace/seller/stripe "
                                   "and finish onboarding first")
        shares.append(Share(part.collaborator, account, part.basis_points))
    if not shares:
        await module.splits.clear(request.account_id, beat_id)
        return _out(beat_id, [])
    return _out(beat_id, await module.splits.save(request.account_id, beat_id, shares))


ROUTES = [
    Route(method="GET", path="/api/marketplace/beats/{beat_id}/split", handler=get_split,
          permission=READ, response=SplitOut),
    Route(method="PUT", path="/api/marketplace/beats/{beat_id}/split", handler=put_split,
          permission=SELL, body=SplitIn, response=SplitOut),
]
