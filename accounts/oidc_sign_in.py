"""Signing a person in with an identity an OpenID provider vouched for.

:func:`sign_in_with` finds the person linked to the provider's ``(issuer, subject)``;
else links the person whose address the provider *verified*; else creates a new
person (no password) and links them. An address the provider did not verify never
links to an existing account: anyone can type any address at some providers, and
linking on it would hand them the account. An account whose address was never verified
here is not kept as someone set it up: the provider's verified address proves whose it
is, so its password, two-step sign-in, sessions, links and keys go first
(:meth:`~accounts.service.AccountService.reclaim_for_address_owner`). A person with
two-step sign-in is asked for their code as after a password
(:class:`~accounts.service.SecondFactorNeeded`): the provider stands in for the
password, never for the second factor.
"""

from __future__ import annotations

import time

from .errors import Conflict, Forbidden
from .models import Account, AccountKind
from .oidc import OidcIdentity
from .service import AccountService, SecondFactorNeeded, SignedIn

#: Audit action when a provider's identity is linked to a person.
IDENTITY_LINKED = "identity.linked"


async def sign_in_with(service: AccountService, identity: OidcIdentity, *, address: str = "",
                       user_agent: str = "") -> SignedIn | SecondFactorNeeded:
    """A new session for the person ``identity`` names (linked or created first), or the
    second factor to ask for when they use two-step sign-in.

    Raises :class:`~accounts.errors.Forbidden` for a disabled account or an unverified
    provider address that belongs to an existing account.
    """
    store = service.store
    person = await store.person_by_identity(identity.issuer, identity.subject)
    if person is None:
        person = await link_or_create(service, identity, address)
    return await finish_sign_in(service, person, identity, address=address,
                                user_agent=user_agent)


async def finish_sign_in(service: AccountService, person: Account, identity: OidcIdentity, *,
                         address: str = "", user_agent: str = ""
                         ) -> SignedIn | SecondFactorNeeded:
    """Sign in ``person``, whom ``identity`` vouched for: a session, or (two-step sign-in
    on) the second factor still to give; :class:`Forbidden` if they are disabled."""
    if not person.active:
        raise Forbidden("this account is disabled; ask an administrator")
    if person.two_factor:
        return await service.second_factor_needed(person, address)
    return await service.start_session(person, address, user_agent,
                                       detail={"issuer": identity.issuer})


async def link_or_create(service: AccountService, identity: OidcIdentity,
                          address: str) -> Account:
    """The person to link ``identity`` to: the verified address's owner, or a new one."""
    store = service.store
    existing = await store.person_by_email(identity.email) if identity.email else None
    if existing is not None and not identity.email_verified:
        raise Forbidden(f"the provider has not verified the address {identity.email!r}, and an "
                        f"account with it exists here; verify the address with the provider, "
                        f"or sign in with your password")
    if existing is not None and existing.email_verified_at is None:
        # someone signed up with this address and never proved it: the provider's proof
        # says it is this person's, and nothing that someone set up stays
        existing = await service.reclaim_for_address_owner(existing)
    if existing is None:
        # An unverified address is not claimed: the new person has none.
        email = identity.email if identity.email_verified else None
        try:
            existing = await store.create_account(
                AccountKind.PERSON, (identity.name or email or "").strip() or "New person",
                email=email, email_verified_at=time.time() if email else None)
        except Conflict:  # the same address arrived at the same moment
            existing = await store.person_by_email(email or "")
            if existing is None:
                raise
    await store.link_identity(identity.issuer, identity.subject, existing.account_id)
    await store.audit(existing.account_id, existing.account_id, IDENTITY_LINKED,
                      address=address, detail={"issuer": identity.issuer,
                                               "subject": identity.subject})
    # Two links at once keep the first; sign in whoever it names.
    return await store.person_by_identity(identity.issuer, identity.subject) or existing
