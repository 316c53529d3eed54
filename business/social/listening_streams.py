"""Reading listening streams from the networks: keyword, hashtag and mention searches.

Two networks have a search API we read: X (``GET /2/tweets/search/recent`` for keywords
and hashtags, ``GET /2/users/{id}/mentions`` for mentions of the channel's account,
both paged by ``next_token`` / ``pagination_token`` from ``since_id``) and Bluesky
(``app.bsky.feed.searchPosts`` with ``sort=latest`` and ``cursor``; mentions by its
``mentions`` parameter). The others offer no public search of other people's posts to
an app like ours (Instagram's hashtag search needs a business account and returns no
authors; LinkedIn, TikTok and Threads have none), so :func:`read_stream` refuses them.

Failures are the connectors' (:mod:`.errors`): a 429 is ``RateLimited`` with the
network's ``retry_after``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from business.social.errors import SocialError

#: Networks with a search we read, and the stream kinds.
NETWORKS = ("x", "bluesky")
KINDS = ("keyword", "hashtag", "mention", "dm")
#: Pages one poll reads at most. More new posts than that between two polls: the newest
#: are read and the older rest is skipped (the cursor moves to the newest).
MAX_PAGES = 5


@dataclass(frozen=True)
class Found:
    """One post a stream found."""

    remote_id: str
    text: str
    author: str
    url: str
    posted_at: float
    language: str  # the network's tag ("" when none)
    author_id: str = ""  # the author's id on the network (X user id, Bluesky DID)
    thread: str = ""  # a direct message's other party (whom a DM answer goes to)


@dataclass(frozen=True)
class StreamPage:
    """What one poll read: newest first, and the cursor to read from next time."""

    items: list[Found]
    cursor: str
    pages: int


def check_stream(network: str, kind: str, term: str) -> str:
    """The normalised term, or :class:`SocialError` saying what to change."""
    if network not in NETWORKS:
        raise SocialError(f"listening reads {' and '.join(NETWORKS)} only; {network!r} "
                          "has no search API open to us: pick a channel on one of those")
    if kind not in KINDS:
        raise SocialError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    term = " ".join(term.split())
    if kind in ("mention", "dm"):
        return ""
    if not term or len(term) > 200:
        raise SocialError("term must be 1 to 200 characters")
    if kind == "hashtag":
        tag = term.lstrip("#")
        if not tag or any(not (c.isalnum() or c == "_") for c in tag):
            raise SocialError(f"a hashtag is letters, digits and _ only: {term!r}")
        return f"#{tag}"
    return term


def _epoch(stamp: str) -> float:
    try:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


async def read_stream(connector: Any, token: str, kind: str, term: str, cursor: str,
                      *, max_pages: int = MAX_PAGES) -> StreamPage:
    """New posts of one stream since ``cursor`` ("" the first time: one page)."""
    if kind == "dm":
        reader = _read_x_dms if connector.network == "x" else _read_bluesky_dms
        return await reader(connector, token, cursor, max_pages)
    if connector.network == "x":
        return await _read_x(connector, token, kind, term, cursor, max_pages)
    if connector.network == "bluesky":
        return await _read_bluesky(connector, token, kind, term, cursor, max_pages)
    raise SocialError(f"listening does not read {connector.network!r}")


async def _read_x(connector: Any, token: str, kind: str, term: str, cursor: str,
                  max_pages: int) -> StreamPage:
    params = {"max_results": "100", "tweet.fields": "created_at,lang,author_id",
              "expansions": "author_id", "user.fields": "username"}
    if kind == "mention":
        me = await connector.profile(token)
        path, page_param = f"/2/users/{me['id']}/mentions", "pagination_token"
    else:
        path, page_param = "/2/tweets/search/recent", "next_token"
        params["query"] = f'"{term}"' if kind == "keyword" and " " in term else term
    if cursor:
        params["since_id"] = cursor
    items: list[Found] = []
    newest, pages = cursor, 0
    while pages < max(1, max_pages if cursor else 1):
        answer = await connector.call("GET", connector.with_query(path, params), token=token)
        pages += 1
        body = answer.body
        users = {u["id"]: u.get("username", "") for u in
                 (body.get("includes") or {}).get("users", [])}
        for post in body.get("data") or []:
            name = users.get(post.get("author_id", ""), "")
            items.append(Found(post["id"], post.get("text", ""), name,
                               f"https://x.com/{name or 'i/web'}/status/{post['id']}",
                               _epoch(post.get("created_at", "")), post.get("lang", ""),
                               post.get("author_id", "")))
        meta = body.get("meta") or {}
        if pages == 1 and meta.get("newest_id"):
            newest = meta["newest_id"]
        if not meta.get("next_token"):
            break
        params[page_param] = meta["next_token"]
    return StreamPage(items, newest, pages)


async def _read_bluesky(connector: Any, token: str, kind: str, term: str, cursor: str,
                        max_pages: int) -> StreamPage:
    # searchPosts has no since_id: read newest first until the last URI seen
    params = {"sort": "latest", "limit": "100"}
    if kind == "mention":
        me = await connector.profile(token)
        params.update(q="*", mentions=me["id"])
    else:
        params["q"] = term
    items: list[Found] = []
    pages = 0
    done = False
    while not done and pages < max(1, max_pages if cursor else 1):
        answer = await connector.call("GET", connector.with_query(
            "/xrpc/app.bsky.feed.searchPosts", params), token=token)
        pages += 1
        for post in answer.body.get("posts") or []:
            if post["uri"] == cursor:
                done = True
                break
            record = post.get("record") or {}
            author = post.get("author") or {}
            handle = author.get("handle", "")
            rkey = post["uri"].rsplit("/", 1)[-1]
            items.append(Found(post["uri"], record.get("text", ""), handle,
                               f"https://bsky.app/profile/{handle}/post/{rkey}",
                               _epoch(record.get("createdAt", "")),
                               (record.get("langs") or [""])[0], author.get("did", "")))
        if not answer.body.get("cursor"):
            break
        params["cursor"] = answer.body["cursor"]
    return StreamPage(items, items[0].remote_id if items else cursor, pages)


async def _read_x_dms(connector: Any, token: str, cursor: str, max_pages: int) -> StreamPage:
    """``GET /2/dm_events`` (newest first, no ``since_id``): read until the event id of
    ``cursor``; the account's own messages are left out."""
    me = await connector.profile(token)
    params = {"max_results": "100", "event_types": "MessageCreate",
              "dm_event.fields": "id,text,sender_id,created_at,dm_conversation_id",
              "expansions": "sender_id", "user.fields": "username"}
    items: list[Found] = []
    newest, pages, done = cursor, 0, False
    while not done and pages < max(1, max_pages if cursor else 1):
        body = (await connector.call("GET", connector.with_query("/2/dm_events", params),
                                     token=token)).body
        pages += 1
        users = {u["id"]: u.get("username", "") for u in
                 (body.get("includes") or {}).get("users", [])}
        for event in body.get("data") or []:
            if cursor and int(event["id"]) <= int(cursor):
                done = True
                break
            if pages == 1 and newest == cursor:
                newest = event["id"]
            sender = event.get("sender_id", "")
            if sender == me["id"]:
                continue
            items.append(Found(event["id"], event.get("text", ""), users.get(sender, sender),
                               f"https://x.com/messages/{event.get('dm_conversation_id', '')}",
                               _epoch(event.get("created_at", "")), "", sender, sender))
        token_next = (body.get("meta") or {}).get("next_token")
        if not token_next:
            break
        params["pagination_token"] = token_next
    return StreamPage(items, newest, pages)


