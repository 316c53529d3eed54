"""Channel tokens at rest, and the refresh rule.

Tokens are sealed with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``)
under a :class:`~cryptography.fernet.MultiFernet`: the first key seals, every key
opens, so a new key is added in front and the stored tokens re-sealed
(:meth:`TokenBox.reseal`) before an old key is dropped. Keys come from the plug-in's
settings (``token_keys``: Fernet keys, newest first) or are derived from the
server's secret.

The refresh rule (:func:`merge_refresh`): a refresh token is never replaced by an
empty one. A network that answers a refresh without a refresh token keeps the one we
hold; any other answer's is taken. Answers are ordered by the token generation they
were asked over (the store's compare-and-set), never by wall clocks.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from business.social.errors import SocialError
from business.social.models import ChannelTokens
from business.social.networks.base import OAuthTokens


class TokenBox:
    """Seals and opens tokens with a list of Fernet keys (the first one seals)."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise SocialError("token encryption needs at least one key: set the social "
                              "plug-in's 'token_keys' or let it derive one from the server")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise SocialError(f"a social 'token_keys' entry is not a Fernet key ({exc}); "
                              "make one with cryptography's Fernet.generate_key()") from None

    @classmethod
    def from_secret(cls, secret: bytes) -> TokenBox:
        """A box whose one key is ``secret`` (32 bytes, e.g. derived from the server's)."""
        if len(secret) != 32:
            raise SocialError("a derived token key must be 32 bytes")
        return cls([base64.urlsafe_b64encode(secret)])

    def seal(self, value: str) -> str:
        """``value`` encrypted with the first key ('' stays '': no token)."""
        if not value:
            return ""
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """What :meth:`seal` sealed, with any of the keys."""
        if not sealed:
            return ""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise SocialError("a stored channel token cannot be read with the configured "
                              "keys (was a key dropped before the tokens were re-sealed?); "
                              "put the old key back in 'token_keys' or reconnect the "
                              "channel") from None

    def reseal(self, sealed: str) -> str:
        """``sealed`` sealed again with the first key (key rotation)."""
        if not sealed:
            return ""
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SocialError("a stored channel token cannot be re-sealed: no configured "
                              "key opens it") from None


@dataclass(frozen=True)
class Merged:
    """The tokens to store after a refresh, and whether the refresh token changed."""

    tokens: ChannelTokens
    refresh_replaced: bool


def merge_refresh(current: ChannelTokens, answer: OAuthTokens, issued_at: float) -> Merged:
    """The tokens to keep after a refresh answered ``answer`` at ``issued_at``.

    The answer is the newest: its write is guarded by the generation and lease it was
    asked under (compare-and-set), so no wall clock orders it (processes' clocks differ).
    Its access token and expiry are taken, and its refresh token whenever it sent a
    non-empty one (a network that rotates has just spent the one held); an empty one
    never overwrites the one held.
    """
    take_refresh = bool(answer.refresh_token)
    return Merged(ChannelTokens(
        access_token=answer.access_token or current.access_token,
        refresh_token=answer.refresh_token if take_refresh else current.refresh_token,
        expires_at=answer.expires_at if answer.access_token else current.expires_at,
        scope=answer.scope or current.scope,
        generation=current.generation + 1,
        issued_at=issued_at,
        refresh_issued_at=issued_at if take_refresh else current.refresh_issued_at,
    ), take_refresh and answer.refresh_token != current.refresh_token)
