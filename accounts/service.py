"""The rules of accounts: sign-up, sign-in, links, second factor, organisations, keys.

:class:`AccountService` is what the HTTP routes and the CLI call. It keeps data
in an :class:`~accounts.store.AccountStore`, sessions in
:class:`~accounts.sessions.Sessions` and hands mail to a :class:`Notifier`
(the server queues a job that sends it over SMTP, :mod:`accounts.mail`).

Answers never tell whether an address has an account: sign-up, sign-in and
password reset answer alike for known and unknown addresses (an unknown one
still costs one password verification). Failed sign-ins are counted per
address (email), per network address and per account, and each subject past
its free failures waits a growing delay (:mod:`accounts.throttle`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from database import Session

from . import api_keys, links, totp
from .errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    LinkInvalid,
    NotFound,
    Throttled,
    UnknownRegion,
)
from .models import (
    BUILT_IN_ORG_ROLES,
    DEFAULT_REGION,
    PLANS,
    Account,
    AccountKind,
    AccountStatus,
    ApiKeyRecord,
    Invitation,
    Membership,
    OrgRole,
    SessionRecord,
    new_id,
    normalise_email,
)
from .passwords import PasswordPolicy, Passwords
from .regions import RegionalAccountStore
from .sessions import Sessions
from .store import AccountStore
from .throttle import SIGN_UP_RULE, Attempt, ThrottleRule

log = logging.getLogger(__name__)

#: How long a password-checked sign-in waits for its second factor.
SECOND_FACTOR_SECONDS = 300.0
#: A key's last-used time is written at most this often.
KEY_TOUCH_SECONDS = 60.0
#: Links of one kind (reset, verify) mailed to one person per :data:`MAIL_WINDOW_S` at
#: most: asking again and again mails nobody more (the answer stays the same).
MAIL_LIMIT = 5
MAIL_WINDOW_S = 3600.0
#: Mail asks (reset links, verification resends) one client makes freely before it
#: waits (1 s, then doubling), their count halving with each hour without one.
ASK_RULE = ThrottleRule(free_failures=10)
#: Project roles, weakest first (the collaboration server's roles).
PROJECT_ROLES = ("viewer", "editor", "owner")
#: The project role an organisation role gives on the organisation's own projects.
ORG_TO_PROJECT_ROLE = {"owner": "owner", "admin": "owner", "member": "editor",
                       "viewer": "viewer"}
#: The organisation roles that make keys: an organisation's key works while its maker
#: holds one of them (removed or demoted below, their keys there are revoked).
KEY_MAKER_ROLES = (OrgRole.OWNER.value, OrgRole.ADMIN.value)

#: The links of an account set up by someone who never proved its address.
UNPROVED_LINKS = ("verify", "reset", "second_factor", "invite")

#: The lock a change of an organisation's members holds on it (one owner stays).
OWNERS_LOCK = 711_005
#: The lock of counting a person's mailed links of one kind and making the next one.
MAIL_LOCK = 711_006

#: What the security log calls each event (docs/accounts.md lists them).
SIGN_IN, SIGN_IN_FAILED, SIGN_OUT = "sign_in", "sign_in.failed", "sign_out"
PASSWORD_CHANGED, PASSWORD_RESET = "password.changed", "password.reset"
TWO_FACTOR_ON, TWO_FACTOR_OFF = "two_factor.enabled", "two_factor.disabled"
KEY_CREATED, KEY_REVOKED = "key.created", "key.revoked"
ROLE_CHANGED, MEMBER_REMOVED = "role.changed", "member.removed"
PROJECT_ROLE_GRANTED, PROJECT_ROLE_REVOKED = "project.role_granted", "project.role_revoked"
INVITED, INVITATION_ACCEPTED = "invitation.sent", "invitation.accepted"
INVITATION_WITHDRAWN = "invitation.withdrawn"
EMAIL_VERIFIED, ACCOUNT_DISABLED = "email.verified", "account.disabled"
PLAN_CHANGED = "plan.changed"


class Notifier(Protocol):
    """Sends account mail: ``kind`` is verify, reset, exists, invite or notice."""

    async def notify(self, kind: str, to: str, *, link: str = "", **fields: Any) -> None:
        """Queue one mail of ``kind`` to ``to``."""


@dataclass
class MailLog:
    """A :class:`Notifier` that only remembers (the CLI, tests of the rules)."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    async def notify(self, kind: str, to: str, *, link: str = "", **fields: Any) -> None:
        self.sent.append({"kind": kind, "to": to, "link": link, **fields})


@dataclass(frozen=True)
class SignedIn:
    """A new session: the secret for the cookie and its record."""

    secret: str
    session: SessionRecord
    person: Account


@dataclass(frozen=True)
class SecondFactorNeeded:
    """The password was right; a TOTP or recovery code must follow with ``token``."""

    token: str
    expires_at: float


@dataclass(frozen=True)
class Actor:
    """Who asks for a change, and from where (for the security log)."""

    person_id: str
    address: str = ""
    user_agent: str = ""


def check_scopes_held(maker: ApiKeyRecord, scopes: Iterable[str]) -> None:
    """Refuse (:class:`Forbidden`) ``scopes`` that the key ``maker`` does not hold: a key
    never makes a key stronger than itself."""
    missing = sorted(set(scopes) - set(maker.scopes))
    if missing:
        raise Forbidden(f"this API key does not hold the scopes {missing}, so the keys it "
                        f"makes may not either; make that key signed in, or with a key "
                        f"that holds them")


def capped_expiry(wanted: float | None, limit: float | None) -> float | None:
    """The expiry of a key made by a key that expires at ``limit`` (None: never): the
    ``wanted`` one, but no later than ``limit``."""
    if limit is None:
        return wanted
    return limit if wanted is None else min(wanted, limit)


