"""The marketplace's running objects, shared by its routes, its job and its worker.

Built in the plug-in's ``startup`` hook from its settings (``config.plugins["marketplace"]``):

- ``stripe``: ``{"api_key": "sk_...", "api_base": None, "webhook_secret": "whsec_..."
  (or a list during a secret roll), "max_network_retries": 2, "timeout": 30}``; without
  ``api_key`` the catalogue works and checkout answers 409 (payments not configured);
  ``api_base`` points the official client elsewhere (the fake Stripe in tests);
- ``checkout_expiry_s`` (3600): a Checkout Session's life, and an exclusive hold's;
  ``checkout_sweep_s`` (60): how often open checkouts past it (and a grace of 5 minutes
  for Stripe's own ``checkout.session.expired``) are expired, releasing their hold and
  coupon use; ``max_open_checkouts`` (5): open checkouts one buyer may have in one store
  (so nobody holds exclusives or burns coupon uses by opening checkouts in a loop);
- ``success_url``, ``cancel_url``: where Stripe sends the buyer after paying
  (``{ORDER_ID}`` replaced), unless the checkout names its own;
  ``membership_success_url``: where a fan who joined a membership plan goes
  (``{MEMBERSHIP_ID}`` replaced; default ``success_url``);
- ``download_ttl_s`` (3600): how long a download link lives; ``download_key``: the
  links' HMAC key (default: one derived from the server's secret);
- ``asset_file``, ``txt_lookup``: in-process resolvers that stand in for the platform's
  asset store (``asset_file(account_id, asset_id) -> path | None``) and for DNS
  (``txt_lookup(name) -> [TXT strings] | None``), either may return an awaitable: how
  tests run without them; configuration files cannot name them, and no plug-in can
  answer for them;
- ``render``: ``{"workers": 2, "timeout_s": 3.0, "memory_mb": 256, "max_tasks": 1000}``,
  the worker processes sellers' templates (storefront pages, licence contracts) render in
  (:mod:`.render_pool`);
- ``visitor_carts_per_minute`` (20): visitor carts one client address may start a minute
  (429 past it); ``visitor_cart_days`` (30): visitor carts with no line added for that
  long are deleted by the checkout sweeper (:mod:`.visitor_carts`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from business.marketplace.carts import Carts
from business.marketplace.catalogue import Catalogue
from business.marketplace.checkout import Checkout
from business.marketplace.contracts import CONTRACT_JOB, Contracts, FileMissing, LicenceChanged
from business.marketplace.coupons import Coupons
from business.marketplace.deals import Deals
from business.marketplace.delivery import Delivery, LinkSigner
from business.marketplace.errors import NotFoundHere
from business.marketplace.fulfilment import Fulfilment
from business.marketplace.ledger import Ledger
from business.marketplace.membership_events import MembershipEvents
from business.marketplace.memberships import Memberships
from business.marketplace.models import Licence, Order
from business.marketplace.money_events import MoneyEvents
from business.marketplace.payouts import Payouts
from business.marketplace.preview_audio import AudioUnreadable
from business.marketplace.previews import PREVIEW_JOB, Previews
from business.marketplace.render_pool import RenderLimits, RenderPool
from business.marketplace.split_hold_claims import LiveClaim
from business.marketplace.split_holds import DEFAULT_INVITATION_DAYS, HOLD_JOB, SplitHolds
from business.marketplace.split_sales import (
    TIMED_OUT,
    SplitSales,
    TransfersFailed,
    TransfersPending,
)
from business.marketplace.splits import Share, Splits
from business.marketplace.store import MarketStore
from business.marketplace.storefront import Storefronts, TxtLookup, dns_txt
from business.marketplace.storefront_pages import sample_data
from business.marketplace.stripe_gateway import StripeGateway, StripeSettings
from business.marketplace.transfer_alerts import TransferAlerts
from business.marketplace.visitor_carts import NewCartLimiter, purge_stale
from dawserver.plugin_api import JobContext, Permanent, PluginContext, Retry

PLUGIN_NAME = "marketplace"
REFUND_JOB = "marketplace.refund"
#: The longest wait between two tries of a refund's reversal whose transfers are still
#: being made (the split transfer job's own backoff cap).
REVERSAL_WAIT_CAP_S = 900.0
LINK_KEY_PURPOSE = "marketplace download links"
logger = logging.getLogger(__name__)
_KEY = "marketplace"


@dataclass
class Services:
    """The module's objects."""

    store: MarketStore
    ledger: Ledger
    catalogue: Catalogue
    checkout: Checkout
    fulfilment: Fulfilment
    delivery: Delivery
    gateway: StripeGateway | None
    storefronts: Storefronts
    coupons: Coupons
    #: ``await asset_file(account_id, asset_id)``: the local file of a seller's asset.
    asset_file: Callable[[str, str], Awaitable[str | None]]
    asset_exists: Callable[[str, str], Awaitable[bool]]
    contracts: Contracts
    previews: Previews
    deals: Deals
    carts: Carts
    #: How many visitor carts one client may start a minute.
    new_carts: NewCartLimiter = field(default_factory=NewCartLimiter)
    #: Visitor carts with no line added for this long are purged.
    visitor_cart_max_age_s: float = 30 * 86_400.0
    #: Payouts and collaborator splits (None without a Stripe key).
    payouts: Payouts | None = None
    splits: Splits | None = None
    #: Membership plans, members and their perks.
    memberships: Memberships | None = None

    async def close(self) -> None:
        await self.storefronts.renderer.close()
        if self.gateway is not None:
            await self.gateway.close()


