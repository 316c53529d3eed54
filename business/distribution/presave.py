"""Pre-save campaigns: a public page per release, pre-save counts, a release-day event.

The release-day event fires once per campaign, however many workers check: the
first compare-and-set of ``fired_at`` wins, and in the same transaction it
publishes ``presave.release_day`` on the server's event bus (``context.publish``:
a row of the bus's outbox), which delivers it to every ``business_event`` hook at
least once. A hook that fails, or a worker that dies, only delays it.

A campaign of a sandbox release (made with a test-mode API key; ``sandboxed`` tells) is
a sandbox object itself, marked (``mark``) in the transaction that creates it, so only
test-mode keys reach it through ``/api/v1`` and its events go to test-mode webhooks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from business.distribution.errors import DistributionError, NotFoundError
from business.distribution.models import utc_today

logger = logging.getLogger(__name__)
SERVICES = ("spotify", "apple_music", "deezer", "tidal", "amazon_music")
_SLUG = re.compile(r"[^a-z0-9]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: ``publish(tx, name, payload, account_id=...)``: publish an event inside ``tx``; its id
#: (``PluginContext.publish``).
Publish = Callable[..., Awaitable[str]]
RELEASE_DAY = "presave.release_day"
#: Published for a new pre-save that came with a referral (a short-link code or UTM
#: campaign): the social plug-in attributes it to the post.
SAVED = "presave.saved"
#: ``await sandboxed(account_id, release_id)``: whether a release is a sandbox one.
Sandboxed = Callable[[str, str], Awaitable[bool]]
#: ``await mark(tx, account_id, object_id)``: mark a new object (a campaign, a delivery
#: record) a sandbox one, inside ``tx``.
MarkSandbox = Callable[[Any, str, str], Awaitable[None]]


def slugify(text: str) -> str:
    """A URL-safe slug of ``text`` plus a random suffix (globally unique in practice)."""
    base = _SLUG.sub("-", text.lower()).strip("-")[:40] or "release"
    return f"{base}-{secrets.token_hex(3)}"


class PreSaves:
    """Campaign storage and the release-day check."""

    def __init__(self, db: Any, publish: Publish, *, sandboxed: Sandboxed | None = None,
                 mark: MarkSandbox | None = None) -> None:
        self.db = db
        self.publish = publish
        self.sandboxed = sandboxed
        self.mark = mark

    async def create(self, account_id: str, release_id: str, title: str, artist: str,
                     release_date: str, services: list[str] | None = None) -> dict[str, Any]:
        """A campaign for a release; its public slug is in the result. A sandbox
        release's campaign is marked a sandbox object in the transaction that makes it."""
        try:  # stored as YYYY-MM-DD: fire_due compares the dates as text
            release_date = dt.date.fromisoformat(release_date).isoformat()
        except (TypeError, ValueError) as exc:
            raise DistributionError(
                f"release date {release_date!r} must be written YYYY-MM-DD") from exc
        chosen = list(services or SERVICES)
        unknown = set(chosen) - set(SERVICES)
        if unknown:
            raise DistributionError(f"unknown services {sorted(unknown)}; use {list(SERVICES)}")
        slug = slugify(f"{artist} {title}")
        campaign_id = secrets.token_hex(8)
        sandbox = self.mark is not None and self.sandboxed is not None \
            and await self.sandboxed(account_id, release_id)
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO dist_presave_campaigns (account_id, campaign_id, release_id, "
                "slug, title, artist, release_date, services, created_at, fired_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                account_id, campaign_id, release_id, slug, title, artist, release_date,
                ",".join(chosen), time.time())
            if sandbox and self.mark is not None:
                await self.mark(tx, account_id, campaign_id)
        return await self.public(slug)

    async def campaigns(self, account_id: str, *, release_id: str | None = None,
                        campaign_id: str | None = None) -> list[dict[str, Any]]:
        """The account's campaigns (of one release, or the one ``campaign_id``), oldest
        first, each with ``created_at`` and its pre-saves per service (two queries)."""
        where, args = "account_id = ?", [account_id]
        for column, value in (("release_id", release_id), ("campaign_id", campaign_id)):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(value)
        rows = await self.db.fetch(
            f"SELECT * FROM dist_presave_campaigns WHERE {where} "  # noqa: S608
            "ORDER BY created_at, campaign_id", *args)
        if not rows:
            return []
        counted = await self.db.fetch(
            "SELECT campaign_id, service, COUNT(*) AS n FROM dist_presaves "  # noqa: S608
            "WHERE account_id = ? AND campaign_id IN (SELECT campaign_id FROM "
            f"dist_presave_campaigns WHERE {where}) GROUP BY campaign_id, service",
            account_id, *args)
        counts: dict[str, dict[str, int]] = {}
        for row in counted:
            counts.setdefault(row["campaign_id"], {})[row["service"]] = int(row["n"])
        return [_with_counts(row, counts.get(row["campaign_id"], {})) for row in rows]

    async def campaign(self, account_id: str, campaign_id: str) -> dict[str, Any]:
        """One campaign of the account with its counts (:meth:`campaigns`)."""
        found = await self.campaigns(account_id, campaign_id=campaign_id)
        if not found:
            raise NotFoundError(f"no pre-save campaign {campaign_id!r} in this account")
        return found[0]

    async def _by_slug(self, slug: str, session: Any = None) -> dict[str, Any]:
        row = await (session or self.db).fetchrow(
            "SELECT * FROM dist_presave_campaigns WHERE slug = ?", slug)
        if row is None:
            raise NotFoundError(f"no pre-save campaign at {slug!r}")
        return row

    async def public(self, slug: str, session: Any = None) -> dict[str, Any]:
        """The public data of a campaign: what a landing page shows."""
        session = session or self.db
        row = await self._by_slug(slug, session)
        count = await session.fetchval(
            "SELECT COUNT(*) FROM dist_presaves WHERE account_id = ? AND campaign_id = ?",
            row["account_id"], row["campaign_id"])
        return {"slug": slug, "campaign_id": row["campaign_id"],
                "release_id": row["release_id"], "title": row["title"],
                "artist": row["artist"], "release_date": row["release_date"],
                "services": row["services"].split(","), "presaves": int(count),
                "released": row["fired_at"] is not None}

    async def presave(self, slug: str, fan: str, service: str,
                      referral: dict[str, str] | None = None) -> dict[str, Any]:
        """Record a fan's pre-save (once per fan and service); the new public data.

        A new pre-save with a ``referral`` (``ref``, ``utm_source``, ``utm_campaign``)
        publishes :data:`SAVED` in the same transaction.
        """
        row = await self._by_slug(slug)
        if service not in row["services"].split(","):
            raise DistributionError(f"service {service!r} is not offered here; choose one of "
                                    f"{row['services'].split(',')}")
        fan = (fan or "").strip()
        if not _EMAIL.match(fan):
            raise DistributionError(f"{fan!r} is not an e-mail address")
        if row["fired_at"] is not None:
            raise DistributionError("the release is out: pre-saves are closed, stream it now")
        fan_key = hashlib.sha256(fan.lower().encode()).hexdigest()
        referral = {k: (referral or {}).get(k) or "" for k in
                    ("ref", "utm_source", "utm_campaign")}
        now = time.time()
        async with self.db.transaction() as tx:
            added = await tx.execute(
                "INSERT INTO dist_presaves (account_id, campaign_id, fan_key, service, "
                "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, campaign_id, "
                "fan_key, service) DO NOTHING",
                row["account_id"], row["campaign_id"], fan_key, service, now)
            if added and (referral["ref"] or referral["utm_campaign"]):
                await self.publish(tx, SAVED, {
                    "account_id": row["account_id"], "campaign_id": row["campaign_id"],
                    "slug": slug, "service": service, "at": now, **referral},
                    account_id=row["account_id"])
        return await self.public(slug)

    async def fire_due(self, today: dt.date | None = None) -> list[str]:
        """Fire the release-day event of every due campaign once (due on its UTC date
        unless ``today`` is given); the slugs fired now.

        Each due campaign is marked fired and its event published in one transaction.
        """
        today = today or utc_today()
        await self._canonical_dates()
        due = await self.db.fetch(
            "SELECT account_id, campaign_id, slug FROM dist_presave_campaigns "
            "WHERE fired_at IS NULL AND release_date <= ?", today.isoformat())
        fired = []
        for row in due:
            async with self.db.transaction() as tx:
                won = await tx.execute(
                    "UPDATE dist_presave_campaigns SET fired_at = ? WHERE account_id = ? AND "
                    "campaign_id = ? AND fired_at IS NULL",
                    time.time(), row["account_id"], row["campaign_id"])
                if won:
                    data = await self.public(row["slug"], tx)
                    await self.publish(tx, RELEASE_DAY, {**data, "account_id": row["account_id"]},
                                       account_id=row["account_id"])
            if won:
                fired.append(row["slug"])
        return fired


    async def _canonical_dates(self) -> None:
        """Rewrite as YYYY-MM-DD the release dates that campaigns made before dates were
        kept so (``20261201``, ``2026-W49-2``) still hold unfired: compared as text they
        would fire a year late."""
        rows = await self.db.fetch(
            "SELECT account_id, campaign_id, release_date FROM dist_presave_campaigns "
            "WHERE fired_at IS NULL AND release_date NOT LIKE '____-__-__'")
        for row in rows:
            try:
                written = dt.date.fromisoformat(row["release_date"]).isoformat()
            except (TypeError, ValueError):
                logger.warning("pre-save campaign %s/%s: release date %r is no date; it "
                               "never fires", row["account_id"], row["campaign_id"],
                               row["release_date"])
                continue
            await self.db.execute(
                "UPDATE dist_presave_campaigns SET release_date = ? WHERE account_id = ? "
                "AND campaign_id = ? AND release_date = ?", written, row["account_id"],
                row["campaign_id"], row["release_date"])


