"""A beat's collaborator split (``/api/marketplace/beats/{beat_id}/split``): who shares its
sales and in what parts, and each collaborator's answer
(``POST /api/marketplace/splits/{seller}/{beat_id}/accept`` or ``.../decline``). Setting a
split names collaborators by account and answers the same whatever their Stripe state
(each part ``pending`` until its collaborator answers, then ``accepted``, or ``declined``,
or ``expired`` when they never did); accepting needs the collaborator's own connected
Stripe account (``POST /seller/stripe``), looked up, never taken from a body. A pending
part's money is held for its collaborator (:mod:`.split_holds`): paid to them when they
accept, to the seller when they decline or the invitation expires. The lists
``GET /api/marketplace/splits/invitations`` (waiting for the signed-in account, with what
is held for it) and ``GET /api/marketplace/splits/sent`` (the signed-in seller's, with
their state) only ever show the signed-in account's own. A beat with a split is sold
through the cart (:mod:`.split_sales`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from business.marketplace.errors import CatalogueInvalid, InvitationEnded, NotFoundHere
from business.marketplace.permissions import READ, SELL
from business.marketplace.services import services
from business.marketplace.splits import MAX_SHARES, WHOLE, Part, Splits
from dawserver.plugin_api import (
    Conflict,
    Empty,
    Model,
    NotFound,
    Request,
    Route,
    Unprocessable,
    map_errors,
)

_api = map_errors(
    (NotFoundHere, NotFound),
    (InvitationEnded, Conflict),
    (CatalogueInvalid, lambda exc: Unprocessable(str(exc), fields=exc.issues)),
)


class ShareIn(Model):
    """One collaborator's part of every sale, in basis points (100 = 1 %)."""

    collaborator: str = Field(min_length=1, max_length=200)
    basis_points: int = Field(gt=0, le=WHOLE)
    invite_again: bool = Field(False, description=(
        "offer a part its collaborator declined, or let expire, again: a new invitation "
        "(a changed part is one anyway; a pending or accepted part stays as it stands)"))


class SplitIn(Model):
    """The whole split (parts summing to 10 000), or none: ``[]`` ends the split."""

    shares: list[ShareIn] = Field(max_length=MAX_SHARES)


class ShareOut(Model):
    """One collaborator's part and how their invitation stands (``pending``: held for
    them; ``accepted``; ``declined`` or ``expired``: paid to the seller)."""

    collaborator: str
    basis_points: int
    status: str


class SplitOut(Model):
    """A beat's split (empty: the seller is paid alone)."""

    beat_id: str
    shares: list[ShareOut]


class MoneyOut(Model):
    """An amount in one currency (minor units) and how many sales it comes from."""

    currency: str
    amount: int
    sales: int


class InvitationOut(Model):
    """An invitation waiting for the signed-in collaborator's answer, with what is held
    for them (``expires_at``: when it ends unanswered, its money then the seller's)."""

    seller: str
    beat_id: str
    basis_points: int
    status: str
    invited_at: float | None
    expires_at: float | None
    held: list[MoneyOut]


class InvitationsOut(Model):
    """The signed-in account's pending invitations."""

    invitations: list[InvitationOut]


class SentOut(Model):
    """An invitation the signed-in seller sent: its state, and the money of it held,
    released to the collaborator and returned to the seller."""

    beat_id: str
    collaborator: str
    basis_points: int
    status: str
    invited_at: float | None
    expires_at: float | None
    answered_at: float | None
    held: list[MoneyOut]
    released: list[MoneyOut]
    returned: list[MoneyOut]


class SentListOut(Model):
    """Every invitation the signed-in seller sent."""

    invitations: list[SentOut]


async def _beat(request: Request) -> str:
    beat_id = request.params["beat_id"]
    if await services(request.context).store.beat(request.account_id, beat_id) is None:
        raise NotFoundHere(f"no beat {beat_id!r} in this account")
    return beat_id


def _out(beat_id: str, parts: list[Part]) -> dict[str, Any]:
    return {"beat_id": beat_id, "shares": [
        {"collaborator": p.collaborator, "basis_points": p.basis_points,
         "status": p.status} for p in parts]}


@_api
async def get_split(request: Request) -> Any:
    """The beat's split."""
    beat_id = await _beat(request)
    splits = services(request.context).splits
    return _out(beat_id, await splits.parts(request.account_id, beat_id) if splits else [])


