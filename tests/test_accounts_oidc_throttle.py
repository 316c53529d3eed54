"""OIDC sign-in callbacks are throttled per client address (an IPv6 address's /64) as
password sign-ins are, under the same count: failures of either make both wait."""

from __future__ import annotations

from pathlib import Path

import pytest
from accounts_helpers import Person
from smtp_server import SmtpServer
from test_accounts_oidc_http import come_back, oidc_server, through_provider

pytestmark = pytest.mark.asyncio


async def test_failed_callbacks_and_password_sign_ins_throttle_the_callback(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (_app, config, provider), \
            Person(config.base_url, smtp_server, provider.user.email) as ada, \
            Person(config.base_url, smtp_server, "eve@example.org") as eve:
        # a sign-in that succeeds is no failure of the address
        url, _ = await through_provider(ada, provider)
        assert (await come_back(ada, url))[0] == 302
        forged = url.split("?")[0] + "?state=made-up&code=4%2F0Aabc"
        assert (await come_back(eve, forged))[0] == 400
        for n in range(3):  # other addresses each time: the address's count only
            status, _, _ = await eve.call("POST", "/auth/sign-in", {
                "email": f"nobody{n}@example.org", "password": "wrong password!"})
            assert status == 401
        status, body, headers = await come_back(eve, forged)
        assert status == 429, body
        assert int(headers["Retry-After"]) >= 1
        # a right sign-in from there waits too
        url, _ = await through_provider(ada, provider)
        assert (await come_back(ada, url))[0] == 429
