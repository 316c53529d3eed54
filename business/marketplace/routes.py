"""HTTP routes of the marketplace plug-in (``/api/marketplace/...``), declared through the
plug-in API. A seller's rows are scoped by ``request.account_id`` and a buyer's by the
buyer's account: another account's ids answer 404 like missing ones. Who may do what:
:mod:`.permissions`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from business.marketplace.cart_checkout import start_cart
from business.marketplace.delivery import Asked
from business.marketplace.errors import (
    CatalogueInvalid,
    DownloadRefused,
    NotForSale,
    NotFoundHere,
    PaymentDeclined,
    PaymentError,
    StripeUnavailable,
    WebhookRejected,
)
from business.marketplace.models import ACTIVE, Licence
from business.marketplace.permissions import BUY, CATALOGUE, LIBRARY, READ, SELL
from business.marketplace.schemas import (
    BeatIn,
    BeatOut,
    CartCheckoutIn,
    CartCheckoutOut,
    CartItemIn,
    CartOut,
    CataloguePage,
    CatalogueQuery,
    CheckoutIn,
    CheckoutOut,
    ConnectIn,
    ContractTemplateIn,
    ContractTemplateOut,
    CouponIn,
    CouponOut,
    DealIn,
    DealOut,
    DownloadQuery,
    LicenceOut,
    OrderOut,
    PreviewOut,
    SellerOut,
    TierPatch,
    VoiceTagIn,
    VoiceTagOut,
    WebhookOut,
)
from business.marketplace.services import services
from business.marketplace.stripe_gateway import idempotency_key
from dawserver.plugin_api import (
    PUBLIC,
    BadRequest,
    Conflict,
    Empty,
    FileReply,
    FileSent,
    Forbidden,
    Media,
    NotFound,
    Preconditions,
    Reply,
    Request,
    Route,
    Unavailable,
    Unprocessable,
    map_errors,
)

#: The domain's errors as HTTP errors (the first rule that matches decides).
_api = map_errors(
    (NotFoundHere, NotFound),
    (CatalogueInvalid, lambda exc: Unprocessable(str(exc), fields=exc.issues)),
    (NotForSale, Conflict),
    (DownloadRefused, Forbidden),
    (PaymentDeclined, lambda exc: Unprocessable(
        f"the card was declined ({exc.decline_code}): try another card")),
    (StripeUnavailable, lambda exc: Unavailable(
        f"Stripe did not answer ({exc}); try again in a minute",
        headers={"Retry-After": "60"})),
    (PaymentError, lambda exc: Unavailable(f"Stripe refused the request: {exc}")),
)


# -- catalogue ------------------------------------------------------------------------------

@_api
async def create_beat(request: Request) -> Any:
    """Put a beat on sale: its files (asset ids) and licence tiers (the market's defaults
    for tiers left out)."""
    body: BeatIn = request.body
    module = services(request.context)
    beat = await module.catalogue.create(
        request.account_id, body.model_dump(exclude_unset=True, exclude_none=True))
    await module.previews.request(beat)  # with a voice tag set: its tagged preview
    return Reply(beat.owned(), status=201)


@_api
async def list_beats(request: Request) -> Any:
    """The account's beats, newest first (on sale or sold), with files and every tier."""
    return [b.owned() for b in await services(request.context).store.beats_of(
        request.account_id)]


@_api
async def get_beat(request: Request) -> Any:
    """One beat of the account."""
    beat = await services(request.context).catalogue.get(request.account_id,
                                                         request.params["beat_id"])
    return beat.owned()


@_api
async def change_tier(request: Request) -> Any:
    """Change a tier's price, name, download limit or whether it is offered."""
    body: TierPatch = request.body
    beat = await services(request.context).catalogue.change_tier(
        request.account_id, request.params["beat_id"], request.params["tier"],
        body.model_dump(exclude_none=True))
    return beat.owned()


@_api
async def catalogue(request: Request) -> Any:
    """Beats on sale, newest first, filtered by BPM, key, genre, mood, seller and price
    (a tier within the range); pages by cursor."""
    page, cursor = await services(request.context).catalogue.listing(request.query)
    return {"items": [b.public() for b in page], "next_cursor": cursor}


