"""The marketplace's money code in tests: the fake Stripe served on loopback, the gateway
pointed at it (the production code path, only the base address differs), stripe-python's
blocking client for the fake's own tests, and databases on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import stripe
from database_helpers import postgres_schema_url

from business.marketplace.fakes.stripe import FakeStripe, FakeStripeServer
from business.marketplace.stripe_gateway import StripeGateway, StripeSettings, idempotency_key

DAY = 86_400


def sync_client(fake: FakeStripe, server: FakeStripeServer, **kwargs: object
                ) -> stripe.StripeClient:
    """The unmodified blocking stripe-python client, pointed at the fake by configuration."""
    url = server.url
    return stripe.StripeClient(fake.api_key, base_addresses={
        "api": url, "connect": url, "files": url}, **kwargs)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def stripe_world(fake: FakeStripe | None = None, *, retries: int = 0
                       ) -> AsyncIterator[tuple[FakeStripe, StripeGateway]]:
    """A fake Stripe in this loop and a gateway talking to it."""
    fake = fake or FakeStripe()
    async with FakeStripeServer(fake) as server, StripeGateway(StripeSettings(
            fake.api_key, api_base=server.url, max_network_retries=retries,
            timeout=10)) as gateway:
        yield fake, gateway


async def onboarded_seller(fake: FakeStripe, gateway: StripeGateway, name: str) -> str:
    """A connected account that finished onboarding (charges, transfers, payouts on)."""
    account = await gateway.create_connected_account(
        idempotency_key=idempotency_key("account", name), email=f"{name}@example.com")
    fake.complete_onboarding(account.id)
    return str(account.id)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file, then a fresh schema of a real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'market.sqlite3'}"
        return
    yield postgres_schema_url(request.getfixturevalue("postgres_url"),
                              f"mk{abs(hash(request.node.name)) % 10**8}")