@_api
async def put_split(request: Request) -> Any:
    """Replace the beat's split; each collaborator's part is pending until they accept."""
    beat_id = await _beat(request)
    module = services(request.context)
    if module.splits is None:
        raise CatalogueInvalid("payments are not configured on this server: set "
                               "plugins.marketplace.stripe.api_key")
    body: SplitIn = request.body
    if not body.shares:
        await module.splits.clear(request.account_id, beat_id)
        return _out(beat_id, [])
    own = await module.store.stripe_account(request.account_id)
    return _out(beat_id, await module.splits.propose(
        request.account_id, beat_id, [(p.collaborator, p.basis_points) for p in body.shares],
        seller_account=own, again={p.collaborator for p in body.shares if p.invite_again}))


@_api
async def accept_split(request: Request) -> Any:
    """The signed-in account agrees to its part of a seller's split of a beat."""
    seller, beat_id = request.params["seller"], request.params["beat_id"]
    module = services(request.context)
    if module.splits is None:
        raise CatalogueInvalid("payments are not configured on this server: set "
                               "plugins.marketplace.stripe.api_key")
    account = await module.store.stripe_account(request.account_id)
    parts = await module.splits.parts(seller, beat_id)
    if not any(p.collaborator == request.account_id for p in parts):
        raise NotFoundHere(f"no part of yours in a split of beat {beat_id!r} by {seller!r}")
    if not account:
        raise CatalogueInvalid("connect your Stripe account first (POST "
                               "/api/marketplace/seller/stripe and finish onboarding), "
                               "then accept the split: your part is paid there")
    if module.gateway is not None:
        # Stripe refuses transfers to an account without the capability: accepting
        # before it is active would leave every held part stuck being paid out
        found = (await module.gateway.retrieve_account(account)).to_dict()
        able = str((found.get("capabilities") or {}).get("transfers") or "inactive")
        if able != "active":
            raise CatalogueInvalid(
                f"your Stripe account {account} cannot receive transfers yet (its "
                f"transfers capability is {able}): finish onboarding (GET "
                "/api/marketplace/seller/onboarding), then accept the split")
    await module.splits.accept(seller, beat_id, request.account_id, account)
    return _out(beat_id, await module.splits.parts(seller, beat_id))


@_api
async def decline_split(request: Request) -> Any:
    """The signed-in account turns its pending part of a seller's split down."""
    seller, beat_id = request.params["seller"], request.params["beat_id"]
    splits = _splits(request)
    if not await splits.decline(seller, beat_id, request.account_id):
        raise NotFoundHere(f"no part of yours in a split of beat {beat_id!r} by {seller!r}")
    return _out(beat_id, await splits.parts(seller, beat_id))


@_api
async def list_invitations(request: Request) -> Any:
    """The invitations waiting for the signed-in account, with the money held for it."""
    splits = _splits(request)
    return {"invitations": await splits.holds.invitations(request.account_id)}


@_api
async def list_sent(request: Request) -> Any:
    """The invitations the signed-in seller sent, with their state and money."""
    splits = _splits(request)
    return {"invitations": await splits.holds.sent(request.account_id)}


def _splits(request: Request) -> Splits:
    splits = services(request.context).splits
    if splits is None or splits.holds is None:
        raise CatalogueInvalid("payments are not configured on this server: set "
                               "plugins.marketplace.stripe.api_key")
    return splits


ROUTES = [
    Route(method="GET", path="/api/marketplace/beats/{beat_id}/split", handler=get_split,
          permission=READ, response=SplitOut),
    Route(method="PUT", path="/api/marketplace/beats/{beat_id}/split", handler=put_split,
          permission=SELL, body=SplitIn, response=SplitOut),
    Route(method="POST", path="/api/marketplace/splits/{seller}/{beat_id}/accept",
          handler=accept_split, permission=SELL, body=Empty, response=SplitOut),
    Route(method="POST", path="/api/marketplace/splits/{seller}/{beat_id}/decline",
          handler=decline_split, permission=SELL, body=Empty, response=SplitOut),
    Route(method="GET", path="/api/marketplace/splits/invitations",
          handler=list_invitations, permission=READ, response=InvitationsOut),
    Route(method="GET", path="/api/marketplace/splits/sent", handler=list_sent,
          permission=READ, response=SentListOut),
]
