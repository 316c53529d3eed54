"""The marketplace's request and answer models (the routes' validation and the OpenAPI
document's schemas). Amounts are integers of minor units; currencies ISO 4217 codes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dawserver.plugin_api import Model, Query

FileKind = Literal["tagged_mp3", "mp3", "wav", "stems"]
TierName = Literal["mp3_lease", "wav_lease", "trackout_lease", "unlimited", "exclusive"]


class Rights(Model):
    """What a licence allows; None: unlimited."""

    distribution_copies: int | None = Field(None, ge=0)
    audio_streams: int | None = Field(None, ge=0)
    music_videos: int | None = Field(None, ge=0)
    monetized_video_streams: int | None = Field(None, ge=0)
    radio_stations: int | None = Field(None, ge=0)
    live_performances: bool = True


class BeatFileIn(Model):
    """A file of the beat: an asset id of the seller's account and what it is."""

    kind: FileKind
    asset_id: str = Field(min_length=1, max_length=200)
    name: str = Field("", max_length=200)


class TierIn(Model):
    """A licence tier; fields left out take the market's default for the tier."""

    tier: TierName
    price: int | None = Field(None, description="minor units (2999 is 29.99 USD)")
    currency: str | None = Field(None, description="must be the beat's currency")
    name: str | None = Field(None, min_length=1, max_length=80)
    files: list[Literal["mp3", "wav", "stems"]] | None = None
    rights: Rights | None = None
    download_limit: int | None = Field(None, ge=1, le=100)
    active: bool = True


class BeatIn(Model):
    """A beat to sell."""

    title: str = Field(min_length=1, max_length=200)
    bpm: int = Field(ge=20, le=400)
    key: str = Field(min_length=1, max_length=20, description="e.g. 'C minor', 'F# major'")
    genre: str = Field("", max_length=60)
    mood: str = Field("", max_length=60)
    tags: list[str] = Field(default_factory=list, max_length=20)
    currency: str = Field(min_length=1, max_length=8, description="ISO 4217, e.g. usd")
    files: list[BeatFileIn] = Field(min_length=1, max_length=60)
    tiers: list[TierIn] | None = Field(None, description="none: the market's defaults")


class TierPatch(Model):
    """A change to one tier of a beat (an open checkout keeps its price)."""

    price: int | None = None
    currency: str | None = None
    name: str | None = Field(None, min_length=1, max_length=80)
    download_limit: int | None = Field(None, ge=1, le=100)
    active: bool | None = None


class TierOut(Model):
    tier: str
    name: str
    price: int
    currency: str
    files: list[str]
    rights: dict[str, Any]
    exclusive: bool
    download_limit: int
    active: bool


class FileOut(Model):
    file_id: str
    kind: str
    asset_id: str
    name: str


class BeatOut(Model):
    """A beat as anyone sees it (``files`` only for its seller)."""

    seller: str
    beat_id: str
    title: str
    bpm: int
    key: str
    genre: str
    mood: str
    tags: list[str]
    currency: str
    status: str
    preview_asset_id: str | None
    #: The rendered tagged preview (the voice tag mixed in), when there is one.
    preview_url: str | None = None
    created_at: float
    tiers: list[TierOut]
    files: list[FileOut] | None = None


class CatalogueQuery(Query):
    """Filters of the public catalogue; ``cursor``: the previous page's ``next_cursor``."""

    seller: str = ""
    bpm_min: int | None = Field(None, ge=0)
    bpm_max: int | None = Field(None, ge=0)
    key: str = ""
    genre: str = ""
    mood: str = ""
    currency: str = ""
    price_min: int | None = Field(None, ge=0, description="some tier costs at least this")
    price_max: int | None = Field(None, ge=0, description="some tier costs at most this")
    limit: int = Field(24, ge=1, le=100)
    cursor: str = ""


class CataloguePage(Model):
    items: list[BeatOut]
    next_cursor: str | None