def _iso_date(text: str) -> str | None:
    """``text`` (any ISO 8601 date form) as YYYY-MM-DD; None when it is no date."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except (TypeError, ValueError):
        return None


async def follow_release_date(tx: Any, account_id: str, release_id: str, old: str,
                              new: str) -> int:
    """Move the unfired campaigns of a release whose date moved from ``old`` to ``new``
    (inside the release's save, ``tx``); how many moved. A campaign given its own date
    (one the release did not have) keeps it."""
    before, after = _iso_date(old), _iso_date(new)
    if before is None or after is None or before == after:
        return 0
    return await tx.execute(
        "UPDATE dist_presave_campaigns SET release_date = ? WHERE account_id = ? AND "
        "release_id = ? AND fired_at IS NULL AND release_date = ?",
        after, account_id, release_id, before)


def _with_counts(row: dict[str, Any], by_service: dict[str, int]) -> dict[str, Any]:
    """A campaign's row as :meth:`PreSaves.public` shows it, with ``created_at`` and
    ``presaves_by_service`` (every offered service, 0 for none)."""
    services = row["services"].split(",")
    per_service = {service: by_service.get(service, 0) for service in services}
    return {"slug": row["slug"], "campaign_id": row["campaign_id"],
            "release_id": row["release_id"], "title": row["title"], "artist": row["artist"],
            "release_date": row["release_date"], "services": services,
            "presaves": sum(by_service.values()), "presaves_by_service": per_service,
            "released": row["fired_at"] is not None, "created_at": row["created_at"]}


def landing_page(data: dict[str, Any], referral: dict[str, str] | None = None) -> str:
    """The public HTML page of a campaign (its form carries the visit's ``referral``)."""
    title, artist = html.escape(data["title"]), html.escape(data["artist"])
    hidden = "".join(f"<input type='hidden' name='{name}' value='{html.escape(value)}'>"
                     for name, value in (referral or {}).items() if value)
    buttons = "".join(
        f'<button name="service" value="{html.escape(s)}">Pre-save on '
        f'{html.escape(s.replace("_", " ").title())}</button>' for s in data["services"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{artist} – {title}</title></head><body>"
        f"<h1>{title}</h1><h2>{artist}</h2><p>Out {html.escape(data['release_date'])}</p>"
        f"<p><span id='count'>{data['presaves']}</span> pre-saves</p>"
        f"<form method='post' action='/api/presave/{html.escape(data['slug'])}'>"
        f"<input type='email' name='fan' required>{hidden}{buttons}</form></body></html>"
    )
