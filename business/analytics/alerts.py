"""Milestone alerts by mail: who gets them, which kinds, and how often (a cooldown).

Recipients of an account's alerts: its owners (``PluginContext.owner_emails``: a person's
own address, or every owner of an organisation) unless they turned mail off, plus every
member who saved preferences with mail on. Membership is checked again at every send
(``PluginContext.role_in``): someone who left the organisation gets no more of its mail,
whatever preferences they once saved (the row stays, and counts again if they rejoin).
A person's preferences (per account): ``email`` (on by default), ``kinds``
(``threshold``, ``unusual_growth``) and ``cooldown_s`` (6 hours by default): no more
than one alert mail per cooldown; milestones found during it stay in the page (and go to
webhooks) and are held for one digest mail once the cooldown is over (:mod:`.digest`).
A mail lists the batch's recent milestones; its id is derived from the recipient and the
milestones, so sending the same batch again queues nothing more.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from business.analytics.milestones import KINDS

DEFAULT_COOLDOWN_S = 6 * 3600.0
#: At most this many milestones are listed in one mail (the page has them all).
MAIL_LIST = 20

#: ``await send_mail(to, subject, paragraphs, mail_id=..., link=..., action=...)``.
SendMail = Callable[..., Awaitable[None]]
#: ``await owner_emails(account_id)`` -> addresses.
OwnerEmails = Callable[[str], Awaitable[list[str]]]
#: ``await role_in(account_id, person_id)`` -> the person's role there, None: not a member.
RoleIn = Callable[[str, str], Awaitable[str | None]]


@dataclass(frozen=True)
class Preferences:
    """A person's alert preferences on one account."""

    email: bool = True
    kinds: tuple[str, ...] = KINDS
    cooldown_s: float = DEFAULT_COOLDOWN_S

    def public(self) -> dict[str, Any]:
        return {"email": self.email, "kinds": list(self.kinds), "cooldown_s": self.cooldown_s}


def recipient_key(address: str) -> str:
    """What the cooldown is kept under: a hash of the address (no address stored)."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]


class Alerts:
    """Preferences and the alert mail (see the module)."""

    def __init__(self, db: Any, send_mail: SendMail | None, owner_emails: OwnerEmails | None,
                 *, role_in: RoleIn, base_url: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.role_in = role_in
        self.send_mail = send_mail
        self.owner_emails = owner_emails
        self.base_url = base_url.rstrip("/")
        self.clock = clock

    async def preferences(self, account_id: str, person_id: str) -> Preferences:
        row = await self.db.fetchrow(
            "SELECT email, kinds, cooldown_s FROM analytics_alert_preferences WHERE "
            "account_id = ? AND person_id = ?", account_id, person_id)
        if row is None:
            return Preferences()
        return Preferences(bool(row["email"]), tuple(k for k in row["kinds"].split(",") if k),
                           float(row["cooldown_s"]))

    async def save_preferences(self, account_id: str, person_id: str,
                               preferences: Preferences) -> Preferences:
        unknown = set(preferences.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown milestone kinds {sorted(unknown)}; use {list(KINDS)}")
        await self.db.execute(
            "INSERT INTO analytics_alert_preferences (account_id, person_id, email, kinds, "
            "cooldown_s, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, "
            "person_id) DO UPDATE SET email = excluded.email, kinds = excluded.kinds, "
            "cooldown_s = excluded.cooldown_s, updated_at = excluded.updated_at",
            account_id, person_id, int(preferences.email), ",".join(preferences.kinds),
            float(preferences.cooldown_s), self.clock())
        return preferences

    async def recipients(self, account_id: str) -> dict[str, Preferences]:
        """Address -> preferences of everyone who gets this account's alert mail."""
        if self.owner_emails is None:
            return {}
        rows = await self.db.fetch(
            "SELECT person_id FROM analytics_alert_preferences WHERE account_id = ? "
            "ORDER BY person_id", account_id)
        chosen: dict[str, Preferences] = {}
        for row in rows:
            if await self.role_in(account_id, row["person_id"]) is None:
                continue  # left the organisation: its figures are no longer theirs
            for address in await self.owner_emails(row["person_id"]):
                chosen[address.lower()] = await self.preferences(account_id, row["person_id"])
        out = {address.lower(): Preferences() for address in await self.owner_emails(account_id)}
        out.update(chosen)
        return {address: prefs for address, prefs in sorted(out.items()) if prefs.email}

    async def notify(self, account_id: str, milestones: Sequence[dict[str, Any]]
                     ) -> dict[str, list[str]]:
        """Mail the recent ``milestones`` to the account's recipients, each within their
        preferences and cooldown; address -> the milestone ids mailed to it."""
        recent = [m for m in milestones if m.get("recent")]
        if not recent or self.send_mail is None:
            return {}
        now = self.clock()
        mailed: dict[str, list[str]] = {}
        for address, prefs in (await self.recipients(account_id)).items():
            chosen = [m for m in recent if m["kind"] in prefs.kinds]
            if not chosen:
                continue
            key = recipient_key(address)
            last = await self.db.fetchval(
                "SELECT last_mailed_at FROM analytics_alert_mail WHERE account_id = ? AND "
                "recipient = ?", account_id, key)
            if last is not None and now - float(last) < prefs.cooldown_s:
                await self.hold(account_id, key, chosen, now)
                continue
            ids = sorted(m["milestone_id"] for m in chosen)
            mail_id = hashlib.sha256(f"{account_id}\0{key}\0{','.join(ids)}".encode()
                                     ).hexdigest()[:24]
            await self.send_mail(address, _subject(chosen), _paragraphs(chosen),
                                 mail_id=f"analytics-milestones/{mail_id}",
                                 link=f"{self.base_url}/analytics?account={account_id}"
                                 if self.base_url else "",
                                 action="See them in Analytics")
            await self.db.execute(
                "INSERT INTO analytics_alert_mail (account_id, recipient, last_mailed_at) "
                "VALUES (?, ?, ?) ON CONFLICT (account_id, recipient) DO UPDATE SET "
                "last_mailed_at = excluded.last_mailed_at", account_id, key, now)
            mailed[address] = ids
        return mailed


    async def hold(self, account_id: str, recipient: str,
                   milestones: Sequence[dict[str, Any]], now: float) -> None:
        """Keep ``milestones`` for ``recipient`` (an address hash) for the later digest."""
        async with self.db.transaction() as tx:
            for m in milestones:
                await tx.execute(
                    "INSERT INTO analytics_alert_held (account_id, recipient, milestone_id, "
                    "held_at) VALUES (?, ?, ?, ?) ON CONFLICT (account_id, recipient, "
                    "milestone_id) DO NOTHING", account_id, recipient, m["milestone_id"], now)


def _subject(milestones: Sequence[dict[str, Any]]) -> str:
    if len(milestones) == 1:
        return f"Milestone: {milestones[0]['text']}"
    return f"{len(milestones)} new milestones in your analytics"


def _paragraphs(milestones: Sequence[dict[str, Any]]) -> list[str]:
    listed = [f"- {m['text']}" for m in milestones[:MAIL_LIST]]
    more = len(milestones) - MAIL_LIST
    if more > 0:
        listed.append(f"... and {more} more in the page.")
    return ["New milestones were found as your figures came in:", "\n".join(listed),
            "You get these mails because of your alert preferences in Analytics; change "
            "them there (mail on or off, which kinds, how often)."]