# -- previews ---------------------------------------------------------------------------------

@_api
async def get_voice_tag(request: Request) -> Any:
    """The seller's voice tag (null: none; previews are then the uploaded ones)."""
    tag = await services(request.context).previews.tag(request.account_id)
    return {"voice_tag": tag.to_json() if tag else None, "jobs": []}


@_api
async def put_voice_tag(request: Request) -> Any:
    """Set the voice tag (an asset of the account, gain, first second, interval); every
    beat on sale gets its preview rendered again (the jobs queued)."""
    body: VoiceTagIn = request.body
    tag, jobs = await services(request.context).previews.set_tag(request.account_id,
                                                                 body.model_dump())
    return {"voice_tag": tag.to_json(), "jobs": jobs}


@_api
async def beat_preview(request: Request) -> Any:
    """A beat's tagged preview: rendering, ready or failed, and its job's progress."""
    module = services(request.context)
    beat_id = request.params["beat_id"]
    found = await module.previews.status(request.account_id, beat_id)
    if found["job_id"]:
        try:
            job = await request.context.background.queue.get(request.account_id,
                                                              found["job_id"])
            found.update(progress=job.progress, job_state=job.state)
        except Exception:  # purged from the queue: the row says enough
            pass
    if found["sha256"]:
        found["url"] = (f"{M}/previews/{request.account_id}/{beat_id}"
                        f"?v={found['sha256'][:16]}")
    return found


@_api
async def preview_file(request: Request) -> Any:
    """A beat's rendered tagged preview (404 when there is none: never an untagged
    file in its place)."""
    mp3, digest = await services(request.context).previews.mp3(request.params["seller"],
                                                               request.params["beat_id"])
    return Reply(mp3, media_type="audio/mpeg", headers={
        "Cache-Control": "public, max-age=3600", "ETag": f'"{digest[:32]}"',
        "X-Content-Type-Options": "nosniff"})


# -- selling ----------------------------------------------------------------------------------

@_api
async def connect_stripe(request: Request) -> Any:
    """Make (once) the account's Stripe connected account and a fresh onboarding link."""
    module = services(request.context)
    gateway = module.gateway
    if gateway is None:
        raise Conflict("payments are not configured on this server: set "
                       "plugins.marketplace.stripe.api_key")
    body: ConnectIn = request.body
    account = await module.store.stripe_account(request.account_id)
    if account is None:
        made = await gateway.create_connected_account(
            idempotency_key=idempotency_key("seller", request.account_id), country=body.country,
            email=body.email, metadata={"account_id": request.account_id})
        account = await module.store.save_seller(request.account_id, str(made.id),
                                                 float(made.created or 0))
    link = await gateway.create_account_link(
        idempotency_key=idempotency_key("onboarding", account, body.return_url,
                                        body.refresh_url, asyncio.get_running_loop().time()),
        account=account, refresh_url=body.refresh_url, return_url=body.return_url)
    return {"stripe_account": account, "onboarding_url": link.url}


@_api
async def refund_order(request: Request) -> Any:
    """Refund a paid order in full (queued; the licence is revoked when Stripe confirms)."""
    order = await services(request.context).fulfilment.request_refund(
        request.account_id, request.params["order_id"])
    return Reply(order.to_json(), status=202)


# -- buying -----------------------------------------------------------------------------------

@_api
async def start_checkout(request: Request) -> Any:
    """Open an order for one tier of a beat and its Stripe Checkout page; an exclusive
    is held for this buyer until the page expires."""
    body: CheckoutIn = request.body
    started = await services(request.context).checkout.start(
        request.account_id, body.seller, body.beat_id, body.tier,
        success_url=body.success_url, cancel_url=body.cancel_url, email=body.email,
        referral={"ref": body.ref, "utm_source": body.utm_source,
                  "utm_campaign": body.utm_campaign}, coupon=body.coupon)
    return Reply({"order": started.order.to_json(), "checkout_url": started.url,
                  "expires_at": started.expires_at}, status=201)


# -- carts and deals --------------------------------------------------------------------------