def services(context: PluginContext) -> Services:
    """The started module of a plug-in context."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the marketplace plug-in has not started yet")
    return found


async def _answer(found: Any) -> Any:
    return await found if inspect.isawaitable(found) else found


def stripe_settings(settings: dict[str, Any]) -> tuple[StripeSettings | None, list[str]]:
    """The gateway's settings (None without an API key) and the webhook secrets."""
    raw = dict(settings.get("stripe") or {})
    secret = raw.get("webhook_secret") or []
    secrets = [secret] if isinstance(secret, str) else [str(s) for s in secret]
    if not raw.get("api_key"):
        return None, secrets
    return StripeSettings(str(raw["api_key"]), api_base=raw.get("api_base") or None,
                          max_network_retries=int(raw.get("max_network_retries", 2)),
                          timeout=float(raw.get("timeout", 30.0))), secrets


def build_services(context: PluginContext) -> Services:
    settings = context.settings_for(PLUGIN_NAME)
    db = context.database()
    store, ledger = MarketStore(db), Ledger(db)
    stripe, secrets = stripe_settings(settings)
    gateway = StripeGateway(stripe) if stripe else None
    resolver = settings.get("asset_file")

    async def asset_file(account_id: str, asset_id: str) -> str | None:
        """The platform's asset store (or the ``asset_file`` resolver of the settings)."""
        if callable(resolver):
            return await _answer(resolver(account_id, asset_id))
        return await context.asset_path(account_id, asset_id)

    async def asset_exists(account_id: str, asset_id: str) -> bool:
        return await asset_file(account_id, asset_id) is not None

    async def enqueue_refund(tx: Any, order: Order) -> None:
        await context.enqueue(REFUND_JOB, {"seller": order.account_id,
                                           "order_id": order.order_id},
                              account_id=order.account_id,
                              idempotency_key=f"refund/{order.order_id}", tx=tx)

    async def publish(tx: Any, name: str, payload: dict[str, Any], account_id: str) -> Any:
        return await context.publish(tx, name, payload, account_id=account_id)

    async def enqueue_contract(tx: Any, licence: Licence) -> None:
        await context.enqueue(CONTRACT_JOB, {"seller": licence.account_id,
                                             "licence_id": licence.licence_id},
                              account_id=licence.account_id,
                              idempotency_key=f"contract/{licence.licence_id}", tx=tx)

    key = settings.get("download_key")
    signer = LinkSigner(key.encode() if isinstance(key, str) else
                        context.derive_key(LINK_KEY_PURPOSE),
                        int(settings.get("download_ttl_s", 3600)))
    coupons = Coupons(db)
    checkout = Checkout(store, gateway, expiry_s=int(settings.get("checkout_expiry_s", 3600)),
                        success_url=str(settings.get("success_url") or _default_success(
                            context)), cancel_url=str(settings.get("cancel_url") or ""),
                        coupons=coupons,
                        max_open=int(settings.get("max_open_checkouts", 5)),
                        discovery_fee_bp=settings.get("discovery_fee_bp", 0))
    async def enqueue_preview(seller: str, beat_id: str, version: str) -> str:
        record = await context.enqueue(PREVIEW_JOB, {"seller": seller, "beat_id": beat_id,
                                                     "version": version},
                                       account_id=seller,
                                       idempotency_key=f"preview/{beat_id}/{version}")
        return str(record.id)

    previews = Previews(store, asset_file, asset_exists)
    previews.enqueue = enqueue_preview
    renderer = RenderPool(RenderLimits.of(settings))
    deals = Deals(db)
    carts = Carts(store, deals)
    fulfilment = Fulfilment(store, ledger, gateway, secrets, enqueue_refund, publish,
                            on_licence=enqueue_contract)
    fulfilment.carts_take = carts.take
    payouts = Payouts(db, ledger, gateway) if gateway is not None else None
    splits = Splits(db, ledger, gateway) if gateway is not None else None
    money = fulfilment.money = MoneyEvents(store, ledger, payouts, splits, gateway)

    async def enqueue_job(tx: Any, name: str, payload: dict[str, Any], account_id: str,
                          key: str) -> None:
        await context.enqueue(name, payload, account_id=account_id, idempotency_key=key,
                              tx=tx)

    fulfilment.split_sales = (SplitSales(splits, enqueue_job) if splits is not None
                              else None)
    if splits is not None:  # holds pending collaborators' parts (splits.holds)
        holds = SplitHolds(splits, enqueue_job, invitation_ttl_s=float(settings.get(
            "split_invitation_days", DEFAULT_INVITATION_DAYS)) * 86_400.0)
        if fulfilment.split_sales is not None:
            holds.paid_out = fulfilment.split_sales.queue_take_back
    if fulfilment.split_sales is not None:
        fulfilment.split_sales.alerts = TransferAlerts(
            context.send_mail, context.admin_emails,
            base_url=_base_url(context))
        if splits is not None and splits.holds is not None:
            splits.holds.alerts = fulfilment.split_sales.alerts
    money.split_sales = fulfilment.split_sales
    memberships = Memberships(store, gateway, success_url=str(
        settings.get("membership_success_url") or settings.get("success_url") or
        _default_success(context)), grant=fulfilment.grant)
    fulfilment.memberships = MembershipEvents(memberships, ledger, gateway)
    checkout.member_discount = memberships.discount_bp
    return Services(store, ledger, Catalogue(store, asset_exists), checkout, fulfilment,
                    Delivery(store, signer, asset_file), gateway,
                    Storefronts(db, _txt_lookup(settings), sample_data, renderer), coupons,
                    asset_file, asset_exists, Contracts(store, renderer, asset_file),
                    previews, deals, carts,
                    NewCartLimiter(int(settings.get("visitor_carts_per_minute", 20))),
                    float(settings.get("visitor_cart_days", 30)) * 86_400.0,
                    payouts=payouts, splits=splits, memberships=memberships)


