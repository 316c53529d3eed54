"""Answers from the inbox: a public reply to a post, or a direct message to its author.

:meth:`Replies.send` stores the answer (``social_inbox_replies``, state ``queued``) and
queues one ``social.reply`` job in the same transaction (idempotency key
``reply:<reply_id>``). The job (:meth:`Replies.handle`) claims the row with a
compare-and-set on its attempt count (``sending``); an attempt after the first (a retry
after a 429 or 5xx, a lost answer, a worker killed mid-call) first asks the network
whether the answer is already there (``find_reply``: X by the parent and text among the
account's recent posts, Bluesky by the record's dedupe key; ``find_dm``: our message
with that text in the conversation since the answer was made that no other answer's row
already holds), so nothing is sent twice; that question, like the sending, is asked again
with a refreshed token if the token expired. A request with an ``Idempotency-Key`` stores
its answer under an id derived from the key, so a retried request queues nothing more.
Sent: the row keeps the network's id and URL, and the item is answered (its first
response, if it had none, is this one, by the person who wrote it). A 429 or 5xx waits
as the network says (``Retry``); an expired token is refreshed and tried again; anything
else the network refuses, or the last attempt, ends ``failed`` with its reason.

Targets: X replies with ``reply.in_reply_to_tweet_id`` and messages with
``POST /2/dm_conversations/with/:participant_id/messages``; Bluesky writes an
``app.bsky.feed.post`` with ``reply.root``/``reply.parent`` strong refs and messages
through the chat proxy (``chat.bsky.convo.getConvoForMembers`` then ``sendMessage``).
A direct message from the inbox (kind ``dm`` stream) is answered by direct message.

An answer goes out as the channel, so the channel's per-person rights (:mod:`.rights`)
hold: a ``view`` person is refused, and so is an ``approval`` person (answers have no
approval step). They are read when the answer is sent and again by the job before each
attempt: an answer whose person lost the right meanwhile fails, with the reason.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from business.social.errors import (
    ConflictError,
    Duplicate,
    NetworkError,
    NotAllowedError,
    NotFoundError,
    SocialError,
    TokenExpired,
)
from business.social.networks.base import Published
from business.social.rights import APPROVAL, access_of, check_compose
from business.social.textlength import graphemes, x_length
from dawserver.plugin_api import QueueSettings, Retry

REPLY = "social.reply"
KINDS = ("reply", "dm")
NETWORKS = ("x", "bluesky")
#: Longest text per (network, kind), in the network's unit (X: weighted characters).
LIMITS = {("x", "reply"): 280, ("x", "dm"): 10_000,
          ("bluesky", "reply"): 300, ("bluesky", "dm"): 1_000}
#: Seconds before an answer's creation that ``find_dm`` still looks at (clock skew).
SKEW_S = 120.0
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def queue_settings() -> QueueSettings:
    """The ``social.reply`` queue: a few patient retries (429s count as attempts)."""
    return QueueSettings(max_attempts=8, backoff_base=5.0, backoff_cap=900.0,
                         lease_s=120.0, concurrency=4)


def _keyed_id(account_id: str, key: str) -> str:
    """The answer id an ``Idempotency-Key`` stands for (the same on every retry)."""
    return "rp_" + hashlib.sha256(f"{account_id}\0{key}".encode()).hexdigest()[:16]


def check_text(network: str, kind: str, text: str) -> str:
    """The stripped text, or :class:`SocialError` saying what is wrong with it."""
    if kind not in KINDS:
        raise SocialError(f"kind must be 'reply' or 'dm', not {kind!r}")
    text = text.strip()
    if not text:
        raise SocialError("an answer needs some text")
    limit = LIMITS[(network, kind)]
    length = x_length(text).weighted if network == "x" else graphemes(text)
    if length > limit:
        unit = "weighted characters" if network == "x" else "characters"
        raise SocialError(f"{network} takes {limit} {unit} in a {kind}; this is {length}")
    return text


class Replies:
    """Answers to inbox items, for one database."""

    def __init__(self, db: Any, channels: Any, queue: Any, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.channels = channels
        self.queue = queue
        self.clock = clock

    async def send(self, account_id: str, item_id: str, person: str, kind: str,
                   text: str, *, key: str | None = None) -> dict:
        """Store an answer to an item and queue its sending; the stored answer.

        ``key`` (the request's ``Idempotency-Key``) makes a retry safe: the same key
        with the same answer gives the answer stored the first time and queues nothing;
        with another answer it is refused (:class:`ConflictError`)."""
        if key is not None and not _KEY.fullmatch(key):
            raise SocialError("Idempotency-Key must be 1 to 255 visible ASCII characters "
                              f"(a UUID is a good choice), got {key[:80]!r}")
        item = await self.db.fetchrow(
            "SELECT i.*, q.channel_id, q.kind AS stream FROM social_inbox_items i JOIN "
            "social_listen_queries q ON q.account_id = i.account_id AND q.query_id = "
            "i.query_id WHERE i.account_id = ? AND i.item_id = ?", account_id, item_id)
        if item is None:
            raise NotFoundError(f"there is no inbox item {item_id!r}")
        if item["network"] not in NETWORKS:
            raise SocialError(f"answers go out on {' and '.join(NETWORKS)} only")
        await self._check_rights(account_id, item["channel_id"], person)
        text = check_text(item["network"], kind, text)
        if item["stream"] == "dm" and kind != "dm":
            raise SocialError("a direct message is answered with a direct message (kind dm)")
        target = item["remote_id"] if kind == "reply" else (item["thread"]
                                                             or item["author_id"])
        if not target:
            raise SocialError("this item does not know its author's id on the network "
                              "(it was read before answers existed): reply instead")
        reply_id = f"rp_{secrets.token_hex(8)}" if key is None else _keyed_id(account_id, key)
        async with self.db.transaction() as tx:
            stored = await tx.execute(
                "INSERT INTO social_inbox_replies (account_id, reply_id, item_id, channel_id, "
                "network, kind, target, text, person, state, created_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?) ON CONFLICT (account_id, reply_id) "
                "DO NOTHING", account_id, reply_id, item_id, item["channel_id"],
                item["network"], kind, target, text, person, self.clock())
            if not stored:  # only a keyed id can be there already: a retry
                return await self._replayed(account_id, reply_id, item_id, kind, text, key)
            job = await self.queue.enqueue(REPLY, {"reply_id": reply_id},
                                           account_id=account_id,
                                           idempotency_key=f"reply:{reply_id}", tx=tx)
            await tx.execute("UPDATE social_inbox_replies SET job_id = ? WHERE account_id = ? "
                             "AND reply_id = ?", job.id, account_id, reply_id)
        self.queue.wake(REPLY)
        return await self.reply(account_id, reply_id)

    async def _check_rights(self, account_id: str, channel_id: str, person: str) -> None:
        """Refuse an answer the person's rights on the channel do not allow: ``view``
        puts nothing on it (403); ``approval`` needs approval, which answers do not go
        through, so it is refused too (409), rather than published as the brand."""
        channel = await self.channels.get(account_id, channel_id)
        check_compose([channel], person)
        if access_of(channel, person) == APPROVAL:
            raise ConflictError(f"your posts to channel {channel_id!r} need approval, and "
                                "inbox answers go out at once without it: ask someone who "
                                "may publish there to answer, or an owner for the right to "
                                "publish (PUT /api/social/channels/{channel_id}/rights)")

    async def _replayed(self, account_id: str, reply_id: str, item_id: str, kind: str,
                        text: str, key: str | None) -> dict:
        first = await self.reply(account_id, reply_id)
        if (first["item_id"], first["kind"], first["text"]) != (item_id, kind, text):
            raise ConflictError(f"Idempotency-Key {key!r} was used for another answer; use "
                                "a new key for a new answer")
        return first

    async def reply(self, account_id: str, reply_id: str) -> dict:
        row = await self.db.fetchrow("SELECT * FROM social_inbox_replies WHERE account_id = ? "
                                     "AND reply_id = ?", account_id, reply_id)
        if row is None:
            raise NotFoundError(f"there is no answer {reply_id!r}")
        return {k: v for k, v in dict(row).items() if k != "account_id"}

    async def replies(self, account_id: str, item_id: str) -> list[dict]:
        """The item's answers, oldest first (the thread as the inbox shows it)."""
        rows = await self.db.fetch("SELECT * FROM social_inbox_replies WHERE account_id = ? "
                                   "AND item_id = ? ORDER BY created_at, reply_id",
                                   account_id, item_id)
        return [{k: v for k, v in dict(r).items() if k != "account_id"} for r in rows]

    async def handle(self, account_id: str, reply_id: str, *, last_attempt: bool = False
                     ) -> dict[str, Any]:
        """One attempt at sending an answer; the outcome. Raises ``Retry`` to wait."""
        try:
            row = await self.reply(account_id, reply_id)
        except NotFoundError:
            return {"outcome": "gone"}
        if row["state"] in ("sent", "failed"):
            return {"outcome": row["state"], "url": row["url"]}
        prior = int(row["attempts"])
        claimed = await self.db.execute(
            "UPDATE social_inbox_replies SET state = 'sending', attempts = attempts + 1 "
            "WHERE account_id = ? AND reply_id = ? AND attempts = ? AND state IN "
            "('queued', 'sending')", account_id, reply_id, prior)
        if not claimed:
            return {"outcome": "raced"}
        try:
            # rights are read again at each attempt: a person downgraded (to view, to
            # approval) after queuing the answer does not speak for the channel
            await self._check_rights(account_id, row["channel_id"], row["person"])
        except (NotAllowedError, ConflictError) as exc:
            return await self._fail(
                account_id, reply_id, f"not sent: {row['person']} may no longer answer "
                f"as channel {row['channel_id']!r} ({exc})")
        try:
            connector = self.channels.connectors[row["network"]]

            async def attempt(token: str) -> Published:
                found = await self._found(account_id, connector, token, row) if prior else None
                return found or await self._send(connector, token, row)
            done = await self._refreshing(account_id, row, attempt)
        except Duplicate as exc:
            if exc.existing is None:
                return await self._fail(account_id, reply_id, exc.reason)
            done = exc.existing
        except NetworkError as exc:
            if exc.retryable and not last_attempt:
                await self._note(account_id, reply_id, exc.reason)
                raise Retry(f"{row['network']}: {exc.reason}",
                            after=exc.retry_after or 5.0 * 2 ** prior) from None
            return await self._fail(account_id, reply_id, exc.reason)
        except SocialError as exc:  # the channel must be connected again, or is gone
            return await self._fail(account_id, reply_id, str(exc))
        return await self._sent(account_id, row, done)

    async def _refreshing(self, account_id: str, row: dict,
                          call: Callable[[str], Awaitable[Published]]) -> Published:
        """``call(token)``; on an expired token, once more with a refreshed one."""
        token = await self.channels.access_token(account_id, row["channel_id"])
        try:
            return await call(token)
        except TokenExpired:
            await self.channels.refresh(account_id, row["channel_id"], force=True)
            token = await self.channels.access_token(account_id, row["channel_id"])
            return await call(token)

    async def _send(self, connector: Any, token: str, row: dict) -> Published:
        if row["kind"] == "reply":
            return await connector.reply(token, row["target"], row["text"], row["reply_id"])
        return await connector.send_dm(token, row["target"], row["text"])

    async def _found(self, account_id: str, connector: Any, token: str,
                     row: dict) -> Published | None:
        if row["kind"] == "reply":
            return await connector.find_reply(token, row["reply_id"], row["target"],
                                              row["text"])
        # a message another answer already is (the same text, sent moments before) is not
        # this one: only messages no other row claims count
        taken = await self.db.fetch(
            "SELECT remote_id FROM social_inbox_replies WHERE account_id = ? AND "
            "channel_id = ? AND kind = 'dm' AND target = ? AND reply_id <> ? AND "
            "remote_id <> ''", account_id, row["channel_id"], row["target"], row["reply_id"])
        return await connector.find_dm(token, row["target"], row["text"],
                                       float(row["created_at"]) - SKEW_S,
                                       skip=frozenset(r["remote_id"] for r in taken))

    async def _sent(self, account_id: str, row: dict, done: Published) -> dict[str, Any]:
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE social_inbox_replies SET state = 'sent', remote_id = ?, url = ?, "
                "error = '', sent_at = ? WHERE account_id = ? AND reply_id = ?",
                done.remote_id, done.url, now, account_id, row["reply_id"])
            await tx.execute(
                "UPDATE social_inbox_items SET first_response_at = ?, responder = ? WHERE "
                "account_id = ? AND item_id = ? AND first_response_at IS NULL", now,
                row["person"], account_id, row["item_id"])
        return {"outcome": "sent", "url": done.url}

    async def _note(self, account_id: str, reply_id: str, reason: str) -> None:
        await self.db.execute("UPDATE social_inbox_replies SET error = ? WHERE account_id = ? "
                              "AND reply_id = ?", reason[:500], account_id, reply_id)

    async def _fail(self, account_id: str, reply_id: str, reason: str) -> dict[str, Any]:
        await self.db.execute("UPDATE social_inbox_replies SET state = 'failed', error = ? "
                              "WHERE account_id = ? AND reply_id = ?", reason[:500],
                              account_id, reply_id)
        return {"outcome": "failed", "error": reason}
