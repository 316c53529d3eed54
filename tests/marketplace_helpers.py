"""The marketplace's money code in tests: the fake Stripe served on loopback, the gateway
pointed at it (the production code path, only the base address differs), stripe-python's
blocking client for the fake's own tests, and databases on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stripe
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from social_helpers import header_principal
from social_helpers import who as headers_of

from business.marketplace.fakes.stripe import FakeStripe, FakeStripeServer
from business.marketplace.stripe_gateway import StripeGateway, StripeSettings, idempotency_key
from dawserver.plugins import install, load_plugins

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


# -- the plug-in over HTTP ----------------------------------------------------------------------

WEBHOOK = "/api/marketplace/stripe/webhook"


def who(account: str, user: str | None = None, role: str = "owner") -> dict[str, str]:
    """Headers of a request by ``user`` (default: the account's own person) on ``account``."""
    return headers_of(account, user or account, role)
WEBHOOK_SECRET = "whsec_market_tests"


class Assets:
    """Stands in for the platform's asset store: the marketplace's ``asset_file``
    resolver (a setting), answered with files it wrote under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[tuple[str, str], str] = {}

    def add(self, account_id: str, asset_id: str, data: bytes) -> str:
        path = self.root / account_id / asset_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files[(account_id, asset_id)] = str(path)
        return asset_id

    def file(self, account_id: str, asset_id: str) -> str | None:
        return self.files.get((account_id, asset_id))


@dataclass
class Market:
    """A server with the marketplace plug-in, the fake Stripe its webhooks come from, and
    the stand-in asset store."""

    client: TestClient
    fake: FakeStripe
    assets: Assets
    app: web.Application

    async def call(self, method: str, path: str, who: dict[str, str] | None = None,
                   json: Any = None, params: dict[str, Any] | None = None
                   ) -> tuple[int, Any]:
        answer = await self.client.request(method, path, headers=who or {}, json=json,
                                           params=params)
        try:
            body = await answer.json()
        except ValueError:
            body = await answer.read()
        return answer.status, body

    async def seller(self, account: str) -> str:
        """``account`` as a seller whose Stripe onboarding is done."""
        status, body = await self.call("POST", "/api/marketplace/seller/stripe", who(account),
                                       {"return_url": "https://example.com/back",
                                        "refresh_url": "https://example.com/again"})
        assert status == 200, body
        self.fake.complete_onboarding(body["stripe_account"])
        return str(body["stripe_account"])

    async def beat(self, account: str, *, stems: bool = True, **fields: Any) -> dict[str, Any]:
        """A new beat of ``account`` with an mp3, a wav, stems and a tagged preview."""
        files = [{"kind": "tagged_mp3", "asset_id": self.assets.add(
                     account, f"prev-{len(self.assets.files)}", b"ID3 tagged preview")},
                 {"kind": "mp3", "asset_id": self.assets.add(
                     account, f"mp3-{len(self.assets.files)}", b"ID3 the mp3"),
                  "name": "beat.mp3"},
                 {"kind": "wav", "asset_id": self.assets.add(
                     account, f"wav-{len(self.assets.files)}", b"RIFF the wav")}]
        if stems:
            files.append({"kind": "stems", "asset_id": self.assets.add(
                account, f"stems-{len(self.assets.files)}", b"PK the stems")})
        body = {"title": "Night Drive", "bpm": 140, "key": "A minor", "genre": "Trap",
                "mood": "Dark", "tags": ["808", "dark"], "currency": "usd", "files": files,
                **fields}
        status, found = await self.call("POST", "/api/marketplace/beats", who(account), body)
        assert status == 201, found
        return found

    async def checkout(self, buyer: str, seller: str, beat_id: str, tier: str,
                       **more: str) -> tuple[int, Any]:
        return await self.call("POST", "/api/marketplace/checkout", who(buyer), {
            "seller": seller, "beat_id": beat_id, "tier": tier,
            "success_url": "https://example.com/thanks/{ORDER_ID}", **more})

    def pay(self, started: dict[str, Any], card: str = "pm_card_visa") -> None:
        """The buyer pays on Stripe's hosted page."""
        self.fake.complete_checkout(started["checkout_url"].rsplit("/", 1)[1], card)

    async def order(self, buyer: str, order_id: str, *states: str, timeout: float = 15.0
                    ) -> dict[str, Any]:
        """The buyer's order once it reaches one of ``states``."""
        async with asyncio.timeout(timeout):
            while True:
                status, body = await self.call("GET", f"/api/marketplace/orders/{order_id}",
                                               who(buyer))
                assert status == 200, body
                if body["status"] in states:
                    return body
                await asyncio.sleep(0.05)

    async def library(self, buyer: str) -> list[dict[str, Any]]:
        status, body = await self.call("GET", "/api/marketplace/library", who(buyer))
        assert status == 200, body
        return body


@contextlib.asynccontextmanager
async def market(tmp_path: Path, database_url: str, *, plugins: tuple[object, ...] = (),
                 server_config: dict[str, Any] | None = None, **settings: Any
                 ) -> AsyncIterator[Market]:
    """The marketplace plug-in installed on a real server (SQLite or PostgreSQL), paying
    through the fake Stripe with the unmodified client, webhooks signed and retried;
    ``plugins``: more plug-ins registered with it (hook implementations); ``settings``:
    more of the plug-in's settings (``txt_lookup=...``: the stand-in for DNS); ``server_config``:
    more of the server's configuration (``public_url``)."""
    fake = FakeStripe(webhook_secret=WEBHOOK_SECRET)
    assets = Assets(tmp_path / "assets")
    async with FakeStripeServer(fake) as server:
        config = {"data_dir": tmp_path / "data", "database_url": database_url,
                  "plugins": {"marketplace": {"stripe": {
                      "api_key": fake.api_key, "api_base": server.url,
                      "webhook_secret": WEBHOOK_SECRET, "max_network_retries": 0,
                      "timeout": 10}, "asset_file": assets.file, **settings}},
                  **(server_config or {})}
        manager = load_plugins(config)
        for n, extra in enumerate(plugins):
            manager.register(extra, name=f"test-extra-{n}")
        app = web.Application()
        install(app, config, manager=manager, identify=header_principal)
        async with TestClient(TestServer(app)) as client:
            fake.webhooks.url = str(client.make_url(WEBHOOK))
            yield Market(client, fake, assets, app)
            await fake.webhooks.settled()


def market_services(m: Market) -> Any:
    """The started plug-in's objects (store, ledger, ...) of a :class:`Market`."""
    from business.marketplace.services import services
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    return services(m.app[PLUGIN_CONTEXT_KEY])


async def refund_until_reversal_dead(m: Market, queue: Any, order_id: str, *,
                                     buyer: str = "buyer", seller: str = "seller",
                                     timeout: float = 60.0) -> None:
    """``seller`` refunds line ``order_id`` in full; wait until ``buyer``'s order reads
    refunded and the line's reversal job has ended a dead letter of ``queue``."""
    from business.marketplace.split_sales import REVERSAL_JOB

    status, body = await m.call("POST", f"/api/marketplace/sales/{order_id}/refund",
                                who(seller), {})
    assert status == 202, body
    await m.order(buyer, order_id, "refunded")
    async with asyncio.timeout(timeout):
        while not [j for j in await queue.dead_letters(REVERSAL_JOB)
                   if j.payload["order_id"] == order_id]:
            await asyncio.sleep(0.05)
