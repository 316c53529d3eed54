"""The marketplace's resources in the public REST API (``/api/v1``): the account's
beats with their licence tiers, the licences it bought and the orders of its beats, and
the sandbox sale a test-mode key makes (:class:`NewOrder`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from business.marketplace.models import (
    ACTIVE,
    EXPIRED,
    FAILED,
    ON_SALE,
    OPEN,
    PAID,
    PROCESSING,
    REFUNDED,
    REFUNDING,
    REVOKED,
    SOLD,
)
from dawserver.plugin_api import Model, PublicListing, PublicResource

ORDER_STATES = (OPEN, PROCESSING, PAID, REFUNDING, REFUNDED, EXPIRED, FAILED)
CENTS = "In the currency's smallest unit (cents)."
TIME = "RFC 3339, UTC"


class LicenceTier(Model):
    """A licence tier of a beat: its price, what it delivers and the rights it grants."""

    tier: str
    name: str
    price: int = Field(description=CENTS)
    currency: str
    files: list[str] = Field(description="File kinds delivered: mp3, wav, stems")
    rights: dict[str, Any]
    exclusive: bool
    download_limit: int
    active: bool = Field(description="Whether the tier is offered now.")


class Beat(PublicResource):
    """A beat of the account's storefront, on sale or sold, with every tier."""

    id: str
    title: str
    bpm: int
    key: str
    genre: str
    mood: str
    tags: list[str]
    currency: str
    status: str = Field(description=f"{ON_SALE} or {SOLD}")
    created_at: str = Field(description=TIME)
    tiers: list[LicenceTier]


class Licence(PublicResource):
    """A licence the account bought: the beat, the tier, its rights and downloads."""

    id: str
    seller: str = Field(description="The selling account's id.")
    beat_id: str
    order_id: str
    tier: str
    title: str
    rights: dict[str, Any]
    exclusive: bool
    downloads: int
    download_limit: int
    status: str = Field(description=f"{ACTIVE} or {REVOKED}")
    granted_at: str = Field(description=TIME)


class Order(PublicResource):
    """An order of one of the account's beats (a sale), whoever the buyer."""

    id: str
    beat_id: str
    tier: str
    amount: int = Field(description=CENTS)
    currency: str
    exclusive: bool
    status: str = Field(description=", ".join(ORDER_STATES))
    created_at: str = Field(description=TIME)
    paid_at: str | None = Field(description=f"{TIME}; null until paid")
    refunded_at: str | None = Field(description=f"{TIME}; null unless refunded")
    licence_id: str | None = Field(description=(
        "The licence this order granted (one per order; its buyer reads it at "
        "GET /api/v1/licences/{id}; a sandbox order's is its sandbox licence). Null while "
        "the order is unpaid (open, processing, expired, failed) and for a payment "
        "refunded without granting one (it came after the beat was sold with exclusive "
        "rights, or was for another amount than the order's); a refunded order keeps its "
        "licence's id."))


class NewOrder(Model):
    """A sandbox sale to make (test-mode keys only): one licence tier of one of the
    account's beats on sale, paid in simulation (no Stripe, no money, no payout)."""

    beat_id: str = Field(min_length=1, max_length=200,
                         description="One of the account's beats on sale.")
    tier: str = Field(min_length=1, max_length=100,
                      description="A licence tier the beat offers now (its `tier`).")
    buyer_email: str | None = Field(
        None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$",
        description="The simulated buyer's address, kept in the order's note; never "
                    "mailed.")
    buyer_reference: str | None = Field(
        None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Your own reference for the simulated buyer, kept in the order's "
                    "note.")


class BeatPage(Model):
    """A page of beats, newest first."""

    data: list[Beat]
    next_cursor: str | None


class LicencePage(Model):
    """A page of licences, newest first."""

    data: list[Licence]
    next_cursor: str | None


class OrderPage(Model):
    """A page of orders, oldest first."""

    data: list[Order]
    next_cursor: str | None


class BeatFilter(PublicListing):
    """Beats, filtered by status."""

    status: str | None = Field(None, pattern=f"^({ON_SALE}|{SOLD})$")


class OrderFilter(PublicListing):
    """Orders, filtered by status."""

    status: str | None = Field(None, pattern=f"^({'|'.join(ORDER_STATES)})$")
