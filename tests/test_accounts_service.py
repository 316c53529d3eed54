"""The rules of accounts end to end: AccountService over a real store, on SQLite and PostgreSQL.

Mail goes to a :class:`~accounts.service.MailLog`; passwords use cheap argon2 parameters so
that the many hashes stay fast (the rules do not depend on the cost).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import bcrypt
import pyotp
import pytest
import pytest_asyncio
from accounts_helpers import PASSWORD, THROTTLE, mail_logged_service

from accounts.erasure import AccountErasure
from accounts.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    LinkInvalid,
    NotFound,
    Throttled,
    WeakPassword,
)
from accounts.models import AccountKind, OrgRole
from accounts.service import AccountService, Actor, MailLog, SecondFactorNeeded, SignedIn

pytestmark = pytest.mark.asyncio

@pytest_asyncio.fixture
async def service(collab_database_url: str) -> AsyncIterator[AccountService]:
    async with mail_logged_service(collab_database_url) as made:
        yield made


def mails(service: AccountService) -> list[dict]:
    """What the service has mailed so far."""
    assert isinstance(service.notifier, MailLog)
    return service.notifier.sent


def token_of(mail: dict) -> str:
    """The token in a mailed link."""
    return parse_qs(urlsplit(mail["link"]).query)["token"][0]


async def person(service: AccountService, email: str, name: str = "") -> Actor:
    """A verified person, as the actor of later calls."""
    made = await service.create_person(email, PASSWORD, name or email.split("@")[0])
    return Actor(made.account_id, address="10.0.0.9")


async def signed_in(service: AccountService, email: str, password: str = PASSWORD
                    ) -> SignedIn:
    result = await service.log_in(email, password)
    assert isinstance(result, SignedIn), result
    return result


def totp_at(secret: str, offset_steps: int) -> str:
    """The authenticator app's code ``offset_steps`` steps from now."""
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def not_a_code_of(secret: str) -> str:
    """A six-digit code that matches no step the service accepts now."""
    near = {totp_at(secret, k) for k in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999)) if c not in near)


# -- sign-up and verification ---------------------------------------------------------------

async def test_sign_up_mails_a_verify_link_that_works_once(service: AccountService) -> None:
    made = await service.sign_up(" Ada@Example.org ", PASSWORD, "Ada")
    assert made is not None and made.email == "ada@example.org"
    assert made.email_verified_at is None
    [mail] = mails(service)
    assert mail["kind"] == "verify" and mail["to"] == "ada@example.org"
    assert mail["link"].startswith(service.base_url + "/account/verify?token=")
    with pytest.raises(Forbidden, match="verify your email address first"):
        await service.log_in("ada@example.org", PASSWORD)
    with pytest.raises(LinkInvalid):  # a link is bound to its purpose
        await service.reset_password(token_of(mail), "a brand new secret")
    verified = await service.verify_email(token_of(mail))
    assert verified.account_id == made.account_id and verified.email_verified_at is not None
    with pytest.raises(LinkInvalid, match="used already"):
        await service.verify_email(token_of(mail))
    result = await signed_in(service, "ADA@example.org")
    assert result.person.account_id == made.account_id


async def test_a_new_verify_link_voids_the_older_one(service: AccountService) -> None:
    made = await service.sign_up("bo@example.org", PASSWORD, "Bo")
    await service.send_verification(made)
    first, second = mails(service)
    with pytest.raises(LinkInvalid):
        await service.verify_email(token_of(first))
    assert (await service.verify_email(token_of(second))).email_verified_at is not None


async def test_sign_up_with_a_taken_address_creates_nothing_and_mails_a_reset_link(
        service: AccountService) -> None:
    first = await service.sign_up("cy@example.org", PASSWORD, "Cy")
    assert first is not None
    mails(service).clear()
    assert await service.sign_up("CY@example.org", "another password", "Mallory") is None
    assert [a.name for a in await service.store.accounts()] == ["Cy"]
    [mail] = mails(service)
    assert mail["kind"] == "exists" and mail["to"] == "cy@example.org"
    assert "/account/reset?token=" in mail["link"]
    # the link really resets the owner's password (and proves the mailbox)
    reset = await service.reset_password(token_of(mail), "a brand new secret")
    assert reset.account_id == first.account_id and reset.email_verified_at is not None
    await signed_in(service, "cy@example.org", "a brand new secret")


