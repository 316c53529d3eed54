"""The storefront's routes: the seller's settings under ``/api/marketplace/storefront`` and
the public pages under ``/store/{handle}`` (HTML that works without JavaScript), plus the
answer to ``GET /`` on a seller's proved custom domain (:func:`host_page`)."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import InvalidOperation
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from business.marketplace import storefront_pages as pages
from business.marketplace.errors import CatalogueInvalid, NotFoundHere
from business.marketplace.models import ON_SALE, Beat
from business.marketplace.permissions import READ, SELL
from business.marketplace.render_pool import RenderBusy
from business.marketplace.routes import _api
from business.marketplace.services import services
from business.marketplace.storefront import Storefront, host_name
from business.marketplace.storefront_schemas import (
    DomainIn,
    StorefrontIn,
    StorefrontOut,
    StoreQuery,
)
from dawserver.plugin_api import (
    PUBLIC,
    Empty,
    Media,
    NotFound,
    Reply,
    Request,
    Route,
    Unavailable,
)

logger = logging.getLogger(__name__)
PAGE_SIZE = 24
HTML = "text/html"
MEDIA_TYPES = ("audio/mpeg", "audio/wav", "image/png", "image/jpeg", "image/webp",
               "image/gif", "application/octet-stream")
#: The search form's select boxes: (field, label, column).
FACETS = (("key", "Key", "musical_key"), ("genre", "Genre", "genre"), ("mood", "Mood", "mood"))


def _base(request: Request, store: Storefront) -> str:
    """The absolute origin of ``store``'s pages, for OpenGraph URLs and the sitemap: its
    proved custom domain when the request came to it, else the server's public URL. The
    Host header counts only on a server with no public URL (a development one), so a
    forged Host never lands in a page or a sitemap that a shared cache keeps."""
    config = getattr(request.context, "config", None)
    public = str((config.get("public_url") if isinstance(config, dict)
                  else getattr(config, "public_url", None)) or "").rstrip("/")
    scheme = "https" if public.startswith("https") else "http"
    host = request.headers.get("Host", "")
    if store.domain_verified_at is not None and store.domain == host_name(host):
        return f"{scheme}://{store.domain}"
    if public:
        return public
    return f"{scheme}://{host}" if host else ""


def _out(store: Storefront, error: str | None) -> dict[str, Any]:
    return {**store.to_json(), "template_error": error}


# -- the seller's settings ---------------------------------------------------------------------

@_api
async def get_storefront(request: Request) -> Any:
    """The account's storefront settings (and the last error of its template, if any)."""
    fronts = services(request.context).storefronts
    return _out(await fronts.mine(request.account_id), fronts.errors.get(request.account_id))


@_api
async def put_storefront(request: Request) -> Any:
    """Create or change the account's storefront: handle, name, theme, template."""
    body: StorefrontIn = request.body
    module = services(request.context)
    data = body.model_dump()
    for key in ("logo_asset", "banner_asset"):
        asset = data["theme"].get(key)
        if asset and not await module.asset_exists(request.account_id, asset):
            raise CatalogueInvalid(f"no asset {asset!r} in your account's assets: upload it "
                                   "first and use the id it answers",
                                   [{"path": f"body.theme.{key}", "message": "unknown asset"}])
    store = await module.storefronts.save(request.account_id, data)
    module.storefronts.errors.pop(request.account_id, None)
    return _out(store, None)


@_api
async def put_domain(request: Request) -> Any:
    """Claim a custom domain (the TXT record to publish comes back), or give it up."""
    body: DomainIn = request.body
    return _out(await services(request.context).storefronts.claim_domain(
        request.account_id, body.domain), None)


@_api
async def verify_domain(request: Request) -> Any:
    """Check the domain's TXT record; once it matches the store answers on that host."""
    return _out(await services(request.context).storefronts.verify_domain(
        request.account_id), None)


# -- the public pages --------------------------------------------------------------------------

async def _facets(request: Request, account_id: str) -> list[tuple[str, str, list[str]]]:
    """The search form's choices: the store's own keys, genres and moods (cached)."""
    async def read() -> list[tuple[str, str, list[str]]]:
        rows = await request.context.database().fetch(
            "SELECT DISTINCT musical_key, genre, mood FROM mkt_beats WHERE account_id = ? "
            "AND status = ?", account_id, ON_SALE)
        return [(name, label, sorted({r[column] for r in rows} - {""}))
                for name, label, column in FACETS]

    return await services(request.context).storefronts.facets(account_id, read)


