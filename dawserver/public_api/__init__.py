"""The public API for third parties: REST under ``/api/v1`` and GraphQL at ``/api/graphql``.

Both are thin adapters over the core's services (the collaboration store and rooms,
the asset stores, the job queue's bounces, the account service). The conventions of
``/api/v1`` are each implemented once, in a module of their own: opaque signed cursors
(:mod:`.cursor`), sparse fields (:mod:`.fields`), ETags and preconditions
(:mod:`.conditional`), idempotency keys on POST (:mod:`.idempotency`), answers
(:mod:`.respond`). Developer webhooks (signed deliveries of platform events) live in
:mod:`.webhooks`, and receivers verify them with :mod:`.webhook_signature`. See
docs/public-api.md.
"""
