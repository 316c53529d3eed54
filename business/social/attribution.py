"""Attribution: pre-saves and sales that came through a post, heard on the event bus.

The social plug-in's ``business_event`` hook hands every event here; two are acted on
(their publishers declare them; docs/social.md#results gives the payloads):

- :data:`PRESAVE_EVENT` (``presave.saved``, distribution): a fan pre-saved a release;
- :data:`SALE_EVENT` (``marketplace.sale``, marketplace): an order was paid.

Each carries what the visit that led to it brought: ``ref`` (a short-link code, kept
by the landing page from ``/s/{code}``'s redirect) and/or ``utm_campaign`` (and
``utm_source``). A ``ref`` names one channel of one post; without one, a
``utm_campaign`` that is a post's id names that post, and one that is a campaign
names the campaign's latest post published before the event (on ``utm_source``'s
network when given). Only the event's own account is searched. Each event is recorded
once (by its id), so a redelivery changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from business.social.errors import NotFoundError
from business.social.links import Links

logger = logging.getLogger(__name__)

PRESAVE_EVENT = "presave.saved"
SALE_EVENT = "marketplace.sale"
KINDS = {PRESAVE_EVENT: "presave", SALE_EVENT: "sale"}


class Attribution:
    """Records pre-saves and sales against the post that brought them."""

    def __init__(self, db: Any, links: Links, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.links = links
        self.clock = clock

    async def observe(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Handle one event; whether it was attributed to a post (now or before)."""
        kind = KINDS.get(name)
        account_id = str(payload.get("account_id") or "")
        event_id = str(payload.get("event_id") or "")
        if kind is None or not account_id or not event_id:
            return False
        at = float(payload.get("at") or self.clock())
        found = await self._post_of(account_id, payload, at)
        if found is None:
            return False
        post_id, channel_id, code = found
        amount = int(payload.get("amount_cents") or 0) if kind == "sale" else 0
        await self.db.execute(
            "INSERT INTO social_attributions (account_id, event_id, kind, post_id, "
            "channel_id, code, amount_cents, currency, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, event_id) DO NOTHING",
            account_id, event_id, kind, post_id, channel_id, code, amount,
            str(payload.get("currency") or "").upper()[:3], at)
        logger.info("%s %s attributed to post %s/%s", kind, event_id, account_id, post_id)
        return True

    async def _post_of(self, account_id: str, payload: Mapping[str, Any], at: float
                       ) -> tuple[str, str, str] | None:
        code = str(payload.get("ref") or "").strip()
        if code:
            try:
                link = await self.links.resolve(code)
            except NotFoundError:
                link = None
            if link is not None and link.account_id == account_id:
                return link.post_id, link.channel_id, link.code
        campaign = str(payload.get("utm_campaign") or "").strip()
        if not campaign:
            return None
        post = await self.db.fetchval(
            "SELECT post_id FROM social_posts WHERE account_id = ? AND post_id = ? "
            "AND deleted = 0", account_id, campaign)
        if post is not None:
            return post, "", ""
        source = str(payload.get("utm_source") or "").strip().lower()
        args: list[Any] = [account_id, campaign, at]
        network = ""
        if source:
            network = "AND c.network = ? "
            args.append(source)
        row = await self.db.fetchrow(
            "SELECT t.post_id, t.channel_id FROM social_post_targets t JOIN social_posts p "
            "ON p.account_id = t.account_id AND p.post_id = t.post_id "
            "JOIN social_channels c ON c.account_id = t.account_id "
            "AND c.channel_id = t.channel_id WHERE t.account_id = ? AND p.campaign = ? "
            "AND p.deleted = 0 AND t.state = 'published' AND t.published_at <= ? "
            f"{network}ORDER BY t.published_at DESC LIMIT 1", *args)
        if row is None:
            return None
        return row["post_id"], row["channel_id"], ""
