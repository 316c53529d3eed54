"""The storefront's cart for visitors: plain HTML forms, a signed session cookie.

A visitor who is not signed in adds licences from a beat's page (``POST
/store/{handle}/cart``, a form: ``beat_id``, ``tier``, ``action`` ``add`` or ``remove``;
answered with a 303 to the cart page, so no script is needed). Their cart is a
:class:`~business.marketplace.carts.Carts` cart whose owner is ``visitor:<id>``, the id
in the ``mkt_cart`` cookie (random, HMAC-signed under a key of its own: a changed
cookie is a new, empty cart; ``HttpOnly``, ``SameSite=Lax`` so another site's form posts
without it, ``Path=/`` so the browser sends it to the claim under ``/api/``). Paying needs
an account: signed in, the buyer claims the visitor cart (``POST
/api/marketplace/carts/{seller}/claim`` with the cookie), its lines move into their own
cart, and the cart checkout takes it from there. A post without a valid cookie starts a
new cart, and one client address may start only so many a minute (429 with
``Retry-After`` past it); carts left alone for ``visitor_cart_days`` are purged
(:mod:`.visitor_carts`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import parse_qs

import jinja2

from business.marketplace import storefront_pages as pages
from business.marketplace.carts import Cart
from business.marketplace.errors import CatalogueInvalid, NotForSale, NotFoundHere
from business.marketplace.permissions import BUY
from business.marketplace.routes import _api
from business.marketplace.schemas import CartOut
from business.marketplace.services import services
from business.marketplace.visitor_carts import TooManyNewCarts
from dawserver.plugin_api import (
    PUBLIC,
    Empty,
    Media,
    Reply,
    Request,
    Route,
    TooManyRequests,
)

COOKIE = "mkt_cart"
COOKIE_KEY_PURPOSE = "marketplace visitor carts"
#: A visitor cart's cookie lives 30 days.
COOKIE_AGE_S = 30 * 86_400
HTML = "text/html"

_CART = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""\
<h2 id="cart-heading">Your cart</h2>
{% if notice %}<p role="status">{{ notice }}</p>{% endif %}
{% if cart.lines %}<table class="tiers" aria-labelledby="cart-heading"><thead><tr>
<th scope="col">Beat</th><th scope="col">Licence</th><th scope="col">Price</th>
<th scope="col"><span class="skip">Remove</span></th></tr></thead><tbody>
{% for line in cart.lines %}<tr><th scope="row">{{ line.title }}</th><td>{{ line.tier_name }}\
</td><td>{% if line.free %}<s>{{ line.price_text }}</s> free{% else %}{{ line.price_text }}\
{% endif %}</td><td><form method="post" action="{{ url }}"><input type="hidden" name="action" \
value="remove"><input type="hidden" name="beat_id" value="{{ line.beat_id }}">\
<button type="submit">Remove {{ line.title }}</button></form></td></tr>
{% endfor %}</tbody></table>
{% if cart.deal %}<p>Deal: {{ cart.deal.label }}.</p>{% endif %}
<p>Total: <span class="price">{{ cart.total_text }}</span></p>
<p>To pay, sign in: your cart comes with you.</p>
{% else %}<p>Your cart is empty.</p>{% endif %}
{% for gone in cart.unavailable %}<p>{{ gone.beat_id }} is no longer on sale.</p>{% endfor %}
<p><a href="{{ store_url }}">Keep browsing</a></p>
""")


def _key(request: Request) -> bytes:
    return request.context.derive_key(COOKIE_KEY_PURPOSE)


def sign(key: bytes, visitor: str) -> str:
    return f"{visitor}.{hmac.new(key, visitor.encode(), hashlib.sha256).hexdigest()[:32]}"


def visitor_of(key: bytes, cookie_header: str | None) -> str | None:
    """The visitor id of a request's ``mkt_cart`` cookie we signed (None otherwise)."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and "." in value:
            visitor = value.split(".", 1)[0]
            if hmac.compare_digest(sign(key, visitor).encode(), value.encode()):
                return visitor
    return None


def owner(visitor: str) -> str:
    """The cart owner a visitor's lines are kept under."""
    return f"visitor:{visitor}"


