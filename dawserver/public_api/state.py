"""What the public API keeps per server process: its cursor signer and idempotency store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cursor import Cursors
from .idempotency import IdempotencyStore

STATE = "public_api"


@dataclass
class PublicApiState:
    """The cursor signer (a key derived from the server's secret) and the kept answers."""

    cursors: Cursors
    idempotency: IdempotencyStore


def api_state(context: Any) -> PublicApiState:
    """The state of the server whose plug-in context is ``context`` (made on first use)."""
    found = context.state.get(STATE)
    if found is None:
        found = context.state[STATE] = PublicApiState(
            Cursors(context.derive_key("public_api.cursor")),
            IdempotencyStore(context.database()))
    return found
