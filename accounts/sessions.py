"""Signed-in sessions: opaque 256-bit ids, kept hashed, in the database or in Redis.

The cookie holds the secret id (``secrets.token_urlsafe(32)``); stores keep only
its SHA-256 (:func:`hash_session`), so a copy of the store signs nobody in.
:class:`SessionPolicy` gives the idle and absolute timeouts. Two stores share
one interface (:class:`SessionStore`): :class:`DatabaseSessions` on the embedded
default and :class:`RedisSessions` when Redis is configured, whose keys carry a
hash tag (``maxbooster:{s:HASH}``) so each session lives on one Redis Cluster slot.

When a person's roles change, :meth:`Sessions.mark_for_rotation` marks their
sessions; the next request with a marked session gets a new secret id and CSRF
token from :meth:`Sessions.rotate`, which ends the old id in the same step (only
one of two racing requests wins it), so an id someone may have seen before the
change stops working.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from database import Database, Row
from database.redis_client import redis_client

from .models import SessionRecord


def hash_session(secret: str) -> str:
    """The SHA-256 (hex) under which a session's secret id is stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions last: ``idle_s`` since last use, ``absolute_s`` since sign-in."""

    idle_s: float = 12 * 3600.0
    absolute_s: float = 14 * 24 * 3600.0
    #: A session's last-seen time is written at most this often (saves a write per request).
    touch_every_s: float = 60.0

    def new_session(self, person_id: str, *, user_agent: str = "", address: str = "",
                    now: float | None = None) -> tuple[str, SessionRecord]:
        """A fresh secret id and the record to store for it."""
        now = time.time() if now is None else now
        secret = secrets.token_urlsafe(32)
        record = SessionRecord(
            key_hash=hash_session(secret), session_id=secrets.token_hex(8),
            person_id=person_id, csrf_token=secrets.token_urlsafe(32), created_at=now,
            last_seen_at=now, expires_at=now + self.absolute_s,
            user_agent=user_agent[:300], address=address[:100])
        return secret, record

    def alive(self, record: SessionRecord, now: float) -> bool:
        """Whether ``record`` is within both timeouts at ``now``."""
        return now < record.expires_at and now < record.last_seen_at + self.idle_s

    def ttl(self, record: SessionRecord, now: float) -> float:
        """Seconds ``record`` has left at ``now`` if it is not used again."""
        return max(0.0, min(record.expires_at, record.last_seen_at + self.idle_s) - now)


class SessionStore(Protocol):
    """Where sessions are kept."""

    async def save(self, record: SessionRecord, ttl: float) -> None:
        """Keep (or overwrite) ``record`` for at most ``ttl`` seconds."""

    async def touch(self, record: SessionRecord, ttl: float) -> bool:
        """Write ``record``'s last-seen time and ``ttl`` only if it still exists; False if
        it ended meanwhile (rotated, signed out): a touch never brings a session back."""

    async def get(self, key_hash: str) -> SessionRecord | None:
        """The session whose secret hashes to ``key_hash``."""

    async def delete(self, key_hash: str) -> bool:
        """End one session; False if there was none."""

    async def of_person(self, person_id: str) -> list[SessionRecord]:
        """Every session of ``person_id`` (expired ones may be included)."""

    async def mark_rotation(self, person_id: str) -> int:
        """Mark every session of ``person_id`` for a new id; how many were marked."""

    async def replace(self, old: SessionRecord, new: SessionRecord, ttl: float) -> bool:
        """End ``old`` and keep ``new`` in one step; False (and nothing kept) if ``old``
        had ended already (another request rotated or ended it)."""

    async def close(self) -> None:
        """Release connections."""


def _record(row: Row) -> SessionRecord:
    return SessionRecord(key_hash=row["lookup_key"], rotate=bool(row["rotate"]), **{
        k: row[k] for k in ("session_id", "person_id", "csrf_token", "created_at",
                            "last_seen_at", "expires_at", "user_agent", "address")})


