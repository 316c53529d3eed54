"""Where accounts live: :class:`AccountStore` over the process's one database.

Plain reads and writes only; the rules (who may, throttles, links, mail) are in
:mod:`accounts.service`. Every method takes an optional ``tx`` to join the
caller's transaction. Rows found by a secret or an address (emails, link
tokens, sessions, API keys, failure counters) are keyed by ``lookup_key``
(see :mod:`database.sharding`); queries by person or owner on those tables fan
out across shards on Citus, and they are rare (listing one's sessions or keys).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from database import Database, Row, Session, load_migrations

from .errors import Conflict, NotFound
from .models import (
    DEFAULT_REGION,
    Account,
    AccountKind,
    AccountStatus,
    ApiKeyRecord,
    AuditEvent,
    Invitation,
    LinkRecord,
    Membership,
    ProjectGrant,
    new_id,
    normalise_email,
)
from .pseudonyms import Pseudonymiser
from .throttle import Attempt, decayed

MIGRATIONS = load_migrations("accounts", Path(__file__).with_name("migrations"))

#: The lock an attempt at signing in holds on its subject (:meth:`AccountStore.take_attempt`).
ATTEMPT_LOCK = 711_004

_ACCOUNT_COLUMNS = tuple(f.name for f in fields(Account))
#: Columns :meth:`AccountStore.update_account` may change.
UPDATABLE = frozenset({"name", "email_verified_at", "password_hash", "status", "plan",
                       "region", "totp_secret", "totp_last_step", "totp_enabled_at"})


def _account(row: Row) -> Account:
    values = {name: row[name] for name in _ACCOUNT_COLUMNS}
    values["kind"] = AccountKind(values["kind"])
    values["status"] = AccountStatus(values["status"])
    return Account(**values)


def _key(row: Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_hash=row["lookup_key"], key_id=row["key_id"], owner_id=row["owner_id"],
        created_by=row["created_by"], name=row["name"], prefix=row["prefix"],
        scopes=tuple(json.loads(row["scopes"])), test=bool(row["test"]),
        created_at=row["created_at"], expires_at=row["expires_at"],
        last_used_at=row["last_used_at"], revoked_at=row["revoked_at"])


def _link(row: Row) -> LinkRecord:
    return LinkRecord(purpose=row["purpose"], person_id=row["person_id"],
                      data=json.loads(row["data"]), expires_at=row["expires_at"],
                      created_at=row["created_at"], used_at=row["used_at"])


def _invitation(row: Row) -> Invitation:
    return Invitation(**{f.name: row[f.name] for f in fields(Invitation)})


class AccountStore:
    """Accounts, memberships, invitations, links, keys, failures, audit and project roles."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def migrate(self) -> None:
        """Create or upgrade the accounts tables."""
        await self.db.migrate(MIGRATIONS)

    def _on(self, tx: Session | None) -> Session:
        return self.db if tx is None else tx

    def transaction(self, account_id: str | None = None
                    ) -> contextlib.AbstractAsyncContextManager[Session]:
        """A transaction on the database; ``account_id`` picks the region's database in
        :class:`~accounts.regions.RegionalAccountStore` and is ignored here (one database)."""
        return self.db.transaction()

    # -- accounts -----------------------------------------------------------------

    async def create_account(self, kind: AccountKind, name: str, *, email: str | None = None,
                             password_hash: str | None = None, plan: str = "free",
                             region: str = DEFAULT_REGION, account_id: str | None = None,
                             email_verified_at: float | None = None,
                             tx: Session | None = None) -> Account:
        """A new active account; :class:`Conflict` when a person's email is taken."""
        now = time.time()
        prefix = "p" if kind is AccountKind.PERSON else "o"
        account = Account(
            account_id=account_id or new_id(prefix), kind=kind, name=name,
            status=AccountStatus.ACTIVE, plan=plan, region=region, created_at=now,
            updated_at=now, email=normalise_email(email) if email else None,
            email_verified_at=email_verified_at, password_hash=password_hash)
        if tx is None:
            async with self.db.transaction() as own:
                return await self._insert_account(account, own)
        return await self._insert_account(account, tx)

    async def _insert_account(self, account: Account, tx: Session) -> Account:
        if account.email is not None:
            taken = await tx.execute(
                "INSERT INTO account_emails (lookup_key, person_id) VALUES (?, ?) "
                "ON CONFLICT (lookup_key) DO NOTHING", account.email, account.account_id)
            if not taken:
                raise Conflict("that email address already has an account; sign in or "
                               "reset the password")
        values = [getattr(account, name) for name in _ACCOUNT_COLUMNS]
        values = [v.value if isinstance(v, AccountKind | AccountStatus) else v for v in values]
        marks = ", ".join("?" * len(values))
        await tx.execute(f"INSERT INTO accounts ({', '.join(_ACCOUNT_COLUMNS)}) "
                         f"VALUES ({marks})", *values)
        return account

    async def account(self, account_id: str, *, tx: Session | None = None) -> Account | None:
        """The account ``account_id`` (None if there is none)."""
        row = await self._on(tx).fetchrow("SELECT * FROM accounts WHERE account_id = ?",
                                          account_id)
        return None if row is None else _account(row)

    async def require_account(self, account_id: str, *, tx: Session | None = None) -> Account:
        """The account ``account_id``; :class:`NotFound` if there is none."""
        account = await self.account(account_id, tx=tx)
        if account is None or account.status is AccountStatus.DELETED:
            raise NotFound(f"there is no account {account_id!r}")
        return account

    async def person_by_email(self, email: str, *, tx: Session | None = None
                              ) -> Account | None:
        """The person whose (normalised) address is ``email``."""
        person_id = await self._on(tx).fetchval(
            "SELECT person_id FROM account_emails WHERE lookup_key = ?", normalise_email(email))
        return None if person_id is None else await self.account(person_id, tx=tx)

    async def accounts(self, *, kind: AccountKind | None = None) -> list[Account]:
        """Every account (of ``kind``), oldest first: for the administrator's CLI."""
        if kind is None:
            rows = await self.db.fetch("SELECT * FROM accounts ORDER BY created_at")
        else:
            rows = await self.db.fetch("SELECT * FROM accounts WHERE kind = ? "
                                       "ORDER BY created_at", kind.value)
        return [_account(row) for row in rows]

    async def update_account(self, account_id: str, *, tx: Session | None = None,
                             **changes: Any) -> Account:
        """Change some columns of an account (:data:`UPDATABLE`); the account after."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}; updatable: {sorted(UPDATABLE)}")
        changes = {k: v.value if isinstance(v, AccountStatus) else v for k, v in changes.items()}
        changes["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in changes)
        count = await self._on(tx).execute(
            f"UPDATE accounts SET {assignments} WHERE account_id = ?",
            *changes.values(), account_id)
        if not count:
            raise NotFound(f"there is no account {account_id!r}")
        return await self.require_account(account_id, tx=tx)

    async def claim_totp_step(self, person_id: str, step: int, *,
                              tx: Session | None = None) -> bool:
        """Record ``step`` as the last TOTP step used; False if it (or a later one) was."""
        return bool(await self._on(tx).execute(
            "UPDATE accounts SET totp_last_step = ? WHERE account_id = ? AND "
            "(totp_last_step IS NULL OR totp_last_step < ?)", step, person_id, step))

    async def release_email(self, email: str, *, tx: Session | None = None) -> None:
        """Free an address (its person was deleted)."""
        await self._on(tx).execute("DELETE FROM account_emails WHERE lookup_key = ?",
                                   normalise_email(email))

    # -- sign-in providers ----------------------------------------------------------

    async def link_identity(self, issuer: str, subject: str, person_id: str, *,
                            tx: Session | None = None) -> None:
        """Remember that ``issuer``'s ``subject`` is ``person_id``."""
        await self._on(tx).execute(
            "INSERT INTO account_identities (lookup_key, person_id, issuer, subject, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (lookup_key) DO NOTHING",
            f"{issuer} {subject}", person_id, issuer, subject, time.time())

    async def person_by_identity(self, issuer: str, subject: str) -> Account | None:
        """The person ``issuer``'s ``subject`` was linked to."""
        person_id = await self.db.fetchval(
            "SELECT person_id FROM account_identities WHERE lookup_key = ?",
            f"{issuer} {subject}")
        return None if person_id is None else await self.account(person_id)

    # -- memberships --------------------------------------------------------------

    async def set_member(self, org_id: str, person_id: str, role: str, *,
                         tx: Session | None = None) -> Membership:
        """Put ``person_id`` in ``org_id`` with ``role`` (a new role if already in)."""
        now = time.time()
        await self._on(tx).execute(
            "INSERT INTO memberships (account_id, person_id, role, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (account_id, person_id) "
            "DO UPDATE SET role = excluded.role", org_id, person_id, role, now)
        found = await self.membership(org_id, person_id, tx=tx)
        assert found is not None
        return found

    async def remove_member(self, org_id: str, person_id: str, *,
                            tx: Session | None = None) -> bool:
        """Take ``person_id`` out of ``org_id``; False if they were not in it."""
        return bool(await self._on(tx).execute(
            "DELETE FROM memberships WHERE account_id = ? AND person_id = ?", org_id,
            person_id))

    async def membership(self, org_id: str, person_id: str, *,
                         tx: Session | None = None) -> Membership | None:
        """``person_id``'s membership of ``org_id`` (None: not a member)."""
        row = await self._on(tx).fetchrow(
            "SELECT * FROM memberships WHERE account_id = ? AND person_id = ?", org_id,
            person_id)
        return None if row is None else Membership(**row)

    async def members(self, org_id: str, *, tx: Session | None = None) -> list[Membership]:
        """Everyone in ``org_id``, longest-standing first."""
        rows = await self._on(tx).fetch(
            "SELECT * FROM memberships WHERE account_id = ? ORDER BY created_at, person_id",
            org_id)
        return [Membership(**row) for row in rows]

    async def memberships_of(self, person_id: str) -> list[Membership]:
        """Every organisation ``person_id`` is in."""
        rows = await self.db.fetch(
            "SELECT * FROM memberships WHERE person_id = ? ORDER BY created_at", person_id)
        return [Membership(**row) for row in rows]

    # -- invitations --------------------------------------------------------------

    async def add_invitation(self, invitation: Invitation, *, tx: Session | None = None
                             ) -> Invitation:
        """Keep a new invitation."""
        names = [f.name for f in fields(Invitation)]
        await self._on(tx).execute(
            f"INSERT INTO invitations ({', '.join(names)}) VALUES "
            f"({', '.join('?' * len(names))})", *(getattr(invitation, n) for n in names))
        return invitation

    async def invitation(self, org_id: str, invitation_id: str, *,
                         tx: Session | None = None) -> Invitation | None:
        """One invitation of ``org_id``."""
        row = await self._on(tx).fetchrow(
            "SELECT * FROM invitations WHERE account_id = ? AND invitation_id = ?", org_id,
            invitation_id)
        return None if row is None else _invitation(row)

    async def invitations(self, org_id: str) -> list[Invitation]:
        """Every invitation of ``org_id``, newest first."""
        rows = await self.db.fetch("SELECT * FROM invitations WHERE account_id = ? "
                                   "ORDER BY created_at DESC", org_id)
        return [_invitation(row) for row in rows]

    async def close_invitation(self, org_id: str, invitation_id: str, *, now: float,
                               accepted_by: str | None = None,
                               tx: Session | None = None) -> bool:
        """Mark an open invitation accepted (by ``accepted_by``) or revoked; False if closed."""
        column = "accepted_at" if accepted_by else "revoked_at"
        return bool(await self._on(tx).execute(
            f"UPDATE invitations SET {column} = ?, accepted_by = ? WHERE account_id = ? AND "
            "invitation_id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND "
            "expires_at > ?", now, accepted_by, org_id, invitation_id, now))

    async def withdraw_invitations_by(self, org_id: str, person_id: str, *, now: float,
                                      tx: Session | None = None) -> int:
        """Withdraw every open invitation ``person_id`` sent into ``org_id``; how many."""
        return int(await self._on(tx).execute(
            "UPDATE invitations SET revoked_at = ? WHERE account_id = ? AND invited_by = ? "
            "AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?", now, org_id,
            person_id, now) or 0)

    # -- single-use links ---------------------------------------------------------

    async def put_link(self, token_hash: str, purpose: str, person_id: str,
                       data: dict[str, Any], expires_at: float, *,
                       tx: Session | None = None) -> None:
        """Keep a link token's hash and what it stands for."""
        await self._on(tx).execute(
            "INSERT INTO link_tokens (lookup_key, purpose, person_id, data, expires_at, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)", token_hash, purpose, person_id,
            json.dumps(data), expires_at, time.time())

    async def take_link(self, token_hash: str, purpose: str, now: float, *,
                        tx: Session | None = None) -> LinkRecord | None:
        """Use a link once: what it stands for, or None (unknown, used, expired, other use)."""
        db = self._on(tx)
        used = await db.execute(
            "UPDATE link_tokens SET used_at = ? WHERE lookup_key = ? AND purpose = ? AND "
            "used_at IS NULL AND expires_at > ?", now, token_hash, purpose, now)
        if not used:
            return None
        row = await db.fetchrow("SELECT * FROM link_tokens WHERE lookup_key = ?", token_hash)
        assert row is not None
        return _link(row)

    async def peek_link(self, token_hash: str, purpose: str, now: float
                        ) -> LinkRecord | None:
        """What an open link stands for, without using it (None: unknown, used, expired)."""
        row = await self.db.fetchrow(
            "SELECT * FROM link_tokens WHERE lookup_key = ? AND purpose = ? AND used_at IS NULL "
            "AND expires_at > ?", token_hash, purpose, now)
        return None if row is None else _link(row)

    async def links_made_since(self, person_id: str, purpose: str, since: float, *,
                               tx: Session | None = None) -> int:
        """How many links of ``purpose`` were made for ``person_id`` since ``since``."""
        return int(await self._on(tx).fetchval(
            "SELECT COUNT(*) FROM link_tokens WHERE person_id = ? AND purpose = ? AND "
            "created_at >= ?", person_id, purpose, since))

    async def void_links(self, person_id: str, purpose: str, now: float, *,
                         tx: Session | None = None) -> int:
        """Use up every open link of ``purpose`` for ``person_id`` (a newer one replaces them)."""
        return await self._on(tx).execute(
            "UPDATE link_tokens SET used_at = ? WHERE person_id = ? AND purpose = ? AND "
            "used_at IS NULL", now, person_id, purpose)

    # -- API keys -----------------------------------------------------------------

    async def add_key(self, key: ApiKeyRecord, *, tx: Session | None = None) -> ApiKeyRecord:
        """Keep a new key's hash and description."""
        await self._on(tx).execute(
            "INSERT INTO api_keys (lookup_key, key_id, owner_id, created_by, name, prefix, "
            "scopes, test, expires_at, last_used_at, revoked_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", key.key_hash, key.key_id,
            key.owner_id, key.created_by, key.name, key.prefix, json.dumps(list(key.scopes)),
            int(key.test), key.expires_at, key.last_used_at, key.revoked_at, key.created_at)
        return key

    async def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key whose hash is ``key_hash``."""
        row = await self.db.fetchrow("SELECT * FROM api_keys WHERE lookup_key = ?", key_hash)
        return None if row is None else _key(row)

    async def keys_of(self, owner_id: str) -> list[ApiKeyRecord]:
        """Every key of ``owner_id``, newest first."""
        rows = await self.db.fetch("SELECT * FROM api_keys WHERE owner_id = ? "
                                   "ORDER BY created_at DESC", owner_id)
        return [_key(row) for row in rows]

    async def revoke_key(self, owner_id: str, key_id: str, now: float, *,
                         tx: Session | None = None) -> ApiKeyRecord:
        """Revoke ``owner_id``'s key ``key_id`` (at once); :class:`NotFound` if not theirs."""
        db = self._on(tx)
        row = await db.fetchrow("SELECT * FROM api_keys WHERE owner_id = ? AND key_id = ?",
                                owner_id, key_id)
        if row is None:
            raise NotFound(f"there is no key {key_id!r} on this account")
        await db.execute("UPDATE api_keys SET revoked_at = ? WHERE lookup_key = ? AND "
                         "revoked_at IS NULL", now, row["lookup_key"])
        return replace(_key(row), revoked_at=row["revoked_at"] or now)

    async def touch_key(self, key_hash: str, now: float) -> None:
        """Record that a key was used at ``now``."""
        await self.db.execute("UPDATE api_keys SET last_used_at = ? WHERE lookup_key = ?",
                              now, key_hash)

    # -- recovery codes -------------------------------------------------------------

    async def replace_recovery_codes(self, person_id: str, code_hashes: Iterable[str], *,
                                     tx: Session | None = None) -> None:
        """Drop ``person_id``'s recovery codes and keep these instead."""
        db = self._on(tx)
        await db.execute("DELETE FROM recovery_codes WHERE account_id = ?", person_id)
        await db.executemany("INSERT INTO recovery_codes (account_id, code_hash) VALUES (?, ?)",
                             [(person_id, code) for code in code_hashes])

    async def use_recovery_code(self, person_id: str, code_hash: str, now: float) -> bool:
        """Use one recovery code; False if it is unknown or used."""
        return bool(await self.db.execute(
            "UPDATE recovery_codes SET used_at = ? WHERE account_id = ? AND code_hash = ? AND "
            "used_at IS NULL", now, person_id, code_hash))

    async def recovery_codes_left(self, person_id: str) -> int:
        """How many unused recovery codes ``person_id`` has."""
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM recovery_codes WHERE account_id = ? AND used_at IS NULL",
            person_id))

    # -- failed sign-ins ----------------------------------------------------------

    async def record_failure(self, subject: str, now: float, *,
                             half_life: float | None = None) -> int:
        """Count one more failure for ``subject``; the count now.

        With ``half_life`` the new failure counts on top of what is left of the older
        ones (:func:`~accounts.throttle.decayed`), written only if no other failure was
        counted meanwhile (compare-and-set, retried), so racing failures all count.
        """
        for _ in range(8 if half_life is not None else 0):
            row = await self.db.fetchrow("SELECT failures, last_failure_at FROM "
                                         "sign_in_failures WHERE lookup_key = ?", subject)
            if row is None:
                if await self.db.execute(
                        "INSERT INTO sign_in_failures (lookup_key, failures, last_failure_at) "
                        "VALUES (?, 1, ?) ON CONFLICT (lookup_key) DO NOTHING", subject, now):
                    return 1
                continue
            count = decayed(int(row["failures"]), float(row["last_failure_at"]), now,
                            half_life) + 1
            if await self.db.execute(
                    "UPDATE sign_in_failures SET failures = ?, last_failure_at = ? WHERE "
                    "lookup_key = ? AND failures = ? AND last_failure_at = ?", count, now,
                    subject, row["failures"], row["last_failure_at"]):
                return count
        return int(await self.db.fetchval(  # no decay asked, or a long race: plain count
            "INSERT INTO sign_in_failures (lookup_key, failures, last_failure_at) "
            "VALUES (?, 1, ?) ON CONFLICT (lookup_key) DO UPDATE SET "
            "failures = sign_in_failures.failures + 1, last_failure_at = excluded.last_failure_at"
            " RETURNING failures", subject, now))

    async def failures(self, subject: str, *, now: float | None = None,
                       half_life: float | None = None) -> tuple[int, float]:
        """``subject``'s failure count and the time of the last one ((0, 0.0) if none);
        with ``half_life``, the count left at ``now`` (:func:`~accounts.throttle.decayed`)."""
        row = await self.db.fetchrow("SELECT failures, last_failure_at FROM sign_in_failures "
                                     "WHERE lookup_key = ?", subject)
        if row is None:
            return 0, 0.0
        count, last = int(row["failures"]), float(row["last_failure_at"])
        if half_life is not None:
            count = decayed(count, last, time.time() if now is None else now, half_life)
        return count, last

    async def take_attempt(self, subject: str, now: float, *, half_life: float,
                           wait_after: Callable[[int], float],
                           elsewhere: tuple[int, float] = (0, 0.0)) -> Attempt:
        """Count one more attempt for ``subject`` as a failure unless it must wait first
        (the :class:`Attempt`'s ``wait``: 0.0 when counted, else the seconds left and
        nothing counted).

        ``wait_after`` turns a count of failures (faded by ``half_life``, plus the
        ``elsewhere`` count and time of failures kept in other databases) into seconds.
        The check and the count are one transaction holding ``subject``'s lock, so
        racing attempts are counted one after the other: none is checked against a
        count that another has already passed.
        """
        async with self.db.transaction() as tx:
            await tx.hold_lock(ATTEMPT_LOCK, subject)
            row = await tx.fetchrow("SELECT failures, last_failure_at FROM sign_in_failures "
                                    "WHERE lookup_key = ?", subject)
            before = (0, 0.0) if row is None else (int(row["failures"]),
                                                   float(row["last_failure_at"]))
            count, last = decayed(*before, now, half_life), before[1]
            wait = max(last, elsewhere[1]) + wait_after(count + elsewhere[0]) - now
            if wait > 0:
                return Attempt(subject, wait)
            await tx.execute(
                "INSERT INTO sign_in_failures (lookup_key, failures, last_failure_at) "
                "VALUES (?, ?, ?) ON CONFLICT (lookup_key) DO UPDATE SET "
                "failures = excluded.failures, last_failure_at = excluded.last_failure_at",
                subject, count + 1, now)
            return Attempt(subject, 0.0, now, before)

    async def release_attempt(self, attempt: Attempt) -> None:
        """Take back an attempt :meth:`take_attempt` counted (it succeeded): the subject's
        failures as they were before it, or, when another failure was counted since,
        one fewer (the later failure's time kept)."""
        async with self.db.transaction() as tx:
            await tx.hold_lock(ATTEMPT_LOCK, attempt.subject)
            restored = await tx.execute(
                "UPDATE sign_in_failures SET failures = ?, last_failure_at = ? "
                "WHERE lookup_key = ? AND last_failure_at = ?",
                *attempt.before, attempt.subject, attempt.at)
            if not restored:
                await tx.execute("UPDATE sign_in_failures SET failures = failures - 1 "
                                 "WHERE lookup_key = ? AND failures > 0", attempt.subject)

    async def clear_failures(self, subject: str) -> None:
        """Forget ``subject``'s failures (it signed in)."""
        await self.db.execute("DELETE FROM sign_in_failures WHERE lookup_key = ?", subject)

    # -- audit log ----------------------------------------------------------------

    async def audit(self, account_id: str, actor_id: str, action: str, *, target: str = "",
                    address: str = "", detail: dict[str, Any] | None = None,
                    tx: Session | None = None) -> AuditEvent:
        """Record one security event under ``account_id``."""
        event = AuditEvent(account_id=account_id, event_id=new_id("ev"), at=time.time(),
                           actor_id=actor_id, action=action, target=target, address=address,
                           detail=detail or {})
        await self._on(tx).execute(
            "INSERT INTO audit_log (account_id, event_id, at, actor_id, action, target, "
            "address, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", event.account_id,
            event.event_id, event.at, event.actor_id, event.action, event.target,
            event.address, json.dumps(event.detail))
        return event

    async def audit_events(self, account_id: str, *, limit: int = 100,
                           before: float | None = None) -> list[AuditEvent]:
        """``account_id``'s security events, newest first (older than ``before``)."""
        rows = await self.db.fetch(
            "SELECT * FROM audit_log WHERE account_id = ? AND at < ? ORDER BY at DESC, "
            "event_id DESC LIMIT ?", account_id, float("inf") if before is None else before,
            limit)
        return [AuditEvent(**{**row, "detail": json.loads(row["detail"])}) for row in rows]

    # -- projects -----------------------------------------------------------------

    async def own_project(self, account_id: str, project_id: str, *,
                          tx: Session | None = None) -> None:
        """Record that ``account_id`` owns ``project_id``."""
        await self._on(tx).execute(
            "INSERT INTO account_projects (account_id, project_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (account_id, project_id) DO NOTHING", account_id, project_id,
            time.time())

    async def project_owner(self, project_id: str) -> str | None:
        """The account that owns ``project_id`` (None: a project from before accounts)."""
        return await self.db.fetchval(
            "SELECT account_id FROM account_projects WHERE project_id = ? "
            "ORDER BY created_at LIMIT 1", project_id)

    async def projects_of(self, account_ids: Iterable[str]) -> dict[str, str]:
        """``{project_id: owning account}`` of every project these accounts own."""
        ids = list(account_ids)
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = await self.db.fetch(
            f"SELECT project_id, account_id FROM account_projects WHERE account_id IN ({marks})",
            *ids)
        return {row["project_id"]: row["account_id"] for row in rows}

    async def grant(self, project_id: str, grantee_id: str, role: str, granted_by: str, *,
                    tx: Session | None = None) -> ProjectGrant:
        """Give ``grantee_id`` (a person or a team) ``role`` on ``project_id``."""
        now = time.time()
        await self._on(tx).execute(
            "INSERT INTO project_grants (project_id, grantee_id, role, granted_by, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, grantee_id) DO UPDATE SET "
            "role = excluded.role, granted_by = excluded.granted_by", project_id, grantee_id,
            role, granted_by, now)
        return ProjectGrant(project_id, grantee_id, role, granted_by, now)

    async def ungrant(self, project_id: str, grantee_id: str, *,
                      tx: Session | None = None) -> bool:
        """Take ``grantee_id``'s role on ``project_id`` away; False if it had none."""
        return bool(await self._on(tx).execute(
            "DELETE FROM project_grants WHERE project_id = ? AND grantee_id = ?", project_id,
            grantee_id))

    async def grants_on(self, project_id: str) -> list[ProjectGrant]:
        """Every role granted on ``project_id``."""
        rows = await self.db.fetch("SELECT * FROM project_grants WHERE project_id = ? "
                                   "ORDER BY created_at", project_id)
        return [ProjectGrant(**row) for row in rows]

    async def grants_to(self, grantee_ids: Iterable[str]) -> list[ProjectGrant]:
        """Every project role granted to any of ``grantee_ids``."""
        ids = list(grantee_ids)
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = await self.db.fetch(
            f"SELECT * FROM project_grants WHERE grantee_id IN ({marks})", *ids)
        return [ProjectGrant(**row) for row in rows]

    # -- privacy: one person's data, for export and erasure (accounts.erasure) --------
    # Reads and writes by person fan out across shards on Citus; they run once per
    # export or erasure.

    async def emails_of(self, person_id: str) -> list[str]:
        """Every address ``person_id`` signs in with."""
        rows = await self.db.fetch("SELECT lookup_key FROM account_emails WHERE person_id = ? "
                                   "ORDER BY lookup_key", person_id)
        return [row["lookup_key"] for row in rows]

    async def identities_of(self, person_id: str) -> list[dict[str, Any]]:
        """The sign-in providers' subjects linked to ``person_id``."""
        rows = await self.db.fetch("SELECT issuer, subject, created_at FROM account_identities "
                                   "WHERE person_id = ? ORDER BY created_at", person_id)
        return [dict(row) for row in rows]

    async def audit_events_by(self, actor_id: str, *, limit: int = 1000) -> list[AuditEvent]:
        """Security events ``actor_id`` caused in any account, newest first."""
        rows = await self.db.fetch("SELECT * FROM audit_log WHERE actor_id = ? "
                                   "ORDER BY at DESC, event_id DESC LIMIT ?", actor_id, limit)
        return [AuditEvent(**{**row, "detail": json.loads(row["detail"])}) for row in rows]

    async def keys_made_by(self, person_id: str) -> list[ApiKeyRecord]:
        """Every key ``person_id`` made (for themselves or an organisation), newest first."""
        rows = await self.db.fetch("SELECT * FROM api_keys WHERE created_by = ? "
                                   "ORDER BY created_at DESC", person_id)
        return [_key(row) for row in rows]

    async def invitations_to(self, emails: Iterable[str]) -> list[Invitation]:
        """Every invitation sent to any of ``emails``, newest first."""
        wanted = sorted({normalise_email(e) for e in emails})
        if not wanted:
            return []
        rows = await self.db.fetch(
            f"SELECT * FROM invitations WHERE email IN ({', '.join('?' * len(wanted))}) "
            "ORDER BY created_at DESC", *wanted)
        return [_invitation(row) for row in rows]

    async def close_sign_in(self, person_id: str, now: float, *, tx: Session | None = None
                            ) -> int:
        """Stop ``person_id`` signing in or acting: status deleted, addresses and provider
        subjects freed, own keys revoked; how many rows changed."""
        db = self._on(tx)
        changed = await db.execute("UPDATE accounts SET status = ?, updated_at = ? "
                                   "WHERE account_id = ?", AccountStatus.DELETED.value, now,
                                   person_id)
        changed += await db.execute("DELETE FROM account_emails WHERE person_id = ?",
                                    person_id)
        changed += await db.execute("DELETE FROM account_identities WHERE person_id = ?",
                                    person_id)
        changed += await db.execute("UPDATE api_keys SET revoked_at = ? WHERE owner_id = ? AND "
                                    "revoked_at IS NULL", now, person_id)
        return changed

    async def erase_person(self, person_id: str, failure_subjects: Iterable[str], *,
                           tx: Session) -> dict[str, int]:
        """Delete every row that is ``person_id``'s alone; rows deleted, by table."""
        deleted: dict[str, int] = {}
        for table, column in (("account_emails", "person_id"),
                              ("account_identities", "person_id"),
                              ("link_tokens", "person_id"), ("recovery_codes", "account_id"),
                              ("sessions", "person_id"), ("memberships", "person_id"),
                              ("project_grants", "grantee_id"),
                              ("account_projects", "account_id"), ("api_keys", "owner_id"),
                              ("account_fences", "account_id"), ("accounts", "account_id")):
            deleted[table] = await tx.execute(f"DELETE FROM {table} WHERE {column} = ?",
                                              person_id)
        subjects = sorted(set(failure_subjects))
        deleted["sign_in_failures"] = await tx.execute(
            f"DELETE FROM sign_in_failures WHERE lookup_key IN "
            f"({', '.join('?' * len(subjects))})", *subjects) if subjects else 0
        return deleted

    async def pseudonymise_person(self, pz: Pseudonymiser, *, tx: Session) -> dict[str, int]:
        """Name the person by ``pz.pseudonym`` in rows others keep; rows changed, by table.

        Their own security log moves under the pseudonym (its network addresses
        cleared); events they caused or that name them elsewhere keep the event
        with the pseudonym in place of the person and no address of theirs.
        Invitations, grants and keys they made or received name the pseudonym.
        """
        person_id, pseudonym = pz.account_id, pz.pseudonym
        needles = pz.needles
        marks = ", ".join("?" * len(needles))
        rows = await tx.fetch(
            f"SELECT * FROM audit_log WHERE account_id = ? OR actor_id = ? OR "
            f"LOWER(target) IN ({marks})", person_id, person_id, *needles)
        for row in rows:
            own = row["account_id"] == person_id
            address = "" if own or row["actor_id"] == person_id else row["address"]
            detail = json.dumps(pz.value(json.loads(row["detail"])))
            await tx.execute("DELETE FROM audit_log WHERE account_id = ? AND event_id = ?",
                             row["account_id"], row["event_id"])
            await tx.execute(
                "INSERT INTO audit_log (account_id, event_id, at, actor_id, action, target, "
                "address, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                pseudonym if own else row["account_id"], row["event_id"], row["at"],
                pz.text(row["actor_id"]), row["action"], pz.text(row["target"]), address,
                detail)
        changed = {"audit_log": len(rows)}
        changed["invitations"] = 0
        for row in await tx.fetch(
                f"SELECT * FROM invitations WHERE invited_by = ? OR accepted_by = ? OR "
                f"LOWER(email) IN ({marks})", person_id, person_id, *needles):
            changed["invitations"] += await tx.execute(
                "UPDATE invitations SET email = ?, invited_by = ?, accepted_by = ? "
                "WHERE account_id = ? AND invitation_id = ?", pz.text(row["email"]),
                pz.text(row["invited_by"]),
                None if row["accepted_by"] is None else pz.text(row["accepted_by"]),
                row["account_id"], row["invitation_id"])
        changed["project_grants"] = await tx.execute(
            "UPDATE project_grants SET granted_by = ? WHERE granted_by = ?", pseudonym, person_id)
        changed["api_keys"] = await tx.execute(
            "UPDATE api_keys SET created_by = ? WHERE created_by = ?", pseudonym, person_id)
        changed["sso_providers"] = await tx.execute(
            "UPDATE sso_providers SET updated_by = ? WHERE updated_by = ?", pseudonym, person_id)
        return changed

    # -- a deleted project ----------------------------------------------------------

    async def forget_project(self, project_id: str, *, tx: Session | None = None
                             ) -> dict[str, int]:
        """Delete ``project_id``'s ownership and every role granted on it (the project
        was deleted), in one transaction; rows deleted, by table."""
        async with contextlib.AsyncExitStack() as stack:
            session = tx if tx is not None else await stack.enter_async_context(
                self.db.transaction())
            return {table: await session.execute(
                f"DELETE FROM {table} WHERE project_id = ?", project_id)
                for table in ("project_grants", "account_projects")}
