"""Social scheduling: channels on eight networks, a composer with per-network variants,
approvals, idempotent dispatch through the job queue, metrics and listening.

Loaded as a plug-in (see :mod:`business.social.plugin`); the core never imports it. The
network connectors live in :mod:`business.social.networks`, their fakes (for tests only) in
:mod:`business.social.fakes`.
"""