@_api
async def get_cart(request: Request) -> Any:
    """The account's cart in one store, priced now with the seller's best deal."""
    cart = await services(request.context).carts.view(request.account_id,
                                                      request.params["seller"])
    return cart.to_json()


@_api
async def put_cart_item(request: Request) -> Any:
    """Put one tier of a beat in the cart (another tier of it is replaced)."""
    body: CartItemIn = request.body
    cart = await services(request.context).carts.add(
        request.account_id, request.params["seller"], request.params["beat_id"], body.tier,
        source=body.utm_source)
    return cart.to_json()


@_api
async def delete_cart_item(request: Request) -> Any:
    """Take a beat out of the cart."""
    cart = await services(request.context).carts.remove(
        request.account_id, request.params["seller"], request.params["beat_id"])
    return cart.to_json()


@_api
async def checkout_cart(request: Request) -> Any:
    """Open the cart's orders (one per line) and one Stripe Checkout page for them all;
    an exclusive another buyer holds or bought is refused here (409), before paying."""
    body: CartCheckoutIn = request.body
    module = services(request.context)
    started = await start_cart(module.checkout, module.carts, request.account_id,
                               request.params["seller"], success_url=body.success_url,
                               cancel_url=body.cancel_url, email=body.email,
                               coupon=body.coupon)
    return Reply({"cart_id": started.cart_id,
                  "orders": [o.to_json() for o in started.orders],
                  "checkout_url": started.url, "expires_at": started.expires_at,
                  "total": started.total, "currency": started.currency}, status=201)


@_api
async def put_deal(request: Request) -> Any:
    """Create or replace one of the seller's bulk deals ("buy 2 get 1 free")."""
    body: DealIn = request.body
    deal = await services(request.context).deals.save(
        request.account_id, request.params["deal_id"], body.model_dump())
    return deal.to_json()


@_api
async def list_deals(request: Request) -> Any:
    """The seller's bulk deals."""
    return [d.to_json() for d in await services(request.context).deals.list(
        request.account_id)]


@_api
async def delete_deal(request: Request) -> Any:
    """Remove one of the seller's deals; the deals left."""
    deals = services(request.context).deals
    if not await deals.delete(request.account_id, request.params["deal_id"]):
        raise NotFound(f"no deal {request.params['deal_id']!r} in this account")
    return [d.to_json() for d in await deals.list(request.account_id)]


@_api
async def put_coupon(request: Request) -> Any:
    """Create or replace one of the seller's coupons (its uses start again at 0)."""
    body: CouponIn = request.body
    coupon = await services(request.context).coupons.save(
        request.account_id, request.params["code"], body.model_dump())
    return coupon.to_json()


@_api
async def list_coupons(request: Request) -> Any:
    """The seller's coupons with their uses."""
    return [c.to_json() for c in await services(request.context).coupons.list(
        request.account_id)]


@_api
async def get_order(request: Request) -> Any:
    """One of the account's orders as a buyer (paid, refunded ...)."""
    order = await services(request.context).checkout.order_of_buyer(
        request.account_id, request.params["order_id"])
    return order.to_json()


def _licence_out(licence: Licence, links: list[dict[str, object]],
                 contract: bool = False) -> dict[str, Any]:
    shown = contract and licence.status == ACTIVE  # the buyer's copy: an active licence's
    return {"contract_url": f"{M}/library/{licence.licence_id}/contract" if shown else None,
            "licence_id": licence.licence_id, "seller": licence.account_id,
            "order_id": licence.order_id, "beat_id": licence.beat_id, "title": licence.title,
            "tier": licence.tier, "exclusive": licence.exclusive, "rights": licence.rights,
            "status": licence.status, "downloads": licence.downloads,
            "download_limit": licence.download_limit, "granted_at": licence.granted_at,
            "links": links, "sandbox": licence.sandbox}


@_api
async def library(request: Request) -> Any:
    """The account's licences, newest first, each with fresh signed download links."""
    module = services(request.context)
    found = await module.delivery.library(request.account_id)
    ready = await module.contracts.ready([lic for lic, _ in found])
    return [_licence_out(lic, links, lic.licence_id in ready) for lic, links in found]