class SellerOut(Model):
    """The seller's connected Stripe account and where to finish onboarding."""

    stripe_account: str
    onboarding_url: str | None


class ConnectIn(Model):
    """Where Stripe sends the seller back after onboarding."""

    return_url: str = Field(min_length=1, max_length=2000)
    refresh_url: str = Field(min_length=1, max_length=2000)
    email: str | None = Field(None, max_length=320)
    country: str = Field("US", min_length=2, max_length=2)


class CheckoutIn(Model):
    """What to buy: one tier of one beat of one seller."""

    seller: str = Field(min_length=1, max_length=200)
    beat_id: str = Field(min_length=1, max_length=100)
    tier: TierName
    success_url: str | None = Field(None, max_length=2000,
                                    description="{ORDER_ID} is replaced by the order's id")
    cancel_url: str | None = Field(None, max_length=2000)
    email: str | None = Field(None, max_length=320)
    ref: str = Field("", max_length=64, description="a social short link's code, if the "
                     "buyer came by one (the storefront passes it on)")
    utm_source: str = Field("", max_length=100)
    utm_campaign: str = Field("", max_length=200)
    coupon: str | None = Field(None, max_length=32, description="a coupon code of the seller")


class CouponIn(Model):
    """A coupon: ``value`` percent (1-100) or minor units of ``currency`` off one tier."""

    kind: Literal["percent", "fixed"]
    value: int = Field(gt=0)
    currency: str | None = Field(None, min_length=3, max_length=3)
    beat_id: str | None = Field(None, max_length=100, description="none: every beat")
    expires_at: float | None = Field(None, description="unix time")
    max_uses: int | None = Field(None, gt=0)


class CouponOut(CouponIn):
    code: str
    uses: int


class SaleEvent(Model):
    """The ``marketplace.sale`` event: an order was paid (never who bought: no buyer id or
    address), with where the buyer came from. Hooks receive it with ``event_id`` added."""

    account_id: str
    order_id: str
    beat_id: str
    tier: str
    amount_cents: int
    currency: str
    ref: str = ""
    utm_source: str = ""
    utm_campaign: str = ""
    at: float


class OrderOut(Model):
    seller: str
    order_id: str
    beat_id: str
    tier: str
    amount: int
    currency: str
    exclusive: bool
    status: str
    note: str
    created_at: float
    paid_at: float | None
    refunded_at: float | None
    #: A sandbox sale (a test-mode API key's, simulated: no money moved).
    sandbox: bool = False


class CheckoutOut(Model):
    """The order and the Stripe Checkout page to pay it on."""

    order: OrderOut
    checkout_url: str
    expires_at: int


class LinkOut(Model):
    file_id: str
    kind: str
    name: str
    url: str
    expires_at: int


class LicenceOut(Model):
    """A licence in the buyer's library, with fresh download links."""

    licence_id: str
    seller: str
    order_id: str
    beat_id: str
    title: str
    tier: str
    exclusive: bool
    rights: dict[str, Any]
    status: str
    downloads: int
    download_limit: int
    granted_at: float
    links: list[LinkOut]
    #: The licence's contract PDF (None until the job has written it, seconds after).
    contract_url: str | None = None
    #: A sandbox sale's licence (a test-mode API key's: no money moved, no real rights).
    sandbox: bool = False


class WebhookOut(Model):
    """What became of one Stripe delivery."""

    outcome: str


class DownloadQuery(Query):
    """The signed link's expiry and signature."""

    expires: int = 0
    signature: str = Field("", max_length=128)


class DealIn(Model):
    """A bulk deal: buy ``buy`` lines, get ``free`` more free (of ``tiers``; none: every
    lease)."""

    buy: int = Field(ge=1, le=20)
    free: int = Field(ge=1, le=20)
    tiers: list[str] = Field(default_factory=list, max_length=10)
    active: bool = True


class DealOut(Model):
    deal_id: str
    buy: int
    free: int
    tiers: list[str]
    active: bool
    label: str