async def test_a_sign_up_run_again_mails_its_verification_not_a_taken_address(
        service: AccountService) -> None:
    """The sign-up job retried after it made the account but before the mail went: the
    person gets the verification link, not the "you have an account" reset mail."""
    region = service.regions[0]
    email, hashed = await service.sign_up_request("dee@example.org", PASSWORD, region)
    made = await service.finish_sign_up(email, hashed, "Dee")
    again = await service.finish_sign_up(email, hashed, "Dee")
    assert made is not None and again is not None and again.account_id == made.account_id
    assert [m["kind"] for m in mails(service)] == ["verify", "verify"]
    _, other = await service.sign_up_request("dee@example.org", "another password 1", region)
    assert await service.finish_sign_up(email, other, "Mallory") is None  # not ours
    assert mails(service)[-1]["kind"] == "exists"


async def test_sign_up_refuses_a_weak_password_before_creating_anything(
        service: AccountService) -> None:
    with pytest.raises(WeakPassword):
        await service.sign_up("dee@example.org", "short", "Dee")
    with pytest.raises(WeakPassword, match="not your email"):
        await service.sign_up("dee@example.org", "DEE@example.org", "Dee")
    assert await service.store.accounts() == [] and mails(service) == []


# -- sign-in --------------------------------------------------------------------------------