def _txt_lookup(settings: dict[str, Any]) -> TxtLookup:
    """DNS, unless the settings name a ``txt_lookup`` resolver (tests)."""
    resolver = settings.get("txt_lookup")
    if not callable(resolver):
        return dns_txt

    async def lookup(name: str) -> list[str] | None:
        return await _answer(resolver(name))

    return lookup


def _base_url(context: PluginContext) -> str:
    """The server's public address (empty when the config has none)."""
    try:
        return str(getattr(context.config, "base_url", "") or "")
    except Exception:  # a config without a host to build it from
        return ""


def _default_success(context: PluginContext) -> str:
    base = _base_url(context)
    return f"{base.rstrip('/') or 'http://localhost'}/marketplace/orders/{{ORDER_ID}}"


def start_services(context: PluginContext) -> Services:
    """Build the module's objects and keep them in the context."""
    module = build_services(context)
    context.state[_KEY] = module
    return module


async def run_refund(context: PluginContext, payload: Any, job: JobContext) -> dict:
    """The ``marketplace.refund`` job: refund one order in full (same key each attempt)."""
    return await services(context).fulfilment.refund(payload.seller, payload.order_id)


async def run_split_transfers(context: PluginContext, payload: Any, job: JobContext
                              ) -> dict:
    """The ``marketplace.split_transfers`` job: pay a split line's payees (a payee is
    never paid twice, however often it runs)."""
    sales = services(context).fulfilment.split_sales
    if sales is None:
        raise Permanent("payments are not configured on this server")
    try:
        paid = await sales.pay(payload.seller, payload.order_id, charge=payload.charge,
                               amount=payload.amount, currency=payload.currency,
                               transfer_group=payload.transfer_group,
                               shares=[Share(s.collaborator, s.stripe_account, s.basis_points)
                                       for s in payload.shares])
    except Exception as exc:
        if job.attempt >= job.job.max_attempts:  # the queue gives up after this one
            await sales.fail(payload.seller, payload.order_id,
                             f"{type(exc).__name__}: {exc}"[:500])
        raise
    return {"order_id": payload.order_id, "transfers": paid}


