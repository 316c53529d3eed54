"""The marketplace-discovery fee: what the platform keeps of a sale it found the buyer.

A sale is a *discovery* sale when the buyer came through the marketplace's own
discovery (the catalogue, search, charts): the page that links to checkout passes
``utm_source=marketplace``. Only those carry the fee (``discovery_fee_bp`` basis points
of the amount, set in the plug-in's settings; 0, the default, takes none); a sale from
the seller's own storefront, link or promotion carries none. The fee is the Checkout
Session's ``application_fee_amount`` (Stripe moves it to the platform) and is booked to
``platform:fees`` with the sale.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The ``utm_source`` of a buyer the marketplace's discovery sent.
DISCOVERY_SOURCE = "marketplace"
#: The most a fee may be (50 %): a setting above it is refused at start-up.
MAX_BP = 5_000


def is_discovery(referral: Mapping[str, str] | None) -> bool:
    """Whether the buyer came through the marketplace's discovery."""
    return (referral or {}).get("utm_source") == DISCOVERY_SOURCE


def check_fee_bp(value: object) -> int:
    """The ``discovery_fee_bp`` setting as an int of basis points, or a clear error."""
    if type(value) is not int or not 0 <= value <= MAX_BP:
        raise ValueError(f"plugins.marketplace.discovery_fee_bp must be a whole number of "
                         f"basis points from 0 to {MAX_BP} (1000 = 10 %), not {value!r}")
    return value


def discovery_fee(amount: int, basis_points: int, referral: Mapping[str, str] | None
                  ) -> int:
    """The platform's fee on a sale of ``amount`` minor units (rounded half up; 0 for a
    direct sale), never the whole amount."""
    if not is_discovery(referral) or basis_points <= 0 or amount <= 0:
        return 0
    return min(amount - 1, (amount * basis_points + 5_000) // 10_000)
