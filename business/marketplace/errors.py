"""What the marketplace's money code raises: payment errors mapped from Stripe's, ledger
refusals and webhook refusals.

Every :class:`PaymentError` says whether trying again (with the same idempotency key) can
help (``retryable``), Stripe's ``code`` and ``param`` where it gave them, and the
``request_id`` to quote to Stripe's support.
"""

from __future__ import annotations


class MarketplaceError(Exception):
    """Something the marketplace refuses or cannot do; the message says what to change."""


# -- payments (Stripe) ------------------------------------------------------------------------


class PaymentError(MarketplaceError):
    """Stripe refused or could not answer a call."""

    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.status = status
        self.request_id = request_id


class PaymentDeclined(PaymentError):
    """The card was declined: ask the buyer for another card (``decline_code`` says why:
    ``generic_decline``, ``insufficient_funds``, ``lost_card``, or the error code such as
    ``expired_card`` when Stripe gives no decline code)."""

    def __init__(self, message: str, *, decline_code: str, charge_id: str | None = None,
                 payment_intent_id: str | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.decline_code = decline_code
        self.charge_id = charge_id
        self.payment_intent_id = payment_intent_id


class StripeUnavailable(PaymentError):
    """Stripe could not be reached, failed on its side (5xx) or throttled us (429): retry
    later with the same idempotency key."""

    retryable = True


class IdempotencyMismatch(PaymentError):
    """An idempotency key was reused with different parameters: a bug in the caller (each
    operation must derive its key from what it does)."""


class StripeRejected(PaymentError):
    """Stripe refused the request as invalid (4xx); ``code`` and ``param`` say what."""


class StripeObjectMissing(StripeRejected):
    """The Stripe object does not exist (or belongs to another account)."""


class InsufficientStripeBalance(StripeRejected):
    """The Stripe balance cannot cover a transfer or payout (``balance_insufficient``)."""


class InstantPayoutRefused(StripeRejected):
    """No instant payout now: the account is not eligible (``instant_payouts_unsupported``)
    or the daily limit would be passed (``instant_payouts_limit_exceeded``); offer a
    standard payout."""


class StripeMisconfigured(PaymentError):
    """The API key is wrong, or the connected account is not ours (401/403): fix the
    configuration; retrying cannot help."""


# -- the ledger -------------------------------------------------------------------------------


class LedgerError(MarketplaceError):
    """A posting the ledger refuses."""


class UnbalancedPosting(LedgerError):
    """A posting's entries do not sum to zero in each currency."""


class InsufficientFunds(LedgerError):
    """The posting would take an account that may not go negative below zero."""

    def __init__(self, message: str, *, account: str, currency: str, balance: int,
                 change: int) -> None:
        super().__init__(message)
        self.account = account
        self.currency = currency
        self.balance = balance
        self.change = change


# -- webhooks ---------------------------------------------------------------------------------


class WebhookRejected(MarketplaceError):
    """A webhook request that is not a genuine, fresh Stripe event (answer 400)."""


# -- catalogue, checkout and delivery ---------------------------------------------------------


class CatalogueInvalid(MarketplaceError):
    """A beat or tier that cannot be sold as given (a 422); ``issues`` name each field."""

    def __init__(self, message: str, issues: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []


class NotFoundHere(MarketplaceError):
    """No such beat, order or licence for this account (another account's ids too)."""


class InvitationEnded(MarketplaceError):
    """A collaborator answers a split invitation that was declined or expired (a 409):
    the seller offers the part again to invite them anew."""


class NotForSale(MarketplaceError):
    """The beat or tier cannot be bought now (sold exclusively, held by another buyer's
    exclusive checkout, withdrawn, or the seller cannot take payments yet): a 409."""


class DownloadRefused(MarketplaceError):
    """A download link that is forged, expired, over its licence's limit, or of a
    refunded licence (a 403)."""
