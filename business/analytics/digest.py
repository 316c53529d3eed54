"""The digest of milestones an alert's cooldown held back.

When a recipient is within their cooldown, :meth:`Alerts.notify` keeps the milestones it
did not mail (``analytics_alert_held``). Once the cooldown is over, :func:`send_digest`
mails them all in one mail (within the person's kinds as they stand then), marks them
alerted and starts the cooldown again. Membership and mail preferences are read again at
sending: someone who left the organisation or turned mail off gets no digest (what was held
for them is dropped). The scheduler worker calls :func:`send_digests` on every tick.
"""

from __future__ import annotations

import hashlib
from typing import Any

from business.analytics.alerts import MAIL_LIST, Alerts, recipient_key
from business.analytics.milestone_book import MilestoneBook, MilestoneNotFound


async def send_digest(alerts: Alerts, milestones: MilestoneBook, account_id: str
                      ) -> dict[str, list[str]]:
    """Mail each recipient of ``account_id`` whose cooldown is over what was held for them;
    address -> the milestone ids mailed."""
    if alerts.send_mail is None:
        return {}
    now = alerts.clock()
    recipients = {recipient_key(a): (a, p) for a, p in
                  (await alerts.recipients(account_id)).items()}
    rows = await alerts.db.fetch(
        "SELECT recipient, milestone_id FROM analytics_alert_held WHERE account_id = ? "
        "ORDER BY recipient, held_at, milestone_id", account_id)
    held: dict[str, list[str]] = {}
    for row in rows:
        held.setdefault(row["recipient"], []).append(row["milestone_id"])
    mailed: dict[str, list[str]] = {}
    for key, ids in held.items():
        if key not in recipients:
            await _drop(alerts, account_id, key)   # left, or turned mail off
            continue
        address, prefs = recipients[key]
        last = await alerts.db.fetchval(
            "SELECT last_mailed_at FROM analytics_alert_mail WHERE account_id = ? AND "
            "recipient = ?", account_id, key)
        if last is not None and now - float(last) < prefs.cooldown_s:
            continue
        found = []
        for milestone_id in ids:
            try:
                found.append(await milestones.get(account_id, milestone_id))
            except MilestoneNotFound:
                continue
        chosen = [m for m in found if m["kind"] in prefs.kinds]
        if chosen:
            chosen_ids = sorted(m["milestone_id"] for m in chosen)
            digest_id = hashlib.sha256(f"{account_id}\0{key}\0{','.join(chosen_ids)}".encode()
                                       ).hexdigest()[:24]
            await alerts.send_mail(
                address, _subject(len(chosen)), _paragraphs(chosen),
                mail_id=f"analytics-digest/{digest_id}",
                link=f"{alerts.base_url}/analytics?account={account_id}"
                if alerts.base_url else "", action="See them in Analytics")
            await alerts.db.execute(
                "INSERT INTO analytics_alert_mail (account_id, recipient, last_mailed_at) "
                "VALUES (?, ?, ?) ON CONFLICT (account_id, recipient) DO UPDATE SET "
                "last_mailed_at = excluded.last_mailed_at", account_id, key, now)
            await milestones.mark_alerted(account_id, chosen_ids)
            mailed[address] = chosen_ids
        await _drop(alerts, account_id, key)
    return mailed


async def send_digests(alerts: Alerts, milestones: MilestoneBook) -> int:
    """:func:`send_digest` for every account holding milestones; how many mails."""
    accounts = await alerts.db.fetch(
        "SELECT DISTINCT account_id FROM analytics_alert_held ORDER BY account_id")
    sent = 0
    for row in accounts:
        sent += len(await send_digest(alerts, milestones, row["account_id"]))
    return sent


async def _drop(alerts: Alerts, account_id: str, recipient: str) -> None:
    await alerts.db.execute("DELETE FROM analytics_alert_held WHERE account_id = ? AND "
                            "recipient = ?", account_id, recipient)


def _subject(count: int) -> str:
    return "1 milestone while your alerts were paused" if count == 1 else \
        f"{count} milestones while your alerts were paused"


def _paragraphs(milestones: list[dict[str, Any]]) -> list[str]:
    listed = [f"- {m['text']}" for m in milestones[:MAIL_LIST]]
    if len(milestones) > MAIL_LIST:
        listed.append(f"... and {len(milestones) - MAIL_LIST} more in the page.")
    return ["These milestones were found after your last alert mail, within the time you "
            "chose between alert mails:", "\n".join(listed),
            "Change how often you get these mails in your alert preferences in Analytics."]
