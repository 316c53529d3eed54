"""The account's connected sources (``analytics_sources``): connect, list, flag and
disconnect; credentials sealed (:mod:`.credentials`), never shown back.

A source's credentials are the grant of the person who connected it (``connected_by``).
When that person is erased, the sources they connected for other accounts (an
organisation) lose those credentials (:func:`forget_grants_of`): the sealed credentials
are deleted, the source is flagged ``needs_reconnect`` with a note saying why (what the
account's people see in ``GET /api/analytics/sources``), and the account's audit trail
(``GET /api/analytics/audit``) records it.

Forgetting a grant (a disconnect, or its granter's erasure) also queues its withdrawal
at the platform, in the same transaction (:mod:`.revocation`): the credentials are
deleted here at once, whatever the platform later answers.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from business.analytics.credentials import CredentialBox
from business.analytics.revocation import REVOKE_JOB, queue_revoke
from business.analytics.sources import SOURCES
from business.analytics.sources.base import Credentials
from business.analytics.sources.records import ENTITY_KINDS
from dawserver.plugin_api import JobQueue

ACTIVE, NEEDS_RECONNECT, FAILING, DISCONNECTED = (
    "active", "needs_reconnect", "failing", "disconnected")
#: The audit action of credentials forgotten with the erased person who granted them.
GRANT_FORGOTTEN = "source.grant_forgotten"
#: What a source whose grant was forgotten says to the account's people.
GRANT_FORGOTTEN_NOTE = ("the person who connected this source was erased and the "
                        "credentials they granted were forgotten with them: reconnect it "
                        "with credentials of someone still in the account")


class SourceNotFound(Exception):
    """The account has no connected source of that id."""


class ConnectionError_(Exception):  # noqa: N801 - not the builtin ConnectionError
    """A connect request the source cannot take (unknown source, wrong entity kind)."""


@dataclass(frozen=True)
class Connection:
    """A connected source as stored (credentials still sealed)."""

    account_id: str
    source_id: str
    source: str
    entity_kind: str
    entity_id: str
    entity_name: str
    credentials: str
    state: str
    last_error: str
    connected_by: str
    next_run_at: float
    last_run_at: float | None
    created_at: float
    updated_at: float

    def public(self) -> dict[str, Any]:
        """As the API shows it: never the credentials."""
        return {k: getattr(self, k) for k in (
            "source_id", "source", "entity_kind", "entity_id", "entity_name", "state", "last_error",
            "connected_by", "next_run_at", "last_run_at", "created_at", "updated_at")}


class Connections:
    """Connected sources of every account, always scoped by account."""

    def __init__(self, db: Any, box: CredentialBox, clock: Any = time.time,
                 queue: JobQueue | None = None) -> None:
        self.db = db
        self.box = box
        self.clock = clock
        #: Where a disconnected grant's withdrawal is queued (None: it is not).
        self.queue = queue

    async def connect(self, account_id: str, source: str, entity_kind: str, entity_id: str,
                      credentials: Credentials, connected_by: str,
                      entity_name: str = "") -> Connection:
        """Connect (or reconnect, with new credentials) ``source`` for one entity."""
        cls = SOURCES.get(source)
        if cls is None:
            raise ConnectionError_(f"unknown analytics source {source!r}; use one of "
                                   f"{', '.join(sorted(SOURCES))}")
        if entity_kind not in ENTITY_KINDS:
            raise ConnectionError_(f"entity kind {entity_kind!r} is not one of "
                                   f"{', '.join(ENTITY_KINDS)}")
        now = self.clock()
        sealed = self.box.seal(credentials)
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO analytics_sources (account_id, source_id, source, entity_kind, "
                "entity_id, entity_name, credentials, state, last_error, connected_by, "
                "next_run_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'active', '', ?, ?, ?, ?) "
                "ON CONFLICT (account_id, source, entity_kind, entity_id) DO UPDATE SET "
                "credentials = excluded.credentials, entity_name = excluded.entity_name, "
                "state = 'active', last_error = '', "
                "connected_by = excluded.connected_by, next_run_at = excluded.next_run_at, "
                "updated_at = excluded.updated_at", account_id, uuid.uuid4().hex[:16], source,
                entity_kind, entity_id, entity_name, sealed, connected_by, now, now, now)
            row = await tx.fetchrow(
                "SELECT * FROM analytics_sources WHERE account_id = ? AND source = ? AND "
                "entity_kind = ? AND entity_id = ?", account_id, source, entity_kind, entity_id)
        return Connection(**row)

    async def list(self, account_id: str) -> list[Connection]:
        rows = await self.db.fetch("SELECT * FROM analytics_sources WHERE account_id = ? "
                                   "ORDER BY source, entity_id", account_id)
        return [Connection(**r) for r in rows]

    async def get(self, account_id: str, source_id: str) -> Connection:
        row = await self.db.fetchrow("SELECT * FROM analytics_sources WHERE account_id = ? "
                                     "AND source_id = ?", account_id, source_id)
        if row is None:
            raise SourceNotFound(f"no connected source {source_id!r}; list them with "
                                 "GET /api/analytics/sources")
        return Connection(**row)

    def credentials(self, connection: Connection) -> Credentials:
        return self.box.open(connection.credentials)

    async def disconnect(self, account_id: str, source_id: str) -> Connection:
        """Forget the credentials and stop the schedule (the points stay); the grant's
        withdrawal at the platform is queued in the same transaction (:mod:`.revocation`)."""
        await self.get(account_id, source_id)
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM analytics_sources WHERE account_id = ? "
                                    "AND source_id = ?", account_id, source_id)
            await tx.execute(
                "UPDATE analytics_sources SET state = 'disconnected', credentials = '', "
                "updated_at = ? WHERE account_id = ? AND source_id = ?", self.clock(),
                account_id, source_id)
            queued = row is not None and self.queue is not None and await queue_revoke(
                self.queue, tx, account_id, dict(row), row["credentials"], DISCONNECTED)
        if queued and self.queue is not None:
            self.queue.wake(REVOKE_JOB)
        return await self.get(account_id, source_id)

    async def grant_in_use(self, account_id: str, source: str, entity_id: str,
                           credentials: Credentials) -> bool:
        """Whether a source of this plug-in that is not disconnected and holds
        credentials rests on the grant a revocation of ``account_id``'s source would
        withdraw: one of the same ``source`` holding the same refresh token (the same
        remote user's grant, in any account), or, as the remote user is not stored, the
        same ``source`` and ``entity_id`` in the same account (reconnected since). The
        same entity in another account is not enough: it may rest on another user's
        grant, which this one's withdrawal leaves alone. Only this plug-in's sources:
        the social plug-in's channels are not seen here."""
        rows = await self.db.fetch(
            "SELECT account_id, entity_id, credentials FROM analytics_sources "
            "WHERE source = ? AND state <> 'disconnected' AND credentials <> ''", source)
        for row in rows:
            if row["account_id"] == account_id and row["entity_id"] == entity_id:
                return True
            if not credentials.refresh_token:
                continue
            try:
                held = self.box.open(row["credentials"])
            except Exception:  # a key since removed: that grant cannot be compared
                continue
            if held.refresh_token == credentials.refresh_token:
                return True
        return False

    async def flag(self, account_id: str, source_id: str, state: str, error: str) -> bool:
        """Mark a source as needing attention (a revoked token, a changed answer shape);
        True: it newly turned ``state`` (False: it already was, or is disconnected)."""
        async with self.db.transaction() as tx:
            turned = await tx.execute(
                "UPDATE analytics_sources SET state = ?, last_error = ?, updated_at = ? "
                "WHERE account_id = ? AND source_id = ? AND state != 'disconnected' AND "
                "state != ?", state, error[:2000], self.clock(), account_id, source_id, state)
            if not turned:
                await tx.execute(
                    "UPDATE analytics_sources SET last_error = ?, updated_at = ? WHERE "
                    "account_id = ? AND source_id = ? AND state = ?", error[:2000],
                    self.clock(), account_id, source_id, state)
        return bool(turned)

    async def save_credentials(self, connection: Connection, credentials: Credentials) -> None:
        """Keep a refresh token the platform rotated during a run, unless the source's
        credentials were forgotten meanwhile (disconnected, or its granter erased)."""
        await self.db.execute(
            "UPDATE analytics_sources SET credentials = ?, updated_at = ? WHERE account_id = ? "
            "AND source_id = ? AND state != 'disconnected' AND credentials != ''",
            self.box.seal(credentials), self.clock(), connection.account_id,
            connection.source_id)

    async def due(self, now: float, limit: int = 100) -> list[Connection]:
        """Active sources whose scheduled run is due (every account: the scheduler's)."""
        rows = await self.db.fetch(
            "SELECT * FROM analytics_sources WHERE state = 'active' AND next_run_at <= ? "
            "ORDER BY next_run_at LIMIT ?", now, limit)
        return [Connection(**r) for r in rows]

    async def claim_slot(self, tx: Any, connection: Connection, next_run_at: float) -> bool:
        """Move a due source's next run on (compare-and-set: one scheduler wins)."""
        changed = await tx.execute(
            "UPDATE analytics_sources SET next_run_at = ?, last_run_at = ?, updated_at = ? "
            "WHERE account_id = ? AND source_id = ? AND next_run_at = ? AND state = 'active'",
            next_run_at, self.clock(), self.clock(), connection.account_id,
            connection.source_id, connection.next_run_at)
        return bool(changed)


async def forget_grants_of(tx: Any, person_id: str, actor: str, now: float
                           ) -> list[dict[str, Any]]:
    """Forget the credentials ``person_id`` granted to other accounts' sources.

    Each such source keeps its points and schedule row but loses its sealed credentials,
    turns ``needs_reconnect`` with :data:`GRANT_FORGOTTEN_NOTE`, and its account's audit
    trail gets a :data:`GRANT_FORGOTTEN` entry by ``actor`` (the person's pseudonym).
    Their own account's sources are not touched (an erasure deletes those). Runs in the
    caller's transaction ``tx``; a second call finds nothing left to forget.

    Returns
    -------
    list[dict]
        The sources changed: ``account_id``, ``source_id``, ``source``, ``entity_kind``,
        ``entity_id``, ``entity_name`` and the ``credentials`` as they were sealed (for
        their withdrawal at the platform, :func:`.revocation.queue_revoke`).
    """
    rows = [dict(r) for r in await tx.fetch(
        "SELECT account_id, source_id, source, entity_kind, entity_id, entity_name, "
        "credentials FROM analytics_sources "
        "WHERE connected_by = ? AND account_id != ? AND credentials != '' "
        "ORDER BY account_id, source_id", person_id, person_id)]
    for row in rows:
        await tx.execute(
            "UPDATE analytics_sources SET credentials = '', state = ?, last_error = ?, "
            "updated_at = ? WHERE account_id = ? AND source_id = ?", NEEDS_RECONNECT,
            GRANT_FORGOTTEN_NOTE, now, row["account_id"], row["source_id"])
        detail = {k: row[k] for k in ("source", "entity_kind", "entity_id")}
        await tx.execute(
            "INSERT INTO analytics_catalog_audit (account_id, audit_id, action, actor, "
            "entity_id, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)", row["account_id"],
            uuid.uuid4().hex, GRANT_FORGOTTEN, actor, row["source_id"],
            json.dumps({**detail, "reason": "granted by a person since erased"}), now)
    return rows