@_api
async def get_licence(request: Request) -> Any:
    """One of the account's licences with fresh signed download links."""
    module = services(request.context)
    delivery = module.delivery
    licence = await delivery.licence_of_buyer(request.account_id, request.params["licence_id"])
    ready = await module.contracts.ready([licence])
    return _licence_out(licence, delivery.links(licence), bool(ready))


def _pdf(contract: Any) -> Reply:
    return Reply(contract.pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="licence-{contract.licence_id}.pdf"',
        "Cache-Control": "private, no-store", "X-Content-SHA256": contract.sha256})


@_api
async def buyer_contract(request: Request) -> Any:
    """The licence contract PDF of one of the account's licences (409 for a few seconds
    after the payment, while it is written)."""
    return _pdf(await services(request.context).contracts.of_buyer(
        request.account_id, request.params["licence_id"]))


@_api
async def sale_contract(request: Request) -> Any:
    """The licence contract PDF of one of the seller's paid orders."""
    return _pdf(await services(request.context).contracts.of_sale(
        request.account_id, request.params["order_id"]))


@_api
async def get_contract_template(request: Request) -> Any:
    """The seller's contract template (null: the default), its last failure, the default."""
    return await services(request.context).contracts.template(request.account_id)


@_api
async def put_contract_template(request: Request) -> Any:
    """Set the seller's contract template (tried on sample data in the sandbox first: 422
    saying what to fix); null goes back to the default wording."""
    body: ContractTemplateIn = request.body
    return await services(request.context).contracts.save_template(request.account_id,
                                                                   body.template)


@_api
async def download(request: Request) -> Any:
    """A licensed file, through a signed link that has not expired (each file's worth of
    bytes a link serves counts one download against the licence's limit; HEAD none; what an
    aborted download did not send is given back)."""
    query: DownloadQuery = request.query
    if not query.signature or not query.expires:
        raise BadRequest("a download link carries expires=... and signature=...: open "
                         "your library for one")
    delivery = services(request.context).delivery
    found = await delivery.download(
        request.params["licence_id"], request.params["file_id"], query.expires,
        query.signature, asked=Asked(request.method, request.headers.get("Range"),
                                     request.headers.get("If-Range"),
                                     Preconditions.of(request.headers)))

    async def sent(answer: FileSent) -> None:
        await delivery.sent(found, answer)

    # streamed from disk: stems run to gigabytes, and many buyers download at once; what
    # it did not send (the connection dropped) is credited back to the link
    return FileReply(found.path, "application/octet-stream", filename=found.name,
                     attachment=True, on_sent=sent)


# -- Stripe -----------------------------------------------------------------------------------

async def stripe_webhook(request: Request) -> Any:
    """Stripe's events (``Stripe-Signature`` verified; each event id handled once)."""
    fulfilment = services(request.context).fulfilment
    if not fulfilment.secrets:
        raise Conflict("the Stripe webhook's signing secret is not configured: set "
                       "plugins.marketplace.stripe.webhook_secret (Stripe sends the event "
                       "again later)")
    try:
        outcome = await fulfilment.receive(request.body, request.headers.get("Stripe-Signature"))
    except WebhookRejected as exc:
        raise BadRequest(str(exc), reason=getattr(exc, "reason", "forged")) from None
    if outcome.http_status != 200:
        raise Conflict(f"event {outcome.value}: its order is not stored yet; send it again",
                       outcome=outcome.value)
    return {"outcome": outcome.value}


