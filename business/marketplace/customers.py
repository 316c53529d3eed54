"""Who bought a paid order, from its Stripe Checkout Session (``mkt_customers``).

Recorded in the payment's transaction (:mod:`.fulfilment`, :mod:`.cart_fulfilment`),
once per order. The billing country is always kept (the sales report counts by it);
the buyer's name and email only when they ticked Checkout's promotional-emails box
(``consent.promotions == "opt_in"``, asked for by :data:`.checkout.CONSENT`): the
seller's customer CSV (:mod:`.reports`) names nobody else.
"""

from __future__ import annotations

from typing import Any


def consented(session: dict[str, Any]) -> bool:
    """Whether the buyer agreed on the session to hear from the seller."""
    return ((session.get("consent") or {}).get("promotions")) == "opt_in"


async def record(tx: Any, seller: str, order_ids: list[str], buyer: str,
                 session: dict[str, Any], now: float) -> None:
    """Keep the buyer's country (and, if they agreed, name and email) for each order."""
    details = session.get("customer_details") or {}
    country = ((details.get("address") or {}).get("country") or "").upper()[:2] or None
    agreed = consented(session)
    name = (details.get("name") or None) if agreed else None
    email = (details.get("email") or session.get("customer_email") or None) if agreed else None
    for order_id in order_ids:
        await tx.execute(
            "INSERT INTO mkt_customers (account_id, order_id, buyer_account, country, name, "
            "email, consent, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING", seller, order_id, buyer, country, name, email,
            int(agreed), now)