async def split_transfers_died(context: PluginContext, payload: Any, record: Any) -> None:
    """A ``marketplace.split_transfers`` job died, however (its workers killed on every
    attempt included, which its last attempt cannot see): mark the line failed with the
    job's last error and mail the seller's owners and admins, once (a no-op when its
    last attempt did, or the line's transfers were all made)."""
    sales = services(context).fulfilment.split_sales
    if sales is None or payload is None:
        return
    await sales.fail(payload.seller, payload.order_id,
                     (record.last_error or "its job died")[:500])


async def split_reversal_died(context: PluginContext, payload: Any, record: Any) -> None:
    """A ``marketplace.split_reversal`` job died with no end recorded: record and mail it
    (:meth:`SplitSales.reversal_died`; a no-op after an end its attempts recorded)."""
    sales = services(context).fulfilment.split_sales
    if sales is None or payload is None:
        return
    await sales.reversal_died(payload.seller, payload.order_id, payload.cause,
                              taken=payload.taken, of=payload.of,
                              reason=(record.last_error or "its job died")[:500])


async def run_split_reversal(context: PluginContext, payload: Any, job: JobContext) -> dict:
    """The ``marketplace.split_reversal`` job: take a refunded part of a line's
    transfers back, once its transfers are all made."""
    sales = services(context).fulfilment.split_sales
    if sales is None:
        raise Permanent("payments are not configured on this server")
    try:
        done = await sales.reverse(payload.seller, payload.order_id, taken=payload.taken,
                                   of=payload.of, cause=payload.cause)
    except TransfersFailed as exc:  # recorded and mailed: a dead letter to requeue
        raise Permanent(str(exc)) from None
    except TransfersPending as exc:
        if job.attempt >= job.job.max_attempts:
            await sales.record(payload.seller, payload.order_id, payload.cause,
                               taken=payload.taken, of=payload.of, reversed_=0,
                               state=TIMED_OUT, note=str(exc))
            # a held part's payout booked meanwhile may have read no record of this
            # cause: one more look after the record (each side checks after its write)
            try:
                done = await sales.reverse(payload.seller, payload.order_id,
                                           taken=payload.taken, of=payload.of,
                                           cause=payload.cause)
            except (TransfersPending, TransfersFailed):
                done = None
            if done is not None:
                return {"order_id": payload.order_id, "reversals": done}
            # the line's transfer job may be dead without having said so: tell the seller
            await sales.gave_up_waiting(payload.seller, payload.order_id, payload.cause,
                                        str(exc))
            raise Permanent(f"{exc}; gave up waiting (recorded as {TIMED_OUT})") from None
        # the line's transfer job may itself be retrying for hours (up to 12 attempts,
        # backoff to 15 min): wait in growing steps, past its last attempt
        raise Retry(str(exc), after=min(REVERSAL_WAIT_CAP_S, 2.0 ** job.attempt)) from None
    return {"order_id": payload.order_id, "reversals": done}


async def split_holds_died(context: PluginContext, payload: Any, record: Any) -> None:
    """A ``marketplace.split_holds`` job died, however (its worker killed on its last
    attempt while its run held a part's claim included, which no attempt of its own
    sees): a live claim left on its parts is followed by a fresh job, as its last
    attempt would have (:func:`follow_claim`; once per claim, so idempotent)."""
    splits = services(context).splits
    if splits is None or splits.holds is None or payload is None:
        return
    busy = await splits.holds.claimed_for(payload.seller, payload.beat_id,
                                          payload.collaborator)
    if busy is not None:
        await follow_claim(context, splits.holds, payload, busy)


