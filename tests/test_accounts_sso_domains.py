"""Proving an organisation's single sign-on domains with a DNS TXT record.

A real DNS server runs on loopback (tests/dns_server.py) and serves the zone each test
writes; the server's domain checks ask it with dnspython's resolver.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import Person
from fake_oidc import FakeUser
from smtp_server import SmtpServer
from sso_helpers import DNS_TIMEOUT, label_with_sso, publish, settings_of, sso_server, through

from accounts.sso_domains import RECORD_PREFIX, parse_server
from dawserver.keys import ACCOUNTS, DATABASE

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

RECORD = "_maxbooster-challenge.example.com"


async def checks_of(ada: Person, org_id: str) -> dict[str, dict[str, Any]]:
    status, listed, _ = await ada.call("GET", f"/accounts/{org_id}/sso/domains")
    assert status == 200, listed
    return {check["domain"]: check for check in listed}


async def verify(ada: Person, org_id: str, domain: str = "example.com"
                 ) -> tuple[int, Any, Any]:
    return await ada.call("POST", f"/accounts/{org_id}/sso/domains/{domain}/verify", {})


async def actions(ada: Person, org_id: str) -> list[tuple[str, str]]:
    _, log, _ = await ada.call("GET", f"/accounts/{org_id}/audit")
    return [(event["action"], event["target"]) for event in reversed(log)
            if event["action"].startswith("sso.domain")]


async def test_a_domain_is_pending_until_its_txt_record_holds_its_token(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    user = FakeUser(subject="s-new", email="nia@example.com")
    async with sso_server(tmp_path, smtp_server, user) as (app, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider)
        browser = Person(config.base_url, smtp_server, "")
        try:
            check = (await checks_of(ada, org_id))["example.com"]
            assert check["status"] == "pending" and check["verified_at"] is None
            assert (check["record_type"], check["record_name"]) == ("TXT", RECORD)
            assert check["record_value"].startswith(RECORD_PREFIX)
            assert len(check["record_value"]) > len(RECORD_PREFIX) + 30  # a random token
            # a newcomer from the pending domain is not let in, nor made a person
            status, body, headers = await through(browser, provider, org_id)
            assert status == 403 and "waiting for the organisation to prove" in body["error"]
            assert "Set-Cookie" not in headers
            assert await app[ACCOUNTS].store.person_by_email(user.email) is None
            # no such name in the DNS; the name without a TXT record; another token
            for zone, reason, words in (
                    ({}, "nxdomain", "does not exist in the DNS"),
                    ({RECORD: []}, "no_record", "has no TXT record"),
                    ({RECORD: ["v=spf1 -all", RECORD_PREFIX + "someone-elses"]},
                     "wrong_token", "someone-elses")):
                dns.zone = zone
                status, body, _ = await verify(ada, org_id)
                assert status == 422 and body["reason"] == reason, body
                assert words in body["error"] and RECORD in body["error"]
                now = (await checks_of(ada, org_id))["example.com"]
                assert now["status"] == "pending" and words in now["last_error"]
            assert RECORD in dns.asked
            # the DNS server is down: 503, and nothing is verified
            publish(dns, check)
            dns.silent = True
            started = time.monotonic()
            status, body, headers = await verify(ada, org_id)
            assert status == 503 and "did not answer" in body["error"], body
            assert "nothing was verified" in body["error"] and headers["Retry-After"]
            assert time.monotonic() - started < DNS_TIMEOUT + 5
            assert (await checks_of(ada, org_id))["example.com"]["status"] == "pending"
            # the record as published: verified, and the newcomer joins
            dns.silent = False
            status, proven, _ = await verify(ada, org_id, "Example.COM")
            assert status == 200 and proven["status"] == "verified", proven
            assert proven["verified_at"] and proven["last_error"] == ""
            status, info, _ = await ada.call("GET", f"/accounts/{org_id}/sso")
            assert [(c["domain"], c["status"]) for c in info["domain_checks"]] == [
                ("example.com", "verified")]
            status, _, _ = await through(browser, provider, org_id)
            assert status == 302
            _, me, _ = await browser.call("GET", "/me")
            assert me["person"]["email"] == user.email
            assert [(o["id"], o["role"]) for o in me["organisations"]] == [(org_id, "member")]
            # listing another domain keeps this one's proof; dropping it forgets it
            status, info, _ = await ada.call("PUT", f"/accounts/{org_id}/sso", settings_of(
                provider, client_secret=None, domains=["example.com", "label.org"]))
            assert status == 200, info
            assert {c["domain"]: c["status"] for c in info["domain_checks"]} == {
                "example.com": "verified", "label.org": "pending"}
            status, info, _ = await ada.call("PUT", f"/accounts/{org_id}/sso", settings_of(
                provider, client_secret=None, domains=["label.org"]))
            assert [c["domain"] for c in info["domain_checks"]] == ["label.org"]
            assert await actions(ada, org_id) == [
                ("sso.domain_added", "example.com"), ("sso.domain_verified", "example.com"),
                ("sso.domain_added", "label.org"), ("sso.domain_removed", "example.com")]
            # removing the provider removes its domains
            assert (await ada.call("DELETE", f"/accounts/{org_id}/sso"))[0] == 200
            assert await app[DATABASE].fetch(
                "SELECT * FROM sso_domains WHERE account_id = ?", org_id) == []
            assert (await actions(ada, org_id))[-1] == ("sso.domain_removed", "label.org")
        finally:
            await ada.close()
            await browser.close()


async def test_only_the_organisations_admins_see_and_verify_its_domains(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with sso_server(tmp_path, smtp_server) as (app, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider)
        bo = Person(config.base_url, smtp_server, "bo@label.org")
        eve = Person(config.base_url, smtp_server, "eve@elsewhere.org")
        try:
            publish(dns, (await checks_of(ada, org_id))["example.com"])
            await ada.call("POST", f"/accounts/{org_id}/invitations",
                           {"email": bo.email, "role": "member"})
            await bo.sign_up_and_in()
            await bo.call("POST", "/invitations/accept", {"token": await bo.link_token("invite")})
            await eve.sign_up_and_in()
            _, eves_org, _ = await eve.call("POST", "/accounts", {"name": "Elsewhere"})
            asked = len(dns.asked)
            for person, status in ((bo, 403), (eve, 404)):
                assert (await verify(person, org_id))[0] == status
                assert (await person.call("GET", f"/accounts/{org_id}/sso/domains"))[0] == status
            # Eve's own organisation has no such domain: 404, as for a missing one
            status, body, _ = await verify(eve, eves_org["id"])
            assert status == 404 and "not one of this organisation's" in body["error"]
            assert (await verify(ada, org_id, "other.example"))[0] == 404
            assert len(dns.asked) == asked  # none of them made the server ask the DNS
            assert (await checks_of(ada, org_id))["example.com"]["status"] == "pending"
        finally:
            for person in (ada, bo, eve):
                await person.close()


async def test_an_old_proof_is_read_again_before_a_newcomer_joins(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    user = FakeUser(subject="s-cat", email="cat@example.com")
    async with sso_server(tmp_path, smtp_server, user) as (app, config, provider, dns):
        ada, org_id = await label_with_sso(config, smtp_server, provider, dns)
        browser = Person(config.base_url, smtp_server, "")
        newcomer = Person(config.base_url, smtp_server, "")
        db = app[DATABASE]

        async def age_the_proof() -> None:
            await db.execute("UPDATE sso_domains SET verified_at = ? WHERE account_id = ?",
                             time.time() - 8 * 24 * 3600, org_id)

        try:
            assert (await through(browser, provider, org_id))[0] == 302  # Cat joins
            record = dns.zone.pop(RECORD)
            # a member signs in on an old proof without the DNS being asked
            await age_the_proof()
            asked = len(dns.asked)
            assert (await through(Person(config.base_url, smtp_server, ""), provider,
                                  org_id))[0] == 302
            assert len(dns.asked) == asked
            # a newcomer on an old proof: read again; the DNS is down, so nobody joins
            provider.user = FakeUser(subject="s-dan", email="dan@example.com")
            dns.silent = True
            status, body, _ = await through(newcomer, provider, org_id)
            assert status == 503 and "sign in again" in body["error"], body
            assert await app[ACCOUNTS].store.person_by_email("dan@example.com") is None
            assert (await checks_of(ada, org_id))["example.com"]["status"] == "verified"
            # the record is gone: the domain is pending again and the newcomer refused
            dns.silent = False
            status, body, _ = await through(newcomer, provider, org_id)
            assert status == 403 and "no longer carries" in body["error"], body
            assert await app[ACCOUNTS].store.person_by_email("dan@example.com") is None
            assert (await checks_of(ada, org_id))["example.com"]["status"] == "pending"
            assert (await actions(ada, org_id))[-1] == ("sso.domain_lapsed", "example.com")
            # published again and verified: an old proof whose record holds joins Dan
            dns.zone[RECORD] = record
            assert (await verify(ada, org_id))[0] == 200
            await age_the_proof()
            assert (await through(newcomer, provider, org_id))[0] == 302
            check = (await checks_of(ada, org_id))["example.com"]
            assert check["status"] == "verified" and check["verified_at"] > time.time() - 60
        finally:
            for person in (ada, browser, newcomer):
                await person.close()


@pytest.mark.parametrize(("text", "server"), [
    ("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("[::1]:5353", ("::1", 5353)), ("::1", ("::1", 53)), ("[::1]", ("::1", 53))])
async def test_dns_servers_are_read_with_or_without_a_port(text: str,
                                                           server: tuple[str, int]) -> None:
    assert parse_server(text) == server


@pytest.mark.parametrize("text", ["", "127.0.0.1:0", "127.0.0.1:99999", ":53"])
async def test_a_bad_dns_server_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="DNS server"):
        parse_server(text)
