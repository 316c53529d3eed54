"""Webhook signing secrets at rest: sealed with Fernet under a key derived from the server's.

A database dump alone then forges no deliveries. The key is
``context.derive_key("public_api.webhooks")`` (the platform's key derivation, as the
social plug-in seals channel tokens); Fernet is AES-128-CBC with HMAC-SHA256, from
``cryptography``. Secrets stored in clear before sealing existed (``whsec_...``) are
sealed at startup (:meth:`~.store.WebhookStore.seal_plain_secrets`) and read as they are
until then.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken

#: The purpose the sealing key is derived for.
KEY_PURPOSE = "public_api.webhooks"
#: How a secret stored in clear starts (the Standard Webhooks prefix).
PLAIN_PREFIX = "whsec_"


class SealingError(Exception):
    """A sealed secret that the configured key does not open."""


class SecretBox:
    """Seals and opens webhook secrets with one 32-byte key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"a webhook sealing key is 32 bytes, got {len(key)}; derive it "
                             f"with context.derive_key({KEY_PURPOSE!r})")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, secret: str) -> str:
        """``secret`` encrypted (a Fernet token)."""
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret of a stored value (a clear ``whsec_`` one as it is)."""
        if is_plain(stored):
            return stored
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode()
        except InvalidToken:
            raise SealingError("a webhook secret cannot be opened with this server's key (was "
                               "the server's secret.key replaced?); delete the webhook and "
                               "create it again") from None


def is_plain(stored: str) -> bool:
    """Whether a stored secret is still in clear."""
    return stored.startswith(PLAIN_PREFIX)