def _cart_html(cart: Cart, url: str, store_url: str, notice: str) -> str:
    data = cart.to_json()
    for line in data["lines"]:
        line["price_text"] = pages.format_price(line["price"], line["currency"])
    return _CART.render(cart=data, url=url, store_url=store_url, notice=notice)


async def _page(request: Request, handle: str, visitor: str | None, notice: str = ""
                ) -> str:
    module = services(request.context)
    store = await module.storefronts.by_handle(handle)
    cart = await module.carts.view(owner(visitor), store.account_id) if visitor else \
        Cart(store.account_id, "", [], None, [])
    base = pages.store_data(store, "")["url"]
    main = _cart_html(cart, f"{base}/cart", base, notice)
    return pages.page(store, main, base="", title=f"Cart – {store.title}",
                      description=f"Your cart at {store.title}", canonical=f"{base}/cart",
                      og=[], twitter=[])


@_api
async def cart_page(request: Request) -> Any:
    """The visitor's cart in this store (empty without the cookie)."""
    visitor = visitor_of(_key(request), request.headers.get("Cookie"))
    html = await _page(request, request.params["handle"], visitor)
    return Reply(html, media_type=HTML, headers={**pages.PAGE_HEADERS,
                                                 "Cache-Control": "private, no-store"})


@_api
async def cart_form(request: Request) -> Any:
    """Add a licence to (or remove a beat from) the visitor's cart; 303 to the cart."""
    key = _key(request)
    form = {k: v[0] for k, v in parse_qs(bytes(request.body or b"").decode(
        "utf-8", "replace")).items() if v}
    visitor = visitor_of(key, request.headers.get("Cookie"))
    headers = {"Cache-Control": "no-store"}
    module = services(request.context)
    if visitor is None:
        native = request.native
        try:
            await module.new_carts.start((native.remote or "") if native is not None else "")
        except TooManyNewCarts as exc:
            raise TooManyRequests(str(exc), headers={"Retry-After": str(exc.retry_after)}
                                  ) from None
        visitor = secrets.token_urlsafe(18).replace(".", "_")
        headers["Set-Cookie"] = (f"{COOKIE}={sign(key, visitor)}; Max-Age={COOKIE_AGE_S}; "
                                 "Path=/; HttpOnly; SameSite=Lax")
    store = await module.storefronts.by_handle(request.params["handle"])
    beat_id = form.get("beat_id", "")
    notice = ""
    try:
        if form.get("action") == "remove":
            await module.carts.remove(owner(visitor), store.account_id, beat_id)
        else:
            await module.carts.add(owner(visitor), store.account_id, beat_id,
                                   form.get("tier", ""))
    except (NotFoundHere, NotForSale, CatalogueInvalid) as exc:
        notice = str(exc)
    if notice:  # shown at once, with the cart as it is
        html = await _page(request, request.params["handle"], visitor, notice)
        return Reply(html, status=409, media_type=HTML,
                     headers={**pages.PAGE_HEADERS, **headers})
    headers["Location"] = f"/store/{store.handle}/cart"
    return Reply("", status=303, media_type=HTML, headers=headers)


@_api
async def claim_cart(request: Request) -> Any:
    """Move the visitor cart of this browser (its cookie) into the signed-in buyer's own
    cart in that store; the buyer's cart."""
    module = services(request.context)
    seller = request.params["seller"]
    visitor = visitor_of(_key(request), request.headers.get("Cookie"))
    if visitor is not None:
        await module.carts.claim(owner(visitor), request.account_id, seller)
    return (await module.carts.view(request.account_id, seller)).to_json()


def routes() -> list[Route]:
    """The cart page and form of every store, and the claim of a visitor cart."""
    return [
        Route(method="GET", path="/store/{handle}/cart", handler=cart_page,
              permission=PUBLIC, response=Media("text/html")),
        Route(method="POST", path="/store/{handle}/cart", handler=cart_form,
              permission=PUBLIC, body=Media("application/x-www-form-urlencoded"),
              response=Media("text/html"), statuses=(303, 409), max_body=4096),
        Route(method="POST", path="/api/marketplace/carts/{seller}/claim",
              handler=claim_cart, permission=BUY, body=Empty, response=CartOut),
    ]
