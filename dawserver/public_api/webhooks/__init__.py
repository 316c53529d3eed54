"""Developer webhooks: subscriptions to platform events, signed deliveries with retries.

See docs/public-api.md ("Webhooks"). :mod:`.routes` serves ``/api/v1/webhooks``,
:mod:`.delivery` fans events out and runs the delivery jobs, :mod:`.store` keeps the
subscriptions and the delivery log, :mod:`.targets` refuses private addresses,
:mod:`.service` wires them into the server; receivers verify with
:mod:`dawserver.public_api.webhook_signature`.
"""