def _filters(store: Storefront, query: StoreQuery) -> tuple[SimpleNamespace, str]:
    """The catalogue query of the form's fields, and a notice naming any field ignored."""
    currency = str((store.theme or {}).get("currency", "usd"))
    found = SimpleNamespace(seller=store.account_id, q=query.q, key=query.key,
                            genre=query.genre, mood=query.mood, currency="",
                            limit=PAGE_SIZE, cursor=query.cursor, bpm_min=None, bpm_max=None,
                            price_min=None, price_max=None)
    ignored = []
    for name in ("bpm_min", "bpm_max"):
        text = getattr(query, name).strip()
        if text:
            if text.isdigit():
                setattr(found, name, int(text))
            else:
                ignored.append(name.replace("_", " "))
    for name in ("price_min", "price_max"):
        try:
            setattr(found, name, pages.to_minor(getattr(query, name), currency))
        except (InvalidOperation, ValueError):
            ignored.append(name.replace("_", " "))
    notice = (f"Ignored {', '.join(ignored)}: give a number such as 120 or 29.99."
              if ignored else "")
    return found, notice


async def _listing(request: Request, store: Storefront, query: StoreQuery
                   ) -> tuple[list[Beat], str | None, str]:
    catalogue = services(request.context).catalogue
    filters, notice = _filters(store, query)
    for _ in range(3):  # a bad key, then a bad cursor: each dropped with a word why
        try:
            beats, cursor = await catalogue.listing(filters)
            return beats, cursor, notice
        except CatalogueInvalid as exc:
            paths = {issue.get("path", "") for issue in exc.issues}
            if "key" in paths and filters.key:
                filters.key = ""
                notice = f"{notice} No such key {query.key!r}: showing every key."
            elif "query.cursor" in paths and filters.cursor:
                filters.cursor = ""
                notice = f"{notice} That page link is out of date: showing the first page."
            else:
                raise
            notice = notice.strip()
    raise CatalogueInvalid("the search could not be run: clear the form and try again")


