"""How webhooks are delivered: the ``webhooks`` setting of the server's configuration."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

DAY = 24 * 3600.0


@dataclass(frozen=True)
class WebhookSettings:
    """Delivery rules; ``ServerConfig.webhooks`` overrides any of them by name.

    ``allow_loopback`` lets subscriptions use ``http://`` and loopback addresses (tests,
    local development); ``allow_private`` lets them reach private networks (an
    on-premises install that posts to its own network). Both are off by default: a
    customer must not make the server fetch from the server's own network.
    """

    allow_loopback: bool = False
    allow_private: bool = False
    #: Seconds one attempt may take, connection to last byte.
    timeout_s: float = 10.0
    #: How long a delivery is retried after its first attempt.
    retry_for_s: float = 3 * DAY
    #: First retry delay, doubled each attempt (with jitter) up to ``backoff_cap_s``.
    backoff_base_s: float = 30.0
    backoff_cap_s: float = 6 * 3600.0
    #: A subscription is disabled after this many failed attempts in a row ...
    disable_after_failures: int = 100
    #: ... or when every attempt failed for this long.
    disable_after_s: float = 3 * DAY
    #: Bytes of a receiver's answer kept in the delivery log.
    excerpt_bytes: int = 1024
    #: A settled delivery (delivered or failed) and its attempts are purged this long
    #: after its (last) first attempt; None keeps the log until the webhook is deleted.
    keep_log_s: float | None = 3 * DAY + 30 * DAY
    #: Seconds between runs of the purge (``public_api.retention``).
    purge_every_s: float = 3600.0

    @classmethod
    def from_config(cls, config: Any) -> WebhookSettings:
        """The settings of ``config`` (a ``ServerConfig``, a mapping or None)."""
        raw = (config.get("webhooks") if isinstance(config, dict)
               else getattr(config, "webhooks", None)) or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown webhooks settings {unknown}; known: {sorted(known)}")
        return cls(**raw)
