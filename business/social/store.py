"""SocialStore: the social module's rows in the plug-in context's one database.

Plain reads and writes; the rules live in :mod:`.channels`, :mod:`.posts` and
:mod:`.approvals`. Every query names the account first (tables are keyed by it), so
another account's ids find nothing. Writes that race (token refreshes) compare and
set on ``token_generation``.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from business.social.models import (
    DISCONNECTED,
    Approver,
    Channel,
    ChannelTokens,
    Post,
    PostTarget,
)

Row = dict[str, Any]

#: The first key of the advisory lock that orders one account's bulk uploads.
BULK_LOCK = 715_301
CHANNEL_COLUMNS = (
    "account_id, channel_id, network, remote_id, name, handle, state, expires_at, scope, "
    "token_generation, last_error, connected_by, created_at, updated_at, approval_tiers, "
    "queue_slots, time_zone, access_rights")
POST_COLUMNS = ("account_id, post_id, author_id, text, media, link, first_comment, campaign, "
                "publish_at, time_zone, state, version, submitted_at, created_at, updated_at")
TARGET_COLUMNS = ("channel_id, text, media, link, first_comment, state, approval_tier, "
                  "dedupe_key, remote_id, url, error, attempts, version, job_id, arm, "
                  "arm_attempts, publishing_until, published_at, first_attempt_at")


def new_id(prefix: str) -> str:
    """A fresh random id such as ``ch_3f9a...``."""
    return f"{prefix}_{secrets.token_hex(8)}"


def _audit_id() -> str:
    """An audit id that sorts by time of writing (nanoseconds, then a random tail)."""
    return f"au_{time.time_ns():020d}_{secrets.token_hex(4)}"


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _unjson(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def channel_from(row: Row) -> Channel:
    """A :class:`Channel` of a ``social_channels`` row."""
    tiers = tuple(tuple(Approver(*next(iter(a.items()))) for a in tier)
                  for tier in json.loads(row["approval_tiers"]))
    return Channel(
        account_id=row["account_id"], channel_id=row["channel_id"], network=row["network"],
        remote_id=row["remote_id"], name=row["name"], handle=row["handle"],
        state=row["state"], expires_at=row["expires_at"], scope=row["scope"],
        token_generation=int(row["token_generation"]), last_error=row["last_error"],
        connected_by=row["connected_by"], created_at=row["created_at"],
        updated_at=row["updated_at"], tiers=tiers,
        slots=tuple(json.loads(row["queue_slots"])), time_zone=row["time_zone"],
        rights=tuple((r["person"], r["access"]) for r in json.loads(row["access_rights"])))


def _target_from(t: Row) -> PostTarget:
    """A :class:`PostTarget` of a ``social_post_targets`` row (with its ``network``)."""
    return PostTarget(
        channel_id=t["channel_id"], network=t["network"] or "", text=t["text"],
        media=_unjson(t["media"]), link=t["link"], first_comment=t["first_comment"],
        state=t["state"], approval_tier=int(t["approval_tier"]),
        dedupe_key=t["dedupe_key"], remote_id=t["remote_id"], url=t["url"],
        error=t["error"], attempts=int(t["attempts"]), version=int(t["version"]),
        job_id=t["job_id"], arm=int(t["arm"]), arm_attempts=int(t["arm_attempts"]),
        publishing_until=float(t["publishing_until"]), published_at=t["published_at"],
        first_attempt_at=t["first_attempt_at"])


class SocialStore:
    """Reads and writes of the ``social_*`` tables."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def _on(self, tx: Any) -> Any:
        return self.db if tx is None else tx

    # -- channels ------------------------------------------------------------------------

    async def channel(self, account_id: str, channel_id: str, *, tx: Any = None
                      ) -> Channel | None:
        """The account's channel ``channel_id`` (None: none such in this account)."""
        row = await self._on(tx).fetchrow(
            f"SELECT {CHANNEL_COLUMNS} FROM social_channels "
            "WHERE account_id = ? AND channel_id = ?", account_id, channel_id)
        return None if row is None else channel_from(row)

    async def lock_channel(self, tx: Any, account_id: str, channel_id: str) -> None:
        """In ``tx``: hold the channel's row until ``tx`` ends, so its workflow changing
        and decisions on its posts take turns (on PostgreSQL; SQLite runs one writing
        transaction at a time) and each reads what the other wrote."""
        if getattr(self.db, "dialect", "") == "postgresql":
            await tx.fetch("SELECT channel_id FROM social_channels WHERE account_id = ? "
                           "AND channel_id = ? FOR UPDATE", account_id, channel_id)

    async def channels(self, account_id: str, *, tx: Any = None) -> list[Channel]:
        """The account's channels that are not disconnected, by network and name."""
        rows = await self._on(tx).fetch(
            f"SELECT {CHANNEL_COLUMNS} FROM social_channels WHERE account_id = ? "
            "AND state <> ? ORDER BY network, name, channel_id", account_id, DISCONNECTED)
        return [channel_from(r) for r in rows]

    async def find_channel(self, account_id: str, network: str, remote_id: str, *,
                           tx: Any = None) -> Channel | None:
        """The account's channel for ``remote_id`` on ``network``, if connected before."""
        row = await self._on(tx).fetchrow(
            f"SELECT {CHANNEL_COLUMNS} FROM social_channels WHERE account_id = ? "
            "AND network = ? AND remote_id = ?", account_id, network, remote_id)
        return None if row is None else channel_from(row)

    async def insert_channel(self, tx: Any, account_id: str, network: str, remote_id: str,
                             name: str, handle: str, sealed: ChannelTokens,
                             connected_by: str, now: float, remote_user: str = "") -> str:
        """Store a newly connected channel; its id. ``remote_user``: the network's user
        whose grant it rests on, where that is not the account itself (Facebook)."""
        channel_id = new_id("ch")
        await tx.execute(
            "INSERT INTO social_channels (account_id, channel_id, network, remote_id, name, "
            "handle, state, access_token, refresh_token, expires_at, scope, "
            "token_generation, token_issued_at, refresh_issued_at, connected_by, created_at, "
            "updated_at, remote_user) "
            "VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            account_id, channel_id, network, remote_id, name, handle, sealed.access_token,
            sealed.refresh_token, sealed.expires_at, sealed.scope, sealed.issued_at,
            sealed.refresh_issued_at, connected_by, now, now, remote_user)
        return channel_id

    async def reconnect_channel(self, tx: Any, account_id: str, channel_id: str, name: str,
                                handle: str, sealed: ChannelTokens, now: float,
                                remote_user: str = "") -> None:
        """A new grant for a known channel: its tokens replaced, active again (its
        ``remote_user`` too, where the network said it)."""
        if remote_user:
            await tx.execute(
                "UPDATE social_channels SET remote_user = ? "
                "WHERE account_id = ? AND channel_id = ?", remote_user, account_id, channel_id)
        await tx.execute(
            "UPDATE social_channels SET name = ?, handle = ?, state = 'active', "
            "access_token = ?, refresh_token = ?, expires_at = ?, scope = ?, "
            "token_generation = token_generation + 1, token_issued_at = ?, "
            "refresh_issued_at = ?, refresh_lease = '', refresh_lease_until = 0, "
            "last_error = '', updated_at = ? WHERE account_id = ? AND channel_id = ?",
            name, handle, sealed.access_token, sealed.refresh_token, sealed.expires_at,
            sealed.scope, sealed.issued_at, sealed.refresh_issued_at, now, account_id,
            channel_id)

    async def sealed_tokens(self, account_id: str, channel_id: str, *, tx: Any = None
                            ) -> ChannelTokens | None:
        """The channel's tokens as stored (sealed)."""
        row = await self._on(tx).fetchrow(
            "SELECT access_token, refresh_token, expires_at, scope, token_generation, "
            "token_issued_at, refresh_issued_at FROM social_channels "
            "WHERE account_id = ? AND channel_id = ?", account_id, channel_id)
        if row is None:
            return None
        return ChannelTokens(row["access_token"], row["refresh_token"], row["expires_at"],
                             row["scope"], int(row["token_generation"]),
                             row["token_issued_at"], row["refresh_issued_at"])

    async def claim_refresh(self, account_id: str, channel_id: str, generation: int,
                            lease: str, until: float, now: float) -> bool:
        """Take the channel's refresh lease if its tokens are still ``generation`` and no
        other refresh holds an unexpired lease."""
        changed = await self.db.execute(
            "UPDATE social_channels SET refresh_lease = ?, refresh_lease_until = ? "
            "WHERE account_id = ? AND channel_id = ? AND token_generation = ? "
            "AND state = 'active' AND (refresh_lease = '' OR refresh_lease_until < ?)",
            lease, until, account_id, channel_id, generation, now)
        return changed == 1

    async def store_refresh(self, tx: Any, account_id: str, channel_id: str,
                            generation: int, lease: str, sealed: ChannelTokens,
                            now: float) -> bool:
        """Write refreshed tokens, only over ``generation`` and under our ``lease``."""
        changed = await tx.execute(
            "UPDATE social_channels SET access_token = ?, refresh_token = ?, expires_at = ?, "
            "scope = ?, token_generation = ?, token_issued_at = ?, refresh_issued_at = ?, "
            "refresh_lease = '', refresh_lease_until = 0, last_error = '', updated_at = ? "
            "WHERE account_id = ? AND channel_id = ? AND token_generation = ? "
            "AND refresh_lease = ?",
            sealed.access_token, sealed.refresh_token, sealed.expires_at, sealed.scope,
            sealed.generation, sealed.issued_at, sealed.refresh_issued_at, now, account_id,
            channel_id, generation, lease)
        return changed == 1

    async def renew_refresh(self, account_id: str, channel_id: str, lease: str,
                            until: float) -> bool:
        """Extend our refresh lease to ``until`` while its refresh is in flight; False
        once the lease is no longer ours."""
        changed = await self.db.execute(
            "UPDATE social_channels SET refresh_lease_until = ? WHERE account_id = ? "
            "AND channel_id = ? AND refresh_lease = ?", until, account_id, channel_id, lease)
        return changed == 1

    async def release_refresh(self, account_id: str, channel_id: str, lease: str,
                              error: str, now: float) -> None:
        """Give the lease back after a refresh that may be tried again, noting why."""
        await self.db.execute(
            "UPDATE social_channels SET refresh_lease = '', refresh_lease_until = 0, "
            "last_error = ?, updated_at = ? WHERE account_id = ? AND channel_id = ? "
            "AND refresh_lease = ?", error, now, account_id, channel_id, lease)

    async def flag_reconnect(self, tx: Any, account_id: str, channel_id: str, lease: str,
                             error: str, now: float) -> bool:
        """Mark the channel dead (its grant is gone) if we still hold its lease."""
        changed = await tx.execute(
            "UPDATE social_channels SET state = 'needs_reconnect', refresh_lease = '', "
            "refresh_lease_until = 0, last_error = ?, updated_at = ? "
            "WHERE account_id = ? AND channel_id = ? AND refresh_lease = ?",
            error, now, account_id, channel_id, lease)
        return changed == 1

    async def due_for_refresh(self, now: float, margin_s: float, limit: int = 200
                              ) -> list[tuple[str, str]]:
        """``(account, channel)`` of active channels whose token is within ``margin_s``
        of expiry and past half its life at ``now``: those with a refresh token, and those
        without one once their token expired (to be flagged)."""
        rows = await self.db.fetch(
            "SELECT account_id, channel_id FROM social_channels WHERE state = 'active' "
            "AND expires_at IS NOT NULL AND expires_at - ? <= ? "
            "AND (expires_at + token_issued_at) / 2 <= ? "
            "AND (refresh_token <> '' OR expires_at <= ?) "
            "ORDER BY expires_at LIMIT ?", margin_s, now, now, now, limit)
        return [(r["account_id"], r["channel_id"]) for r in rows]

    async def remote_user(self, account_id: str, channel_id: str, *, tx: Any = None) -> str:
        """The remote user whose grant the channel rests on ('' when not known)."""
        row = await self._on(tx).fetchrow(
            "SELECT remote_user FROM social_channels WHERE account_id = ? AND channel_id = ?",
            account_id, channel_id)
        return "" if row is None else str(row["remote_user"] or "")

    async def live_grants(self, network: str, *, account_id: str | None = None,
                          remote_id: str | None = None) -> list[dict[str, Any]]:
        """The channels of ``network`` that are not disconnected (of ``account_id`` and
        the remote account ``remote_id`` when given): ``account_id``, ``channel_id``,
        ``remote_id``, ``remote_user`` and the sealed ``access_token`` and
        ``refresh_token`` each, for the revoke job's check of whom a grant still serves."""
        query = ("SELECT account_id, channel_id, remote_id, remote_user, access_token, "
                 "refresh_token FROM social_channels WHERE network = ? AND state <> ?")
        args: list[Any] = [network, DISCONNECTED]
        if account_id is not None:
            query += " AND account_id = ?"
            args.append(account_id)
        if remote_id is not None:
            query += " AND remote_id = ?"
            args.append(remote_id)
        rows = await self.db.fetch(query, *args)
        return [{k: str(row[k] or "") for k in ("account_id", "channel_id", "remote_id",
                                                 "remote_user", "access_token",
                                                 "refresh_token")} for row in rows]

    async def disconnect(self, tx: Any, account_id: str, channel_id: str, now: float) -> None:
        """Forget the channel's tokens; the row stays for its posts' history."""
        await tx.execute(
            "UPDATE social_channels SET state = 'disconnected', access_token = '', "
            "refresh_token = '', token_generation = token_generation + 1, "
            "refresh_lease = '', refresh_lease_until = 0, updated_at = ? "
            "WHERE account_id = ? AND channel_id = ?", now, account_id, channel_id)

    async def set_tiers(self, account_id: str, channel_id: str,
                        tiers: list[list[dict[str, str]]], now: float, *, tx: Any = None
                        ) -> None:
        """Replace the channel's approval workflow."""
        await self._on(tx).execute(
            "UPDATE social_channels SET approval_tiers = ?, updated_at = ? "
            "WHERE account_id = ? AND channel_id = ?", _json(tiers), now, account_id,
            channel_id)

    async def set_rights(self, account_id: str, channel_id: str,
                         rights: list[dict[str, str]], now: float) -> None:
        """Replace the channel's per-person rights (:mod:`.rights`)."""
        await self.db.execute(
            "UPDATE social_channels SET access_rights = ?, updated_at = ? "
            "WHERE account_id = ? AND channel_id = ?", _json(rights), now, account_id,
            channel_id)

    async def set_slots(self, account_id: str, channel_id: str, slots: list[dict[str, Any]],
                        time_zone: str, now: float) -> None:
        """Replace the channel's weekly queue slots."""
        await self.db.execute(
            "UPDATE social_channels SET queue_slots = ?, time_zone = ?, updated_at = ? "
            "WHERE account_id = ? AND channel_id = ?", _json(slots), time_zone, now,
            account_id, channel_id)

    async def every_sealed_token(self) -> list[Row]:
        """Every channel's sealed tokens (for re-sealing under a new key)."""
        return await self.db.fetch(
            "SELECT account_id, channel_id, access_token, refresh_token, token_generation "
            "FROM social_channels WHERE access_token <> '' OR refresh_token <> ''")

    async def reseal(self, row: Row, access: str, refresh: str) -> bool:
        """Write re-sealed tokens unless they changed meanwhile (same values, new key:
        the generation stays)."""
        changed = await self.db.execute(
            "UPDATE social_channels SET access_token = ?, refresh_token = ? "
            "WHERE account_id = ? AND channel_id = ? AND token_generation = ? "
            "AND access_token = ? AND refresh_token = ?",
            access, refresh, row["account_id"], row["channel_id"], row["token_generation"],
            row["access_token"], row["refresh_token"])
        return changed == 1

    # -- OAuth connects ------------------------------------------------------------------

    async def save_connect(self, account_id: str, state_hash: str, network: str,
                           person_id: str, channel_id: str, sealed_verifier: str,
                           redirect_uri: str, expires_at: float) -> None:
        """Remember a connect in progress until its callback (or its expiry)."""
        await self.db.execute(
            "INSERT INTO social_connects (account_id, state_hash, network, person_id, "
            "channel_id, code_verifier, redirect_uri, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", account_id, state_hash, network, person_id,
            channel_id, sealed_verifier, redirect_uri, expires_at)

    async def take_connect(self, state_hash: str, now: float) -> Row | None:
        """The connect of ``state_hash``, used up (a second callback finds nothing)."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM social_connects WHERE expires_at < ?", now)
            row = await tx.fetchrow("SELECT * FROM social_connects WHERE state_hash = ?",
                                    state_hash)
            if row is None:
                return None
            taken = await tx.execute(
                "DELETE FROM social_connects WHERE account_id = ? AND state_hash = ?",
                row["account_id"], state_hash)
            return row if taken == 1 else None

    # -- posts ---------------------------------------------------------------------------

    async def insert_post(self, tx: Any, post: Post) -> None:
        """Store a new post and its targets."""
        await tx.execute(
            f"INSERT INTO social_posts ({POST_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            post.account_id, post.post_id, post.author_id, post.text, _json(post.media),
            post.link, post.first_comment, post.campaign, post.publish_at, post.time_zone,
            post.state, post.version, post.submitted_at, post.created_at, post.updated_at)
        await self._insert_targets(tx, post)

    async def _insert_targets(self, tx: Any, post: Post) -> None:
        for t in post.targets:
            await tx.execute(
                f"INSERT INTO social_post_targets (account_id, post_id, {TARGET_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                post.account_id, post.post_id, t.channel_id, t.text, _json(t.media), t.link,
                t.first_comment, t.state, t.approval_tier, t.dedupe_key, t.remote_id, t.url,
                t.error, t.attempts, t.version, t.job_id, t.arm, t.arm_attempts,
                t.publishing_until, t.published_at, t.first_attempt_at)

    async def update_post(self, tx: Any, post: Post, expected_version: int) -> bool:
        """Write ``post`` (and replace its targets) over ``expected_version``; never over
        a post whose dispatch started (``publishing``, ``published``)."""
        changed = await tx.execute(
            "UPDATE social_posts SET text = ?, media = ?, link = ?, first_comment = ?, "
            "campaign = ?, publish_at = ?, time_zone = ?, state = ?, version = ?, "
            "submitted_at = ?, updated_at = ? "
            "WHERE account_id = ? AND post_id = ? AND version = ? AND deleted = 0 "
            "AND state NOT IN ('publishing', 'published')",
            post.text, _json(post.media), post.link, post.first_comment, post.campaign,
            post.publish_at, post.time_zone, post.state, post.version, post.submitted_at,
            post.updated_at, post.account_id, post.post_id, expected_version)
        if changed != 1:
            return False
        await tx.execute("DELETE FROM social_post_targets WHERE account_id = ? AND post_id = ?",
                         post.account_id, post.post_id)
        await self._insert_targets(tx, post)
        return True

    async def delete_post(self, tx: Any, account_id: str, post_id: str, version: int,
                          now: float) -> bool:
        """Mark the post deleted and cancelled (its row stays for a dispatch to see);
        never a post whose dispatch started."""
        changed = await tx.execute(
            "UPDATE social_posts SET deleted = 1, state = 'cancelled', version = ?, "
            "updated_at = ? WHERE account_id = ? AND post_id = ? AND version = ? "
            "AND deleted = 0 AND state NOT IN ('publishing', 'published')", version + 1, now,
            account_id, post_id, version)
        if changed == 1:
            await tx.execute(
                "UPDATE social_post_targets SET state = 'cancelled', version = ? "
                "WHERE account_id = ? AND post_id = ?", version + 1, account_id, post_id)
        return changed == 1

    async def lock_bulk(self, tx: Any, account_id: str) -> None:
        """In ``tx``: hold the account's bulk lock until ``tx`` ends, so two bulk uploads
        of one account check duplicates and insert one after the other (a
        transaction-level advisory lock on PostgreSQL; SQLite writes one transaction at
        a time)."""
        await tx.hold_lock(BULK_LOCK, account_id)

    async def texts_between(self, account_id: str, start: float, end: float, *,
                            tx: Any = None) -> list[Row]:
        """``post_id, channel_id, publish_at, text`` (the variant's, else the post's) of
        the account's live posts dated in ``[start, end]``, for duplicate checks."""
        return await self._on(tx).fetch(
            "SELECT p.post_id, t.channel_id, p.publish_at, COALESCE(t.text, p.text) AS text "
            "FROM social_posts p JOIN social_post_targets t ON t.account_id = p.account_id "
            "AND t.post_id = p.post_id WHERE p.account_id = ? AND p.deleted = 0 "
            "AND p.publish_at >= ? AND p.publish_at <= ? "
            "AND p.state NOT IN ('cancelled', 'expired', 'failed')", account_id, start, end)

    async def post(self, account_id: str, post_id: str, *, tx: Any = None) -> Post | None:
        """The account's post with its targets (None: none such, or deleted)."""
        on = self._on(tx)
        row = await on.fetchrow(
            f"SELECT {POST_COLUMNS} FROM social_posts WHERE account_id = ? AND post_id = ? "
            "AND deleted = 0", account_id, post_id)
        if row is None:
            return None
        return (await self._with_targets(on, [row]))[0]

    async def posts(self, account_id: str, *, state: str = "", campaign: str = "",
                    channel_id: str = "", start: float | None = None,
                    end: float | None = None, limit: int = 1000, tx: Any = None
                    ) -> list[Post]:
        """The account's posts matching the filters, by publish time (undated last)."""
        where, args = ["p.account_id = ?", "p.deleted = 0"], [account_id]
        if state:
            where.append("p.state = ?")
            args.append(state)
        if campaign:
            where.append("p.campaign = ?")
            args.append(campaign)
        if start is not None:
            where.append("p.publish_at >= ?")
            args.append(start)
        if end is not None:
            where.append("p.publish_at < ?")
            args.append(end)
        if channel_id:
            where.append("EXISTS (SELECT 1 FROM social_post_targets t WHERE "
                         "t.account_id = p.account_id AND t.post_id = p.post_id "
                         "AND t.channel_id = ?)")
            args.append(channel_id)
        columns = ", ".join(f"p.{c.strip()}" for c in POST_COLUMNS.split(","))
        on = self._on(tx)
        rows = await on.fetch(
            f"SELECT {columns} FROM social_posts p WHERE {' AND '.join(where)} "
            "ORDER BY p.publish_at IS NULL, p.publish_at, p.created_at, p.post_id LIMIT ?",
            *args, limit)
        return await self._with_targets(on, rows)

    async def _with_targets(self, on: Any, rows: list[Row],
                            targets: dict[str, list[PostTarget]] | None = None
                            ) -> list[Post]:
        if not rows:
            return []
        if targets is None:
            ids = [r["post_id"] for r in rows]
            marks = ", ".join("?" * len(ids))
            columns = ", ".join("t." + c.strip() for c in TARGET_COLUMNS.split(","))
            found = await on.fetch(
                f"SELECT t.post_id, c.network, {columns} FROM social_post_targets t "
                "LEFT JOIN social_channels c ON c.account_id = t.account_id "
                "AND c.channel_id = t.channel_id "
                f"WHERE t.account_id = ? AND t.post_id IN ({marks}) ORDER BY t.channel_id",
                rows[0]["account_id"], *ids)
            targets = {}
            for t in found:
                targets.setdefault(t["post_id"], []).append(_target_from(t))
        return [Post(
            account_id=r["account_id"], post_id=r["post_id"], author_id=r["author_id"],
            text=r["text"], media=json.loads(r["media"]), link=r["link"],
            first_comment=r["first_comment"], campaign=r["campaign"],
            publish_at=r["publish_at"], time_zone=r["time_zone"], state=r["state"],
            version=int(r["version"]), submitted_at=r["submitted_at"],
            created_at=r["created_at"], updated_at=r["updated_at"],
            targets=targets.get(r["post_id"], [])) for r in rows]

    async def dispatch_view(self, account_id: str, post_id: str, channel_id: str
                            ) -> tuple[Post, Channel | None, ChannelTokens | None] | None:
        """What one publish attempt reads, in one query: the post (with only this
        target), the target's channel and its sealed tokens (None: the post is gone or
        does not go to the channel; the channel part None: the channel is gone)."""
        post_cols = ", ".join(f"p.{c.strip()}" for c in POST_COLUMNS.split(","))
        target_cols = ", ".join(f"t.{c.strip()} AS t_{c.strip()}"
                                for c in TARGET_COLUMNS.split(","))
        channel_cols = ", ".join(f"c.{c.strip()} AS c_{c.strip()}"
                                 for c in CHANNEL_COLUMNS.split(","))
        row = await self.db.fetchrow(
            f"SELECT {post_cols}, {target_cols}, {channel_cols}, c.access_token AS "
            "c_access_token, c.refresh_token AS c_refresh_token, c.token_issued_at AS "
            "c_token_issued_at, c.refresh_issued_at AS c_refresh_issued_at "
            "FROM social_posts p JOIN social_post_targets t ON t.account_id = p.account_id "
            "AND t.post_id = p.post_id LEFT JOIN social_channels c ON c.account_id = "
            "t.account_id AND c.channel_id = t.channel_id WHERE p.account_id = ? "
            "AND p.post_id = ? AND p.deleted = 0 AND t.channel_id = ?",
            account_id, post_id, channel_id)
        if row is None:
            return None
        target = {k[2:]: v for k, v in row.items() if k.startswith("t_")}
        [post] = await self._with_targets(None, [row], {post_id: [_target_from(
            {**target, "network": row["c_network"]})]})
        if row["c_channel_id"] is None:
            return post, None, None
        found = {k[2:]: v for k, v in row.items() if k.startswith("c_")}
        sealed = ChannelTokens(found["access_token"], found["refresh_token"],
                               found["expires_at"], found["scope"],
                               int(found["token_generation"]), found["token_issued_at"],
                               found["refresh_issued_at"])
        return post, channel_from(found), sealed

    async def channel_times(self, account_id: str, channel_id: str, start: float,
                            end: float, states: frozenset[str]) -> list[float]:
        """Publish times of the channel's posts in ``[start, end)`` in ``states``."""
        marks = ", ".join("?" * len(states))
        rows = await self.db.fetch(
            "SELECT p.publish_at FROM social_posts p JOIN social_post_targets t "
            "ON t.account_id = p.account_id AND t.post_id = p.post_id "
            "WHERE p.account_id = ? AND t.channel_id = ? AND p.deleted = 0 "
            f"AND p.publish_at >= ? AND p.publish_at < ? AND p.state IN ({marks})",
            account_id, channel_id, start, end, *sorted(states))
        return [r["publish_at"] for r in rows]

    async def expiring(self, now: float, submitted_before: float, limit: int = 500
                       ) -> list[tuple[str, str]]:
        """``(account, post)`` of posts pending approval past their publish time or
        submitted before ``submitted_before``."""
        rows = await self.db.fetch(
            "SELECT account_id, post_id FROM social_posts WHERE state = 'pending_approval' "
            "AND deleted = 0 AND ((publish_at IS NOT NULL AND publish_at <= ?) "
            "OR submitted_at < ?) ORDER BY account_id, post_id LIMIT ?",
            now, submitted_before, limit)
        return [(r["account_id"], r["post_id"]) for r in rows]

    # -- approvals and audit -------------------------------------------------------------

    async def add_step(self, tx: Any, account_id: str, post_id: str, channel_id: str,
                       version: int, tier: int, decision: str, decided_by: str, note: str,
                       now: float) -> None:
        """Record one approval decision."""
        await tx.execute(
            "INSERT INTO social_approval_steps (account_id, post_id, channel_id, version, "
            "tier, decision, decided_by, note, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            account_id, post_id, channel_id, version, tier, decision, decided_by, note, now)

    async def steps(self, account_id: str, post_id: str) -> list[Row]:
        """A post's approval decisions, oldest first."""
        return await self.db.fetch(
            "SELECT channel_id, version, tier, decision, decided_by, note, decided_at "
            "FROM social_approval_steps WHERE account_id = ? AND post_id = ? "
            "ORDER BY decided_at, channel_id, tier", account_id, post_id)

    async def audit(self, tx: Any, account_id: str, subject: str, action: str, actor: str,
                    detail: dict[str, Any] | None = None, now: float | None = None) -> None:
        """Append one step to the account's audit trail."""
        await self._on(tx).execute(
            "INSERT INTO social_audit (account_id, audit_id, subject, action, actor, detail, "
            "at) VALUES (?, ?, ?, ?, ?, ?, ?)", account_id, _audit_id(), subject, action,
            actor, _json(detail or {}), time.time() if now is None else now)

    async def audit_of(self, account_id: str, subject: str, *, tx: Any = None
                       ) -> list[Row]:
        """The audit trail of one subject (``post:ID``, ``channel:ID``), oldest first."""
        rows = await self._on(tx).fetch(
            "SELECT action, actor, detail, at FROM social_audit WHERE account_id = ? "
            "AND subject = ? ORDER BY audit_id", account_id, subject)
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