class DatabaseSessions:
    """Sessions in the ``sessions`` table of the process's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    _INSERT = ("INSERT INTO sessions (lookup_key, session_id, person_id, csrf_token, "
               "created_at, last_seen_at, expires_at, user_agent, address, rotate) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

    @staticmethod
    def _values(record: SessionRecord) -> tuple[Any, ...]:
        return (record.key_hash, record.session_id, record.person_id, record.csrf_token,
                record.created_at, record.last_seen_at, record.expires_at, record.user_agent,
                record.address, int(record.rotate))

    async def save(self, record: SessionRecord, ttl: float) -> None:
        await self.db.execute(self._INSERT, *self._values(record))

    async def touch(self, record: SessionRecord, ttl: float) -> bool:
        # only the last-seen time: a rotation mark set meanwhile stays
        return bool(await self.db.execute(
            "UPDATE sessions SET last_seen_at = ? WHERE lookup_key = ?", record.last_seen_at,
            record.key_hash))

    async def get(self, key_hash: str) -> SessionRecord | None:
        row = await self.db.fetchrow("SELECT * FROM sessions WHERE lookup_key = ?", key_hash)
        return None if row is None else _record(row)

    async def delete(self, key_hash: str) -> bool:
        return bool(await self.db.execute("DELETE FROM sessions WHERE lookup_key = ?",
                                          key_hash))

    async def of_person(self, person_id: str) -> list[SessionRecord]:
        rows = await self.db.fetch("SELECT * FROM sessions WHERE person_id = ? "
                                   "ORDER BY created_at", person_id)
        return [_record(row) for row in rows]

    async def mark_rotation(self, person_id: str) -> int:
        return await self.db.execute("UPDATE sessions SET rotate = 1 WHERE person_id = ?",
                                     person_id)

    async def replace(self, old: SessionRecord, new: SessionRecord, ttl: float) -> bool:
        async with self.db.transaction() as tx:
            if not await tx.execute("DELETE FROM sessions WHERE lookup_key = ?", old.key_hash):
                return False
            await tx.execute(self._INSERT, *self._values(new))
        return True

    async def purge(self, now: float, idle_s: float) -> int:
        """Delete sessions past either timeout; how many."""
        return await self.db.execute(
            "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?", now, now - idle_s)

    async def close(self) -> None:
        return None


class RedisSessions:
    """Sessions in Redis (or Redis Cluster): one hash-tagged key per session, expiring.

    ``maxbooster:{s:HASH}`` holds the record as JSON with a TTL and
    ``maxbooster:{s:HASH}:rotate`` (same slot) its rotation mark, kept apart so a
    touch that rewrites the record never drops a mark; the set
    ``maxbooster:{p:PERSON}:sessions`` lists a person's session hashes (pruned
    when read). Every command touches one slot, so any cluster node can serve it.
    A rotation keeps the new key first, then claims the old one with ``GETDEL``
    (atomic): of two racing rotations one gets the record, the other drops its key.
    """

    PREFIX = "maxbooster"

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> RedisSessions:
        """Sessions on the Redis (``redis://``) or Redis Cluster (``redis+cluster://``) at url."""
        return cls(redis_client(url, decode_responses=True))

    def _key(self, key_hash: str) -> str:
        return f"{self.PREFIX}:{{s:{key_hash}}}"

    def _mark(self, key_hash: str) -> str:
        return f"{self.PREFIX}:{{s:{key_hash}}}:rotate"

    def _index(self, person_id: str) -> str:
        return f"{self.PREFIX}:{{p:{person_id}}}:sessions"

    @staticmethod
    def _json(record: SessionRecord) -> str:
        return json.dumps({**asdict(record), "rotate": False})

    async def save(self, record: SessionRecord, ttl: float) -> None:
        milliseconds = max(1, int(ttl * 1000))
        await self.client.set(self._key(record.key_hash), self._json(record), px=milliseconds)
        await self._index_add(record, milliseconds)

    async def touch(self, record: SessionRecord, ttl: float) -> bool:
        milliseconds = max(1, int(ttl * 1000))
        # XX: only while the key exists, so a session ended meanwhile stays ended
        if not await self.client.set(self._key(record.key_hash), self._json(record),
                                     px=milliseconds, xx=True):
            return False
        await self._index_add(record, milliseconds)
        return True

    async def _index_add(self, record: SessionRecord, milliseconds: int) -> None:
        index = self._index(record.person_id)
        await self.client.sadd(index, record.key_hash)
        # the index lives as long as its longest session: lengthen it (GT), or give a new
        # index (no expiry yet, which GT never changes) its first one (NX)
        if not await self.client.pexpire(index, milliseconds, gt=True):
            await self.client.pexpire(index, milliseconds, nx=True)

    async def get(self, key_hash: str) -> SessionRecord | None:
        text, mark = await self.client.mget(self._key(key_hash), self._mark(key_hash))
        if text is None:
            return None
        return SessionRecord(**{**json.loads(text), "rotate": mark is not None})

    async def delete(self, key_hash: str) -> bool:
        record = await self.get(key_hash)
        removed = bool(await self.client.delete(self._key(key_hash), self._mark(key_hash)))
        if record is not None:
            await self.client.srem(self._index(record.person_id), key_hash)
        return removed

    async def of_person(self, person_id: str) -> list[SessionRecord]:
        found = []
        index = self._index(person_id)
        for key_hash in await self.client.smembers(index):
            record = await self.get(key_hash)
            if record is None:
                await self.client.srem(index, key_hash)
            else:
                found.append(record)
        return sorted(found, key=lambda r: r.created_at)

    async def mark_rotation(self, person_id: str) -> int:
        now, marked = time.time(), 0
        for record in await self.of_person(person_id):
            # the mark outlives the session: no session lasts past its absolute expiry
            milliseconds = max(1, int((record.expires_at - now) * 1000))
            await self.client.set(self._mark(record.key_hash), "1", px=milliseconds)
            marked += 1
        return marked

    async def replace(self, old: SessionRecord, new: SessionRecord, ttl: float) -> bool:
        milliseconds = max(1, int(ttl * 1000))
        new_key = self._key(new.key_hash)
        await self.client.set(new_key, self._json(new), px=milliseconds, nx=True)
        if await self.client.getdel(self._key(old.key_hash)) is None:
            await self.client.delete(new_key)  # another request rotated or ended it first
            return False
        await self.client.delete(self._mark(old.key_hash))
        await self.client.srem(self._index(old.person_id), old.key_hash)
        await self._index_add(new, milliseconds)
        return True

    async def close(self) -> None:
        await self.client.aclose()


def session_store(db: Database, redis_url: str | None = None) -> SessionStore:
    """Where a deployment keeps sessions: Redis when ``redis_url`` is set, else ``db``."""
    return RedisSessions.from_url(redis_url) if redis_url else DatabaseSessions(db)


class Sessions:
    """Sign-in sessions under a :class:`SessionPolicy`, in one :class:`SessionStore`."""

    def __init__(self, store: SessionStore, policy: SessionPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or SessionPolicy()

    async def start(self, person_id: str, *, user_agent: str = "", address: str = ""
                    ) -> tuple[str, SessionRecord]:
        """Sign ``person_id`` in: a new secret id (for the cookie) and its record."""
        secret, record = self.policy.new_session(person_id, user_agent=user_agent,
                                                 address=address)
        await self.store.save(record, self.policy.ttl(record, record.created_at))
        return secret, record

    async def find(self, secret: str | None, *, now: float | None = None
                   ) -> SessionRecord | None:
        """The live session of a cookie's secret id (None: unknown, ended or timed out).

        Use refreshes the idle timeout (written at most every ``touch_every_s``).
        """
        if not secret:
            return None
        now = time.time() if now is None else now
        record = await self.store.get(hash_session(secret))
        if record is None:
            return None
        if not self.policy.alive(record, now):
            await self.store.delete(record.key_hash)
            return None
        if now - record.last_seen_at >= self.policy.touch_every_s:
            record = replace(record, last_seen_at=now)
            if not await self.store.touch(record, self.policy.ttl(record, now)):
                return None  # rotated or ended since it was read
        return record

    async def mark_for_rotation(self, person_id: str) -> int:
        """``person_id``'s roles changed: each of their sessions gets a new id at its next
        use (:meth:`rotate`); how many sessions were marked."""
        return await self.store.mark_rotation(person_id)

    async def rotate(self, record: SessionRecord, *, now: float | None = None
                     ) -> tuple[str, SessionRecord] | None:
        """Give ``record`` a new secret id and CSRF token and end the old id, in one step.

        The session keeps its public id, sign-in time and absolute expiry. None when
        another request rotated (or someone ended) it first.
        """
        now = time.time() if now is None else now
        secret, fresh = self.policy.new_session(record.person_id, now=now)
        new = replace(record, key_hash=fresh.key_hash, csrf_token=fresh.csrf_token,
                      last_seen_at=now, rotate=False)
        if not await self.store.replace(record, new, self.policy.ttl(new, now)):
            return None
        return secret, new

    async def end(self, key_hash: str) -> bool:
        """End one session by the hash of its id."""
        return await self.store.delete(key_hash)

    async def end_by_id(self, person_id: str, session_id: str) -> bool:
        """End ``person_id``'s session whose public id is ``session_id``."""
        for record in await self.store.of_person(person_id):
            if record.session_id == session_id:
                return await self.store.delete(record.key_hash)
        return False

    async def list(self, person_id: str, *, now: float | None = None) -> list[SessionRecord]:
        """``person_id``'s live sessions, oldest first."""
        now = time.time() if now is None else now
        return [r for r in await self.store.of_person(person_id) if self.policy.alive(r, now)]

    async def end_all(self, person_id: str, *, keep: str | None = None) -> int:
        """End every session of ``person_id`` but the one hashed ``keep``; how many ended."""
        ended = 0
        for record in await self.store.of_person(person_id):
            if record.key_hash != keep and await self.store.delete(record.key_hash):
                ended += 1
        return ended