class AccountService:
    """Accounts' rules over a store, sessions and a notifier."""

    def __init__(self, store: AccountStore | RegionalAccountStore, sessions: Sessions,
                 notifier: Notifier, *,
                 base_url: str = "http://127.0.0.1:8750", passwords: Passwords | None = None,
                 policy: PasswordPolicy | None = None, throttle: ThrottleRule | None = None,
                 sign_up_rule: ThrottleRule = SIGN_UP_RULE,
                 regions: Iterable[str] = (DEFAULT_REGION,),
                 require_verified_email: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.sessions = sessions
        self.notifier = notifier
        self.base_url = base_url.rstrip("/")
        self.passwords = passwords or Passwords()
        self.policy = policy or PasswordPolicy()
        self.throttle = throttle or ThrottleRule()
        self.sign_up_rule = sign_up_rule
        self.regions = tuple(regions)
        self.require_verified_email = require_verified_email
        #: The time sign-in failures are counted and faded by (injected by tests).
        self.clock = clock
        self._key_touched: dict[str, float] = {}

    # -- helpers --------------------------------------------------------------------

    def link(self, purpose: str, token: str) -> str:
        """The page a mailed link opens."""
        return f"{self.base_url}/account/{purpose}?token={token}"

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self.passwords.hash, password)

    async def _new_link(self, purpose: str, person_id: str, data: dict[str, Any],
                        lifetime: float | None = None, *, tx: Session | None = None) -> str:
        token, token_hash = links.new_link_token()
        seconds = (links.LIFETIMES[links.LinkPurpose(purpose)].total_seconds() if lifetime is None
                   else lifetime)
        await self.store.put_link(token_hash, purpose, person_id, data, time.time() + seconds,
                                  tx=tx)
        return token

    async def _mail_link(self, person: Account, purpose: str, kind: str,
                         data: dict[str, Any]) -> None:
        """Mail ``person`` (``kind`` of mail) a fresh ``purpose`` link that voids the older
        ones, unless :data:`MAIL_LIMIT` of them went out in the last hour (so a stranger
        asking over and over cannot flood the inbox). The count and the new link are one
        transaction holding the person's lock, so parallel asks are counted too."""
        now = time.time()
        async with self.store.transaction(person.account_id) as tx:
            await tx.hold_lock(MAIL_LOCK, f"{person.account_id}/{purpose}")
            sent = await self.store.links_made_since(person.account_id, purpose,
                                                     now - MAIL_WINDOW_S, tx=tx)
            if sent >= MAIL_LIMIT:
                log.info("not mailing account %s another %s link: %d in the last hour "
                         "already", person.account_id, purpose, sent)
                return
            await self.store.void_links(person.account_id, purpose, now, tx=tx)
            token = await self._new_link(purpose, person.account_id, data, tx=tx)
        await self.notifier.notify(kind, person.email or "", link=self.link(purpose, token))

    async def _take_link(self, token: str, purpose: str) -> Any:
        record = await self.store.take_link(links.hash_token(token), purpose, time.time())
        if record is None:
            raise LinkInvalid("this link is unknown, used already or expired; ask for a new one")
        return record

    async def _take_attempts(self, subjects: Iterable[str], rule: ThrottleRule | None = None,
                             refusal: str = "too many failed attempts") -> list[Attempt]:
        """Count an attempt against each subject *before* it is checked (a failure until
        it succeeds), or refuse with :class:`Throttled` (``refusal``, and the wait),
        counting none, when one of them must wait: a burst of parallel guesses gets no
        more checks than one at a time. ``rule`` is the service's sign-in throttle unless
        given."""
        now, taken, rule = self.clock(), [], rule or self.throttle
        for subject in subjects:
            attempt = await self.store.take_attempt(subject, now,
                                                    half_life=rule.half_life,
                                                    wait_after=rule.delay_after)
            if attempt.wait > 0:
                for earlier in taken:
                    await self.store.release_attempt(earlier)
                raise Throttled(f"{refusal}; try again in {attempt.wait:.0f} s",
                                attempt.wait)
            taken.append(attempt)
        return taken

    # -- sign-up and email ------------------------------------------------------------

    async def sign_up(self, email: str, password: str, name: str, *,
                      region: str = DEFAULT_REGION) -> Account | None:
        """Create an unverified person and mail a verification link.

        An address that has an account already gets a mail saying so (with a
        reset link) instead, and the call answers the same: None.
        """
        email, password_hash = await self.sign_up_request(email, password, region)
        return await self.finish_sign_up(email, password_hash, name, region=region)

    async def sign_up_request(self, email: str, password: str, region: str
                              ) -> tuple[str, str]:
        """The checked part of a sign-up, which looks nothing up: the password against
        the policy and the region, then ``(normalised address, password hash)`` for
        :meth:`finish_sign_up` (the same work whether the address has an account)."""
        self.policy.check(password, email)
        if region not in self.regions:
            raise UnknownRegion(f"unknown data region {region!r}; use one of "
                                f"{list(self.regions)}")
        return normalise_email(email), await self._hash(password)

    async def finish_sign_up(self, email: str, password_hash: str, name: str, *,
                             region: str = DEFAULT_REGION) -> Account | None:
        """The rest of :meth:`sign_up` for :meth:`sign_up_request`'s answer: the new
        unverified person, mailed a verification link, or None when the address has an
        account already (mailed that it has). Run again for the same answer (the job's
        retry after the account was made but not mailed), it mails the verification
        link again: the unverified account holding that very hash is this sign-up's."""
        existing = await self.store.person_by_email(email)
        if existing is not None and existing.email_verified_at is None and \
                existing.password_hash == password_hash:  # (a salted hash: only ours)
            await self.send_verification(existing)
            return existing
        if existing is not None:
            await self._mail_exists(existing)
            return None
        try:
            person = await self.store.create_account(
                AccountKind.PERSON, name.strip() or email, email=email,
                password_hash=password_hash, region=region)
        except Conflict:  # the same address signed up at the same moment
            return None
        await self.send_verification(person)
        return person

    async def _mail_exists(self, person: Account) -> None:
        """Tell an active ``person`` someone signed up with their address, with a reset
        link that replaces their older ones; a disabled account gets nothing."""
        if person.active and person.email is not None:
            await self._mail_link(person, "reset", "exists", {})

    async def resend_verification(self, email: str) -> None:
        """Mail a fresh verification link to ``email`` if it is an active person's
        unverified address (:meth:`send_verification`); nothing otherwise."""
        person = await self.store.person_by_email(email)
        if person is not None and person.active:
            await self.send_verification(person)

    async def send_verification(self, person: Account) -> None:
        """Mail ``person`` a fresh verification link (older ones stop working), unless
        :data:`MAIL_LIMIT` such links went out in the last hour."""
        if person.email is not None and person.email_verified_at is None:
            await self._mail_link(person, "verify", "verify", {"email": person.email})

    async def verify_email(self, token: str) -> Account:
        """Mark the address of the link's person verified."""
        record = await self._take_link(token, "verify")
        person = await self.store.require_account(record.person_id)
        if person.email != record.data.get("email"):
            raise LinkInvalid("this link was for another address; ask for a new one")
        person = await self.store.update_account(person.account_id,
                                                 email_verified_at=time.time())
        await self.store.audit(person.account_id, person.account_id, EMAIL_VERIFIED,
                               target=person.email or "")
        return person

    async def reclaim_for_address_owner(self, person: Account) -> Account:
        """Give ``person``, whose address was never verified, to whoever just proved they
        own it (a provider verified it): whatever was set up without that proof goes.

        Its password, two-step sign-in and recovery codes are cleared, its sessions
        end, its open links are voided, its keys (and those it made) are revoked, and
        the address is marked verified. Whoever signed up with someone else's address
        keeps nothing; the address's owner sets a password by a reset if they want one.
        """
        now = time.time()
        async with self.store.transaction(person.account_id) as tx:
            await self.store.update_account(
                person.account_id, password_hash=None, totp_secret=None,
                totp_enabled_at=None, totp_last_step=None, email_verified_at=now, tx=tx)
            await self.store.replace_recovery_codes(person.account_id, [], tx=tx)
            for purpose in UNPROVED_LINKS:
                await self.store.void_links(person.account_id, purpose, now, tx=tx)
        await self.sessions.end_all(person.account_id)
        await self._revoke_and_audit(await self._live_keys_of(person.account_id),
                                     person.account_id, EMAIL_VERIFIED)
        await self.store.audit(person.account_id, person.account_id, EMAIL_VERIFIED,
                               target=person.email or "", detail={"reclaimed": True})
        return await self.store.require_account(person.account_id)

    async def _live_keys_of(self, person_id: str) -> list[ApiKeyRecord]:
        """The usable keys ``person_id`` owns or made (for an organisation)."""
        now = time.time()
        found = {k.key_hash: k for k in [*await self.store.keys_of(person_id),
                                         *await self.store.keys_made_by(person_id)]}
        return [k for k in found.values() if k.usable_at(now)]

    async def _revoke_and_audit(self, keys: Iterable[ApiKeyRecord], actor_id: str,
                                why: str) -> None:
        """Revoke ``keys``, each recorded as revoked for ``why`` in its owner's log."""
        now = time.time()
        for key in keys:
            await self.store.revoke_key(key.owner_id, key.key_id, now)
            await self._audit_keys_revoked(key.owner_id, actor_id, [key.key_id], why)

    # -- sign-in ----------------------------------------------------------------------

    async def log_in(self, email: str, password: str, *, address: str = "",
                     user_agent: str = "", client: str | None = None
                     ) -> SignedIn | SecondFactorNeeded:
        """Check an email and password; a session, or a second factor to ask for.

        ``address`` is the caller's network address (for the security log); failures
        are counted per ``client``, the key one client counts under (the server groups
        an IPv6 address by its /64), by default ``address``. Raises
        :class:`InvalidCredentials` (the same for an unknown address and a wrong
        password) or :class:`Throttled`.
        """
        email = normalise_email(email)
        counted = address if client is None else client
        subjects = [f"email:{email}", f"address:{counted}"] if counted else [f"email:{email}"]
        attempts = await self._take_attempts(subjects)
        person = await self.store.person_by_email(email)
        if person is None or person.password_hash is None:
            await asyncio.to_thread(self.passwords.dummy_verify, password)
            raise InvalidCredentials("wrong email or password")
        checked = await asyncio.to_thread(self.passwords.verify, person.password_hash, password)
        if not checked.ok:
            await self.store.audit(person.account_id, person.account_id, SIGN_IN_FAILED,
                                   address=address)
            raise InvalidCredentials("wrong email or password")
        await self.store.clear_failures(f"email:{email}")
        for other in attempts[1:]:  # a right password is no failure of the address
            await self.store.release_attempt(other)
        if checked.needs_rehash:
            person = await self.store.update_account(person.account_id,
                                                     password_hash=await self._hash(password))
        self._check_may_sign_in(person)
        if person.two_factor:
            return await self.second_factor_needed(person, address)
        return await self.start_session(person, address, user_agent)

    async def take_client_attempt(self, client: str) -> list[Attempt]:
        """Count a sign-in attempt of ``client`` (what the server counts an address under:
        an IPv6 address's /64) as a failure until :meth:`release_attempts`, under the
        very subject :meth:`log_in` counts it by; :class:`Throttled` when it must wait.
        None counted for an empty ``client``."""
        return await self._take_attempts([f"address:{client}"]) if client else []

    async def take_ask(self, client: str) -> None:
        """Count a mail ``client`` asked for (a reset link or a verification resend,
        whatever the address): :class:`Throttled` once it must wait (:data:`ASK_RULE`),
        so one client cannot fill the job queue with asks. None counted for an empty
        ``client``."""
        if client:
            await self._take_attempts([f"ask:{client}"], ASK_RULE)

    async def take_sign_up(self, client: str) -> None:
        """Count a sign-up of ``client``, whatever the address: :class:`Throttled` once it
        must wait (:attr:`sign_up_rule`), so one client cannot spend the server's CPU on
        password hashes nor fill the job queue. None counted for an empty ``client``."""
        if client:
            await self._take_attempts([f"sign-up:{client}"], self.sign_up_rule,
                                      "too many sign-ups from your network")

    async def release_attempts(self, attempts: Iterable[Attempt]) -> None:
        """Uncount ``attempts`` that succeeded (:meth:`take_client_attempt`)."""
        for attempt in attempts:
            await self.store.release_attempt(attempt)

    async def second_factor_needed(self, person: Account, address: str) -> SecondFactorNeeded:
        """``person`` proved the first factor (password or provider): the token with which
        :meth:`second_factor` finishes the sign-in."""
        token = await self._new_link("second_factor", person.account_id,
                                     {"address": address}, SECOND_FACTOR_SECONDS)
        return SecondFactorNeeded(token, time.time() + SECOND_FACTOR_SECONDS)

    def _check_may_sign_in(self, person: Account) -> None:
        if not person.active:
            raise Forbidden("this account is disabled; ask an administrator")
        if self.require_verified_email and person.email_verified_at is None:
            raise Forbidden("verify your email address first: follow the link we mailed you "
                            "(or ask for a new one)")

    async def start_session(self, person: Account, address: str, user_agent: str, *,
                            detail: dict[str, Any] | None = None) -> SignedIn:
        """Sign ``person`` in (checked already): a new session, recorded in the security log
        with ``detail`` (e.g. the provider that vouched for them)."""
        secret, session = await self.sessions.start(person.account_id, user_agent=user_agent,
                                                    address=address)
        await self.store.audit(person.account_id, person.account_id, SIGN_IN, address=address,
                               detail={"session": session.session_id, **(detail or {})})
        return SignedIn(secret, session, person)

    async def second_factor(self, token: str, code: str, *, address: str = "",
                            user_agent: str = "") -> SignedIn:
        """Finish a sign-in with a TOTP code or a recovery code."""
        record = await self.store.peek_link(links.hash_token(token), "second_factor",
                                            time.time())
        if record is None:
            raise LinkInvalid("this sign-in has expired; sign in again")
        subject = f"account:{record.person_id}"
        await self._take_attempts([subject])
        person = await self.store.require_account(record.person_id)
        self._check_may_sign_in(person)  # it may have been disabled since the password
        if not await self._code_ok(person, code):
            await self.store.audit(person.account_id, person.account_id, SIGN_IN_FAILED,
                                   address=address, detail={"second_factor": True})
            raise InvalidCredentials("wrong code")
        await self._take_link(token, "second_factor")
        await self.store.clear_failures(subject)
        return await self.start_session(person, address, user_agent)

    async def _code_ok(self, person: Account, code: str) -> bool:
        if person.totp_secret is None:
            return False
        step = totp.verify_code(person.totp_secret, code, person.totp_last_step)
        if step is not None:
            return await self.store.claim_totp_step(person.account_id, step)
        return await self.store.use_recovery_code(person.account_id, totp.hash_code(code),
                                                  time.time())

    async def log_out(self, session: SessionRecord, *, everywhere: bool = False) -> int:
        """End this session (or all of the person's); how many ended."""
        if everywhere:
            ended = await self.sessions.end_all(session.person_id)
        else:
            ended = int(await self.sessions.end(session.key_hash))
        await self.store.audit(session.person_id, session.person_id, SIGN_OUT,
                               detail={"sessions": ended})
        return ended

    # -- passwords ----------------------------------------------------------------------

    async def request_reset(self, email: str) -> None:
        """Mail a reset link if the address has an active account (at most
        :data:`MAIL_LIMIT` an hour); answer the same if not."""
        person = await self.store.person_by_email(email)
        if person is not None and person.active and person.email is not None:
            await self._mail_link(person, "reset", "reset", {})

    async def reset_password(self, token: str, password: str) -> Account:
        """Set a new password through a reset link; every session of the person ends."""
        self.policy.check(password)
        peeked = await self.store.peek_link(links.hash_token(token), "reset", time.time())
        if peeked is not None:  # refuse the password before the link is used up
            owner = await self.store.require_account(peeked.person_id)
            self.policy.check(password, owner.email)
        record = await self._take_link(token, "reset")
        await self.store.void_links(record.person_id, "reset", time.time())
        person = await self.store.require_account(record.person_id)
        changes: dict[str, Any] = {"password_hash": await self._hash(password)}
        if person.email_verified_at is None:  # the link reached their mailbox
            changes["email_verified_at"] = time.time()
        person = await self.store.update_account(person.account_id, **changes)
        await self.sessions.end_all(person.account_id)
        await self.store.audit(person.account_id, person.account_id, PASSWORD_RESET)
        await self._notice(person, "your password was reset")
        return person

    async def change_password(self, actor: Actor, old: str, new: str, *,
                              keep: str | None = None) -> Account:
        """Change a password knowing the old one; other sessions end (``keep`` stays)."""
        person = await self.store.require_account(actor.person_id)
        await self.confirm_password(person, old)
        self.policy.check(new, person.email)
        person = await self.store.update_account(person.account_id,
                                                 password_hash=await self._hash(new))
        await self.store.void_links(person.account_id, "reset", time.time())
        await self.sessions.end_all(person.account_id, keep=keep)
        await self.store.audit(person.account_id, person.account_id, PASSWORD_CHANGED,
                               address=actor.address)
        await self._notice(person, "your password was changed")
        return person

    async def confirm_password(self, person: Account, password: str) -> None:
        """Check ``person``'s password again before a sensitive change, throttled per
        account as sign-in is (:class:`Throttled`); :class:`InvalidCredentials` if wrong."""
        subject = f"account:{person.account_id}"
        await self._take_attempts([subject])
        checked = await asyncio.to_thread(self.passwords.verify, person.password_hash or "",
                                          password)
        if not checked.ok:
            raise InvalidCredentials("the current password is wrong")
        await self.store.clear_failures(subject)

    async def _notice(self, person: Account, what: str) -> None:
        if person.email:
            await self.notifier.notify("notice", person.email, what=what)

    # -- second factor ------------------------------------------------------------------

    async def begin_two_factor(self, actor: Actor) -> tuple[str, str]:
        """A new TOTP secret and its ``otpauth://`` URI; on once :meth:`enable_two_factor`."""
        person = await self.store.require_account(actor.person_id)
        if person.two_factor:
            raise Conflict("two-step sign-in is on already; turn it off first")
        secret = totp.new_secret()
        await self.store.update_account(person.account_id, totp_secret=secret,
                                        totp_last_step=None)
        return secret, totp.provisioning_uri(secret, person.email or person.account_id)

    async def enable_two_factor(self, actor: Actor, code: str) -> list[str]:
        """Turn TOTP on with a first code from the app; the recovery codes (shown once)."""
        person = await self.store.require_account(actor.person_id)
        if person.totp_secret is None or person.two_factor:
            raise Conflict("start setting up two-step sign-in first")
        step = totp.verify_code(person.totp_secret, code, person.totp_last_step)
        if step is None or not await self.store.claim_totp_step(person.account_id, step):
            raise InvalidCredentials("wrong code; check the app's clock and try the next one")
        codes = totp.new_recovery_codes()
        async with self.store.transaction(person.account_id) as tx:
            await self.store.replace_recovery_codes(
                person.account_id, [totp.hash_code(c) for c in codes], tx=tx)
            await self.store.update_account(person.account_id, totp_enabled_at=time.time(),
                                            tx=tx)
        await self.store.audit(person.account_id, person.account_id, TWO_FACTOR_ON,
                               address=actor.address)
        await self._notice(person, "two-step sign-in was turned on")
        return codes

    async def disable_two_factor(self, actor: Actor, password: str) -> None:
        """Turn TOTP off (the password is asked again, throttled as
        :meth:`confirm_password`)."""
        person = await self.store.require_account(actor.person_id)
        await self.confirm_password(person, password)
        await self.store.update_account(person.account_id, totp_secret=None,
                                        totp_enabled_at=None, totp_last_step=None)
        await self.store.replace_recovery_codes(person.account_id, [])
        await self.store.audit(person.account_id, person.account_id, TWO_FACTOR_OFF,
                               address=actor.address)
        await self._notice(person, "two-step sign-in was turned off")

    # -- organisations --------------------------------------------------------------------

    async def create_organisation(self, actor: Actor, name: str, *,
                                  kind: AccountKind = AccountKind.ORGANISATION) -> Account:
        """A new organisation (or team) with ``actor`` as its owner."""
        if kind is AccountKind.PERSON:
            raise Conflict("an organisation is an organisation or a team, not a person")
        person = await self.store.require_account(actor.person_id)
        async with self.store.transaction(person.account_id) as tx:
            org = await self.store.create_account(kind, name.strip() or "Untitled",
                                                  region=person.region, tx=tx)
            await self.store.set_member(org.account_id, person.account_id, OrgRole.OWNER,
                                        tx=tx)
        await self.store.audit(org.account_id, actor.person_id, ROLE_CHANGED,
                               target=actor.person_id, detail={"role": "owner"})
        return org

    async def role_in(self, org_id: str, person_id: str) -> str | None:
        """``person_id``'s role in ``org_id`` (their own account: owner; else None)."""
        if org_id == person_id:
            return OrgRole.OWNER.value
        membership = await self.store.membership(org_id, person_id)
        return None if membership is None else membership.role

    async def require_role(self, org_id: str, person_id: str, minimum: OrgRole) -> str:
        """``person_id``'s role in ``org_id`` if it is ``minimum`` or more; else an error.

        Someone outside the organisation gets :class:`NotFound` (its existence
        is not theirs to learn); a member with a lower role :class:`Forbidden`.
        """
        role = await self.role_in(org_id, person_id)
        if role is None:
            raise NotFound(f"there is no organisation {org_id!r}")
        if role not in BUILT_IN_ORG_ROLES or not OrgRole(role).at_least(minimum):
            raise Forbidden(f"role {role} may not do this; it needs {minimum.value} or more")
        return role

    def _check_role_name(self, role: str, declared: Iterable[str]) -> None:
        names = [*BUILT_IN_ORG_ROLES, *declared]
        if role not in names:
            raise Conflict(f"unknown role {role!r}; use one of {names}")

    async def invite(self, actor: Actor, org_id: str, email: str, role: str, *,
                     declared_roles: Iterable[str] = ()) -> Invitation:
        """Invite ``email`` into ``org_id`` with ``role`` (admins and owners; owners only
        may invite owners) and mail them the link."""
        held = await self.require_role(org_id, actor.person_id, OrgRole.ADMIN)
        self._check_role_name(role, declared_roles)
        if role == OrgRole.OWNER and held != OrgRole.OWNER:
            raise Forbidden("only owners may invite owners")
        org = await self.store.require_account(org_id)
        if org.is_person:
            raise Conflict("a person's own account has no members; create an organisation "
                           "or a team and invite into that")
        inviter = await self.store.require_account(actor.person_id)
        now = time.time()
        invitation = Invitation(
            account_id=org_id, invitation_id=new_id("inv"), email=normalise_email(email),
            role=role, invited_by=actor.person_id,
            expires_at=now + links.LIFETIMES[links.LinkPurpose.INVITE].total_seconds(),
            created_at=now)
        await self.store.add_invitation(invitation)
        token = await self._new_link("invite", actor.person_id,
                                     {"org": org_id, "invitation": invitation.invitation_id})
        await self.notifier.notify("invite", invitation.email, link=self.link("invite", token),
                                   inviter=inviter.name, organisation=org.name)
        await self.store.audit(org_id, actor.person_id, INVITED, target=invitation.email,
                               address=actor.address, detail={"role": role})
        return invitation

    async def accept_invitation(self, actor: Actor, token: str) -> Membership:
        """Join the organisation of an invitation link (the invited address's person only)."""
        person = await self.store.require_account(actor.person_id)
        record = await self.store.peek_link(links.hash_token(token), "invite", time.time())
        if record is None:
            raise LinkInvalid("this invitation is unknown, used already or expired; ask for "
                              "a new one")
        invitation = await self.store.invitation(record.data["org"],
                                                 record.data["invitation"])
        if invitation is None or not invitation.open_at(time.time()):
            raise LinkInvalid("this invitation was withdrawn or has expired; ask for a new one")
        if person.email != invitation.email or person.email_verified_at is None:
            raise Forbidden(f"this invitation is for {invitation.email}; sign in with that "
                            "(verified) address to accept it")
        if await self.store.membership(invitation.account_id, person.account_id) is not None:
            raise Conflict("you are a member already; ask an admin to change your role")
        await self._check_inviter(invitation)
        await self._take_link(token, "invite")
        async with self.store.transaction(invitation.account_id) as tx:
            if not await self.store.close_invitation(invitation.account_id,
                                                     invitation.invitation_id,
                                                     now=time.time(),
                                                     accepted_by=person.account_id, tx=tx):
                raise LinkInvalid("this invitation was used already")
            membership = await self.store.set_member(invitation.account_id, person.account_id,
                                                     invitation.role, tx=tx)
        await self.store.audit(invitation.account_id, person.account_id, INVITATION_ACCEPTED,
                               target=person.account_id, detail={"role": invitation.role})
        await self.roles_changed(person.account_id)
        return membership

    async def _check_inviter(self, invitation: Invitation) -> None:
        """:class:`LinkInvalid` unless whoever sent ``invitation`` may still send it: an
        admin or owner (an owner for an owner's invitation) of the organisation now."""
        held = await self.store.membership(invitation.account_id, invitation.invited_by)
        allowed = (OrgRole.OWNER,) if invitation.role == OrgRole.OWNER else KEY_MAKER_ROLES
        if held is None or held.role not in allowed:
            raise LinkInvalid("this invitation was withdrawn: whoever sent it may no longer "
                              "invite; ask an admin of the organisation for a new one")

    async def withdraw_invitation(self, actor: Actor, org_id: str, invitation_id: str
                                  ) -> Invitation:
        """Withdraw an open invitation (admins; owners alone withdraw an owner's), so its
        link no longer joins anyone; the invitation as it is now."""
        held = await self.require_role(org_id, actor.person_id, OrgRole.ADMIN)
        invitation = await self.store.invitation(org_id, invitation_id)
        if invitation is None:
            raise NotFound(f"no invitation {invitation_id!r} in this organisation")
        if invitation.role == OrgRole.OWNER and held != OrgRole.OWNER:
            raise Forbidden("only owners may withdraw an invitation to become owner")
        if not await self.store.close_invitation(org_id, invitation_id, now=time.time()):
            raise Conflict(f"invitation {invitation_id!r} was accepted, withdrawn or has "
                           "expired already")
        await self.store.audit(org_id, actor.person_id, INVITATION_WITHDRAWN,
                               target=invitation.email, address=actor.address)
        return await self.store.invitation(org_id, invitation_id) or invitation

    async def set_member_role(self, actor: Actor, org_id: str, person_id: str, role: str, *,
                              declared_roles: Iterable[str] = ()) -> Membership:
        """Give a member another role (admins; owners alone make or unmake owners)."""
        held = await self.require_role(org_id, actor.person_id, OrgRole.ADMIN)
        self._check_role_name(role, declared_roles)
        current = await self.store.membership(org_id, person_id)
        if current is None:
            raise NotFound(f"{person_id!r} is not a member")
        if OrgRole.OWNER in (role, current.role) and held != OrgRole.OWNER:
            raise Forbidden("only owners may make or unmake owners")
        membership, revoked = await self._set_role_and_keys(org_id, person_id, role)
        await self.store.audit(org_id, actor.person_id, ROLE_CHANGED, target=person_id,
                               address=actor.address, detail={"from": current.role,
                                                              "role": role})
        await self._audit_keys_revoked(org_id, actor.person_id, revoked, ROLE_CHANGED,
                                       address=actor.address)
        await self.roles_changed(person_id)
        return membership

    async def remove_member(self, actor: Actor, org_id: str, person_id: str) -> None:
        """Take a member out (admins; anyone may leave; the last owner may not)."""
        if person_id != actor.person_id:
            held = await self.require_role(org_id, actor.person_id, OrgRole.ADMIN)
            current = await self.store.membership(org_id, person_id)
            if current is not None and current.role == OrgRole.OWNER and held != OrgRole.OWNER:
                raise Forbidden("only owners may remove owners")
        revoked = await self._remove_and_revoke_keys(org_id, person_id)
        if revoked is None:
            raise NotFound(f"{person_id!r} is not a member")
        await self.store.audit(org_id, actor.person_id, MEMBER_REMOVED, target=person_id,
                               address=actor.address)
        await self._audit_keys_revoked(org_id, actor.person_id, revoked, MEMBER_REMOVED,
                                       address=actor.address)
        await self.roles_changed(person_id)

    async def roles_changed(self, account_id: str) -> int:
        """What ``account_id`` may do changed: the sessions of that person, or of everyone
        in that team or organisation, get a new id at their next use; how many marked."""
        account = await self.store.account(account_id)
        if account is None:
            return 0
        people = ([account_id] if account.is_person else
                  [m.person_id for m in await self.store.members(account_id)])
        return sum([await self.sessions.mark_for_rotation(p) for p in people])

    async def _set_role_and_keys(self, org_id: str, person_id: str, role: str
                                 ) -> tuple[Membership, list[str]]:
        """Give ``person_id`` ``role`` in ``org_id``; below admin, the organisation's keys
        they made are revoked in the same transaction (their ids)."""
        made = [] if role in KEY_MAKER_ROLES else await self._live_keys_made(org_id, person_id)
        async with self.store.transaction(org_id) as tx:
            await self._keep_an_owner(org_id, person_id, role, tx)
            membership = await self.store.set_member(org_id, person_id, role, tx=tx)
            revoked = await self._revoke_all(org_id, made, tx)
            if role not in KEY_MAKER_ROLES:  # may no longer invite: what they sent goes
                await self.store.withdraw_invitations_by(org_id, person_id, now=time.time(),
                                                         tx=tx)
        return membership, revoked

    async def _remove_and_revoke_keys(self, org_id: str, person_id: str) -> list[str] | None:
        """Take ``person_id`` out of ``org_id`` and revoke the organisation's keys they made,
        in one transaction; the revoked keys' ids (None: they were not a member)."""
        made = await self._live_keys_made(org_id, person_id)
        async with self.store.transaction(org_id) as tx:
            await self._keep_an_owner(org_id, person_id, None, tx)
            if not await self.store.remove_member(org_id, person_id, tx=tx):
                return None
            await self.store.withdraw_invitations_by(org_id, person_id, now=time.time(), tx=tx)
            return await self._revoke_all(org_id, made, tx)

    async def _live_keys_made(self, org_id: str, person_id: str) -> list[str]:
        now = time.time()
        return [k.key_id for k in await self.store.keys_of(org_id)
                if k.created_by == person_id and k.usable_at(now)]

    async def _revoke_all(self, org_id: str, key_ids: list[str], tx: Session
                          ) -> list[str]:
        now = time.time()
        for key_id in key_ids:
            await self.store.revoke_key(org_id, key_id, now, tx=tx)
        return key_ids

    async def _audit_keys_revoked(self, org_id: str, actor_id: str, key_ids: list[str],
                                  why: str, *, address: str = "") -> None:
        for key_id in key_ids:
            await self.store.audit(org_id, actor_id, KEY_REVOKED, target=key_id,
                                   address=address, detail={"reason": why})

    async def _keep_an_owner(self, org_id: str, person_id: str, role: str | None,
                             tx: Session) -> None:
        """Refuse (:class:`Conflict`) to leave ``org_id`` without an owner when
        ``person_id`` gets ``role`` (None: leaves). In the write's transaction, holding the
        organisation's owner lock, so two owners leaving at once cannot both pass."""
        await tx.hold_lock(OWNERS_LOCK, org_id)
        owners = [m.person_id for m in await self.store.members(org_id, tx=tx)
                  if m.role == OrgRole.OWNER]
        if owners == [person_id] and role != OrgRole.OWNER:
            raise Conflict("an organisation keeps at least one owner; make someone else "
                           "owner first")

    # -- API keys -----------------------------------------------------------------------

    async def create_key(self, actor: Actor, owner_id: str, name: str, scopes: Iterable[str],
                         *, test: bool = False, expires_at: float | None = None,
                         made_with: ApiKeyRecord | None = None
                         ) -> tuple[str, ApiKeyRecord]:
        """A new key acting for ``owner_id`` (the person, or an organisation they administer)
        with ``scopes``; its secret is returned once and never stored.

        ``made_with`` is the key the request came with, if any: the new key holds none of
        the scopes it lacks (:class:`Forbidden`) and expires no later than it does.
        """
        await self.require_role(owner_id, actor.person_id, OrgRole.ADMIN)
        wanted = tuple(sorted(set(scopes)))
        if made_with is not None:
            check_scopes_held(made_with, wanted)
            expires_at = capped_expiry(expires_at, made_with.expires_at)
        made = api_keys.new_key(test=test)
        record = ApiKeyRecord(
            key_hash=made.key_hash, key_id=new_id("key"), owner_id=owner_id,
            created_by=actor.person_id, name=name.strip() or "key", prefix=made.prefix,
            scopes=wanted, test=test, created_at=time.time(), expires_at=expires_at)
        await self.store.add_key(record)
        await self.store.audit(owner_id, actor.person_id, KEY_CREATED, target=record.key_id,
                               address=actor.address, detail={"scopes": list(record.scopes)})
        return made.secret, record

    async def revoke_key(self, actor: Actor, owner_id: str, key_id: str) -> ApiKeyRecord:
        """Revoke a key; it stops working at once on every server process."""
        await self.require_role(owner_id, actor.person_id, OrgRole.ADMIN)
        record = await self.store.revoke_key(owner_id, key_id, time.time())
        await self.store.audit(owner_id, actor.person_id, KEY_REVOKED, target=key_id,
                               address=actor.address)
        return record

    async def authenticate_key(self, secret: str) -> tuple[ApiKeyRecord, Account]:
        """The usable key ``secret`` is, and its owner; :class:`InvalidCredentials` if none.

        A malformed key (bad checksum) is refused without a database lookup.
        """
        if not api_keys.checksum_ok(secret):
            raise InvalidCredentials("this is not a Max Booster API key (bad checksum)")
        record = await self.store.key_by_hash(api_keys.hash_key(secret))
        now = time.time()
        if record is None or not record.usable_at(now):
            raise InvalidCredentials("this API key is unknown, revoked or expired")
        owner = await self.store.account(record.owner_id)
        if owner is None or not owner.active:
            raise InvalidCredentials("this API key's account is disabled")
        if record.created_by != record.owner_id:
            await self._check_maker(record)
        if now - self._key_touched.get(record.key_hash, 0.0) >= KEY_TOUCH_SECONDS:
            self._key_touched[record.key_hash] = now
            await self.store.touch_key(record.key_hash, now)
        return record, owner

    async def _check_maker(self, record: ApiKeyRecord) -> None:
        """An organisation's key works while its maker is an active admin or owner there;
        else :class:`InvalidCredentials`."""
        maker = await self.store.account(record.created_by)
        if maker is None or not maker.active:
            raise InvalidCredentials("this API key's maker's account is disabled; an admin "
                                     "makes a new key")
        if await self.role_in(record.owner_id, record.created_by) not in KEY_MAKER_ROLES:
            raise InvalidCredentials("this API key's maker is no longer an admin of its "
                                     "organisation; an admin makes a new key")

    # -- projects ---------------------------------------------------------------------

    async def project_role(self, person_id: str, project_id: str) -> str | None:
        """The strongest project role ``person_id`` holds on ``project_id`` (None: none).

        From owning it (their own account, or an organisation they are in) and
        from roles granted to them or to a team or organisation they are in.
        """
        memberships = await self.store.memberships_of(person_id)
        org_roles = {m.account_id: m.role for m in memberships}
        found: list[str] = []
        owner = await self.store.project_owner(project_id)
        if owner == person_id:
            found.append("owner")
        elif owner in org_roles and org_roles[owner] in ORG_TO_PROJECT_ROLE:
            found.append(ORG_TO_PROJECT_ROLE[org_roles[owner]])
        for grant in await self.store.grants_on(project_id):
            if grant.grantee_id == person_id or grant.grantee_id in org_roles:
                found.append(grant.role)
        return max(found, key=PROJECT_ROLES.index) if found else None

    async def account_project_role(self, account_id: str, project_id: str) -> str | None:
        """The role ``account_id`` holds on ``project_id``: a person's (:meth:`project_role`),
        or an organisation's own (owning it, or granted to it; an API key acts so)."""
        account = await self.store.account(account_id)
        if account is None:
            return None
        if account.is_person:
            return await self.project_role(account_id, project_id)
        found = ["owner"] if await self.store.project_owner(project_id) == account_id else []
        found += [g.role for g in await self.store.grants_on(project_id)
                  if g.grantee_id == account_id]
        return max(found, key=PROJECT_ROLES.index) if found else None

    async def projects(self, person_id: str) -> dict[str, str]:
        """``{project_id: role}`` of every project ``person_id`` may open."""
        memberships = await self.store.memberships_of(person_id)
        org_roles = {m.account_id: m.role for m in memberships}
        roles: dict[str, str] = {}

        def offer(project_id: str, role: str) -> None:
            best = roles.get(project_id)
            if best is None or PROJECT_ROLES.index(role) > PROJECT_ROLES.index(best):
                roles[project_id] = role

        owned = await self.store.projects_of([person_id, *org_roles])
        for project_id, owner in owned.items():
            if owner == person_id:
                offer(project_id, "owner")
            elif org_roles[owner] in ORG_TO_PROJECT_ROLE:  # a declared role opens nothing
                offer(project_id, ORG_TO_PROJECT_ROLE[org_roles[owner]])
        for grant in await self.store.grants_to([person_id, *org_roles]):
            offer(grant.project_id, grant.role)
        return roles

    # -- administration -----------------------------------------------------------------

    async def create_person(self, email: str, password: str, name: str, *,
                            verified: bool = True, plan: str = "free",
                            region: str = DEFAULT_REGION) -> Account:
        """A person made by an administrator (``dawserver users create``)."""
        self.policy.check(password, email)
        if plan not in PLANS:
            raise Conflict(f"unknown plan {plan!r}; use one of {list(PLANS)}")
        return await self.store.create_account(
            AccountKind.PERSON, name or email, email=email, password_hash=await self._hash(
                password), plan=plan, region=region,
            email_verified_at=time.time() if verified else None)

    async def admin_set_member(self, org_id: str, person_id: str, role: str, *,
                               actor_id: str = "admin") -> Membership:
        """Put ``person_id`` in ``org_id`` with ``role``, past the invitation mail (an
        administrator's CLI); the organisation still keeps an owner."""
        org = await self.store.require_account(org_id)
        if org.is_person:
            raise NotFound(f"{org_id!r} is a person, not an organisation")
        await self.store.require_account(person_id)
        membership, revoked = await self._set_role_and_keys(org_id, person_id, role)
        await self.store.audit(org_id, actor_id, ROLE_CHANGED, target=person_id,
                               detail={"role": role})
        await self._audit_keys_revoked(org_id, actor_id, revoked, ROLE_CHANGED)
        await self.roles_changed(person_id)
        return membership

    async def admin_remove_member(self, org_id: str, person_id: str, *,
                                  actor_id: str = "admin") -> None:
        """Take ``person_id`` out of ``org_id`` (an administrator's CLI): their sessions
        are renewed at once; the organisation still keeps an owner."""
        revoked = await self._remove_and_revoke_keys(org_id, person_id)
        if revoked is None:
            raise NotFound(f"{person_id!r} is not a member of {org_id!r}")
        await self.store.audit(org_id, actor_id, MEMBER_REMOVED, target=person_id)
        await self._audit_keys_revoked(org_id, actor_id, revoked, MEMBER_REMOVED)
        await self.roles_changed(person_id)

    async def set_plan(self, account_id: str, plan: str, actor_id: str = "admin") -> Account:
        """Put an account (a person or an organisation) on ``plan``: its keys' rate limit
        follows from their next request. :class:`Conflict` for an unknown plan."""
        if plan not in PLANS:
            raise Conflict(f"unknown plan {plan!r}; use one of {list(PLANS)}")
        before = await self.store.require_account(account_id)
        if before.plan == plan:
            return before
        account = await self.store.update_account(account_id, plan=plan)
        await self.store.audit(account_id, actor_id, PLAN_CHANGED, target=account_id,
                               detail={"from": before.plan, "to": plan})
        return account

    async def disable(self, account_id: str, actor_id: str = "admin") -> Account:
        """Disable an account: its sessions end, its keys stop working and the keys it
        made for organisations are revoked."""
        account = await self.store.update_account(account_id, status=AccountStatus.DISABLED)
        await self.sessions.end_all(account_id)
        await self.store.audit(account_id, actor_id, ACCOUNT_DISABLED, target=account_id)
        made_for_others = [k for k in await self._live_keys_of(account_id)
                           if k.owner_id != account_id]  # its own say "disabled" as before
        await self._revoke_and_audit(made_for_others, actor_id, ACCOUNT_DISABLED)
        return account
