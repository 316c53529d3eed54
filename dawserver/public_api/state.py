"""What the public API keeps per server process: its cursor signer, idempotency store,
usage meter and sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cursor import Cursors
from .idempotency import IdempotencyStore
from .sandbox import Sandbox
from .usage.meter import UsageMeter
from .usage.store import UsageStore

STATE = "public_api"


@dataclass
class PublicApiState:
    """The cursor signer (a key derived from the server's secret), the kept answers, the
    usage meter and the sandbox of test-mode objects."""

    cursors: Cursors
    idempotency: IdempotencyStore
    usage: UsageMeter
    sandbox: Sandbox


def api_state(context: Any) -> PublicApiState:
    """The state of the server whose plug-in context is ``context`` (made on first use)."""
    found = context.state.get(STATE)
    if found is None:
        db = context.database()
        found = context.state[STATE] = PublicApiState(
            Cursors(context.derive_key("public_api.cursor")), IdempotencyStore(db),
            UsageMeter(UsageStore(db)), Sandbox(db))
    return found
