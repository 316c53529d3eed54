"""Sign in with an OpenID provider on a running server, the provider local over TLS.

The browser (one cookie jar) opens ``/auth/oidc/fake/start``, follows the
provider's redirect back to the callback, and is signed in with the session
cookie; the fake provider (tests/fake_oidc.py) checks the client's secret, the
redirect URI and PKCE as a real one does.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pyotp
import pytest
from accounts_helpers import Person, accounts_server
from fake_oidc import FakeOidcProvider, FakeUser
from loopback import free_port
from smtp_server import SmtpServer

from accounts.models import AccountStatus
from dawserver.keys import ACCOUNTS, CONFIG, DATABASE
from dawserver.oidc_routes import OIDC
from dawserver.sign_in_binding import BINDING_COOKIE, binding_cookie

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def oidc_server(tmp_path: Path, smtp: SmtpServer, user: FakeUser | None = None,
                      client_id: str | None = None
                      ) -> AsyncIterator[tuple[Any, Any, FakeOidcProvider]]:
    """A server whose provider ``fake`` is a local one; ``client_id`` as configured here."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}/auth/oidc/fake/callback"
    async with FakeOidcProvider(redirect_uris=(callback,), user=user) as provider:
        assert provider.trust is not None
        ca_file = tmp_path / "provider-ca.pem"
        ca_file.write_text("".join(ssl.DER_cert_to_PEM_cert(der) for der in
                                   provider.trust.get_ca_certs(binary_form=True)))
        providers = {"fake": {"issuer": provider.issuer,
                              "client_id": client_id or provider.client_id,
                              "client_secret": provider.client_secret,
                              "ca_file": str(ca_file)}}
        async with accounts_server(tmp_path, smtp, port=port,
                                   sign_in_providers=providers) as (app, config):
            yield app, config, provider


