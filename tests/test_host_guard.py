"""Another host than the platform's (a seller's custom domain): public reads only."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from accounts_helpers import accounts_server
from smtp_server import SmtpServer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

PLATFORM, SELLER = "studio.example", "beats.seller.example"


async def status_of(base_url: str, method: str, path: str, host: str,
                    headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as http, http.request(
            method, base_url + path, headers={"Host": host, **(headers or {})},
            json={} if method == "POST" else None, allow_redirects=False) as response:
        return response.status


async def test_a_foreign_host_gets_public_reads_and_never_sign_in(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server,
                               public_url=f"https://{PLATFORM}") as (app, config):
        base = f"http://{config.host}:{config.port}"
        # a fully qualified name (the root's trailing dot) is the same host
        for host in (PLATFORM, f"{PLATFORM}:443", f"{PLATFORM}.", f"{PLATFORM.upper()}.:443",
                     "127.0.0.1", "localhost:8080"):
            assert await status_of(base, "GET", "/account/sign-in", host) == 200, host
            assert await status_of(base, "POST", "/auth/sign-in", host) in (400, 401, 422)
        # the seller's domain: the page and static files, nothing that signs in or acts
        assert await status_of(base, "GET", "/", SELLER) == 200
        assert await status_of(base, "GET", "/static/app.css", SELLER) == 200
        for method, path in [("GET", "/account/sign-in"), ("POST", "/auth/sign-in"),
                             ("GET", "/auth/session"), ("GET", "/me"),
                             ("GET", "/api/openapi.json"), ("POST", "/"),
                             ("GET", "/metrics"), ("GET", "/accounts")]:
            assert await status_of(base, method, path, SELLER) == 421, (method, path)
        for headers in ({"Authorization": "Bearer x"}, {"Cookie": "mbs_session=abc"}):
            assert await status_of(base, "GET", "/", SELLER, headers) == 421
        assert await status_of(base, "GET", "/?token=abc", SELLER) == 421
