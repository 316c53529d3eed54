"""The marketplace plug-in: hook implementations that wire the module into the server.

Settings (``config.plugins["marketplace"]``): see :mod:`business.marketplace.services`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from business.marketplace.contracts import CONTRACT_JOB
from business.marketplace.fulfilment import SALE_EVENT
from business.marketplace.ledger import MIGRATIONS
from business.marketplace.membership_routes import ROUTES as MEMBERSHIP_ROUTES
from business.marketplace.onboarding import ROUTES as ONBOARDING_ROUTES
from business.marketplace.payout_routes import ROUTES as PAYOUT_ROUTES
from business.marketplace.permissions import PERMISSIONS
from business.marketplace.previews import PREVIEW_JOB
from business.marketplace.privacy import erase_account, export_account
from business.marketplace.report_routes import ROUTES as REPORT_ROUTES
from business.marketplace.routes import ROUTES
from business.marketplace.schemas import (
    ContractPayload,
    PreviewPayload,
    RefundPayload,
    SaleEvent,
    SplitHoldsPayload,
    SplitReversalPayload,
    SplitTransfersPayload,
)
from business.marketplace.services import (
    PLUGIN_NAME,
    REFUND_JOB,
    run_checkout_sweeper,
    run_contract,
    run_gateway,
    run_preview,
    run_refund,
    run_split_holds,
    run_split_reversal,
    run_split_transfers,
    services,
    split_holds_died,
    split_reversal_died,
    split_transfers_died,
    start_services,
)
from business.marketplace.split_holds import HOLD_JOB as SPLIT_HOLD_JOB
from business.marketplace.split_routes import ROUTES as SPLIT_ROUTES
from business.marketplace.split_sales import PAY_JOB as SPLIT_PAY_JOB
from business.marketplace.split_sales import REVERSAL_JOB as SPLIT_REVERSAL_JOB
from business.marketplace.storefront_cart import routes as cart_routes
from business.marketplace.storefront_routes import ROUTES as STORE_ROUTES
from business.marketplace.storefront_routes import host_page as store_host_page
from business.marketplace.v1_routes import ROUTES as V1_ROUTES
from dawserver.plugin_api import (
    Event,
    Handler,
    Job,
    Migration,
    Page,
    Permission,
    PluginContext,
    Pseudonymiser,
    QueueSettings,
    Route,
    Worker,
    hookimpl,
)

__all__ = ["MIGRATIONS", "STATIC_DIR"]

#: The built sales reports page (web/src/marketplace, bundled by web/build.mjs).
STATIC_DIR = Path(__file__).with_name("static")


@hookimpl
def pages(context: PluginContext) -> list[Page]:
    return [Page(path="/sales-reports", title="Sales reports", static_dir=STATIC_DIR,
                 html="reports.html")]


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": "1.0",
            "description": "Marketplace: beats, licence tiers, Stripe checkout, licences "
                           "and signed downloads"}


@hookimpl
def migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def permissions() -> list[Permission]:
    return PERMISSIONS


@hookimpl
def routes(context: PluginContext) -> list[Route]:
    return [*ROUTES, *STORE_ROUTES, *cart_routes(), *PAYOUT_ROUTES, *SPLIT_ROUTES,
            *ONBOARDING_ROUTES, *REPORT_ROUTES, *MEMBERSHIP_ROUTES]


@hookimpl
def public_routes(context: PluginContext) -> list[Route]:
    return V1_ROUTES


@hookimpl
def host_page(context: PluginContext) -> Handler:
    return store_host_page


@hookimpl
def events() -> list[Event]:
    return [Event(SALE_EVENT, SaleEvent, "an order was paid (where the buyer came from, "
                  "never who)")]


@hookimpl
def jobs() -> list[Job]:
    # A refund is one Stripe call with the same idempotency key on every attempt.
    return [Job(REFUND_JOB, RefundPayload, run_refund,
                "refund one order in full through Stripe",
                QueueSettings(max_attempts=12, backoff_base=5.0, backoff_cap=900.0,
                              lease_s=60.0, concurrency=2)),
            Job(CONTRACT_JOB, ContractPayload, run_contract,
                "write one licence's contract PDF (checksums of its files, the seller's "
                "template)", QueueSettings(max_attempts=20, backoff_base=2.0,
                                           backoff_cap=300.0, lease_s=120.0, concurrency=2)),
            Job(PREVIEW_JOB, PreviewPayload, run_preview,
                "render one beat's streaming preview with the seller's voice tag (MP3)",
                QueueSettings(max_attempts=5, backoff_base=10.0, backoff_cap=600.0,
                              lease_s=300.0, concurrency=1)),
            # Each transfer and reversal has its own idempotency key: an attempt after a
            # crash pays or takes back nothing twice.
            Job(SPLIT_PAY_JOB, SplitTransfersPayload, run_split_transfers,
                "pay a split cart line's collaborators by Stripe transfers",
                QueueSettings(max_attempts=12, backoff_base=1.0, backoff_cap=900.0,
                              lease_s=60.0, concurrency=2),
                on_dead=split_transfers_died),
            # It waits for the line's transfer job (12 attempts, up to 15 min apart) in
            # growing steps: 30 tries span about five hours.
            Job(SPLIT_REVERSAL_JOB, SplitReversalPayload, run_split_reversal,
                "take a refunded part of a split cart line's transfers back",
                QueueSettings(max_attempts=30, backoff_base=1.0, backoff_cap=900.0,
                              lease_s=60.0, concurrency=2),
                on_dead=split_reversal_died),
            # Each held part leaves `held` once and is paid by one keyed transfer; a job
            # dying with a live claim on its parts has a fresh job follow the claim.
            Job(SPLIT_HOLD_JOB, SplitHoldsPayload, run_split_holds,
                "pay a collaborator's held split parts out as their invitation stands",
                QueueSettings(max_attempts=12, backoff_base=1.0, backoff_cap=900.0,
                              lease_s=60.0, concurrency=2),
                on_dead=split_holds_died)]


@hookimpl
def startup(context: PluginContext) -> None:
    start_services(context)


@hookimpl
def workers(context: PluginContext) -> list[Worker]:
    return [Worker("marketplace.stripe_client", run_gateway),
            Worker("marketplace.checkout_sweeper", run_checkout_sweeper)]


@hookimpl
async def account_export(context: PluginContext, account_id: str) -> dict[str, Any]:
    return await export_account(context.database(), account_id)


@hookimpl
async def account_erased(context: PluginContext, account_id: str, pseudonym: str,
                         names: list[str]) -> None:
    await erase_account(context.database(), Pseudonymiser(account_id, tuple(names), pseudonym))
    services(context).storefronts.forget()
