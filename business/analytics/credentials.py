"""A connected source's credentials at rest: sealed with Fernet under a key derived from
the server's secret (``PluginContext.derive_key``), or the keys in the plug-in's settings
(``credential_keys``, newest first: the first seals, every one opens)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from business.analytics.sources.base import Credentials

#: What the server's secret is stretched into for sealing source credentials.
KEY_PURPOSE = "analytics source credentials"


class CredentialsError(Exception):
    """Stored credentials cannot be opened with the configured keys."""


class CredentialBox:
    """Seals and opens :class:`Credentials` (the first key seals, every key opens)."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise CredentialsError("sealing credentials needs at least one key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise CredentialsError(f"an analytics 'credential_keys' entry is not a Fernet key "
                                   f"({exc}); make one with Fernet.generate_key()") from None

    @classmethod
    def from_secret(cls, secret: bytes) -> CredentialBox:
        """A box whose one key is ``secret`` (32 bytes)."""
        if len(secret) != 32:
            raise CredentialsError("a derived credential key must be 32 bytes")
        return cls([base64.urlsafe_b64encode(secret)])

    def seal(self, credentials: Credentials) -> str:
        text = json.dumps({"client_id": credentials.client_id,
                           "client_secret": credentials.client_secret,
                           "api_key": credentials.api_key,
                           "refresh_token": credentials.refresh_token})
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, sealed: str) -> Credentials:
        if not sealed:
            return Credentials()
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except InvalidToken:
            raise CredentialsError("a source's stored credentials cannot be read with the "
                                   "configured keys; put the old key back in "
                                   "'credential_keys' or connect the source again") from None
        return Credentials(**{k: str(v) for k, v in data.items()})