async def run_split_holds(context: PluginContext, payload: Any, job: JobContext) -> dict:
    """The ``marketplace.split_holds`` job: pay out a collaborator's held parts of a beat
    as their invitation stands (each part once, however often it runs)."""
    splits = services(context).splits
    if splits is None or splits.holds is None:
        raise Permanent("payments are not configured on this server")
    try:
        done = await splits.holds.settle_invitation(payload.seller, payload.beat_id,
                                                    payload.collaborator)
    except Exception as exc:
        if job.attempt >= job.job.max_attempts:  # the queue gives up after this one
            await splits.holds.give_up(payload.seller, payload.beat_id,
                                       payload.collaborator,
                                       f"{type(exc).__name__}: {exc}"[:500])
        raise
    # a part another run claims is left to it; should that run have died holding the
    # claim (this may be its own job, run again once its lease ran out), this job
    # takes it over as soon as the claim expired, not at the hourly sweep
    busy = await splits.holds.claimed_for(payload.seller, payload.beat_id,
                                          payload.collaborator)
    if busy is not None and job.attempt < job.job.max_attempts:
        raise Retry(f"another run is paying out {payload.collaborator}'s held parts: back "
                    "once its claim expired", after=busy.left_s + splits.holds.claim_margin_s)
    if busy is not None:  # no attempt left: a fresh job comes back instead
        await follow_claim(context, splits.holds, payload, busy)
    return {"beat_id": payload.beat_id, "collaborator": payload.collaborator,
            "paid_out": done}


async def follow_claim(context: PluginContext, holds: SplitHolds, payload: Any,
                       busy: LiveClaim) -> None:
    """Queue a fresh ``marketplace.split_holds`` job for ``payload``'s parts, to run
    once the live claim ``busy`` expired (and ``claim_margin_s``): the job that found
    it has no attempt left to ``Retry`` with, and the run holding the claim may be
    dead. Keyed by the claim's token, so however many runs find the same claim, one
    job follows it; the payout it makes still goes through the claim's compare-and-set
    and the decision's idempotency key. A delayed job of the queue's own
    (``JobQueue.enqueue``'s ``delay_s``), queued by the job itself rather than by
    making it die for the kind's ``on_dead``: it ends done, as nothing failed, with no
    dead letter to tell anyone of; ``on_dead`` (:func:`split_holds_died`) covers only
    a job killed on its last attempt, which never sees the claim itself."""
    await context.background.queue.enqueue(
        HOLD_JOB, {"seller": payload.seller, "beat_id": payload.beat_id,
                   "collaborator": payload.collaborator},
        account_id=payload.seller,
        idempotency_key=holds.claim_key(payload.seller, payload.beat_id,
                                        payload.collaborator, busy.token),
        delay_s=busy.left_s + holds.claim_margin_s)


async def run_contract(context: PluginContext, payload: Any, job: JobContext) -> dict:
    """The ``marketplace.contract`` job: write one licence's contract PDF (once)."""
    try:
        found = await services(context).contracts.write(payload.seller, payload.licence_id)
    except FileMissing as exc:
        raise Retry(str(exc), after=30.0) from None
    except LicenceChanged as exc:
        raise Retry(str(exc), after=1.0) from None
    except NotFoundHere as exc:  # the licence is gone from this seller (an erasure)
        raise Permanent(str(exc)) from None
    return {"licence_id": found.licence_id, "sha256": found.sha256, "bytes": len(found.pdf)}


async def run_preview(context: PluginContext, payload: Any, job: JobContext) -> dict:
    """The ``marketplace.preview`` job: render one beat's tagged MP3 preview, with
    progress; an unreadable file is recorded for the seller and not retried."""
    previews = services(context).previews
    try:
        return await previews.render(payload.seller, payload.beat_id, payload.version,
                                     job.progress)
    except AudioUnreadable as exc:
        await previews.failed(payload.seller, payload.beat_id, payload.version, str(exc))
        raise Permanent(str(exc)) from None


async def run_checkout_sweeper(context: PluginContext) -> None:
    """The worker that expires checkouts past their session's life every
    ``checkout_sweep_s`` seconds (60): holds released, coupon uses given back; visitor
    carts untouched for ``visitor_cart_days`` deleted; split invitations pending longer
    than ``split_invitation_days`` (30) expired, their held money returned; expired
    download links forgotten."""
    every = float(context.settings_for(PLUGIN_NAME).get("checkout_sweep_s", 60.0))
    while True:
        await asyncio.sleep(every)
        try:
            module = services(context)
            await module.checkout.sweep()
            await purge_stale(module.store.db, module.visitor_cart_max_age_s)
            await module.store.purge_download_links(time.time())
            if module.splits is not None and module.splits.holds is not None:
                await module.splits.holds.expire()
        except Exception:  # a database blip: the next round tries again
            logger.exception("the checkout sweep failed; trying again in %s s", every)


async def run_gateway(context: PluginContext) -> None:
    """The worker holding the Stripe client's connections; closes them on shutdown."""
    module = services(context)
    try:
        await asyncio.Event().wait()
    finally:
        await module.close()