async def _read_bluesky_dms(connector: Any, token: str, cursor: str, max_pages: int
                            ) -> StreamPage:
    """``chat.bsky.convo.getLog`` through the chat proxy: the message events after
    ``cursor`` (a rev), oldest first; the account's own messages are left out."""
    from business.social.networks.bluesky import CHAT_PROXY

    me = await connector.profile(token)
    items: list[Found] = []
    pages = 0
    while pages < max(1, max_pages):
        params = {"cursor": cursor} if cursor else {}
        body = (await connector.call("GET", connector.with_query(
            "/xrpc/chat.bsky.convo.getLog", params), token=token, headers=CHAT_PROXY)).body
        pages += 1
        logs = body.get("logs") or []
        for log in logs:
            message = log.get("message") or {}
            sender = (message.get("sender") or {}).get("did", "")
            if not log.get("$type", "").endswith("#logCreateMessage") or sender == me["id"]:
                continue
            items.append(Found(str(message.get("id", log.get("rev", ""))),
                               message.get("text", ""), sender,
                               f"https://bsky.app/messages/{log.get('convoId', '')}",
                               _epoch(message.get("sentAt", "")), "", sender, sender))
        if not logs or not body.get("cursor") or body["cursor"] == cursor:
            break
        cursor = body["cursor"]
    return StreamPage(list(reversed(items)), cursor, pages)
