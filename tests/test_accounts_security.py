"""Attacks a security review found on accounts, each shown refused.

The rules run over a real store on SQLite and PostgreSQL (:class:`AccountService` with
a :class:`MailLog`); what a route decides runs over HTTP against a running server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pyotp
import pytest
import pytest_asyncio
from accounts_helpers import PASSWORD, THROTTLE, Person, accounts_server, mail_logged_service
from public_api_helpers import Caller
from smtp_server import SmtpServer

from accounts.errors import Conflict, InvalidCredentials, LinkInvalid, NotFound, Throttled
from accounts.models import AccountStatus
from accounts.oidc import OidcIdentity
from accounts.oidc_sign_in import sign_in_with
from accounts.service import AccountService, Actor, MailLog, SecondFactorNeeded, SignedIn
from dawserver.keys import ACCOUNTS

pytestmark = pytest.mark.asyncio

#: The longest any one step of a test may take.
STEP_S = 60.0


@pytest_asyncio.fixture
async def service(collab_database_url: str) -> AsyncIterator[AccountService]:
    async with mail_logged_service(collab_database_url) as made:
        yield made


def last_token(service: AccountService) -> str:
    """The token of the link in the newest mail."""
    assert isinstance(service.notifier, MailLog)
    return parse_qs(urlsplit(service.notifier.sent[-1]["link"]).query)["token"][0]


# -- 1. a key makes no key stronger than itself ------------------------------------------

async def test_a_key_cannot_make_a_key_with_scopes_it_lacks(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config), \
            aiohttp.ClientSession() as http:
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            async with asyncio.timeout(STEP_S):
                await ada.sign_up_and_in()
                _, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
                keys = f"/accounts/{org['id']}/keys"
                soon = {"expires_in_days": 2}
                status, made, _ = await ada.call("POST", keys, {
                    "name": "narrow", "scopes": ["account.admin"], **soon})
                assert status == 201, made
                narrow = Caller(config.base_url, made["key"], ada.id, http)
                status, body, _ = await narrow.call("POST", keys, {
                    "name": "wide", "scopes": ["account.admin", "projects.create"]})
                assert status == 403, body
                assert "projects.create" in str(body)
                # its own scopes it may pass on, expiring no later than itself
                status, same, _ = await narrow.call("POST", keys, {
                    "name": "same", "scopes": ["account.admin"], "expires_in_days": 30})
                assert status == 201, same
                assert same["expires_at"] == made["expires_at"]
                status, listed, _ = await ada.call("GET", keys)
                assert sorted(k["name"] for k in listed) == ["narrow", "same"]
        finally:
            await ada.close()


# -- 2. a provider's verified address takes back an account nobody proved ----------------

async def test_signing_up_with_someone_elses_address_keeps_nothing_after_their_oidc(
        service: AccountService) -> None:
    address = "victim@gmail.com"
    async with asyncio.timeout(STEP_S):
        mallory = Actor((await service.sign_up(address, "attackerpass1", "Mallory")).account_id)
        attackers_link = last_token(service)
        label = await service.create_organisation(mallory, "Mallory Label")
        _, label_key = await service.create_key(mallory, label.account_id, "k",
                                                ["account.admin"])
        victim = OidcIdentity("https://accounts.google.com", "sub-victim", address, True,
                              "Victim")
        signed = await sign_in_with(service, victim)
        assert isinstance(signed, SignedIn) and signed.person.email == address
        with pytest.raises(LinkInvalid):  # the attacker's link went with the account
            await service.verify_email(attackers_link)
        with pytest.raises(InvalidCredentials):
            await service.log_in(address, "attackerpass1")
        person = await service.store.require_account(signed.person.account_id)
        assert person.password_hash is None and person.email_verified_at is not None
        again = await sign_in_with(service, victim)  # the victim still signs in
        assert isinstance(again, SignedIn)
        assert again.person.account_id == signed.person.account_id
        # the key made for the organisation went too, on its record
        logged = await service.store.audit_events(label.account_id)
        assert [(e.action, e.target) for e in logged if e.action == "key.revoked"] == [
            ("key.revoked", label_key.key_id)]


# -- 3. parallel guesses get no more checks than guesses one at a time -------------------

async def outcome(attempt: Awaitable[object]) -> str:
    """What one guess came to: wrong (checked), throttled, or something else."""
    try:
        await attempt
    except InvalidCredentials:
        return "wrong"
    except Throttled:
        return "throttled"
    return "other"


async def test_a_burst_of_parallel_wrong_passwords_gets_only_the_free_checks(
        service: AccountService) -> None:
    await service.create_person("carol@example.org", PASSWORD, "Carol")
    async with asyncio.timeout(STEP_S):
        found = await asyncio.gather(*(outcome(service.log_in(
            "carol@example.org", f"wrong guess {i:03d}", address="203.0.113.5"))
            for i in range(50)))
    assert found.count("wrong") <= THROTTLE.free_failures + 1
    assert found.count("throttled") == 50 - found.count("wrong")


async def test_a_burst_of_parallel_codes_gets_only_the_free_checks(
        service: AccountService) -> None:
    dave = Actor((await service.create_person("dave@example.org", PASSWORD, "Dave")).account_id)
    async with asyncio.timeout(STEP_S):
        secret, _ = await service.begin_two_factor(dave)
        await service.enable_two_factor(dave, pyotp.TOTP(secret).now())
        asked = await service.log_in("dave@example.org", PASSWORD)
        assert isinstance(asked, SecondFactorNeeded)
        right = pyotp.TOTP(secret)
        guesses = [f"{i:06d}" for i in range(60) if not right.verify(f"{i:06d}", valid_window=2)]
        found = await asyncio.gather(*(outcome(service.second_factor(asked.token, code))
                                       for code in guesses[:50]))
    assert found.count("wrong") <= THROTTLE.free_failures + 1
    assert found.count("throttled") == 50 - found.count("wrong")


# -- 4. a new password voids every reset link --------------------------------------------

async def test_a_password_change_voids_every_open_reset_link(service: AccountService) -> None:
    bob = Actor((await service.create_person("bob@example.org", PASSWORD, "Bob")).account_id)
    async with asyncio.timeout(STEP_S):
        await service.request_reset("bob@example.org")
        by_reset = last_token(service)
        await service.sign_up("bob@example.org", "someone elses pass", "Mallory")
        by_sign_up = last_token(service)
        await service.change_password(bob, PASSWORD, "brand new password")
        for token in (by_reset, by_sign_up):
            with pytest.raises(LinkInvalid):
                await service.reset_password(token, "attacker password!")
        await service.log_in("bob@example.org", "brand new password")


async def test_a_sign_up_with_a_taken_address_replaces_its_reset_links(
        service: AccountService) -> None:
    await service.create_person("bob@example.org", PASSWORD, "Bob")
    async with asyncio.timeout(STEP_S):
        await service.request_reset("bob@example.org")
        first = last_token(service)
        await service.sign_up("bob@example.org", "someone elses pass", "Mallory")
        second = last_token(service)
        with pytest.raises(LinkInvalid):  # the sign-up's link replaced the older one
            await service.reset_password(first, "attacker password!")
        await service.reset_password(second, "reset one password")
        with pytest.raises(LinkInvalid):
            await service.reset_password(second, "attacker password!")
        await service.log_in("bob@example.org", "reset one password")


async def test_signing_up_with_a_disabled_accounts_address_mails_no_reset_link(
        service: AccountService) -> None:
    bob = await service.create_person("bob@example.org", PASSWORD, "Bob")
    await service.disable(bob.account_id)
    assert isinstance(service.notifier, MailLog)
    before = len(service.notifier.sent)
    async with asyncio.timeout(STEP_S):
        assert await service.sign_up("bob@example.org", "someone elses pass", "M") is None
    assert len(service.notifier.sent) == before


# -- 5. a disabled maker's organisation key stops working --------------------------------

async def test_an_organisation_key_stops_when_its_maker_is_disabled(
        service: AccountService) -> None:
    ada = Actor((await service.create_person("ada@example.org", PASSWORD, "Ada")).account_id)
    bo = Actor((await service.create_person("bo@example.org", PASSWORD, "Bo")).account_id)
    async with asyncio.timeout(STEP_S):
        org = await service.create_organisation(ada, "Label")
        await service.admin_set_member(org.account_id, bo.person_id, "admin")
        secret, made = await service.create_key(bo, org.account_id, "k", ["account.admin"])
        await service.authenticate_key(secret)
        await service.disable(bo.person_id)
        with pytest.raises(InvalidCredentials):
            await service.authenticate_key(secret)
        revoked = [k for k in await service.store.keys_of(org.account_id)
                   if k.key_id == made.key_id]
        assert revoked[0].revoked_at is not None


async def test_an_organisation_key_of_a_maker_disabled_past_the_service_is_refused(
        service: AccountService) -> None:
    ada = Actor((await service.create_person("ada@example.org", PASSWORD, "Ada")).account_id)
    async with asyncio.timeout(STEP_S):
        org = await service.create_organisation(ada, "Label")
        secret, _ = await service.create_key(ada, org.account_id, "k", ["account.admin"])
        await service.store.update_account(ada.person_id, status=AccountStatus.DISABLED)
        with pytest.raises(InvalidCredentials):
            await service.authenticate_key(secret)


# -- 7. two owners leaving at once leave one -----------------------------------------------

async def test_two_owners_leaving_at_once_leave_one_owner(service: AccountService) -> None:
    ada = Actor((await service.create_person("ada@example.org", PASSWORD, "Ada")).account_id)
    bo = Actor((await service.create_person("bo@example.org", PASSWORD, "Bo")).account_id)
    async with asyncio.timeout(STEP_S):
        org = await service.create_organisation(ada, "Two")
        await service.admin_set_member(org.account_id, bo.person_id, "owner")
        results = await asyncio.gather(
            service.remove_member(ada, org.account_id, ada.person_id),
            service.remove_member(bo, org.account_id, bo.person_id), return_exceptions=True)
        members = await service.store.members(org.account_id)
    assert [m.role for m in members] == ["owner"]
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "NoneType"]


async def test_two_owners_stepping_down_at_once_leave_one_owner(
        service: AccountService) -> None:
    ada = Actor((await service.create_person("ada@example.org", PASSWORD, "Ada")).account_id)
    bo = Actor((await service.create_person("bo@example.org", PASSWORD, "Bo")).account_id)
    async with asyncio.timeout(STEP_S):
        org = await service.create_organisation(ada, "Two")
        await service.admin_set_member(org.account_id, bo.person_id, "owner")
        results = await asyncio.gather(
            service.set_member_role(ada, org.account_id, ada.person_id, "admin"),
            service.set_member_role(bo, org.account_id, bo.person_id, "admin"),
            return_exceptions=True)
        members = await service.store.members(org.account_id)
    assert sorted(m.role for m in members) == ["admin", "owner"]
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Membership"]


# -- 6. an IPv6 client counts as its /64 -------------------------------------------------

async def test_sign_in_failures_from_one_ipv6_64_are_counted_together(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server, trusted_proxies=("127.0.0.1",)) as (
            app, config), aiohttp.ClientSession() as http:
        app[ACCOUNTS].throttle = THROTTLE
        statuses = []
        async with asyncio.timeout(STEP_S):
            for i in range(10):  # another address of the /64 and another email each time
                async with http.post(
                        config.base_url + "/auth/sign-in",
                        json={"email": f"u{i}@example.org", "password": "wrong guess 123"},
                        headers={"X-Forwarded-For": f"2001:db8:1:2::{i + 1:x}"}) as answer:
                    statuses.append(answer.status)
        assert statuses[:THROTTLE.free_failures + 1] == [401] * (THROTTLE.free_failures + 1)
        assert set(statuses[THROTTLE.free_failures + 1:]) == {429}


# -- 8. invitations end with their sender's right to invite, and can be withdrawn --------

async def _verified(service: AccountService, email: str) -> Actor:
    made = await service.sign_up(email, PASSWORD, email.split("@")[0])
    assert made is not None
    await service.verify_email(last_token(service))
    return Actor(made.account_id)


async def test_an_invitation_goes_with_its_senders_admin_role(service: AccountService) -> None:
    """An admin about to be removed invites a second address of their own as admin; once
    they are out, that invitation joins no one (nor one they sent before a demotion)."""
    owner = await _verified(service, "own@example.org")
    admin = await _verified(service, "adm@example.org")
    async with asyncio.timeout(STEP_S):
        org = await service.create_organisation(owner, "Label")
        await service.admin_set_member(org.account_id, admin.person_id, "admin")
        await service.invite(admin, org.account_id, "alt@example.org", "admin")
        sent_as_admin = last_token(service)
        await service.remove_member(owner, org.account_id, admin.person_id)
        alt = await _verified(service, "alt@example.org")
        with pytest.raises(LinkInvalid):
            await service.accept_invitation(alt, sent_as_admin)
        assert await service.role_in(org.account_id, alt.person_id) is None
        [invitation] = await service.store.invitations(org.account_id)
        assert invitation.revoked_at is not None  # withdrawn as its sender left

        await service.admin_set_member(org.account_id, admin.person_id, "admin")
        await service.invite(admin, org.account_id, "alt@example.org", "member")
        sent_before_demotion = last_token(service)
        await service.set_member_role(owner, org.account_id, admin.person_id, "member")
        with pytest.raises(LinkInvalid):
            await service.accept_invitation(alt, sent_before_demotion)


async def test_an_admin_withdraws_an_open_invitation(service: AccountService) -> None:
    owner = await _verified(service, "own@example.org")
    async with asyncio.timeout(STEP_S):
        org = await service.create_organisation(owner, "Label")
        invitation = await service.invite(owner, org.account_id, "sam@example.org", "member")
        token = last_token(service)
        withdrawn = await service.withdraw_invitation(owner, org.account_id,
                                                      invitation.invitation_id)
        assert withdrawn.revoked_at is not None
        sam = await _verified(service, "sam@example.org")
        with pytest.raises(LinkInvalid):
            await service.accept_invitation(sam, token)
        with pytest.raises(Conflict, match="already"):
            await service.withdraw_invitation(owner, org.account_id, invitation.invitation_id)
        with pytest.raises(NotFound):
            await service.withdraw_invitation(owner, org.account_id, "inv-nope")
