"""A fake Stripe HTTP API on loopback, driven by the unmodified stripe-python client.

It speaks the part of Stripe the marketplace uses (docs/marketplace.md, "Stripe in
tests"): form-encoded bodies with nested keys, ``expand[]``, list pagination, Stripe's
error objects and statuses, idempotency keys remembered 24 h, Connect (``Stripe-Account``,
accounts, account links, transfers and reversals), balance transactions and payouts
(instant ones too), Checkout, PaymentIntents with Stripe's test cards, refunds, disputes,
subscriptions and invoices with retries, entitlements, and signed webhooks with retries,
duplicates and disorder on command.

Use::

    fake = FakeStripe()
    async with FakeStripeServer(fake) as server:      # or ``with`` for the sync client
        client = stripe.StripeClient(fake.api_key, base_addresses={
            "api": server.url, "connect": server.url, "files": server.url},
            http_client=stripe.AIOHTTPClient())
"""

from __future__ import annotations

from business.marketplace.fakes.stripe.delivery import Attempt, WebhookDelivery, sign
from business.marketplace.fakes.stripe.fake import FakeStripe
from business.marketplace.fakes.stripe.payments import TEST_CARDS
from business.marketplace.fakes.stripe.protocol import StripeFault
from business.marketplace.fakes.stripe.server import FakeStripeServer
from business.marketplace.fakes.stripe.state import PLATFORM

__all__ = ["PLATFORM", "TEST_CARDS", "Attempt", "FakeStripe", "FakeStripeServer",
           "StripeFault", "WebhookDelivery", "sign"]
