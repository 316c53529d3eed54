"""Erasing a person from the core's tables (GDPR article 17), in two steps.

:meth:`AccountErasure.close` runs while the person waits: it checks who they are
again (their password, or for a person without one a session started in the
last :data:`FRESH_SESSION_S` seconds), refuses while they are the last owner of
an organisation, and stops the account at once: every session ends, their keys
are revoked, their addresses and sign-in providers are freed (so nobody signs
in as them, and the address may sign up anew).

:meth:`AccountErasure.erase` is the last step of the erasure job, once the
plug-ins and the documents have forgotten the person: in one transaction it
deletes every row that was theirs alone (the account, emails, identities,
links, recovery codes, sessions, memberships, grants, ownership of projects,
keys, failure counters) and names them by their pseudonym
(:mod:`accounts.pseudonyms`) in the rows others keep (the security log,
invitations, grants and keys they made). The security log keeps a
``deletion`` event under the pseudonym.

Like the rest of :mod:`accounts`, this module knows nothing of the documents
or the plug-ins; :mod:`dawserver.privacy_erase` runs the whole job.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from database import Session

from .errors import Conflict, Forbidden, InvalidCredentials, NotFound
from .models import DEFAULT_REGION, Account, OrgRole, SessionRecord
from .pseudonyms import Pseudonymiser, pseudonym_of
from .service import AccountService

#: What the security log calls an erasure and an export.
DELETION, EXPORT = "deletion", "export"
#: A person without a password proves who they are by a session this young (seconds).
FRESH_SESSION_S = 600.0


@dataclass(frozen=True)
class Closed:
    """An account stopped at once, to be erased by the job: who, and by which pseudonym."""

    person_id: str
    pseudonym: str
    sessions_ended: int


class AccountErasure:
    """The core's part of erasing a person, over the account service's store and sessions."""

    def __init__(self, service: AccountService) -> None:
        self.service = service
        self.store = service.store

    async def pseudonymiser(self, person_id: str) -> Pseudonymiser:
        """The person's pseudonymiser: their id, display name and every address they used."""
        person = await self.store.account(person_id)
        if person is None:
            raise NotFound(f"there is no account {person_id!r}")
        emails = {e for e in [person.email, *await self.store.emails_of(person_id)] if e}
        return Pseudonymiser.of(person_id, [person.name, *sorted(emails)])

    async def confirm(self, person: Account, password: str | None,
                      session: SessionRecord, *, now: float | None = None) -> None:
        """Check again that the person is who the session says (their password, or a
        fresh session when they have none); :class:`InvalidCredentials` otherwise."""
        now = time.time() if now is None else now
        if person.password_hash is not None:
            try:
                await self.service.confirm_password(person, password or "")
            except InvalidCredentials:
                raise InvalidCredentials("the password is wrong; erasing an account asks for "
                                         "it again") from None
            return
        if now - session.created_at > FRESH_SESSION_S:
            raise Forbidden(f"sign in again with your provider and ask within "
                            f"{FRESH_SESSION_S / 60:.0f} minutes: erasing an account needs "
                            "a fresh sign-in")

    async def check_owners(self, person_id: str) -> None:
        """:class:`Conflict` naming every organisation the person is the last owner of."""
        alone = []
        for membership in await self.store.memberships_of(person_id):
            if membership.role != OrgRole.OWNER:
                continue
            owners = [m.person_id for m in await self.store.members(membership.account_id)
                      if m.role == OrgRole.OWNER]
            if owners == [person_id]:
                org = await self.store.account(membership.account_id)
                alone.append(f"{org.name if org else ''} ({membership.account_id})")
        if alone:
            raise Conflict(f"you are the last owner of {', '.join(alone)}; make someone else "
                           "owner there (or remove the organisation's other members and "
                           "leave it) before erasing your account")

    async def close(self, person_id: str,
                    then: Callable[[Session, str], Awaitable[Any]] | None = None) -> Closed:
        """Stop the account at once: status deleted, sessions ended, keys revoked,
        addresses and providers freed. The rest waits for :meth:`erase`.

        ``then(tx, pseudonym)`` queues the erasure job, so the account is never stopped
        without one: in the same transaction when the person's rows are in the main
        database (where the job queue is); for a person of another data region, in a
        transaction of its own on the main database just before (the job is
        idempotent, and closing an account the job has already erased changes nothing).
        """
        person = await self.store.account(person_id)
        if person is None or not person.is_person:
            raise NotFound(f"there is no person {person_id!r}")
        await self.check_owners(person_id)
        pseudonym = pseudonym_of(person_id)
        in_main = person.region == DEFAULT_REGION
        if then is not None and not in_main:
            async with self.store.transaction() as main_tx:
                await then(main_tx, pseudonym)
        async with self.store.transaction(person_id) as tx:
            await self.store.close_sign_in(person_id, time.time(), tx=tx)
            if then is not None and in_main:
                await then(tx, pseudonym)
        ended = await self.service.sessions.end_all(person_id)
        return Closed(person_id, pseudonym_of(person_id), ended)

    async def erase(self, pz: Pseudonymiser, *, detail: dict[str, Any] | None = None
                    ) -> dict[str, int]:
        """Delete the person's own rows and pseudonymise the rest, in one transaction;
        rows changed, by table. Erasing someone already erased changes nothing."""
        person_id = pz.account_id
        subjects = [f"account:{person_id}", *(f"email:{n}" for n in pz.needles if "@" in n)]
        await self.service.sessions.end_all(person_id)  # Redis sessions are not in tx
        async with self.store.transaction(person_id) as tx:
            if await self.store.account(person_id, tx=tx) is None:
                return {}
            changed = await self.store.pseudonymise_person(pz, tx=tx)
            changed.update(await self.store.erase_person(person_id, subjects, tx=tx))
            await self.store.audit(pz.pseudonym, pz.pseudonym, DELETION,
                                   target=pz.pseudonym, detail=detail or {}, tx=tx)
        return changed
