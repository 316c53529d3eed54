"""The marketplace: producers sell beats, stems and sample packs from their own storefront.

Built so far is the money foundation: :mod:`.stripe_gateway` (every call we make to
Stripe, through the official stripe-python client, with an idempotency key on every
write), :mod:`.webhooks` (``Stripe-Signature`` verification and the inbox rule for events),
:mod:`.ledger` (double-entry bookkeeping in integer minor units, no balance below zero)
and :mod:`.errors`. The fake Stripe for tests lives in :mod:`business.marketplace.fakes`;
the plug-in wiring, routes, catalogue and storefront come later (docs/marketplace.md).
"""
