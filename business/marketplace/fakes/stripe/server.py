"""Serves a :class:`~.fake.FakeStripe` on loopback: in the caller's event loop
(``async with``, for stripe-python's async client) or in a thread of its own (``with``,
for the blocking client, which would otherwise wait on the loop it blocks).

Besides ``/v1/...`` it serves the two pages a browser would visit on Stripe: an account
link's onboarding page (``/connect/onboarding/<token>``, redirecting to ``return_url`` or,
once expired or used, ``refresh_url``) and a Checkout Session's hosted page
(``/checkout/pay/<id>``: POST ``payment_method`` to pay, redirected to ``success_url``).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from business.marketplace.fakes.stripe.connect import open_account_link
from business.marketplace.fakes.stripe.fake import FakeStripe
from business.marketplace.fakes.stripe.protocol import StripeFault, parse_form


class FakeStripeServer:
    """``async with FakeStripeServer(fake) as server`` / ``with ...``; ``server.url`` is the
    base address stripe-python is pointed at (``base_addresses={"api": server.url, ...}``)."""

    def __init__(self, fake: FakeStripe, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("start the fake Stripe first (async with / with "
                               "FakeStripeServer(fake))")
        return f"http://{self.host}:{self.port}"

    # -- the application -------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/v1/{tail:.*}", self._api)
        app.router.add_get("/connect/onboarding/{token}", self._onboarding)
        app.router.add_get("/checkout/pay/{sid}", self._checkout_page)
        app.router.add_post("/checkout/pay/{sid}", self._checkout_pay)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        if request.method in ("GET", "DELETE"):
            pairs = list(request.query.items())
        else:
            pairs = parse_qsl(await request.text(), keep_blank_values=True)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "stripe-account", "idempotency-key",
                                    "stripe-version")}
        headers = {_canonical(k): v for k, v in headers.items()}
        try:
            params: dict[str, Any] = parse_form(pairs)
        except StripeFault as fault:
            return web.json_response(fault.body(), status=fault.status)
        answer = self.fake.handle(request.method, request.path, headers, params)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)

    async def _onboarding(self, request: web.Request) -> web.Response:
        try:
            target = open_account_link(self.fake, request.match_info["token"])
        except StripeFault as fault:
            return web.Response(status=fault.status, text=fault.message)
        raise web.HTTPFound(target)

    async def _checkout_page(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        return web.Response(content_type="text/html", text=(
            f"<form method=post><label>Card <input name=payment_method value=pm_card_visa>"
            f"</label><input type=hidden name=session value={sid}><button>Pay</button></form>"))

    async def _checkout_pay(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        form = await request.post()
        try:
            session = self.fake.complete_checkout(
                sid, str(form.get("payment_method", "pm_card_visa")),
                email=str(form.get("email", "buyer@example.com")))
        except (StripeFault, KeyError) as exc:
            return web.Response(status=402, text=str(exc))
        raise web.HTTPSeeOther(session["success_url"].replace("{CHECKOUT_SESSION_ID}", sid))

    # -- in the caller's loop --------------------------------------------------------------

    async def _start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the fake Stripe is running already")
        # idle keep-alive connections of a blocking client are not waited for on stop
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.fake.base_url = self.url
        self.fake.webhooks.start()

    async def _stop(self) -> None:
        await self.fake.webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeStripeServer:
        await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    # -- in a thread of its own ------------------------------------------------------------

    def __enter__(self) -> FakeStripeServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-stripe", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Stripe did not start within 10 s")
        if failure:
            raise failure[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = self._loop = None

    def wait_webhooks(self, timeout: float = 10.0) -> None:
        """Block until every webhook delivery (and retry) is done (thread mode)."""
        if self._loop is None:
            raise RuntimeError("wait_webhooks is for the threaded server; "
                               "await fake.webhooks.settled() in the server's loop")
        asyncio.run_coroutine_threadsafe(self.fake.webhooks.settled(timeout),
                                         self._loop).result(timeout + 1)


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))
