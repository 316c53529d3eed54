"""Organisations' own OpenID providers (single sign-on) on a running server.

The organisation's provider is a second local provider (tests/fake_oidc.py) over TLS
with its own certificate, trusted through ``single_sign_on["ca_file"]``; its domains
are proven through a DNS server on loopback (tests/sso_helpers.py).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from accounts_helpers import Person
from fake_oidc import FakeUser
from smtp_server import SmtpServer
from sso_helpers import label_with_sso, settings_of, sso_server, through

from dawserver.keys import ACCOUNTS, DATABASE
from dawserver.sign_in_binding import BINDING_COOKIE

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def test_a_newcomer_signs_in_through_the_organisations_provider_and_joins(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with sso_server(tmp_path, smtp_server) as (app, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider, dns)
        newcomer = Person(config.base_url, smtp_server, provider.user.email)
        try:
            status, info, _ = await ada.call("GET", f"/accounts/{org_id}/sso")
            assert status == 200 and info["domains"] == ["example.com"]
            assert provider.client_secret not in str(info) and "client_secret" not in info
            stored = await app[DATABASE].fetchval(
                "SELECT client_secret FROM sso_providers WHERE account_id = ?", org_id)
            assert provider.client_secret not in stored  # sealed at rest
            status, _, headers = await through(newcomer, provider, org_id)
            assert status == 302 and urlsplit(headers["Location"]).path == "/"
            status, me, _ = await newcomer.call("GET", "/me")
            assert status == 200 and me["person"]["email"] == provider.user.email
            assert me["person"]["email_verified"]
            assert [(o["id"], o["role"]) for o in me["organisations"]] == [(org_id, "member")]
            # the token exchange used the organisation's client and secret
            assert provider.token_requests[-1].answer.get("id_token")
            # signing in again finds the same person (by issuer and subject), and goes back
            # to the page it started from; a next off the site is refused
            again = Person(config.base_url, smtp_server, provider.user.email)
            try:
                for off_site in ("%2F%2Fevil.example", "https%3A%2F%2Fevil.example", "%2F%5Cx"):
                    status, body, _ = await again.call(
                        "GET", f"/auth/sso/{org_id}/start?next={off_site}")
                    assert status == 400 and "not a path on this site" in body["error"]
                status, _, headers = await through(again, provider, org_id,
                                                   "?next=%2Faccount%2Fteam")
                assert (status, headers["Location"]) == (302, "/account/team")
                assert (await again.call("GET", "/me"))[1]["person"]["id"] == me["person"]["id"]
            finally:
                await again.close()
            _, log, _ = await ada.call("GET", f"/accounts/{org_id}/audit")
            assert {"sso.configured", "sso.joined"} <= {e["action"] for e in log}
        finally:
            await ada.close()
            await newcomer.close()


async def test_a_callback_opened_in_another_browser_is_refused(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with sso_server(tmp_path, smtp_server) as (app, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider, dns)
        mallory = Person(config.base_url, smtp_server, provider.user.email)
        victim = Person(config.base_url, smtp_server, "victim@example.org")
        try:
            # Mallory passes the organisation's provider as herself and hands the
            # callback URL to the victim (login CSRF): refused, nobody signed in
            status, body, headers = await through(mallory, provider, org_id, back_in=victim)
            assert status == 400 and "another browser" in body["error"], body
            assert "Set-Cookie" not in headers
            assert (await victim.call("GET", "/me"))[0] == 401
            assert await app[ACCOUNTS].store.person_by_email(provider.user.email) is None
            # in her own browser the same sign-in works, and its cookie is cleared
            status, _, headers = await through(mallory, provider, org_id)
            assert status == 302, headers
            cleared = [v for v in headers.getall("Set-Cookie")
                       if v.startswith(f"{BINDING_COOKIE}=")]
            assert len(cleared) == 1 and "Max-Age=0" in cleared[0]
            assert f"Path=/auth/sso/{org_id}/callback" in cleared[0]
            assert (await mallory.call("GET", "/me"))[0] == 200
        finally:
            for person in (ada, mallory, victim):
                await person.close()


async def test_members_viewers_and_other_organisations_cannot_configure_it(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with sso_server(tmp_path, smtp_server) as (_, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider, dns)
        bo = Person(config.base_url, smtp_server, "bo@label.org")
        vi = Person(config.base_url, smtp_server, "vi@label.org")
        eve = Person(config.base_url, smtp_server, "eve@elsewhere.org")
        try:
            for person, role in ((bo, "member"), (vi, "viewer")):
                await ada.call("POST", f"/accounts/{org_id}/invitations",
                               {"email": person.email, "role": role})
                await person.sign_up_and_in()
                status, _, _ = await person.call("POST", "/invitations/accept",
                                                 {"token": await person.link_token("invite")})
                assert status == 200
                for method in ("PUT", "GET", "DELETE"):
                    status, body, _ = await person.call(
                        method, f"/accounts/{org_id}/sso",
                        settings_of(provider, issuer="https://evil.example") if method == "PUT"
                        else None)
                    assert status == 403, (role, method, body)
            await eve.sign_up_and_in()
            for method in ("PUT", "GET", "DELETE"):
                status, body, _ = await eve.call(method, f"/accounts/{org_id}/sso",
                                                 settings_of(provider) if method == "PUT"
                                                 else None)
                assert status == 404, (method, body)
            # a person's own account has no single sign-on
            status, body, _ = await eve.call("PUT", f"/accounts/{eve.id}/sso",
                                             settings_of(provider))
            assert status == 409 and "organisation" in body["error"]
            status, info, _ = await ada.call("GET", f"/accounts/{org_id}/sso")
            assert info["issuer"] == provider.issuer  # unchanged by any of them
        finally:
            for person in (ada, bo, vi, eve):
                await person.close()


async def test_a_token_for_another_audience_is_refused(tmp_path: Path,
                                                       smtp_server: SmtpServer) -> None:
    async with sso_server(tmp_path, smtp_server) as (app, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider, dns)
        mallory = Person(config.base_url, smtp_server, provider.user.email)
        try:
            provider.id_token_overrides["aud"] = "another-client.example"
            status, body, headers = await through(mallory, provider, org_id)
            assert status == 400 and "audience" in body["error"], body
            assert "Set-Cookie" not in headers
            assert (await mallory.call("GET", "/me"))[0] == 401
            assert await app[ACCOUNTS].store.person_by_email(provider.user.email) is None
        finally:
            await ada.close()
            await mallory.close()


async def test_only_verified_addresses_in_its_domains_and_never_an_outsiders_account(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    user = FakeUser(subject="s-1", email="ada@label.org")
    async with sso_server(tmp_path, smtp_server, user) as (app, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider, dns)
        cat = Person(config.base_url, smtp_server, "cat@example.com")
        browser = Person(config.base_url, smtp_server, "")
        try:
            # outside its domains (example.com only)
            status, body, _ = await through(browser, provider, org_id)
            assert status == 403 and "outside the domains" in body["error"]
            # Cat has an account with an address in its domain, and is not in the
            # organisation: its provider must not hand her account to its admin
            await cat.sign_up_and_in("Cat")
            provider.user = FakeUser(subject="s-2", email=cat.email)
            status, body, headers = await through(browser, provider, org_id)
            assert status == 403 and "not in this organisation" in body["error"]
            assert "Set-Cookie" not in headers
            assert await app[ACCOUNTS].store.person_by_identity(provider.issuer, "s-2") is None
            # an address the provider has not verified
            provider.user = FakeUser(subject="s-3", email="dan@example.com",
                                     email_verified=False)
            status, body, _ = await through(browser, provider, org_id)
            assert status == 403 and "not verified" in body["error"]
            # once Cat is a member, she is linked by her verified address
            await ada.call("POST", f"/accounts/{org_id}/invitations",
                           {"email": cat.email, "role": "viewer"})
            await cat.call("POST", "/invitations/accept",
                           {"token": await cat.link_token("invite")})
            provider.user = FakeUser(subject="s-2", email=cat.email)
            assert (await through(browser, provider, org_id))[0] == 302
            _, me, _ = await browser.call("GET", "/me")
            assert me["person"]["id"] == cat.id
            assert [o["role"] for o in me["organisations"]] == ["viewer"]  # kept, not reset
        finally:
            for person in (ada, cat, browser):
                await person.close()


async def test_bad_settings_removal_and_a_private_issuer(tmp_path: Path,
                                                         smtp_server: SmtpServer) -> None:
    async with sso_server(tmp_path, smtp_server, allow_private=False) as (_, config, provider, dns):
        ada = Person(config.base_url, smtp_server, "ada@label.org")
        try:
            await ada.sign_up_and_in("Ada")
            _, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
            path = f"/accounts/{org['id']}/sso"
            status, body, _ = await ada.call("PUT", path, settings_of(provider))
            assert status == 400 and "private address" in body["error"]
            for bad, words in (({"issuer": "http://login.example.org"}, "https"),
                               ({"domains": ["not a domain"]}, "not an email domain"),
                               ({"default_role": "owner"}, "default_role")):
                status, body, _ = await ada.call("PUT", path, settings_of(provider, **bad))
                assert status == 400 and words in body["error"], (bad, body)
            status, body, _ = await ada.call("PUT", path, {"issuer": provider.issuer})
            assert status == 422, body
            assert (await ada.call("GET", path))[0] == 404
            assert (await ada.call("DELETE", path))[0] == 404
            status, body, _ = await ada.call("GET", f"/auth/sso/{org['id']}/start")
            assert status == 404 and "no single sign-on" in body["error"]
        finally:
            await ada.close()


async def test_a_removed_provider_signs_nobody_in(tmp_path: Path,
                                                  smtp_server: SmtpServer) -> None:
    async with sso_server(tmp_path, smtp_server) as (_, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider, dns)
        try:
            status, info, _ = await ada.call("PUT", f"/accounts/{org_id}/sso", {
                **settings_of(provider), "client_secret": None, "domains": ["Example.COM"]})
            assert status == 200 and info["domains"] == ["example.com"]  # secret kept
            assert (await ada.call("DELETE", f"/accounts/{org_id}/sso"))[0] == 200
            status, _, _ = await ada.call("GET", f"/auth/sso/{org_id}/start")
            assert status == 404
        finally:
            await ada.close()