class CartItemIn(Model):
    """The tier of a beat to put in the cart."""

    tier: str = Field(min_length=1, max_length=64)
    utm_source: str = Field("", max_length=100, description="where the buyer came from "
                            "('marketplace' for the marketplace's discovery: the line then "
                            "carries the discovery fee)")


class CartLineOut(Model):
    beat_id: str
    title: str
    tier: str
    tier_name: str
    price: int
    amount: int
    free: bool
    exclusive: bool
    currency: str
    source: str = ""


class CartOut(Model):
    """A cart in one store, priced now with the seller's best deal."""

    seller: str
    lines: list[CartLineOut]
    deal: DealOut | None
    subtotal: int
    total: int
    currency: str | None
    total_text: str
    unavailable: list[dict[str, str]]


class CartCheckoutIn(Model):
    success_url: str | None = Field(None, max_length=2000)
    cancel_url: str | None = Field(None, max_length=2000)
    email: str | None = Field(None, max_length=254)
    coupon: str | None = Field(None, max_length=32, description="a coupon code of the seller")


class CartCheckoutOut(Model):
    """The cart's orders (one per line) and the one Stripe Checkout page to pay them."""

    cart_id: str
    orders: list[OrderOut]
    checkout_url: str
    expires_at: int
    total: int
    currency: str


class PreviewPayload(Model):
    """The ``marketplace.preview`` job: render one beat's tagged preview."""

    seller: str
    beat_id: str
    version: str


class VoiceTagIn(Model):
    """The seller's voice tag: an audio asset of theirs, its gain, where it goes."""

    asset_id: str = Field(min_length=1, max_length=128)
    gain_db: float = Field(-3.0, ge=-40.0, le=6.0)
    interval_s: float = Field(30.0, ge=2.0, le=600.0)
    first_s: float = Field(0.0, ge=0.0, le=600.0)


class VoiceTagOut(Model):
    """The voice tag (null: none set) and the preview jobs a change queued."""

    voice_tag: dict[str, Any] | None
    jobs: list[str] = []


class PreviewOut(Model):
    """A beat's tagged preview: its state and its job's progress."""

    status: str
    job_id: str | None
    error: str
    sha256: str | None
    duration_s: float | None
    current: bool
    progress: float | None = None
    job_state: str | None = None
    url: str | None = None


class ContractPayload(Model):
    """The ``marketplace.contract`` job: write one licence's contract PDF."""

    seller: str
    licence_id: str


class ContractTemplateIn(Model):
    """A seller's licence contract template (Jinja2 text; null: the default wording)."""

    template: str | None = Field(default=None, max_length=64 * 1024)


class ContractTemplateOut(Model):
    """The seller's contract template, its last failure on live data, the default."""

    template: str | None
    last_error: str
    updated_at: float | None
    default_template: str


class RefundPayload(Model):
    """The ``marketplace.refund`` job: refund one order in full."""

    seller: str
    order_id: str


class PayeeShare(Model):
    """One payee of a split line: their account, connected Stripe account and share."""

    collaborator: str
    stripe_account: str
    basis_points: int


class SplitTransfersPayload(Model):
    """The ``marketplace.split_transfers`` job: pay one line's payees their parts."""

    seller: str
    order_id: str
    charge: str
    amount: int
    currency: str
    transfer_group: str
    shares: list[PayeeShare]


class SplitHoldsPayload(Model):
    """The ``marketplace.split_holds`` job: pay out ``collaborator``'s held parts of
    ``seller``'s ``beat_id`` as their invitation stands."""

    seller: str
    beat_id: str
    collaborator: str


class SplitReversalPayload(Model):
    """The ``marketplace.split_reversal`` job: take ``taken/of`` of a line's transfers
    back (a refund of ``taken`` out of the line's ``of``)."""

    seller: str
    order_id: str
    taken: int
    of: int
    cause: str
