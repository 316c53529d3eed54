"""The marketplace's records: beats and their licence tiers, orders and licences.

Amounts are integers of the currency's minor units (cents); currencies are lower-case
ISO 4217 codes as Stripe writes them. Rows are kept under the seller's ``account_id``;
the buyer of an order or licence is its ``buyer_account``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: File kinds a beat may carry; ``tagged_mp3`` is the public preview, never delivered.
FILE_KINDS = ("tagged_mp3", "mp3", "wav", "stems")
#: Beat states: on sale, or taken off sale by an exclusive sale.
ON_SALE, SOLD = "on_sale", "sold_exclusive"
#: Order states. ``processing``: its Checkout Session completed with a delayed method
#: (a bank debit) whose money has not arrived; its exclusive stays held meanwhile.
OPEN, PROCESSING, PAID, REFUNDING, REFUNDED, EXPIRED, FAILED = (
    "open", "processing", "paid", "refunding", "refunded", "expired", "failed")
#: States of an order still waiting for its payment (a checkout not closed).
WAITING = (OPEN, PROCESSING)
#: States a payment arriving now fulfils (or refunds, for an exclusive sold meanwhile).
UNPAID = (*WAITING, EXPIRED, FAILED)
#: Licence states.
ACTIVE, REVOKED = "active", "refunded"


@dataclass(frozen=True)
class BeatFile:
    """One file of a beat: a platform asset of the seller's account."""

    file_id: str
    kind: str
    asset_id: str
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "kind": self.kind, "asset_id": self.asset_id,
                "name": self.name}


@dataclass(frozen=True)
class Tier:
    """A licence tier of one beat: what it delivers, the rights it grants, its price."""

    tier: str
    name: str
    price: int
    currency: str
    files: tuple[str, ...]
    rights: dict[str, Any]
    exclusive: bool
    download_limit: int
    active: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"tier": self.tier, "name": self.name, "price": self.price,
                "currency": self.currency, "files": list(self.files), "rights": self.rights,
                "exclusive": self.exclusive, "download_limit": self.download_limit,
                "active": self.active}


@dataclass
class Beat:
    """A beat of a seller, its files and tiers."""

    account_id: str
    beat_id: str
    title: str
    bpm: int
    key: str
    genre: str
    mood: str
    tags: list[str]
    currency: str
    status: str
    created_at: float
    files: list[BeatFile] = field(default_factory=list)
    tiers: list[Tier] = field(default_factory=list)
    reserved_order: str | None = None
    reserved_until: float | None = None
    #: The digest of the rendered tagged preview (None: none rendered; the uploaded
    #: ``tagged_mp3``, if any, is the preview).
    preview_sha256: str | None = None

    @property
    def preview_path(self) -> str | None:
        """Where the rendered tagged preview is served (None: not rendered)."""
        if not self.preview_sha256:
            return None
        return (f"/api/marketplace/previews/{self.account_id}/{self.beat_id}"
                f"?v={self.preview_sha256[:16]}")

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.tiers if t.tier == name), None)

    def public(self) -> dict[str, Any]:
        """What anyone sees: no asset ids but the preview's."""
        preview = next((f.asset_id for f in self.files if f.kind == "tagged_mp3"), None)
        return {"seller": self.account_id, "beat_id": self.beat_id, "title": self.title,
                "bpm": self.bpm, "key": self.key, "genre": self.genre, "mood": self.mood,
                "tags": self.tags, "currency": self.currency, "status": self.status,
                "preview_asset_id": preview, "preview_url": self.preview_path,
                "created_at": self.created_at,
                "tiers": [t.to_json() for t in self.tiers if t.active]}

    def owned(self) -> dict[str, Any]:
        """What the seller sees: every tier and file."""
        return {**self.public(), "tiers": [t.to_json() for t in self.tiers],
                "files": [f.to_json() for f in self.files]}


@dataclass(frozen=True)
class Order:
    """One checkout of one tier of one beat by one buyer."""

    account_id: str
    order_id: str
    beat_id: str
    tier: str
    buyer_account: str
    amount: int
    currency: str
    exclusive: bool
    status: str
    stripe_account: str
    session_id: str | None
    payment_intent: str | None
    note: str
    created_at: float
    paid_at: float | None = None
    refunded_at: float | None = None
    #: Set when the order was paid by a separate charge on the platform's Stripe account
    #: (a cart holding a split beat, :mod:`.split_sales`): the charge's transfer group,
    #: which the transfers to the line's payees carry. None: a direct charge on the
    #: seller's connected account.
    transfer_group: str | None = None
    #: A sandbox sale (a test-mode API key's simulated checkout): no money moved, so
    #: reports, refunds and live counters leave it out.
    sandbox: bool = False

    @property
    def charged_on(self) -> str | None:
        """The Stripe account the payment sits on: the seller's connected account, or
        None (the platform's own) for a separate charge."""
        return None if self.transfer_group else self.stripe_account

    def to_json(self) -> dict[str, Any]:
        return {"seller": self.account_id, "order_id": self.order_id,
                "beat_id": self.beat_id, "tier": self.tier, "amount": self.amount,
                "currency": self.currency, "exclusive": self.exclusive,
                "status": self.status, "note": self.note, "created_at": self.created_at,
                "paid_at": self.paid_at, "refunded_at": self.refunded_at,
                "sandbox": self.sandbox}


@dataclass(frozen=True)
class Licence:
    """What a buyer holds after paying: files to download, rights, a download allowance."""

    account_id: str
    licence_id: str
    order_id: str
    beat_id: str
    tier: str
    buyer_account: str
    title: str
    files: list[BeatFile]
    rights: dict[str, Any]
    exclusive: bool
    downloads: int
    download_limit: int
    status: str
    granted_at: float
    #: Granted by a sandbox sale (read from its order; :meth:`.MarketStore.insert_licence`
    #: takes it apart).
    sandbox: bool = False

    def file(self, file_id: str) -> BeatFile | None:
        return next((f for f in self.files if f.file_id == file_id), None)
