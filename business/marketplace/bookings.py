"""What each money event posts: the ledger's recipes, one function per kind of event.

Each returns a balanced :class:`~business.marketplace.ledger.Posting` for a seller's
books. ``mirror`` is the ledger account that mirrors the Stripe balance the money sits
in: ``seller:balance`` (the seller's connected account: direct sales, payouts) or
``platform:clearing`` (the platform's account: separate charges awaiting their
transfers). Its entry equals the Stripe balance transaction's ``net``, which is what
:mod:`business.marketplace.reconciliation` checks.

======================  =====================================================================
event                   entries
======================  =====================================================================
sale                    external:buyers -gross; external:stripe_fees +fee;
                        platform:fees +platform fee; mirror +net
refund                  mirror -amount; external:refunds +amount
dispute opened          mirror -(amount + fee); external:disputes +amount;
                        external:stripe_fees +fee
dispute won             external:disputes -amount; mirror +amount
transfer out / in       platform:clearing -amount; external:transfers_out +amount /
                        external:transfers_in -amount; seller:balance +amount
transfer reversed       the transfer's entries, negated
payout                  mirror -(amount + fee); external:bank +amount;
                        external:stripe_fees +fee
payout failed/returned  external:bank -amount; mirror +amount
======================  =====================================================================
"""

from __future__ import annotations

from business.marketplace.ledger import Posting, entries

SELLER = "seller:balance"
CLEARING = "platform:clearing"


def sale(key: str, currency: str, *, gross: int, stripe_fee: int, platform_fee: int = 0,
         stripe_txn: str | None = None, mirror: str = SELLER) -> Posting:
    """A buyer paid ``gross``; Stripe kept ``stripe_fee``; the platform takes its fee."""
    net = gross - stripe_fee - platform_fee
    return Posting(key, "sale", entries(
        ("external:buyers", -gross), ("external:stripe_fees", stripe_fee),
        ("platform:fees", platform_fee), (mirror, net), currency=currency),
        stripe_txn=stripe_txn)


def refund(key: str, currency: str, *, amount: int, stripe_txn: str | None = None,
           mirror: str = SELLER, imposed: bool = False) -> Posting:
    """Money went back to the buyer (``imposed``: booked from Stripe's word that it did,
    even if it takes the mirror below zero, as Stripe's balance goes)."""
    return Posting(key, "refund", entries((mirror, -amount), ("external:refunds", amount),
                                          currency=currency), stripe_txn=stripe_txn,
                   imposed=imposed)


def dispute_opened(key: str, currency: str, *, amount: int, fee: int,
                   stripe_txn: str | None = None, mirror: str = SELLER) -> Posting:
    """The cardholder's bank took the money back (imposed: Stripe already debited it)."""
    return Posting(key, "dispute", entries(
        (mirror, -(amount + fee)), ("external:disputes", amount),
        ("external:stripe_fees", fee), currency=currency), stripe_txn=stripe_txn,
        imposed=True)


def dispute_won(key: str, currency: str, *, amount: int, stripe_txn: str | None = None,
                mirror: str = SELLER) -> Posting:
    return Posting(key, "dispute_won", entries(
        ("external:disputes", -amount), (mirror, amount), currency=currency),
        stripe_txn=stripe_txn)


def transfer_out(key: str, currency: str, *, amount: int, stripe_txn: str | None = None
                 ) -> Posting:
    """The platform sent a collaborator's share to their connected account."""
    return Posting(key, "transfer_out", entries(
        (CLEARING, -amount), ("external:transfers_out", amount), currency=currency),
        stripe_txn=stripe_txn)


def transfer_in(key: str, currency: str, *, amount: int, stripe_txn: str | None = None
                ) -> Posting:
    """A share arrived in this seller's connected account."""
    return Posting(key, "transfer_in", entries(
        ("external:transfers_in", -amount), (SELLER, amount), currency=currency),
        stripe_txn=stripe_txn)


def transfer_reversed_out(key: str, currency: str, *, amount: int,
                          stripe_txn: str | None = None) -> Posting:
    """The platform took a share back (a refund or dispute of the sale)."""
    return Posting(key, "transfer_reversal", entries(
        ("external:transfers_out", -amount), (CLEARING, amount), currency=currency),
        stripe_txn=stripe_txn)


def transfer_reversed_in(key: str, currency: str, *, amount: int,
                         stripe_txn: str | None = None) -> Posting:
    """A share was taken back from this seller's connected account."""
    return Posting(key, "transfer_reversal", entries(
        (SELLER, -amount), ("external:transfers_in", amount), currency=currency),
        stripe_txn=stripe_txn)


def payout(key: str, currency: str, *, amount: int, fee: int = 0,
           stripe_txn: str | None = None, mirror: str = SELLER) -> Posting:
    """Money left for the seller's bank or card (``fee``: an instant payout's)."""
    return Posting(key, "payout", entries(
        (mirror, -(amount + fee)), ("external:bank", amount), ("external:stripe_fees", fee),
        currency=currency), stripe_txn=stripe_txn)


def payout_failed(key: str, currency: str, *, amount: int, stripe_txn: str | None = None,
                  mirror: str = SELLER) -> Posting:
    """The bank refused or returned a payout: the money is the seller's again."""
    return Posting(key, "payout_failed", entries(
        ("external:bank", -amount), (mirror, amount), currency=currency),
        stripe_txn=stripe_txn)