async def through_provider(person: Person, provider: FakeOidcProvider, next_path: str = ""
                           ) -> tuple[str, dict[str, str]]:
    """Start at the server (returning to ``next_path``) and pass the provider: the callback
    URL and its query."""
    query = f"?{urlencode({'next': next_path})}" if next_path else ""
    async with person.http.get(person.base_url + "/auth/oidc/fake/start" + query,
                               allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        authorize = response.headers["Location"]
    assert authorize.startswith(provider.issuer + "/authorize?")
    trusting = aiohttp.TCPConnector(ssl=provider.trust)
    async with aiohttp.ClientSession(connector=trusting) as browser, \
            browser.get(authorize, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        back = response.headers["Location"]
    return back, dict(parse_qsl(urlsplit(back).query))


def sets_session(headers: Any) -> bool:
    """Whether an answer's headers set (or clear) the session cookie."""
    return any(v.startswith("mbs_session=") for v in headers.getall("Set-Cookie", []))


async def come_back(person: Person, url: str) -> tuple[int, Any, Any]:
    async with person.http.get(url, allow_redirects=False) as response:
        body = (await response.json() if response.content_type == "application/json"
                else await response.read())
        return response.status, body, response.headers


async def test_a_newcomer_signs_in_with_the_provider_and_is_signed_in(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (app, config, provider):
        ada = Person(config.base_url, smtp_server, provider.user.email)
        try:
            assert (await ada.call("GET", "/me"))[0] == 401
            url, _ = await through_provider(ada, provider)
            status, _, headers = await come_back(ada, url)
            assert status == 302 and headers["Location"] == "/"
            assert "mbs_session=" in headers["Set-Cookie"]
            assert "HttpOnly" in headers["Set-Cookie"]
            status, me, _ = await ada.call("GET", "/me")
            assert status == 200, me
            assert me["person"]["email"] == provider.user.email
            assert me["person"]["email_verified"] is True
            assert me["person"]["name"] == provider.user.name
            person = await app[ACCOUNTS].store.person_by_identity(provider.issuer,
                                                                 provider.user.subject)
            assert person is not None and person.account_id == me["person"]["id"]
            assert person.password_hash is None
            # a second sign-in finds the same person through the linked identity
            other = Person(config.base_url, smtp_server, provider.user.email)
            try:
                url, _ = await through_provider(other, provider)
                assert (await come_back(other, url))[0] == 302
                assert (await other.call("GET", "/me"))[1]["person"]["id"] == person.account_id
            finally:
                await other.close()
        finally:
            await ada.close()


async def test_an_existing_person_with_the_verified_address_is_linked(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (app, config, provider):
        ada = Person(config.base_url, smtp_server, provider.user.email)
        browser = Person(config.base_url, smtp_server, provider.user.email)
        try:
            await ada.sign_up_and_in("Ada")
            url, _ = await through_provider(browser, provider)
            assert (await come_back(browser, url))[0] == 302
            status, me, _ = await browser.call("GET", "/me")
            assert status == 200 and me["person"]["id"] == ada.id
            linked = await app[ACCOUNTS].store.person_by_identity(provider.issuer,
                                                                 provider.user.subject)
            assert linked is not None and linked.account_id == ada.id
        finally:
            await ada.close()
            await browser.close()


async def test_an_unverified_provider_address_never_takes_an_existing_account(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    user = FakeUser(subject="attacker-1", email="ada@example.com", email_verified=False)
    async with oidc_server(tmp_path, smtp_server, user=user) as (app, config, provider):
        ada = Person(config.base_url, smtp_server, "ada@example.com")
        mallory = Person(config.base_url, smtp_server, "ada@example.com")
        try:
            await ada.sign_up_and_in("Ada")
            before = await app[ACCOUNTS].store.accounts()
            url, _ = await through_provider(mallory, provider)
            status, body, headers = await come_back(mallory, url)
            assert status == 403, body
            assert "not verified the address" in body["error"]
            assert "Set-Cookie" not in headers
            assert (await mallory.call("GET", "/me"))[0] == 401
            assert await app[ACCOUNTS].store.person_by_identity(provider.issuer,
                                                               "attacker-1") is None
            assert len(await app[ACCOUNTS].store.accounts()) == len(before)
        finally:
            await ada.close()
            await mallory.close()


async def test_a_replayed_state_is_refused(tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (_, config, provider):
        first = Person(config.base_url, smtp_server, provider.user.email)
        thief = Person(config.base_url, smtp_server, provider.user.email)
        try:
            url, _ = await through_provider(first, provider)
            assert (await come_back(first, url))[0] == 302
            status, body, headers = await come_back(thief, url)
            assert status == 400 and "start it again" in body["error"]
            assert "Set-Cookie" not in headers
            assert (await thief.call("GET", "/me"))[0] == 401
            forged = url.split("?")[0] + "?state=made-up&code=4%2F0Aabc"
            assert (await come_back(thief, forged))[0] == 400
        finally:
            await first.close()
            await thief.close()


async def test_an_id_token_for_another_audience_is_refused_without_a_cookie(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (app, config, provider):
        provider.id_token_overrides["aud"] = "someone-else.apps.example"
        ada = Person(config.base_url, smtp_server, provider.user.email)
        try:
            url, _ = await through_provider(ada, provider)
            status, body, headers = await come_back(ada, url)
            assert status == 400, body
            assert "audience" in body["error"] and "someone-else" in body["error"]
            assert "Set-Cookie" not in headers
            assert (await ada.call("GET", "/me"))[0] == 401
            assert await app[ACCOUNTS].store.person_by_email(provider.user.email) is None
        finally:
            await ada.close()


async def test_an_unknown_provider_is_404(tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (_, config, provider):
        person = Person(config.base_url, smtp_server, provider.user.email)
        try:
            status, body, _ = await person.call("GET", "/auth/oidc/nowhere/start")
            assert status == 404 and "fake" in body["error"]
        finally:
            await person.close()


async def test_a_disabled_person_is_not_signed_in(tmp_path: Path,
                                                  smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (app, config, provider):
        ada = Person(config.base_url, smtp_server, provider.user.email)
        try:
            await ada.sign_up_and_in("Ada")
            await app[ACCOUNTS].store.update_account(ada.id, status=AccountStatus.DISABLED)
            browser = Person(config.base_url, smtp_server, provider.user.email)
            try:
                url, _ = await through_provider(browser, provider)
                status, body, headers = await come_back(browser, url)
                assert status == 403 and "disabled" in body["error"]
                assert "Set-Cookie" not in headers
            finally:
                await browser.close()
        finally:
            await ada.close()


async def test_a_person_with_two_step_sign_in_gives_a_code_after_the_provider(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (_, config, provider):
        ada = Person(config.base_url, smtp_server, provider.user.email)
        browser = Person(config.base_url, smtp_server, provider.user.email)
        try:
            await ada.sign_up_and_in("Ada")
            _, setup, _ = await ada.call("POST", "/me/two-factor", {})
            totp = pyotp.TOTP(setup["secret"])
            status, _, _ = await ada.call("POST", "/me/two-factor/enable",
                                          {"code": totp.now()})
            assert status == 200
            url, _ = await through_provider(browser, provider, "/account/team")
            status, _, headers = await come_back(browser, url)
            assert status == 302 and not sets_session(headers)
            assert f"{BINDING_COOKIE}=" in headers["Set-Cookie"]  # cleared, used
            fragment = dict(parse_qsl(urlsplit(headers["Location"]).fragment))
            assert urlsplit(headers["Location"]).path == "/" and fragment["second_factor"]
            assert fragment["next"] == "/account/team"  # where the page goes after the code
            assert (await browser.call("GET", "/me"))[0] == 401  # not signed in yet
            status, body, _ = await browser.call("POST", "/auth/sign-in/second-factor", {
                "token": fragment["second_factor"], "code": "000000"
                if totp.now() != "000000" else "111111"})
            assert status == 401  # a wrong code is refused
            status, body, _ = await browser.call("POST", "/auth/sign-in/second-factor", {
                "token": fragment["second_factor"], "code": totp.at(time.time() + 30)})
            assert status == 200, body
            status, me, _ = await browser.call("GET", "/me")
            assert status == 200 and me["person"]["id"] == ada.id
        finally:
            await ada.close()
            await browser.close()


async def test_a_callback_opened_in_another_browser_is_refused(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (app, config, provider):
        mallory = Person(config.base_url, smtp_server, provider.user.email)
        victim = Person(config.base_url, smtp_server, "victim@example.org")
        try:
            # Mallory starts and passes the provider as herself, then hands the
            # callback URL to the victim instead of following it (login CSRF)
            url, _ = await through_provider(mallory, provider)
            status, body, headers = await come_back(victim, url)
            assert status == 400 and "another browser" in body["error"], body
            assert "Set-Cookie" not in headers
            assert (await victim.call("GET", "/me"))[0] == 401
            assert await app[ACCOUNTS].store.person_by_email(provider.user.email) is None
            # nor may a browser that started a sign-in but dropped its cookie finish it
            url, _ = await through_provider(mallory, provider)
            mallory.http.cookie_jar.clear()
            status, body, _ = await come_back(mallory, url)
            assert status == 400 and "another browser" in body["error"], body
            assert (await mallory.call("GET", "/me"))[0] == 401
        finally:
            await mallory.close()
            await victim.close()


async def test_the_start_binds_the_sign_in_to_its_browser_with_a_short_lived_cookie(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (app, config, provider):
        ada = Person(config.base_url, smtp_server, provider.user.email)
        try:
            async with ada.http.get(config.base_url + "/auth/oidc/fake/start",
                                    allow_redirects=False) as response:
                assert response.status == 302
                cookie = response.cookies[BINDING_COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Lax"
            assert not cookie["secure"]  # the site is http here
            assert cookie["path"] == "/auth/oidc/fake/callback"
            assert cookie["max-age"] == str(int(app[OIDC].pending.lifetime))
            # the server keeps only a digest of the value
            stored = await app[DATABASE].fetch("SELECT data FROM oidc_pending_logins")
            assert len(stored) == 1 and cookie.value not in stored[0]["data"]
            url, _ = await through_provider(ada, provider)
            status, _, headers = await come_back(ada, url)
            assert status == 302 and sets_session(headers)
            cleared = [v for v in headers.getall("Set-Cookie") if v.startswith(BINDING_COOKIE)]
            assert len(cleared) == 1 and "Max-Age=0" in cleared[0]
            assert "Path=/auth/oidc/fake/callback" in cleared[0]
            assert (await ada.call("GET", "/me"))[0] == 200
            # behind https the cookie is Secure, as the session's is
            secure = replace(config, public_url="https://studio.example")
            over_https = SimpleNamespace(app={CONFIG: secure})
            assert "Secure" in binding_cookie(over_https, "v", "/auth/oidc/fake/callback", 600)
        finally:
            await ada.close()


#: ``next`` values that would send the browser off the site (or that a browser could read
#: so): each is refused at the start, before the provider is asked.
OFF_SITE = ["//evil.example/x", "http://evil.example/", "https://evil.example",
            "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/\n/evil.example",
            "javascript:alert(1)", "evil.example/x", " /x", "/x y", "/" + "a" * 2001]


async def test_the_callback_returns_to_next_and_refuses_a_next_off_the_site(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with oidc_server(tmp_path, smtp_server) as (app, config, provider):
        ada = Person(config.base_url, smtp_server, provider.user.email)
        try:
            for value in OFF_SITE:
                status, body, headers = await come_back(
                    ada, f"{config.base_url}/auth/oidc/fake/start?{urlencode({'next': value})}")
                assert status == 400, (value, body)
                assert "not a path on this site" in body["error"] and "Location" not in headers
            assert await app[OIDC].pending.count() == 0  # no sign-in was started
            url, _ = await through_provider(ada, provider, "/account/keys?tab=new#top")
            status, _, headers = await come_back(ada, url)
            assert status == 302 and "mbs_session=" in headers["Set-Cookie"]
            assert headers["Location"] == "/account/keys?tab=new#top"
        finally:
            await ada.close()
