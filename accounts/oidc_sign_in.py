"""Signing a person in with an identity an OpenID provider vouched for.

:func:`sign_in_with` finds the person linked to the provider's ``(issuer, subject)``;
else links the person whose address the provider *verified*; else creates a new
person (no password) and links them. An address the provider did not verify never
links to an existing account: anyone can type any address at some providers, and
linking on it would hand them the account.
"""

from __future__ import annotations

import time

from .errors import Conflict, Forbidden
from .models import Account, AccountKind
from .oidc import OidcIdentity
from .service import AccountService, SignedIn

#: Audit action when a provider's identity is linked to a person.
IDENTITY_LINKED = "identity.linked"


async def sign_in_with(service: AccountService, identity: OidcIdentity, *, address: str = "",
                       user_agent: str = "") -> SignedIn:
    """A new session for the person ``identity`` names (linked or created first).

    Raises :class:`~accounts.errors.Forbidden` for a disabled account, a person with
    two-step sign-in (they sign in with password and code), or an unverified provider
    address that belongs to an existing account.
    """
    store = service.store
    person = await store.person_by_identity(identity.issuer, identity.subject)
    if person is None:
        person = await _link_or_create(service, identity, address)
    if not person.active:
        raise Forbidden("this account is disabled; ask an administrator")
    if person.two_factor:
        raise Forbidden("this account uses two-step sign-in; sign in with your password and "
                        "the code from your authenticator app")
    return await service.start_session(person, address, user_agent,
                                       detail={"issuer": identity.issuer})


async def _link_or_create(service: AccountService, identity: OidcIdentity,
                          address: str) -> Account:
    """The person to link ``identity`` to: the verified address's owner, or a new one."""
    store = service.store
    existing = await store.person_by_email(identity.email) if identity.email else None
    if existing is not None and not identity.email_verified:
        raise Forbidden(f"the provider has not verified the address {identity.email!r}, and an "
                        f"account with it exists here; verify the address with the provider, "
                        f"or sign in with your password")
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