async def test_unknown_address_and_wrong_password_are_refused_alike(
        service: AccountService) -> None:
    await person(service, "eve@example.org")
    with pytest.raises(InvalidCredentials) as unknown:
        await service.log_in("nobody@example.org", PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        await service.log_in("eve@example.org", PASSWORD + "!")
    assert str(unknown.value) == str(wrong.value) == "wrong email or password"


async def test_failed_sign_ins_are_throttled_even_with_the_right_password(
        service: AccountService) -> None:
    await person(service, "fay@example.org")
    # the free failures, and the one after them, answer "wrong"; then the wait begins
    for _ in range(THROTTLE.free_failures + 1):
        with pytest.raises(InvalidCredentials):
            await service.log_in("fay@example.org", "not the password")
    with pytest.raises(Throttled) as throttled:
        await service.log_in("fay@example.org", PASSWORD)
    assert 0 < throttled.value.retry_after <= THROTTLE.base
    assert "try again in" in str(throttled.value)
    # another address is not held back by fay's failures
    await person(service, "gus@example.org")
    await signed_in(service, "gus@example.org")


async def test_unknown_addresses_are_throttled_like_known_ones(
        service: AccountService) -> None:
    for _ in range(THROTTLE.free_failures + 1):
        with pytest.raises(InvalidCredentials):
            await service.log_in("ghost@example.org", PASSWORD)
    with pytest.raises(Throttled):
        await service.log_in("ghost@example.org", PASSWORD)


async def test_a_network_address_is_throttled_across_emails(service: AccountService) -> None:
    await person(service, "hal@example.org")
    for n in range(THROTTLE.free_failures + 1):
        with pytest.raises(InvalidCredentials):
            await service.log_in(f"guess{n}@example.org", PASSWORD, address="192.0.2.7")
    with pytest.raises(Throttled):
        await service.log_in("hal@example.org", PASSWORD, address="192.0.2.7")
    result = await service.log_in("hal@example.org", PASSWORD, address="198.51.100.1")
    assert isinstance(result, SignedIn)


async def test_an_imported_bcrypt_hash_signs_in_and_becomes_argon2id(
        service: AccountService) -> None:
    actor = await person(service, "ivy@example.org")
    imported = bcrypt.hashpw(b"an old imported pass", bcrypt.gensalt(rounds=4)).decode()
    await service.store.update_account(actor.person_id, password_hash=imported)
    with pytest.raises(InvalidCredentials):
        await service.log_in("ivy@example.org", PASSWORD)
    assert (await service.store.require_account(actor.person_id)).password_hash == imported
    result = await signed_in(service, "ivy@example.org", "an old imported pass")
    stored = (await service.store.require_account(actor.person_id)).password_hash
    assert stored.startswith("$argon2id$") and result.person.password_hash == stored
    await signed_in(service, "ivy@example.org", "an old imported pass")


async def test_changing_the_password_ends_the_other_sessions(service: AccountService) -> None:
    actor = await person(service, "jem@example.org")
    here = await signed_in(service, "jem@example.org")
    elsewhere = await signed_in(service, "jem@example.org")
    with pytest.raises(InvalidCredentials):
        await service.change_password(actor, "not the password", "a brand new secret")
    with pytest.raises(WeakPassword):
        await service.change_password(actor, PASSWORD, "short")
    await service.change_password(actor, PASSWORD, "a brand new secret",
                                  keep=here.session.key_hash)
    assert await service.sessions.find(here.secret) is not None
    assert await service.sessions.find(elsewhere.secret) is None
    await signed_in(service, "jem@example.org", "a brand new secret")


async def test_guessing_the_current_password_is_throttled_like_sign_in(
        service: AccountService) -> None:
    """A stolen session cannot try passwords (change, erasure) faster than sign-in can."""
    actor = await person(service, "kit@example.org")
    account = await service.store.require_account(actor.person_id)
    for _ in range(THROTTLE.free_failures + 1):
        with pytest.raises(InvalidCredentials):
            await service.change_password(actor, "a guess at it", "a brand new secret")
    with pytest.raises(Throttled):
        await service.confirm_password(account, PASSWORD)
    with pytest.raises(Throttled):
        await AccountErasure(service).confirm(account, PASSWORD, session=None)
    await service.store.clear_failures(f"account:{actor.person_id}")
    await service.confirm_password(account, PASSWORD)


async def test_a_session_is_found_by_its_secret_and_logging_out_ends_it(
        service: AccountService) -> None:
    await person(service, "jo@example.org")
    one = await signed_in(service, "jo@example.org")
    two = await signed_in(service, "jo@example.org")
    assert (await service.sessions.find(one.secret)).person_id == one.person.account_id
    assert await service.log_out(one.session) == 1
    assert await service.sessions.find(one.secret) is None
    assert await service.sessions.find(two.secret) is not None
    three = await signed_in(service, "jo@example.org")
    assert await service.log_out(three.session, everywhere=True) == 2
    assert await service.sessions.find(two.secret) is None


# -- second factor --------------------------------------------------------------------------

async def test_two_step_sign_in_with_totp_and_recovery_codes(service: AccountService) -> None:
    actor = await person(service, "kim@example.org")
    secret, uri = await service.begin_two_factor(actor)
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    with pytest.raises(InvalidCredentials):
        await service.enable_two_factor(actor, not_a_code_of(secret))
    enabling = totp_at(secret, 0)
    codes = await service.enable_two_factor(actor, enabling)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert mails(service)[-1]["kind"] == "notice"
    with pytest.raises(Conflict):
        await service.begin_two_factor(actor)

    pending = await service.log_in("kim@example.org", PASSWORD)
    assert isinstance(pending, SecondFactorNeeded) and pending.expires_at > time.time()
    with pytest.raises(InvalidCredentials, match="wrong code"):
        await service.second_factor(pending.token, not_a_code_of(secret))
    # the code that turned TOTP on was seen once: it cannot sign in
    with pytest.raises(InvalidCredentials):
        await service.second_factor(pending.token, enabling)
    code = totp_at(secret, 1)
    done = await service.second_factor(pending.token, code)
    assert isinstance(done, SignedIn) and done.person.account_id == actor.person_id
    assert await service.sessions.find(done.secret) is not None
    with pytest.raises(LinkInvalid):  # this sign-in is finished
        await service.second_factor(pending.token, totp_at(secret, 1))

    again = await service.log_in("kim@example.org", PASSWORD)
    assert isinstance(again, SecondFactorNeeded)
    with pytest.raises(InvalidCredentials):  # the same code, replayed
        await service.second_factor(again.token, code)
    recovery = codes[3]
    assert isinstance(await service.second_factor(again.token, recovery.upper()), SignedIn)
    assert await service.store.recovery_codes_left(actor.person_id) == 9

    third = await service.log_in("kim@example.org", PASSWORD)
    assert isinstance(third, SecondFactorNeeded)
    with pytest.raises(InvalidCredentials):  # a recovery code works once
        await service.second_factor(third.token, recovery)
    assert isinstance(await service.second_factor(third.token, codes[4]), SignedIn)


async def test_guessing_codes_is_throttled_per_account(service: AccountService) -> None:
    actor = await person(service, "kev@example.org")
    secret, _ = await service.begin_two_factor(actor)
    await service.enable_two_factor(actor, totp_at(secret, 0))
    pending = await service.log_in("kev@example.org", PASSWORD)
    assert isinstance(pending, SecondFactorNeeded)
    for _ in range(THROTTLE.free_failures + 1):
        with pytest.raises(InvalidCredentials):
            await service.second_factor(pending.token, not_a_code_of(secret))
    with pytest.raises(Throttled):
        await service.second_factor(pending.token, totp_at(secret, 1))
    # a new sign-in with the password does not reset the count of wrong codes
    fresh = await service.log_in("kev@example.org", PASSWORD)
    assert isinstance(fresh, SecondFactorNeeded)
    with pytest.raises(Throttled):
        await service.second_factor(fresh.token, totp_at(secret, 1))


async def test_a_pending_second_factor_dies_with_a_disabled_account(
        service: AccountService) -> None:
    actor = await person(service, "kit@example.org")
    secret, _ = await service.begin_two_factor(actor)
    await service.enable_two_factor(actor, totp_at(secret, 0))
    pending = await service.log_in("kit@example.org", PASSWORD)
    assert isinstance(pending, SecondFactorNeeded)
    await service.disable(actor.person_id)
    with pytest.raises(Forbidden, match="disabled"):
        await service.second_factor(pending.token, totp_at(secret, 1))
    assert await service.sessions.list(actor.person_id) == []


async def test_turning_two_step_sign_in_off_asks_for_the_password(
        service: AccountService) -> None:
    actor = await person(service, "lee@example.org")
    secret, _ = await service.begin_two_factor(actor)
    await service.enable_two_factor(actor, totp_at(secret, 0))
    with pytest.raises(InvalidCredentials):
        await service.disable_two_factor(actor, "not the password")
    await service.disable_two_factor(actor, PASSWORD)
    assert await service.store.recovery_codes_left(actor.person_id) == 0
    assert isinstance(await service.log_in("lee@example.org", PASSWORD), SignedIn)


async def test_guessing_the_password_to_turn_two_step_sign_in_off_is_throttled(
        service: AccountService) -> None:
    """A stolen session cannot use the turn-off as a password oracle faster than sign-in."""
    actor = await person(service, "lou@example.org")
    secret, _ = await service.begin_two_factor(actor)
    await service.enable_two_factor(actor, totp_at(secret, 0))
    for _ in range(THROTTLE.free_failures + 1):
        with pytest.raises(InvalidCredentials):
            await service.disable_two_factor(actor, "a guess at it")
    with pytest.raises(Throttled):
        await service.disable_two_factor(actor, PASSWORD)
    assert (await service.store.require_account(actor.person_id)).two_factor
    await service.store.clear_failures(f"account:{actor.person_id}")
    await service.disable_two_factor(actor, PASSWORD)
    assert not (await service.store.require_account(actor.person_id)).two_factor


# -- password reset -------------------------------------------------------------------------

async def test_a_reset_for_an_unknown_address_sends_nothing(service: AccountService) -> None:
    assert await service.request_reset("nobody@example.org") is None
    assert mails(service) == []


async def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(
        service: AccountService) -> None:
    actor = await person(service, "max@example.org")
    one = await signed_in(service, "max@example.org")
    two = await signed_in(service, "max@example.org")
    assert await service.request_reset(" MAX@example.org") is None
    [mail] = mails(service)
    assert mail["kind"] == "reset" and mail["to"] == "max@example.org"
    token = token_of(mail)
    with pytest.raises(WeakPassword):
        await service.reset_password(token, "short")
    with pytest.raises(WeakPassword, match="not your email"):
        await service.reset_password(token, "max@example.org")
    # neither refusal used the link up
    changed = await service.reset_password(token, "a brand new secret")
    assert changed.account_id == actor.person_id
    assert await service.sessions.find(one.secret) is None
    assert await service.sessions.find(two.secret) is None
    assert mails(service)[-1]["kind"] == "notice"
    with pytest.raises(LinkInvalid):
        await service.reset_password(token, "yet another secret")
    with pytest.raises(InvalidCredentials):
        await service.log_in("max@example.org", PASSWORD)
    await signed_in(service, "max@example.org", "a brand new secret")


async def test_a_newer_reset_link_voids_the_older_one(service: AccountService) -> None:
    await person(service, "ned@example.org")
    await service.request_reset("ned@example.org")
    await service.request_reset("ned@example.org")
    older, newer = (token_of(m) for m in mails(service))
    with pytest.raises(LinkInvalid):
        await service.reset_password(older, "a brand new secret")
    await service.reset_password(newer, "a brand new secret")
    await signed_in(service, "ned@example.org", "a brand new secret")


async def test_a_disabled_account_gets_no_reset_mail(service: AccountService) -> None:
    actor = await person(service, "oli@example.org")
    await service.disable(actor.person_id)
    await service.request_reset("oli@example.org")
    assert mails(service) == []


# -- organisations --------------------------------------------------------------------------

async def test_invitations_come_from_admins_and_are_accepted_by_the_invited_address(
        service: AccountService) -> None:
    owner = await person(service, "pat@example.org")
    member = await person(service, "quin@example.org")
    outsider = await person(service, "rae@example.org")
    org = await service.create_organisation(owner, " Label ")
    assert org.kind is AccountKind.ORGANISATION and org.name == "Label"
    assert await service.role_in(org.account_id, owner.person_id) == "owner"
    await service.store.set_member(org.account_id, member.person_id, OrgRole.MEMBER)

    with pytest.raises(Forbidden, match="needs admin"):
        await service.invite(member, org.account_id, "sam@example.org", "member")
    with pytest.raises(NotFound):
        await service.invite(outsider, org.account_id, "sam@example.org", "member")
    with pytest.raises(Conflict, match="unknown role"):
        await service.invite(owner, org.account_id, "sam@example.org", "boss")
    assert mails(service) == []

    invitation = await service.invite(owner, org.account_id, " Sam@Example.org", "admin")
    assert invitation.email == "sam@example.org" and invitation.role == "admin"
    [mail] = mails(service)
    assert mail["kind"] == "invite" and mail["to"] == "sam@example.org"
    assert mail["organisation"] == "Label" and mail["inviter"] == "pat"
    token = token_of(mail)

    with pytest.raises(Forbidden, match="sam@example.org"):
        await service.accept_invitation(outsider, token)
    # the invited address, not yet verified, may not accept either
    unverified = await service.sign_up("sam@example.org", PASSWORD, "Sam")
    assert unverified is not None
    sam = Actor(unverified.account_id)
    with pytest.raises(Forbidden, match="verified"):
        await service.accept_invitation(sam, token)
    await service.verify_email(token_of(mails(service)[-1]))
    membership = await service.accept_invitation(sam, token)
    assert (membership.account_id, membership.person_id, membership.role) == (
        org.account_id, sam.person_id, "admin")
    with pytest.raises(LinkInvalid):
        await service.accept_invitation(sam, token)
    assert await service.role_in(org.account_id, sam.person_id) == "admin"


async def test_only_owners_make_owners_and_an_organisation_keeps_one(
        service: AccountService) -> None:
    owner = await person(service, "tia@example.org")
    admin = await person(service, "uma@example.org")
    member = await person(service, "val@example.org")
    org = await service.create_organisation(owner, "Band")
    await service.store.set_member(org.account_id, admin.person_id, OrgRole.ADMIN)
    await service.store.set_member(org.account_id, member.person_id, OrgRole.MEMBER)

    with pytest.raises(Forbidden, match="only owners may invite owners"):
        await service.invite(admin, org.account_id, "wyn@example.org", "owner")
    with pytest.raises(Forbidden, match="only owners"):
        await service.set_member_role(admin, org.account_id, member.person_id, "owner")
    with pytest.raises(Forbidden, match="only owners"):
        await service.set_member_role(admin, org.account_id, owner.person_id, "member")
    with pytest.raises(Forbidden):
        await service.set_member_role(member, org.account_id, member.person_id, "admin")
    with pytest.raises(Forbidden, match="only owners may remove owners"):
        await service.remove_member(admin, org.account_id, owner.person_id)
    changed = await service.set_member_role(admin, org.account_id, member.person_id, "viewer")
    assert changed.role == "viewer"

    with pytest.raises(Conflict, match="at least one owner"):
        await service.set_member_role(owner, org.account_id, owner.person_id, "admin")
    with pytest.raises(Conflict, match="at least one owner"):
        await service.remove_member(owner, org.account_id, owner.person_id)
    assert await service.role_in(org.account_id, owner.person_id) == "owner"

    await service.set_member_role(owner, org.account_id, admin.person_id, "owner")
    await service.set_member_role(owner, org.account_id, owner.person_id, "member")
    with pytest.raises(Forbidden):  # no longer an owner, nor an admin
        await service.remove_member(owner, org.account_id, admin.person_id)
    await service.remove_member(member, org.account_id, member.person_id)  # anyone may leave
    with pytest.raises(NotFound):
        await service.remove_member(admin, org.account_id, member.person_id)
    assert {(m.person_id, m.role) for m in await service.store.members(org.account_id)} == {
        (admin.person_id, "owner"), (owner.person_id, "member")}


async def test_a_person_s_own_account_takes_no_members(service: AccountService) -> None:
    ann = await person(service, "jan@example.org")
    await person(service, "kai@example.org")
    with pytest.raises(Conflict, match="organisation"):
        await service.invite(ann, ann.person_id, "kai@example.org", "member")
    assert mails(service) == []


async def test_an_invitation_cannot_change_a_member_s_role(service: AccountService) -> None:
    owner = await person(service, "lou@example.org")
    admin = await person(service, "mia@example.org")
    org = await service.create_organisation(owner, "Label")
    await service.store.set_member(org.account_id, admin.person_id, OrgRole.ADMIN)
    # an admin may not unmake an owner; an invitation the owner accepts must not either
    await service.invite(admin, org.account_id, "lou@example.org", "viewer")
    token = token_of(mails(service)[-1])
    with pytest.raises(Conflict, match="member already"):
        await service.accept_invitation(owner, token)
    assert await service.role_in(org.account_id, owner.person_id) == "owner"


# -- API keys -------------------------------------------------------------------------------

async def test_api_keys_for_oneself_and_for_an_organisation(service: AccountService) -> None:
    owner = await person(service, "xan@example.org")
    member = await person(service, "yas@example.org")
    outsider = await person(service, "zed@example.org")
    org = await service.create_organisation(owner, "Label")
    await service.store.set_member(org.account_id, member.person_id, OrgRole.MEMBER)

    secret, record = await service.create_key(owner, owner.person_id, "laptop",
                                              ["project.write", "project.read"])
    assert secret.startswith("mbk_live_") and record.scopes == ("project.read",
                                                                 "project.write")
    found, who = await service.authenticate_key(secret)
    assert found.key_id == record.key_id and who.account_id == owner.person_id
    assert (await service.store.key_by_hash(record.key_hash)).last_used_at is not None

    org_secret, org_record = await service.create_key(owner, org.account_id, "ci",
                                                      ["project.read"], test=True)
    assert org_secret.startswith("mbk_test_") and org_record.owner_id == org.account_id
    assert (await service.authenticate_key(org_secret))[1].account_id == org.account_id
    with pytest.raises(Forbidden):
        await service.create_key(member, org.account_id, "mine", ["project.read"])
    with pytest.raises(NotFound):
        await service.create_key(outsider, org.account_id, "mine", ["project.read"])
    with pytest.raises(NotFound):
        await service.create_key(outsider, owner.person_id, "mine", ["project.read"])
    with pytest.raises(NotFound):
        await service.revoke_key(outsider, org.account_id, org_record.key_id)

    await service.revoke_key(owner, org.account_id, org_record.key_id)
    with pytest.raises(InvalidCredentials, match="revoked"):
        await service.authenticate_key(org_secret)
    assert (await service.authenticate_key(secret))[0].key_id == record.key_id


async def test_a_mistyped_key_is_refused_without_a_lookup(
        service: AccountService, monkeypatch: pytest.MonkeyPatch) -> None:
    actor = await person(service, "abe@example.org")
    secret, _ = await service.create_key(actor, actor.person_id, "k", ["project.read"])
    position = 20
    changed = secret[:position] + ("a" if secret[position] != "a" else "b") + \
        secret[position + 1:]
    lookups: list[str] = []
    real = service.store.key_by_hash

    async def spy(key_hash: str):  # noqa: ANN202 - the store's own signature
        lookups.append(key_hash)
        return await real(key_hash)

    monkeypatch.setattr(service.store, "key_by_hash", spy)
    with pytest.raises(InvalidCredentials, match="checksum"):
        await service.authenticate_key(changed)
    with pytest.raises(InvalidCredentials, match="checksum"):
        await service.authenticate_key("not a key at all")
    assert lookups == []
    await service.authenticate_key(secret)
    assert len(lookups) == 1


async def test_a_key_of_a_disabled_account_is_refused(service: AccountService) -> None:
    actor = await person(service, "bea@example.org")
    secret, _ = await service.create_key(actor, actor.person_id, "k", ["project.read"])
    await service.authenticate_key(secret)
    await service.disable(actor.person_id)
    with pytest.raises(InvalidCredentials, match="disabled"):
        await service.authenticate_key(secret)


async def test_an_organisation_s_keys_go_with_their_maker_s_admin_role(
        service: AccountService) -> None:
    owner = await person(service, "ora@example.org")
    admin = await person(service, "pia@example.org")
    org = await service.create_organisation(owner, "Label")

    async def admins_key() -> str:
        await service.admin_set_member(org.account_id, admin.person_id, OrgRole.ADMIN)
        secret, _ = await service.create_key(admin, org.account_id, "tools", ["account.read"])
        await service.authenticate_key(secret)
        return secret

    owners, _ = await service.create_key(owner, org.account_id, "mine", ["account.read"])
    changes = [
        lambda: service.remove_member(owner, org.account_id, admin.person_id),
        lambda: service.set_member_role(owner, org.account_id, admin.person_id, "member"),
        lambda: service.admin_remove_member(org.account_id, admin.person_id),
        lambda: service.admin_set_member(org.account_id, admin.person_id, "viewer"),
        lambda: service.remove_member(admin, org.account_id, admin.person_id),  # leaving
    ]
    for change in changes:
        secret = await admins_key()
        await change()
        with pytest.raises(InvalidCredentials, match="revoked"):
            await service.authenticate_key(secret)
    # an owner made admin still makes keys: theirs stay
    secret = await admins_key()
    await service.set_member_role(owner, org.account_id, admin.person_id, "owner")
    await service.set_member_role(owner, org.account_id, admin.person_id, "admin")
    await service.authenticate_key(secret)
    await service.authenticate_key(owners)
    revoked = [k for k in await service.store.keys_of(org.account_id) if k.revoked_at]
    assert len(revoked) == len(changes) and {k.created_by for k in revoked} == {
        admin.person_id}
    logged = [e for e in await service.store.audit_events(org.account_id)
              if e.action == "key.revoked"]
    assert sorted(e.target for e in logged) == sorted(k.key_id for k in revoked)


async def test_an_organisation_key_whose_maker_is_no_admin_there_is_refused(
        service: AccountService) -> None:
    """The keys of a maker demoted or removed past the service (or before keys were revoked
    with the role) stop too, and work again while the maker is an admin again."""
    owner = await person(service, "ray@example.org")
    admin = await person(service, "sue@example.org")
    org = await service.create_organisation(owner, "Label")
    await service.admin_set_member(org.account_id, admin.person_id, OrgRole.ADMIN)
    secret, _ = await service.create_key(admin, org.account_id, "tools", ["account.read"])
    await service.store.set_member(org.account_id, admin.person_id, OrgRole.MEMBER)
    with pytest.raises(InvalidCredentials, match="no longer an admin"):
        await service.authenticate_key(secret)
    await service.store.remove_member(org.account_id, admin.person_id)
    with pytest.raises(InvalidCredentials, match="no longer an admin"):
        await service.authenticate_key(secret)
    await service.store.set_member(org.account_id, admin.person_id, OrgRole.OWNER)
    assert (await service.authenticate_key(secret))[1].account_id == org.account_id


# -- projects -------------------------------------------------------------------------------

async def test_project_roles_come_from_owning_membership_and_grants(
        service: AccountService) -> None:
    ann = await person(service, "ann@example.org")
    org = await service.create_organisation(ann, "Label")
    team = await service.create_organisation(ann, "Mixers", kind=AccountKind.TEAM)
    member = await person(service, "ben@example.org")
    viewer = await person(service, "cat@example.org")
    admin = await person(service, "dan@example.org")
    nobody = await person(service, "eli@example.org")
    store = service.store
    await store.set_member(org.account_id, member.person_id, OrgRole.MEMBER)
    await store.set_member(org.account_id, viewer.person_id, OrgRole.VIEWER)
    await store.set_member(org.account_id, admin.person_id, OrgRole.ADMIN)
    await store.set_member(team.account_id, viewer.person_id, OrgRole.MEMBER)
    await store.own_project(ann.person_id, "solo")
    await store.own_project(org.account_id, "album")
    await store.own_project(nobody.person_id, "other")

    async def role(actor: Actor, project: str) -> str | None:
        return await service.project_role(actor.person_id, project)

    assert await role(ann, "solo") == "owner"
    assert await role(member, "solo") is None
    assert [await role(a, "album") for a in (ann, member, viewer, admin, nobody)] == [
        "owner", "editor", "viewer", "owner", None]
    assert await role(member, "unknown project") is None

    await store.grant("solo", member.person_id, "viewer", ann.person_id)
    await store.grant("solo", team.account_id, "editor", ann.person_id)
    assert await role(member, "solo") == "viewer"
    assert await role(viewer, "solo") == "editor"  # through the team
    # the strongest role wins: a grant above the membership's, and one below it
    await store.grant("album", viewer.person_id, "editor", ann.person_id)
    await store.grant("album", member.person_id, "viewer", ann.person_id)
    assert await role(viewer, "album") == "editor"
    assert await role(member, "album") == "editor"

    assert await service.projects(ann.person_id) == {"solo": "owner", "album": "owner"}
    assert await service.projects(member.person_id) == {"solo": "viewer", "album": "editor"}
    assert await service.projects(viewer.person_id) == {"solo": "editor", "album": "editor"}
    assert await service.projects(admin.person_id) == {"album": "owner"}
    assert await service.projects(nobody.person_id) == {"other": "owner"}
    for actor in (ann, member, viewer, admin, nobody):
        for project, held in (await service.projects(actor.person_id)).items():
            assert await role(actor, project) == held


async def test_a_declared_role_alone_opens_no_project(service: AccountService) -> None:
    ann = await person(service, "fia@example.org")
    clerk = await person(service, "gil@example.org")
    org = await service.create_organisation(ann, "Label")
    await service.store.set_member(org.account_id, clerk.person_id, OrgRole.MEMBER)
    await service.set_member_role(ann, org.account_id, clerk.person_id, "finance",
                                  declared_roles=["finance"])
    await service.store.own_project(org.account_id, "album")
    assert await service.project_role(clerk.person_id, "album") is None
    assert await service.projects(clerk.person_id) == {}


# -- administration -------------------------------------------------------------------------

async def test_disabling_an_account_ends_its_sessions_and_sign_in(
        service: AccountService) -> None:
    actor = await person(service, "hu@example.org")
    other = await person(service, "io@example.org")
    one = await signed_in(service, "hu@example.org")
    two = await signed_in(service, "hu@example.org")
    kept = await signed_in(service, "io@example.org")
    disabled = await service.disable(actor.person_id)
    assert not disabled.active
    assert await service.sessions.find(one.secret) is None
    assert await service.sessions.find(two.secret) is None
    assert (await service.sessions.find(kept.secret)).person_id == other.person_id
    with pytest.raises(Forbidden, match="disabled"):
        await service.log_in("hu@example.org", PASSWORD)
    actions = [e.action for e in await service.store.audit_events(actor.person_id)]
    assert {"account.disabled", "sign_in"} <= set(actions)


async def test_asking_for_links_over_and_over_mails_at_most_five_an_hour(
        service: AccountService) -> None:
    """A stranger asking for resets (or signing up with the address) again and again, or
    for verification mails, floods nobody's inbox: five of a kind an hour, then the same
    answer and no mail; the links mailed still work."""
    await person(service, "ada@example.org")
    for _ in range(4):
        await service.request_reset("ada@example.org")
    assert await service.sign_up("ada@example.org", "another password!", "Eve") is None
    for _ in range(3):
        await service.request_reset("ada@example.org")
    assert [m["kind"] for m in mails(service)] == ["reset"] * 4 + ["exists"]
    await service.reset_password(token_of(mails(service)[-1]), "a brand new password")
    assert await service.sign_up("bo@example.org", PASSWORD, "Bo") is not None
    bo = await service.store.person_by_email("bo@example.org")
    for _ in range(7):
        await service.send_verification(bo)
    verify = [m for m in mails(service) if m["to"] == "bo@example.org"]
    assert [m["kind"] for m in verify] == ["verify"] * 5
    await service.verify_email(token_of(verify[-1]))


async def test_parallel_asks_for_links_still_mail_at_most_five(
        service: AccountService) -> None:
    """Twelve reset requests at once are counted one after the other: five mails."""
    await person(service, "ada@example.org")
    await asyncio.gather(*(service.request_reset("ada@example.org") for _ in range(12)))
    assert [m["kind"] for m in mails(service)] == ["reset"] * 5
    await service.reset_password(token_of(mails(service)[-1]), "a brand new password")
