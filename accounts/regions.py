"""Data regions: each account's rows live in its region's database.

:class:`RegionalAccountStore` has the interface of :class:`~accounts.store.AccountStore`
and holds one such store per region; the default region (:data:`DEFAULT_REGION`) is the
process's main database. Routing needs no lookup table:

- an account id names its region (:func:`new_account_id`: ``p_eu_…`` for a person in
  ``eu``; the default region's ids keep the old form ``p_…``, so data from before
  regions stays where it is), and a call keyed by an account, organisation or person id
  goes to that account's region;
- a call keyed by a secret or an address (an email, a link token's hash, an API key's
  hash, an identity's issuer and subject) asks every region at once
  (:func:`asyncio.gather`) and takes the one hit;
- what relates accounts of two regions (a membership, an invitation, a project grant)
  lives with the organisation or the project owner, and reads by the other side
  (:meth:`~RegionalAccountStore.memberships_of`, ``grants_to``, ``projects_of``) merge
  what every region answers.

:class:`RegionalSessions` keeps sign-in sessions in the database of the person's
region the same way. docs/accounts.md ("Data regions") says what is routed and what
is not yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from database import Database, Session, open_database, parse_url

from .errors import Conflict, UnknownRegion
from .models import (
    DEFAULT_REGION,
    Account,
    AccountKind,
    ApiKeyRecord,
    AuditEvent,
    Invitation,
    LinkRecord,
    Membership,
    ProjectGrant,
    SessionRecord,
    new_id,
)
from .pseudonyms import Pseudonymiser
from .sessions import DatabaseSessions
from .store import AccountStore
from .throttle import Attempt

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a region may be called: it appears inside account ids, so no ``_``.
REGION_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")


def check_region_name(name: str) -> str:
    """``name`` if it may name a configured region; else :class:`ValueError` saying why."""
    if name == DEFAULT_REGION:
        raise ValueError(f"the region {DEFAULT_REGION!r} is the main database; configure "
                         f"other regions by other names")
    if not REGION_NAME.fullmatch(name):
        raise ValueError(f"bad region name {name!r}: use 1 to 32 lower-case letters, digits "
                         f"and '-', starting with a letter (e.g. 'eu', 'us-east')")
    return name


def new_account_id(prefix: str, region: str) -> str:
    """A new account id that names ``region`` (the default region's ids name none)."""
    made = new_id(prefix)
    if region == DEFAULT_REGION:
        return made
    return f"{prefix}_{region}_{made.removeprefix(prefix + '_')}"


def region_of(account_id: str, regions: Iterable[str],
              moved: Mapping[str, str] | None = None) -> str:
    """The region of ``regions`` that ``account_id`` names (the default region if none),
    unless ``moved`` (``{account id: region}``, :mod:`accounts.moving`) says it moved."""
    if moved and account_id in moved:
        return moved[account_id]
    _, _, rest = account_id.partition("_")
    marker, found, _ = rest.partition("_")
    return marker if found and marker != DEFAULT_REGION and marker in regions else \
        DEFAULT_REGION


class RegionalAccountStore:
    """:class:`AccountStore`'s interface over one store per region (see the module).

    ``stores`` maps region names to their stores and must hold the default region.
    """

    def __init__(self, stores: Mapping[str, AccountStore]) -> None:
        if DEFAULT_REGION not in stores:
            raise ValueError(f"the stores must include the default region {DEFAULT_REGION!r}")
        self.stores = {DEFAULT_REGION: stores[DEFAULT_REGION],
                       **{name: s for name, s in stores.items() if name != DEFAULT_REGION}}
        for name in self.stores:
            if name != DEFAULT_REGION:
                check_region_name(name)
        #: Accounts moved out of the region their id names (kept by accounts.moving).
        self.moved: dict[str, str] = {}
        #: Awaited with an account id before each write keyed by it (accounts.moving
        #: raises AccountMoving while that account moves); None: nothing to check.
        self.fence: Callable[[str], Awaitable[None]] | None = None
        #: Awaited inside each such write's transaction, on the account's region
        #: database, with that transaction and the account id: the check a move cannot
        #: race (accounts.moving fences the source region in its own database).
        self.fence_in: Callable[[Session, str], Awaitable[None]] | None = None

    @classmethod
    def over(cls, databases: Mapping[str, Database]) -> RegionalAccountStore:
        """A store per database of ``{region: database}``."""
        return cls({name: AccountStore(db) for name, db in databases.items()})

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions, the default one first."""
        return tuple(self.stores)

    def in_region(self, region: str) -> AccountStore:
        """The store of ``region``; :class:`UnknownRegion` if it is not configured."""
        try:
            return self.stores[region]
        except KeyError:
            raise UnknownRegion(f"unknown data region {region!r}; use one of "
                                f"{list(self.stores)}") from None

    def region_of(self, account_id: str) -> str:
        """The region ``account_id`` lives in."""
        return region_of(account_id, self.stores, self.moved)

    async def writable(self, account_id: str) -> None:
        """Raise :class:`AccountMoving` if ``account_id`` is being moved (see ``fence``)."""
        if self.fence is not None:
            await self.fence(account_id)

    def store_of(self, account_id: str) -> AccountStore:
        """The store holding ``account_id``'s rows."""
        return self.stores[self.region_of(account_id)]

    @contextlib.asynccontextmanager
    async def transaction(self, account_id: str | None = None) -> AsyncIterator[Session]:
        """A transaction on the database of ``account_id``'s region (default: the main
        one); :class:`AccountMoving` while that account moves."""
        if account_id is None:
            async with self.stores[DEFAULT_REGION].transaction() as tx:
                yield tx
            return
        await self.writable(account_id)
        async with self.store_of(account_id).transaction() as tx:
            if self.fence_in is not None:
                await self.fence_in(tx, account_id)
            yield tx

    async def fenced_write(self, account_id: str, tx: Session | None,
                           write: Callable[[Session | None], Awaitable[T]]) -> T:
        """``write(tx)`` on ``account_id``'s region, refused while the account moves.

        The main database's fence answers first (and routes a moved account); then,
        with a mover attached, the region's own fence row is read inside the write's
        transaction (``tx``, else one opened here), so a write that passed the first
        check just before a move began cannot commit after the move copied the rows.
        """
        if tx is None and self.fence_in is not None:
            async with self.transaction(account_id) as own:  # both fences, then the write
                return await write(own)
        await self.writable(account_id)
        if tx is not None and self.fence_in is not None:
            await self.fence_in(tx, account_id)
        return await write(tx)

    async def _each(self, call: Callable[[AccountStore], Awaitable[T]]) -> list[T]:
        """``call`` on every region's store at once; the answers in region order."""
        if len(self.stores) == 1:
            return [await call(self.stores[DEFAULT_REGION])]
        return list(await asyncio.gather(*(call(store) for store in self.stores.values())))

    async def _first(self, call: Callable[[AccountStore], Awaitable[T | None]]) -> T | None:
        """The one region's answer that is not None (the first, if several are)."""
        hits = [found for found in await self._each(call) if found is not None]
        if len(hits) > 1:
            log.warning("%d regions answered one lookup; taking the first", len(hits))
        return hits[0] if hits else None

    async def migrate(self) -> None:
        """Create or upgrade the accounts tables in every region's database."""
        for store in self.stores.values():
            await store.migrate()

    # -- accounts -----------------------------------------------------------------

    async def create_account(self, kind: AccountKind, name: str, *, email: str | None = None,
                             password_hash: str | None = None, plan: str = "free",
                             region: str = DEFAULT_REGION, account_id: str | None = None,
                             email_verified_at: float | None = None,
                             tx: Session | None = None) -> Account:
        """A new account in ``region`` (:class:`UnknownRegion` if not configured) with an id
        naming it; :class:`Conflict` when a person's email is taken in any region."""
        store = self.in_region(region)
        prefix = "p" if kind is AccountKind.PERSON else "o"
        if account_id is None:
            account_id = new_account_id(prefix, region)
        elif self.region_of(account_id) != region:
            raise ValueError(f"account id {account_id!r} does not name region {region!r}")
        if email is not None:
            others = [s for name, s in self.stores.items() if name != region]
            taken = await asyncio.gather(*(s.person_by_email(email) for s in others))
            if any(found is not None for found in taken):
                raise Conflict("that email address already has an account; sign in or "
                               "reset the password")
        return await store.create_account(
            kind, name, email=email, password_hash=password_hash, plan=plan, region=region,
            account_id=account_id, email_verified_at=email_verified_at, tx=tx)

    async def account(self, account_id: str, *, tx: Session | None = None) -> Account | None:
        """The account ``account_id`` (None if there is none)."""
        return await self.store_of(account_id).account(account_id, tx=tx)

    async def require_account(self, account_id: str, *, tx: Session | None = None) -> Account:
        """The account ``account_id``; :class:`NotFound` if there is none."""
        return await self.store_of(account_id).require_account(account_id, tx=tx)

    async def person_by_email(self, email: str, *, tx: Session | None = None
                              ) -> Account | None:
        """The person whose address is ``email``, in whichever region (``tx`` is ignored:
        a transaction is one region's, the address may be in another)."""
        return await self._first(lambda s: s.person_by_email(email))

    async def accounts(self, *, kind: AccountKind | None = None) -> list[Account]:
        """Every account (of ``kind``) in every region, oldest first."""
        found = [a for part in await self._each(lambda s: s.accounts(kind=kind)) for a in part]
        return sorted(found, key=lambda a: a.created_at)

    async def update_account(self, account_id: str, *, tx: Session | None = None,
                             **changes: Any) -> Account:
        """Change some columns of an account; its region stays (accounts.moving moves it)."""
        if "region" in changes and changes["region"] != self.region_of(account_id):
            raise Conflict(f"account {account_id!r} lives in region "
                           f"{self.region_of(account_id)!r}; moving an account to another "
                           f"region copies its rows: 'dawserver accounts move'")
        return await self.fenced_write(account_id, tx, lambda tx: self.store_of(
            account_id).update_account(account_id, tx=tx, **changes))

    async def claim_totp_step(self, person_id: str, step: int, *,
                              tx: Session | None = None) -> bool:
        """Record ``step`` as the last TOTP step used; False if it (or a later one) was."""
        return await self.store_of(person_id).claim_totp_step(person_id, step, tx=tx)

    async def release_email(self, email: str, *, tx: Session | None = None) -> None:
        """Free an address in whichever region holds it."""
        await self._each(lambda s: s.release_email(email))

    # -- sign-in providers ----------------------------------------------------------

    async def link_identity(self, issuer: str, subject: str, person_id: str, *,
                            tx: Session | None = None) -> None:
        """Remember that ``issuer``'s ``subject`` is ``person_id`` (in their region)."""
        await self.store_of(person_id).link_identity(issuer, subject, person_id, tx=tx)

    async def person_by_identity(self, issuer: str, subject: str) -> Account | None:
        """The person ``issuer``'s ``subject`` was linked to, in whichever region."""
        return await self._first(lambda s: s.person_by_identity(issuer, subject))

    # -- memberships (with the organisation) -------------------------------------------

    async def set_member(self, org_id: str, person_id: str, role: str, *,
                         tx: Session | None = None) -> Membership:
        """Put ``person_id`` in ``org_id`` with ``role`` (kept in the organisation's region)."""
        return await self.store_of(org_id).set_member(org_id, person_id, role, tx=tx)

    async def remove_member(self, org_id: str, person_id: str, *,
                            tx: Session | None = None) -> bool:
        """Take ``person_id`` out of ``org_id``; False if they were not in it."""
        return await self.store_of(org_id).remove_member(org_id, person_id, tx=tx)

    async def membership(self, org_id: str, person_id: str, *,
                         tx: Session | None = None) -> Membership | None:
        """``person_id``'s membership of ``org_id`` (None: not a member)."""
        return await self.store_of(org_id).membership(org_id, person_id, tx=tx)

    async def members(self, org_id: str, *, tx: Session | None = None) -> list[Membership]:
        """Everyone in ``org_id``, longest-standing first."""
        return await self.store_of(org_id).members(org_id, tx=tx)

    async def memberships_of(self, person_id: str) -> list[Membership]:
        """Every organisation ``person_id`` is in, in any region, oldest first."""
        found = [m for part in await self._each(lambda s: s.memberships_of(person_id))
                 for m in part]
        return sorted(found, key=lambda m: m.created_at)

    # -- invitations (with the organisation) --------------------------------------------

    async def add_invitation(self, invitation: Invitation, *, tx: Session | None = None
                             ) -> Invitation:
        """Keep a new invitation in its organisation's region."""
        return await self.fenced_write(invitation.account_id, tx, lambda tx: self.store_of(
            invitation.account_id).add_invitation(invitation, tx=tx))

    async def invitation(self, org_id: str, invitation_id: str, *,
                         tx: Session | None = None) -> Invitation | None:
        """One invitation of ``org_id``."""
        return await self.store_of(org_id).invitation(org_id, invitation_id, tx=tx)

    async def invitations(self, org_id: str) -> list[Invitation]:
        """Every invitation of ``org_id``, newest first."""
        return await self.store_of(org_id).invitations(org_id)

    async def close_invitation(self, org_id: str, invitation_id: str, *, now: float,
                               accepted_by: str | None = None,
                               tx: Session | None = None) -> bool:
        """Mark an open invitation accepted or revoked; False if closed."""
        return await self.store_of(org_id).close_invitation(
            org_id, invitation_id, now=now, accepted_by=accepted_by, tx=tx)

    async def withdraw_invitations_by(self, org_id: str, person_id: str, *, now: float,
                                      tx: Session | None = None) -> int:
        """Withdraw every open invitation ``person_id`` sent into ``org_id``; how many."""
        return await self.store_of(org_id).withdraw_invitations_by(org_id, person_id,
                                                                    now=now, tx=tx)

    # -- single-use links (with the person) ---------------------------------------------

    async def put_link(self, token_hash: str, purpose: str, person_id: str,
                       data: dict[str, Any], expires_at: float, *,
                       tx: Session | None = None) -> None:
        """Keep a link token's hash in ``person_id``'s region."""
        await self.store_of(person_id).put_link(token_hash, purpose, person_id, data,
                                                expires_at, tx=tx)

    async def take_link(self, token_hash: str, purpose: str, now: float, *,
                        tx: Session | None = None) -> LinkRecord | None:
        """Use a link once, in whichever region holds it (``tx`` is ignored)."""
        return await self._first(lambda s: s.take_link(token_hash, purpose, now))

    async def peek_link(self, token_hash: str, purpose: str, now: float
                        ) -> LinkRecord | None:
        """What an open link stands for, without using it."""
        return await self._first(lambda s: s.peek_link(token_hash, purpose, now))

    async def links_made_since(self, person_id: str, purpose: str, since: float, *,
                               tx: Session | None = None) -> int:
        """How many links of ``purpose`` were made for ``person_id`` since ``since``."""
        return await self.store_of(person_id).links_made_since(person_id, purpose, since,
                                                               tx=tx)

    async def void_links(self, person_id: str, purpose: str, now: float, *,
                         tx: Session | None = None) -> int:
        """Use up every open link of ``purpose`` for ``person_id``."""
        return await self.store_of(person_id).void_links(person_id, purpose, now, tx=tx)

    # -- API keys (with the owner) ------------------------------------------------------

    async def add_key(self, key: ApiKeyRecord, *, tx: Session | None = None) -> ApiKeyRecord:
        """Keep a new key in its owner's region."""
        return await self.fenced_write(key.owner_id, tx, lambda tx: self.store_of(
            key.owner_id).add_key(key, tx=tx))

    async def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key whose hash is ``key_hash``, in whichever region."""
        return await self._first(lambda s: s.key_by_hash(key_hash))

    async def keys_of(self, owner_id: str) -> list[ApiKeyRecord]:
        """Every key of ``owner_id``, newest first."""
        return await self.store_of(owner_id).keys_of(owner_id)

    async def revoke_key(self, owner_id: str, key_id: str, now: float, *,
                         tx: Session | None = None) -> ApiKeyRecord:
        """Revoke ``owner_id``'s key ``key_id``; :class:`NotFound` if not theirs."""
        return await self.store_of(owner_id).revoke_key(owner_id, key_id, now, tx=tx)

    async def touch_key(self, key_hash: str, now: float) -> None:
        """Record that a key was used at ``now`` (in whichever region holds it)."""
        await self._each(lambda s: s.touch_key(key_hash, now))

    # -- recovery codes (with the person) -----------------------------------------------

    async def replace_recovery_codes(self, person_id: str, code_hashes: Iterable[str], *,
                                     tx: Session | None = None) -> None:
        """Drop ``person_id``'s recovery codes and keep these instead."""
        await self.store_of(person_id).replace_recovery_codes(person_id, code_hashes, tx=tx)

    async def use_recovery_code(self, person_id: str, code_hash: str, now: float) -> bool:
        """Use one recovery code; False if it is unknown or used."""
        return await self.store_of(person_id).use_recovery_code(person_id, code_hash, now)

    async def recovery_codes_left(self, person_id: str) -> int:
        """How many unused recovery codes ``person_id`` has."""
        return await self.store_of(person_id).recovery_codes_left(person_id)

    # -- failed sign-ins ----------------------------------------------------------

    async def _failure_store(self, subject: str) -> AccountStore:
        """Where ``subject``'s failures are counted: ``account:ID`` in ID's region,
        ``email:ADDRESS`` in its person's region; anything else in the default one."""
        kind, _, value = subject.partition(":")
        if kind == "account":
            return self.store_of(value)
        if kind == "email" and len(self.stores) > 1:
            person = await self.person_by_email(value)
            if person is not None:
                return self.store_of(person.account_id)
        return self.stores[DEFAULT_REGION]

    async def record_failure(self, subject: str, now: float, *,
                             half_life: float | None = None) -> int:
        """Count one more failure for ``subject``; the count now (over every region,
        faded by ``half_life`` as :meth:`AccountStore.record_failure` does)."""
        store = await self._failure_store(subject)
        mine = await store.record_failure(subject, now, half_life=half_life)
        if len(self.stores) == 1:
            return mine
        others = [s for s in self.stores.values() if s is not store]
        counts = await asyncio.gather(*(s.failures(subject, now=now, half_life=half_life)
                                        for s in others))
        return mine + sum(count for count, _ in counts)

    async def failures(self, subject: str, *, now: float | None = None,
                       half_life: float | None = None) -> tuple[int, float]:
        """``subject``'s failure count over every region and the time of the last one."""
        found = await self._each(lambda s: s.failures(subject, now=now, half_life=half_life))
        return sum(count for count, _ in found), max(last for _, last in found)

    async def take_attempt(self, subject: str, now: float, *, half_life: float,
                           wait_after: Callable[[int], float],
                           elsewhere: tuple[int, float] = (0, 0.0)) -> Attempt:
        """Count one attempt for ``subject`` where its failures are counted, checked with
        the failures of every region (:meth:`AccountStore.take_attempt`)."""
        store = await self._failure_store(subject)
        others = [s for s in self.stores.values() if s is not store]
        counts = [elsewhere, *await asyncio.gather(
            *(s.failures(subject, now=now, half_life=half_life) for s in others))]
        return await store.take_attempt(
            subject, now, half_life=half_life, wait_after=wait_after,
            elsewhere=(sum(c for c, _ in counts), max(t for _, t in counts)))

    async def release_attempt(self, attempt: Attempt) -> None:
        """Take back an attempt counted where its subject's failures are counted."""
        await (await self._failure_store(attempt.subject)).release_attempt(attempt)

    async def clear_failures(self, subject: str) -> None:
        """Forget ``subject``'s failures in every region."""
        await self._each(lambda s: s.clear_failures(subject))

    # -- audit log (with the account) ---------------------------------------------------

    async def audit(self, account_id: str, actor_id: str, action: str, *, target: str = "",
                    address: str = "", detail: dict[str, Any] | None = None,
                    tx: Session | None = None) -> AuditEvent:
        """Record one security event in ``account_id``'s region."""
        return await self.store_of(account_id).audit(
            account_id, actor_id, action, target=target, address=address, detail=detail,
            tx=tx)

    async def audit_events(self, account_id: str, *, limit: int = 100,
                           before: float | None = None) -> list[AuditEvent]:
        """``account_id``'s security events, newest first."""
        return await self.store_of(account_id).audit_events(account_id, limit=limit,
                                                             before=before)

    # -- projects (with the owner) ------------------------------------------------------

    async def own_project(self, account_id: str, project_id: str, *,
                          tx: Session | None = None) -> None:
        """Record that ``account_id`` owns ``project_id`` (in the owner's region)."""
        await self.store_of(account_id).own_project(account_id, project_id, tx=tx)

    async def project_owner(self, project_id: str) -> str | None:
        """The account that owns ``project_id``, in whichever region."""
        return await self._first(lambda s: s.project_owner(project_id))

    async def projects_of(self, account_ids: Iterable[str]) -> dict[str, str]:
        """``{project_id: owning account}`` of these accounts, each asked in its region."""
        by_region: dict[str, list[str]] = {}
        for account_id in account_ids:
            by_region.setdefault(self.region_of(account_id), []).append(account_id)
        parts = await asyncio.gather(*(self.stores[region].projects_of(ids)
                                       for region, ids in by_region.items()))
        return {project: owner for part in parts for project, owner in part.items()}

    async def _project_store(self, project_id: str) -> AccountStore:
        owner = await self.project_owner(project_id)
        return self.stores[DEFAULT_REGION] if owner is None else self.store_of(owner)

    async def grant(self, project_id: str, grantee_id: str, role: str, granted_by: str, *,
                    tx: Session | None = None) -> ProjectGrant:
        """Give ``grantee_id`` ``role`` on ``project_id`` (kept in the owner's region; a
        project from before accounts keeps its grants in the default region)."""
        store = await self._project_store(project_id)
        return await store.grant(project_id, grantee_id, role, granted_by, tx=tx)

    async def ungrant(self, project_id: str, grantee_id: str, *,
                      tx: Session | None = None) -> bool:
        """Take ``grantee_id``'s role on ``project_id`` away; False if it had none."""
        return any(await self._each(lambda s: s.ungrant(project_id, grantee_id)))

    async def grants_on(self, project_id: str) -> list[ProjectGrant]:
        """Every role granted on ``project_id``, in any region."""
        found = [g for part in await self._each(lambda s: s.grants_on(project_id))
                 for g in part]
        return sorted(found, key=lambda g: g.created_at)

    async def grants_to(self, grantee_ids: Iterable[str]) -> list[ProjectGrant]:
        """Every project role granted to any of ``grantee_ids``, in any region."""
        ids = list(grantee_ids)
        return [g for part in await self._each(lambda s: s.grants_to(ids)) for g in part]

    # -- a person's export and erasure ---------------------------------------------------

    async def emails_of(self, person_id: str) -> list[str]:
        """Every address ``person_id`` signs in with (kept in their region)."""
        return await self.store_of(person_id).emails_of(person_id)

    async def identities_of(self, person_id: str) -> list[dict[str, Any]]:
        """The sign-in providers' subjects linked to ``person_id``."""
        return await self.store_of(person_id).identities_of(person_id)

    async def audit_events_by(self, actor_id: str, *, limit: int = 1000) -> list[AuditEvent]:
        """Security events ``actor_id`` caused in any account of any region, newest first."""
        found = [e for part in await self._each(
            lambda s: s.audit_events_by(actor_id, limit=limit)) for e in part]
        return sorted(found, key=lambda e: (e.at, e.event_id), reverse=True)[:limit]

    async def keys_made_by(self, person_id: str) -> list[ApiKeyRecord]:
        """Every key ``person_id`` made, in any region, newest first."""
        found = [k for part in await self._each(lambda s: s.keys_made_by(person_id))
                 for k in part]
        return sorted(found, key=lambda k: k.created_at, reverse=True)

    async def invitations_to(self, emails: Iterable[str]) -> list[Invitation]:
        """Every invitation sent to any of ``emails``, in any region, newest first."""
        wanted = list(emails)
        found = [i for part in await self._each(lambda s: s.invitations_to(wanted))
                 for i in part]
        return sorted(found, key=lambda i: i.created_at, reverse=True)

    async def close_sign_in(self, person_id: str, now: float, *, tx: Session | None = None
                            ) -> int:
        """Stop ``person_id`` signing in (their region's rows; ``tx`` is on it)."""
        return await self.store_of(person_id).close_sign_in(person_id, now, tx=tx)

    async def erase_person(self, person_id: str, failure_subjects: Iterable[str], *,
                           tx: Session) -> dict[str, int]:
        """Delete ``person_id``'s rows: in their region within ``tx``, elsewhere (their
        memberships and grants with other regions' organisations) in a transaction per
        region; rows deleted, by table, summed."""
        subjects = list(failure_subjects)
        home = self.store_of(person_id)
        total = await home.erase_person(person_id, subjects, tx=tx)
        for store in self._others(home):
            async with store.transaction() as own:
                _add(total, await store.erase_person(person_id, subjects, tx=own))
        return total

    async def pseudonymise_person(self, pz: Pseudonymiser, *, tx: Session) -> dict[str, int]:
        """Name the person by ``pz.pseudonym`` in every region: theirs within ``tx``, the
        others in a transaction each; rows changed, by table, summed."""
        home = self.store_of(pz.account_id)
        total = await home.pseudonymise_person(pz, tx=tx)
        for store in self._others(home):
            async with store.transaction() as own:
                _add(total, await store.pseudonymise_person(pz, tx=own))
        return total

    async def forget_project(self, project_id: str, *, tx: Session | None = None
                             ) -> dict[str, int]:
        """Delete ``project_id``'s ownership and grants: in its owner's region (within
        ``tx`` when given, which must be on that region), and in every other region (a
        project from before accounts keeps its grants in the default one) in a
        transaction each; rows deleted, by table, summed."""
        home = await self._project_store(project_id)
        total = await home.forget_project(project_id, tx=tx)
        for store in self._others(home):
            _add(total, await store.forget_project(project_id))
        return total

    def _others(self, home: AccountStore) -> list[AccountStore]:
        return [store for store in self.stores.values() if store is not home]


#: Writes keyed by an account, and the parameter naming the account whose region holds
#: the row: refused while that account moves (:meth:`RegionalAccountStore.fenced_write`).
FENCED_WRITES = {"claim_totp_step": "person_id", "link_identity": "person_id",
                 "set_member": "org_id", "remove_member": "org_id",
                 "close_invitation": "org_id", "withdraw_invitations_by": "org_id",
                 "put_link": "person_id",
                 "void_links": "person_id", "revoke_key": "owner_id",
                 "replace_recovery_codes": "person_id", "audit": "account_id",
                 "own_project": "account_id"}


def _fenced(method: Callable[..., Awaitable[T]], keyed_by: str) -> Callable[..., Awaitable[T]]:
    signature = inspect.signature(method)
    if keyed_by not in signature.parameters or "tx" not in signature.parameters:
        raise TypeError(f"{method.__name__} must take {keyed_by!r} and 'tx'")

    @functools.wraps(method)
    async def write(self: RegionalAccountStore, *args: Any, **kwargs: Any) -> T:
        bound = signature.bind(self, *args, **kwargs)

        async def in_tx(tx: Session | None) -> T:
            bound.arguments["tx"] = tx
            return await method(*bound.args, **bound.kwargs)

        return await self.fenced_write(bound.arguments[keyed_by],
                                       bound.arguments.get("tx"), in_tx)

    return write


for _name, _keyed_by in FENCED_WRITES.items():
    setattr(RegionalAccountStore, _name,
            _fenced(getattr(RegionalAccountStore, _name), _keyed_by))


def _add(total: dict[str, int], more: Mapping[str, int]) -> None:
    for table, count in more.items():
        total[table] = total.get(table, 0) + count


class RegionalSessions:
    """Sessions in the database of their person's region (a ``SessionStore``).

    A session is found by its secret's hash, asked of every region at once.
    """

    def __init__(self, stores: Mapping[str, DatabaseSessions]) -> None:
        if DEFAULT_REGION not in stores:
            raise ValueError(f"the stores must include the default region {DEFAULT_REGION!r}")
        self.stores = dict(stores)
        #: Accounts moved out of the region their id names (share the account store's).
        self.moved: dict[str, str] = {}

    @classmethod
    def over(cls, databases: Mapping[str, Database]) -> RegionalSessions:
        """Sessions in each database of ``{region: database}``."""
        return cls({name: DatabaseSessions(db) for name, db in databases.items()})

    def _of(self, person_id: str) -> DatabaseSessions:
        return self.stores[region_of(person_id, self.stores, self.moved)]

    async def _each(self, call: Callable[[DatabaseSessions], Awaitable[T]]) -> list[T]:
        if len(self.stores) == 1:
            return [await call(self.stores[DEFAULT_REGION])]
        return list(await asyncio.gather(*(call(store) for store in self.stores.values())))

    async def save(self, record: SessionRecord, ttl: float) -> None:
        """Keep ``record`` in its person's region."""
        await self._of(record.person_id).save(record, ttl)

    async def get(self, key_hash: str) -> SessionRecord | None:
        """The session whose secret hashes to ``key_hash``, in whichever region."""
        found = await self._each(lambda s: s.get(key_hash))
        return next((record for record in found if record is not None), None)

    async def delete(self, key_hash: str) -> bool:
        """End one session; False if no region had it."""
        return any(await self._each(lambda s: s.delete(key_hash)))

    async def of_person(self, person_id: str) -> list[SessionRecord]:
        """Every session of ``person_id``."""
        return await self._of(person_id).of_person(person_id)

    async def touch(self, record: SessionRecord, ttl: float) -> bool:
        """Refresh ``record`` in its person's region if it still exists there."""
        return await self._of(record.person_id).touch(record, ttl)

    async def mark_rotation(self, person_id: str) -> int:
        """Mark ``person_id``'s sessions (in their region) for a new id."""
        return await self._of(person_id).mark_rotation(person_id)

    async def replace(self, old: SessionRecord, new: SessionRecord, ttl: float) -> bool:
        """Swap ``old`` for ``new`` in their person's region, atomically."""
        return await self._of(old.person_id).replace(old, new, ttl)

    async def purge(self, now: float, idle_s: float) -> int:
        """Delete sessions past either timeout in every region; how many."""
        return sum(await self._each(lambda s: s.purge(now, idle_s)))

    async def close(self) -> None:
        """Nothing to release: the databases belong to whoever opened them."""


def check_distinct(main_url: str | None, urls: Mapping[str, str],
                   data_dir: str | Path = ".") -> None:
    """Refuse regions that share a database with each other or with the main one
    (``main_url``; their rows would mix): :class:`ValueError` naming the two."""
    seen = {parse_url(main_url, data_dir).target: DEFAULT_REGION}
    for name, url in urls.items():
        target = parse_url(url, data_dir).target
        if target in seen:
            raise ValueError(f"regions {seen[target]!r} and {name!r} name the same database; "
                             f"give each region its own")
        seen[target] = name


@contextlib.asynccontextmanager
async def open_regions(main: Database, main_url: str | None, urls: Mapping[str, str],
                       data_dir: str | Path = ".") -> AsyncIterator[dict[str, Database]]:
    """``{region: database}``: ``main`` (opened from ``main_url``) as the default region
    and each of ``urls`` opened (closed on leaving); names and distinctness checked first."""
    for name in urls:
        check_region_name(name)
    check_distinct(main_url, urls, data_dir)
    async with contextlib.AsyncExitStack() as stack:
        databases: dict[str, Database] = {DEFAULT_REGION: main}
        for name, url in urls.items():
            databases[name] = await stack.enter_async_context(open_database(url, data_dir))
        yield databases