M = "/api/marketplace"
ROUTES = [
    Route(method="GET", path=f"{M}/catalogue", handler=catalogue, permission=PUBLIC,
          query=CatalogueQuery, response=CataloguePage),
    Route(method="GET", path=f"{M}/beats", handler=list_beats, permission=READ,
          response=list[BeatOut]),
    Route(method="POST", path=f"{M}/beats", handler=create_beat, permission=CATALOGUE,
          body=BeatIn, response=BeatOut, status=201),
    Route(method="GET", path=f"{M}/beats/{{beat_id}}", handler=get_beat, permission=READ,
          response=BeatOut),
    Route(method="PATCH", path=f"{M}/beats/{{beat_id}}/tiers/{{tier}}", handler=change_tier,
          permission=CATALOGUE, body=TierPatch, response=BeatOut),
    Route(method="GET", path=f"{M}/voice-tag", handler=get_voice_tag, permission=READ,
          response=VoiceTagOut),
    Route(method="PUT", path=f"{M}/voice-tag", handler=put_voice_tag, permission=CATALOGUE,
          body=VoiceTagIn, response=VoiceTagOut),
    Route(method="GET", path=f"{M}/beats/{{beat_id}}/preview", handler=beat_preview,
          permission=READ, response=PreviewOut),
    Route(method="GET", path=f"{M}/previews/{{seller}}/{{beat_id}}", handler=preview_file,
          permission=PUBLIC, response=Media("audio/mpeg")),
    Route(method="POST", path=f"{M}/seller/stripe", handler=connect_stripe, permission=SELL,
          body=ConnectIn, response=SellerOut),
    Route(method="POST", path=f"{M}/sales/{{order_id}}/refund", handler=refund_order,
          permission=SELL, body=Empty, response=OrderOut, status=202),
    Route(method="POST", path=f"{M}/checkout", handler=start_checkout, permission=BUY,
          body=CheckoutIn, response=CheckoutOut, status=201),
    Route(method="GET", path=f"{M}/carts/{{seller}}", handler=get_cart, permission=BUY,
          response=CartOut),
    Route(method="PUT", path=f"{M}/carts/{{seller}}/items/{{beat_id}}", handler=put_cart_item,
          permission=BUY, body=CartItemIn, response=CartOut),
    Route(method="DELETE", path=f"{M}/carts/{{seller}}/items/{{beat_id}}",
          handler=delete_cart_item, permission=BUY, response=CartOut),
    Route(method="POST", path=f"{M}/carts/{{seller}}/checkout", handler=checkout_cart,
          permission=BUY, body=CartCheckoutIn, response=CartCheckoutOut, status=201),
    Route(method="PUT", path=f"{M}/deals/{{deal_id}}", handler=put_deal, permission=SELL,
          body=DealIn, response=DealOut),
    Route(method="GET", path=f"{M}/deals", handler=list_deals, permission=READ,
          response=list[DealOut]),
    Route(method="DELETE", path=f"{M}/deals/{{deal_id}}", handler=delete_deal,
          permission=SELL, response=list[DealOut]),
    Route(method="PUT", path=f"{M}/coupons/{{code}}", handler=put_coupon, permission=SELL,
          body=CouponIn, response=CouponOut),
    Route(method="GET", path=f"{M}/coupons", handler=list_coupons, permission=READ,
          response=list[CouponOut]),
    Route(method="GET", path=f"{M}/orders/{{order_id}}", handler=get_order, permission=BUY,
          response=OrderOut),
    Route(method="GET", path=f"{M}/library", handler=library, permission=LIBRARY,
          response=list[LicenceOut]),
    Route(method="GET", path=f"{M}/library/{{licence_id}}", handler=get_licence,
          permission=LIBRARY, response=LicenceOut),
    Route(method="GET", path=f"{M}/library/{{licence_id}}/contract", handler=buyer_contract,
          permission=LIBRARY, response=Media("application/pdf")),
    Route(method="GET", path=f"{M}/sales/{{order_id}}/contract", handler=sale_contract,
          permission=READ, response=Media("application/pdf")),
    Route(method="GET", path=f"{M}/contract-template", handler=get_contract_template,
          permission=READ, response=ContractTemplateOut),
    Route(method="PUT", path=f"{M}/contract-template", handler=put_contract_template,
          permission=SELL, body=ContractTemplateIn, response=ContractTemplateOut),
    Route(method="GET", path=f"{M}/downloads/{{licence_id}}/{{file_id}}", handler=download,
          permission=PUBLIC, query=DownloadQuery,
          response=Media("application/octet-stream")),
    Route(method="POST", path=f"{M}/stripe/webhook", handler=stripe_webhook,
          permission=PUBLIC, body=Media("application/json"), response=WebhookOut,
          max_body=1 << 20),
]
