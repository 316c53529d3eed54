"""Listening and the inbox: streams polled as platform jobs, items with language and
sentiment, assignment by rules, spike alerts, and first-response times.

A query (``social_listen_queries``) is one stream of one channel: a keyword, a hashtag,
the channel's mentions or its direct messages (:mod:`.listening_streams`). The worker
``social.listening_scheduler`` queues one ``social.listen`` job per query every
``poll_s`` (idempotency key ``query:bucket``). A job reads what is new since the
query's cursor, stores each post once as an inbox item (language and sentiment from
:mod:`.sentiment`, an assignee from the rules of :mod:`.inbox`), moves the cursor, then
checks for a spike: the items posted in the last hour against the hourly mean of the 12
hours before; a spike is at least ``min_count`` items and ``sensitivity`` times that
mean (a mean under 1 counts as 1). An alert is stored, published as
``social.listening_spike`` (webhooks subscribe to it) and mailed to the query's
``notify_email``, then no other alert of the query for ``cooldown_s``. That address must
be one of the account's people (``people``: the person's own, or a member's of an
organisation or team), else the query is refused; one who left later gets no more mail. A 429 or 5xx
ends the job with ``Retry`` after the network's wait; nothing read is lost since the
cursor moves only with the items (a burst beyond ``MAX_PAGES`` pages between two polls
keeps its newest posts only).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from business.social.errors import NetworkError, NotFoundError, NotPersonOfAccount, SocialError
from business.social.inbox import Rule, check_rule, choose
from business.social.listening_streams import check_stream, read_stream
from business.social.sentiment import Sentiment, analyse
from dawserver.plugin_api import QueueSettings, Retry

LISTEN = "social.listen"
SPIKE_EVENT = "social.listening_spike"
HOUR = 3600.0
BASELINE_HOURS = 12

Publish = Callable[..., Awaitable[Any]]
Mail = Callable[..., Awaitable[Any]]
#: ``await people(account_id)`` -> the addresses of the account's people.
People = Callable[[str], Awaitable[list[str]]]
#: ``await role_in(account_id, person_id)`` -> the person's role there (None: not in it).
RoleIn = Callable[[str, str], Awaitable[str | None]]


def queue_settings() -> QueueSettings:
    """The ``social.listen`` queue: patient retries (each 429 is one)."""
    return QueueSettings(max_attempts=20, backoff_base=5.0, backoff_cap=900.0,
                         lease_s=120.0, concurrency=2)


def is_spike(last_hour: int, before: int, sensitivity: float, min_count: int
             ) -> tuple[bool, float]:
    """Whether ``last_hour`` items are a spike against ``before`` in the 12 hours before
    it; and the hourly baseline used."""
    baseline = before / BASELINE_HOURS
    return last_hour >= min_count and last_hour >= sensitivity * max(baseline, 1.0), baseline


@dataclass(frozen=True)
class PollResult:
    """What one poll stored."""

    new: int
    pages: int
    spike: bool


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class Listening:
    """Queries, their polls, the inbox and its rules, for one database."""

    def __init__(self, db: Any, channels: Any, queue: Any, publish: Publish, mail: Mail, *,
                 people: People | None = None, role_in: RoleIn | None = None,
                 poll_s: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.channels = channels
        self.queue = queue
        self.publish = publish
        self.mail = mail
        self.people = people
        self.role_in = role_in
        self.poll_s = poll_s
        self.clock = clock

    # -- queries -------------------------------------------------------------------------

    async def add_query(self, account_id: str, channel_id: str, kind: str, term: str, *,
                        sensitivity: float = 3.0, min_count: int = 10,
                        cooldown_s: float = 3 * HOUR, notify_email: str = "") -> dict:
        """A new stream on one of the account's channels."""
        channel = await self.channels.get(account_id, channel_id)
        term = check_stream(channel.network, kind, term)
        if not 1.0 <= sensitivity <= 100.0 or not 1 <= min_count <= 100_000:
            raise SocialError("sensitivity must be 1 to 100 and min_count 1 to 100000")
        if not 0 <= cooldown_s <= 7 * 86400:
            raise SocialError("cooldown_s must be 0 to 604800 (a week)")
        if notify_email and cooldown_s < HOUR:  # mail goes out at most hourly per stream
            raise SocialError("with notify_email, cooldown_s must be at least 3600 (an hour)")
        if notify_email and not await self.is_person_of(account_id, notify_email):
            raise NotPersonOfAccount(
                f"notify_email {notify_email!r} is not the address of one of this account's "
                "people: use your own address or a member's of this organisation or team")
        query_id = _new_id("lq")
        await self.db.execute(
            "INSERT INTO social_listen_queries (account_id, query_id, channel_id, network, "
            "kind, term, sensitivity, min_count, cooldown_s, notify_email, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", account_id, query_id, channel_id,
            channel.network, kind, term, sensitivity, min_count, cooldown_s, notify_email,
            self.clock())
        return await self.query(account_id, query_id)

    async def is_person_of(self, account_id: str, address: str) -> bool:
        """Whether ``address`` is one of the account's people's (case aside)."""
        found = await self.people(account_id) if self.people is not None else []
        return address.strip().lower() in {a.strip().lower() for a in found}

    async def query(self, account_id: str, query_id: str) -> dict:
        row = await self.db.fetchrow("SELECT * FROM social_listen_queries WHERE "
                                     "account_id = ? AND query_id = ?", account_id, query_id)
        if row is None:
            raise NotFoundError(f"there is no listening query {query_id!r}")
        return _public(row)

    async def queries(self, account_id: str) -> list[dict]:
        rows = await self.db.fetch("SELECT * FROM social_listen_queries WHERE account_id = ? "
                                   "ORDER BY created_at", account_id)
        return [_public(r) for r in rows]

    async def delete_query(self, account_id: str, query_id: str) -> None:
        await self.query(account_id, query_id)
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM social_inbox_replies WHERE account_id = ? AND "
                             "item_id IN (SELECT item_id FROM social_inbox_items WHERE "
                             "account_id = ? AND query_id = ?)", account_id, account_id,
                             query_id)
            for table in ("social_listen_queries", "social_inbox_items", "social_spike_alerts"):
                await tx.execute(f"DELETE FROM {table} WHERE account_id = ? AND query_id = ?",
                                 account_id, query_id)

    # -- polling -------------------------------------------------------------------------

    async def round(self) -> int:
        """Queue a ``social.listen`` job per query (once per ``poll_s`` bucket)."""
        bucket = int(self.clock() // self.poll_s)
        rows = await self.db.fetch("SELECT account_id, query_id FROM social_listen_queries")
        for row in rows:
            await self.queue.enqueue(LISTEN, {"query_id": row["query_id"]},
                                     account_id=row["account_id"],
                                     idempotency_key=f"{row['query_id']}:{bucket}")
        return len(rows)

    async def poll(self, account_id: str, query_id: str) -> PollResult:
        """Read one stream's new posts into the inbox; then check for a spike."""
        query = await self.query(account_id, query_id)
        try:
            token = await self.channels.access_token(account_id, query["channel_id"])
            connector = self.channels.connectors[query["network"]]
            page = await read_stream(connector, token, query["kind"], query["term"],
                                     query["since"])
        except NetworkError as exc:
            await self.db.execute("UPDATE social_listen_queries SET last_error = ? WHERE "
                                  "account_id = ? AND query_id = ?", exc.reason[:500],
                                  account_id, query_id)
            if exc.retryable:
                raise Retry(f"{query['network']}: {exc.reason}",
                            after=exc.retry_after or 30.0) from None
            raise
        now = self.clock()
        new = 0
        found_items = list(reversed(page.items))  # oldest first: round-robin in time order
        # Language, sentiment and rule matching are CPU work (langdetect, VADER, regular
        # expressions with a time limit): done on a thread, before the transaction opens.
        analysed = await asyncio.to_thread(
            analyse_page, found_items, await self._rules(self.db, account_id))
        async with self.db.transaction() as tx:
            rules = {rule.rule_id: rule for rule in await self._rules(tx, account_id)}
            for found, (sentiment, matched) in zip(found_items, analysed, strict=True):
                rule = rules.get(matched)  # a rule deleted meanwhile assigns nobody
                assignee = rule.team[rule.next_index % len(rule.team)] if rule else ""
                rule_id = rule.rule_id if rule else ""
                inserted = await tx.execute(
                    "INSERT INTO social_inbox_items (account_id, item_id, query_id, network, "
                    "remote_id, text, author, url, posted_at, received_at, language, "
                    "sentiment, score, assignee, rule_id, author_id, thread) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (account_id, query_id, remote_id) DO NOTHING",
                    account_id, _new_id("it"), query_id, query["network"], found.remote_id,
                    found.text, found.author, found.url, found.posted_at or now, now,
                    sentiment.language, sentiment.label, sentiment.score, assignee, rule_id,
                    found.author_id, found.thread)
                if inserted and rule:
                    rules[rule_id] = Rule(**{**rule.__dict__, "next_index": rule.next_index + 1})
                    await tx.execute("UPDATE social_inbox_rules SET next_index = next_index + 1 "
                                     "WHERE account_id = ? AND rule_id = ?", account_id, rule_id)
                new += int(bool(inserted))
            await tx.execute("UPDATE social_listen_queries SET since = ?, polled_at = ?, "
                             "last_error = '' WHERE account_id = ? AND query_id = ?",
                             page.cursor, now, account_id, query_id)
        spike = await self.check_spike(account_id, query_id)
        return PollResult(new, page.pages, spike)

    async def check_spike(self, account_id: str, query_id: str) -> bool:
        """Alert (stored, event, mail) when the last hour spikes and the cooldown passed."""
        query = await self.query(account_id, query_id)
        now = self.clock()
        counts = await self.db.fetchrow(
            "SELECT SUM(CASE WHEN posted_at >= ? THEN 1 ELSE 0 END) AS last_hour, "
            "SUM(CASE WHEN posted_at < ? THEN 1 ELSE 0 END) AS earlier FROM "
            "social_inbox_items WHERE account_id = ? AND query_id = ? AND posted_at >= ?",
            now - HOUR, now - HOUR, account_id, query_id, now - (BASELINE_HOURS + 1) * HOUR)
        last_hour, before = int(counts["last_hour"] or 0), int(counts["earlier"] or 0)
        spike, baseline = is_spike(last_hour, before, float(query["sensitivity"]),
                                   int(query["min_count"]))
        last_alert = query["last_alert_at"]
        if not spike or (last_alert is not None
                         and now - float(last_alert) < float(query["cooldown_s"])):
            return False
        alert_id = _new_id("sa")
        payload = {"account_id": account_id, "alert_id": alert_id, "query_id": query_id,
                   "kind": query["kind"], "term": query["term"], "network": query["network"],
                   "last_hour": last_hour, "baseline": round(baseline, 3), "at": now}
        recipient = query["notify_email"]
        if recipient and not await self.is_person_of(account_id, recipient):
            recipient = ""  # they left the account since: the alert is kept, not mailed
        async with self.db.transaction() as tx:
            # Claim the alert: only one of two polls racing past the cooldown check wins.
            claimed = await tx.execute(
                "UPDATE social_listen_queries SET last_alert_at = ? WHERE account_id = ? AND "
                "query_id = ? AND (last_alert_at IS NULL OR last_alert_at <= ? - cooldown_s)",
                now, account_id, query_id, now)
            if not claimed:
                return False
            await tx.execute("INSERT INTO social_spike_alerts (account_id, alert_id, query_id, "
                             "at, last_hour, baseline) VALUES (?, ?, ?, ?, ?, ?)", account_id,
                             alert_id, query_id, now, last_hour, baseline)
            await self.publish(tx, SPIKE_EVENT, payload, account_id)
            if recipient:
                what = query["term"] or "mentions"
                await self.mail(recipient,
                                f"Spike on {query['network']}: {what}",
                                [f"{last_hour} posts in the last hour on {query['network']} "
                                 f"for {what}, against about {baseline:.1f} an hour over the "
                                 "12 hours before."], mail_id=f"social-spike/{alert_id}", tx=tx)
        return True

    async def alerts(self, account_id: str) -> list[dict]:
        rows = await self.db.fetch("SELECT * FROM social_spike_alerts WHERE account_id = ? "
                                   "ORDER BY at DESC LIMIT 100", account_id)
        return [_public(r) for r in rows]

    # -- inbox ---------------------------------------------------------------------------

    async def items(self, account_id: str, *, assignee: str = "", open_only: bool = False,
                    limit: int = 100) -> list[dict]:
        """Inbox items, newest first."""
        sql = "SELECT * FROM social_inbox_items WHERE account_id = ?"
        args: list[Any] = [account_id]
        if assignee:
            sql += " AND assignee = ?"
            args.append(assignee)
        if open_only:
            sql += " AND first_response_at IS NULL"
        rows = await self.db.fetch(sql + " ORDER BY posted_at DESC LIMIT ?", *args, limit)
        return [_item_out(r) for r in rows]

    async def item(self, account_id: str, item_id: str) -> dict:
        row = await self.db.fetchrow("SELECT * FROM social_inbox_items WHERE account_id = ? "
                                     "AND item_id = ?", account_id, item_id)
        if row is None:
            raise NotFoundError(f"there is no inbox item {item_id!r}")
        return _item_out(row)

    async def assign(self, account_id: str, item_id: str, person: str) -> dict:
        await self.item(account_id, item_id)
        await self._check_people(account_id, [person])
        await self.db.execute("UPDATE social_inbox_items SET assignee = ?, rule_id = '' "
                              "WHERE account_id = ? AND item_id = ?", person, account_id,
                              item_id)
        return await self.item(account_id, item_id)

    async def respond(self, account_id: str, item_id: str, person: str) -> dict:
        """Mark the item answered; only the first response sets the clock."""
        await self.item(account_id, item_id)
        await self.db.execute(
            "UPDATE social_inbox_items SET first_response_at = ?, responder = ? WHERE "
            "account_id = ? AND item_id = ? AND first_response_at IS NULL", self.clock(),
            person, account_id, item_id)
        return await self.item(account_id, item_id)

    async def response_report(self, account_id: str) -> dict:
        """First-response times (seconds from receipt) overall and per assignee."""
        rows = await self.db.fetch("SELECT assignee, received_at, first_response_at FROM "
                                   "social_inbox_items WHERE account_id = ?", account_id)
        groups: dict[str, list[float | None]] = {}
        for row in rows:
            took = (None if row["first_response_at"] is None
                    else float(row["first_response_at"]) - float(row["received_at"]))
            groups.setdefault(row["assignee"] or "", []).append(took)
        every = [t for ts in groups.values() for t in ts]
        return {**_figures(every), "by_assignee": [
            {"assignee": name, **_figures(times)} for name, times in sorted(groups.items())]}

    # -- rules ---------------------------------------------------------------------------

    async def add_rule(self, account_id: str, kind: str, team: list[str], *,
                       pattern: str = "", language: str = "", ordinal: int = 0) -> dict:
        check_rule(kind, pattern, language, team)
        await self._check_people(account_id, team)
        rule_id = _new_id("ir")
        await self.db.execute(
            "INSERT INTO social_inbox_rules (account_id, rule_id, ordinal, kind, pattern, "
            "language, team, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", account_id,
            rule_id, ordinal, kind, pattern, language, json.dumps(team), self.clock())
        return next(r for r in await self.rules(account_id) if r["rule_id"] == rule_id)

    async def _check_people(self, account_id: str, people: list[str]) -> None:
        """:class:`NotPersonOfAccount` unless each of ``people`` is in the account (itself,
        or a member of the organisation or team): an item is never handed to a stranger."""
        if self.role_in is None:
            return
        for person in people:
            if await self.role_in(account_id, person) is None:
                raise NotPersonOfAccount(
                    f"{person!r} is not one of this account's people: name yourself or "
                    "members of this organisation or team")

    async def rules(self, account_id: str) -> list[dict]:
        return [{**r.__dict__, "team": list(r.team)}
                for r in sorted(await self._rules(self.db, account_id),
                                key=lambda r: (r.ordinal, r.rule_id))]

    async def delete_rule(self, account_id: str, rule_id: str) -> None:
        done = await self.db.execute("DELETE FROM social_inbox_rules WHERE account_id = ? "
                                     "AND rule_id = ?", account_id, rule_id)
        if not done:
            raise NotFoundError(f"there is no inbox rule {rule_id!r}")

    async def _rules(self, db: Any, account_id: str) -> list[Rule]:
        rows = await db.fetch("SELECT * FROM social_inbox_rules WHERE account_id = ?",
                              account_id)
        return [Rule(r["rule_id"], int(r["ordinal"]), r["kind"], r["pattern"], r["language"],
                     tuple(json.loads(r["team"])), int(r["next_index"])) for r in rows]


def analyse_page(items: list[Any], rules: list[Rule]) -> list[tuple[Sentiment, str]]:
    """Each post's sentiment and the id of the first rule it matches ("" for none)."""
    out = []
    for found in items:
        sentiment = analyse(found.text, found.language)
        chosen = choose(rules, found.text, sentiment.language)
        out.append((sentiment, chosen[0].rule_id if chosen else ""))
    return out


def _public(row: Any) -> dict:
    """A row without its account (the caller's own)."""
    return {k: v for k, v in dict(row).items() if k != "account_id"}


def _item_out(row: Any) -> dict:
    item = _public(row)
    first = item["first_response_at"]
    item["response_s"] = None if first is None else float(first) - float(item["received_at"])
    return item


def _figures(times: list[float | None]) -> dict:
    answered = [t for t in times if t is not None]
    return {"items": len(times), "answered": len(answered),
            "median_first_response_s": statistics.median(answered) if answered else None,
            "mean_first_response_s": statistics.fmean(answered) if answered else None}