async def _main(request: Request, store: Storefront, data: dict[str, Any]) -> str:
    fronts = services(request.context).storefronts
    try:
        html, error = await pages.render_main(fronts.renderer, store, data)
    except RenderBusy as exc:
        raise Unavailable(str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    if error:
        fronts.errors[store.account_id] = error
        logger.warning("storefront %s: the seller's template failed, built-in one used: %s",
                       store.handle, error)
    return html


async def render_store(request: Request, store: Storefront, query: StoreQuery) -> Reply:
    """The store page: the search form, one page of beats, the next page's link."""
    base = _base(request, store)
    beats, cursor, notice = await _listing(request, store, query)
    filters = query.model_dump()
    path = f"/store/{store.handle}"
    next_url = pages.query_url(path, {**filters, "cursor": cursor}) if cursor else None
    data = {"page": "store", "store": pages.store_data(store, base), "next_url": next_url,
            "beats": [pages.beat_data(store, b, base) for b in beats], "beat": None}
    description = store.bio or f"Beats by {store.title}: licences to buy and download."
    og, twitter = pages.social_tags(store, base, title=store.title, description=description,
                                    url=base + path)
    html = pages.page(store, await _main(request, store, data), base=base, title=store.title,
                      description=description, canonical=base + path, og=og, twitter=twitter,
                      search=True, filters={k: v for k, v in filters.items() if k != "cursor"},
                      facets=await _facets(request, store.account_id), notice=notice,
                      plans=await _plans(request, store.account_id))
    return Reply(html, media_type=HTML, headers=pages.PAGE_HEADERS)


async def _plans(request: Request, seller: str) -> list[dict[str, Any]]:
    """The store's offered membership plans, as the page shows them."""
    memberships = services(request.context).memberships
    if memberships is None:
        return []
    return [pages.plan_data(p) for p in await memberships.plans(seller, active_only=True)]


async def _store_and_beat(request: Request) -> tuple[Storefront, Beat]:
    module = services(request.context)
    store = await module.storefronts.by_handle(request.params["handle"])
    beat = await module.store.beat(store.account_id, request.params["beat_id"])
    if beat is None or beat.status != ON_SALE:
        raise NotFoundHere(f"no beat {request.params['beat_id']!r} in this store")
    return store, beat


@_api
async def store_page(request: Request) -> Any:
    """A seller's store: their beats on sale, searchable and filtered by plain GET forms."""
    store = await services(request.context).storefronts.by_handle(request.params["handle"])
    return await render_store(request, store, request.query)


@_api
async def beat_page(request: Request) -> Any:
    """One beat of the store with its licences and prices."""
    store, beat = await _store_and_beat(request)
    base = _base(request, store)
    data = pages.beat_data(store, beat, base)
    title = f"{beat.title} – {store.title}"
    description = (f"{beat.title}: {beat.bpm} BPM, {beat.key}"
                   + (f", {beat.genre}" if beat.genre else "")
                   + (f", from {data['from_price']}" if data["from_price"] else ""))
    og, twitter = pages.social_tags(store, base, title=title, description=description,
                                    url=data["absolute_url"], beat=data)
    main = await _main(request, store, {"page": "beat", "store": pages.store_data(store, base),
                                  "beat": data, "beats": [data], "next_url": None})
    html = pages.page(store, main, base=base, title=title, description=description,
                      canonical=data["absolute_url"], og=og, twitter=twitter)
    return Reply(html, media_type=HTML, headers=pages.PAGE_HEADERS)


@_api
async def embed_page(request: Request) -> Any:
    """The embeddable player of one beat (the only page another site may frame)."""
    store, beat = await _store_and_beat(request)
    data = pages.beat_data(store, beat, _base(request, store))
    return Reply(pages.embed(store, data), media_type=HTML, headers=pages.EMBED_HEADERS)


@_api
async def sitemap(request: Request) -> Any:
    """The store's sitemap.xml: its page and every beat on sale."""
    module = services(request.context)
    store = await module.storefronts.by_handle(request.params["handle"])
    beats = [b for b in await module.store.beats_of(store.account_id) if b.status == ON_SALE]
    return Reply(pages.sitemap(store, beats, _base(request, store)), media_type="application/xml",
                 headers={"Cache-Control": "public, max-age=300"})


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return "application/octet-stream"


@_api
async def preview(request: Request) -> Any:
    """A beat's rendered tagged preview in this store (404 otherwise: never an untagged
    file in its place)."""
    module = services(request.context)
    store = await module.storefronts.by_handle(request.params["handle"])
    mp3, digest = await module.previews.mp3(store.account_id, request.params["beat_id"])
    return Reply(mp3, media_type="audio/mpeg", headers={
        "Cache-Control": "public, max-age=3600", "ETag": f'"{digest[:32]}"',
        "X-Content-Type-Options": "nosniff"})


@_api
async def media(request: Request) -> Any:
    """A file the store shows: its logo, its banner, or a beat's tagged preview (never a
    paid file)."""
    module = services(request.context)
    store = await module.storefronts.by_handle(request.params["handle"])
    asset = request.params["asset_id"]
    shown = {store.theme.get("logo_asset"), store.theme.get("banner_asset")} - {None}
    if asset not in shown:
        # beats on sale whose files name this asset (LIKE narrows, the JSON decides)
        like = "%" + asset.replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        rows = await request.context.database().fetch(
            "SELECT files FROM mkt_beats WHERE account_id = ? AND status = ? AND files LIKE ? "
            "ESCAPE '\\'", store.account_id, ON_SALE, like)
        shown |= {f["asset_id"] for r in rows for f in json.loads(r["files"])
                  if f["kind"] == "tagged_mp3"}
    path = await module.asset_file(store.account_id, asset) if asset in shown else None
    if path is None:
        raise NotFound(f"no file {asset!r} in this store")
    data = await asyncio.to_thread(Path(path).read_bytes)
    return Reply(data, media_type=_sniff(data),
                 headers={"Cache-Control": "public, max-age=3600",
                          "X-Content-Type-Options": "nosniff"})


async def host_page(request: Request) -> Reply | None:
    """``GET /`` on a seller's proved custom domain: the store page; None elsewhere."""
    host = request.headers.get("Host", "")
    if not host:
        return None
    try:
        module = services(request.context)
    except RuntimeError:
        return None
    store = await module.storefronts.by_host(host)
    if store is None:
        return None
    query = StoreQuery.model_validate({k: v for k, v in
                                       getattr(request.native, "query", {}).items()
                                       if k in StoreQuery.model_fields})
    return await _api(lambda r: render_store(r, store, query))(request)


A = "/api/marketplace/storefront"
S = "/store/{handle}"
ROUTES = [
    Route(method="GET", path=A, handler=get_storefront, permission=READ,
          response=StorefrontOut),
    Route(method="PUT", path=A, handler=put_storefront, permission=SELL, body=StorefrontIn,
          response=StorefrontOut, max_body=256 * 1024),
    Route(method="PUT", path=f"{A}/domain", handler=put_domain, permission=SELL,
          body=DomainIn, response=StorefrontOut),
    Route(method="POST", path=f"{A}/domain/verify", handler=verify_domain, permission=SELL,
          body=Empty, response=StorefrontOut),
    Route(method="GET", path=S, handler=store_page, permission=PUBLIC, query=StoreQuery,
          response=Media(HTML)),
    Route(method="GET", path=f"{S}/beats/{{beat_id}}", handler=beat_page, permission=PUBLIC,
          response=Media(HTML)),
    Route(method="GET", path=f"{S}/embed/{{beat_id}}", handler=embed_page, permission=PUBLIC,
          response=Media(HTML)),
    Route(method="GET", path=f"{S}/sitemap.xml", handler=sitemap, permission=PUBLIC,
          response=Media("application/xml")),
    Route(method="GET", path=f"{S}/media/{{asset_id}}", handler=media, permission=PUBLIC,
          response=Media(*MEDIA_TYPES)),
    Route(method="GET", path=f"{S}/preview/{{beat_id}}", handler=preview, permission=PUBLIC,
          response=Media("audio/mpeg")),
]
