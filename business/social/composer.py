"""The composer's live check: every channel's variant of a post as its network sees it.

``check`` answers, per channel, the text the network will show (with the link added where
the network has no link attachments), its length as the network counts it against the
network's limit, and every problem :func:`~business.social.validation.validate` finds
(errors and warnings). It stores nothing; the composer page calls it as the person types.
"""

from __future__ import annotations

from typing import Any

from business.social.errors import NotFoundError, SocialError
from business.social.models import DISCONNECTED
from business.social.networks.base import text_with_link
from business.social.posts import VARIANT, media_items
from business.social.store import SocialStore
from business.social.textlength import UNITS
from business.social.validation import ERROR, measure, rules_for, validate


def variant_fields(fields: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The fields one channel publishes: its own where set (not None), else the post's."""
    return {name: fields.get(name) if target.get(name) is None else target[name]
            for name in VARIANT}


async def check(store: SocialStore, account_id: str, fields: dict[str, Any]
                ) -> dict[str, Any]:
    """``{"ok", "channels": [...]}``: each target's preview, length and problems.

    A channel the account does not have (or disconnected) is :class:`NotFoundError`; a
    channel named twice is :class:`SocialError`.
    """
    targets = fields.get("targets") or []
    if not targets:
        raise SocialError("name at least one channel in 'targets' to check the post for it")
    seen: set[str] = set()
    answers = []
    for target in targets:
        channel_id = target["channel_id"]
        if channel_id in seen:
            raise SocialError(f"channel {channel_id!r} is named twice; name each channel once")
        seen.add(channel_id)
        channel = await store.channel(account_id, channel_id)
        if channel is None or channel.state == DISCONNECTED:
            raise NotFoundError(f"there is no channel {channel_id!r}; connect it first")
        answers.append(_channel_check(channel.network, channel_id, channel.name,
                                      channel.handle, variant_fields(fields, target)))
    return {"ok": all(a["ok"] for a in answers), "channels": answers}


def _channel_check(network: str, channel_id: str, name: str, handle: str,
                   fields: dict[str, Any]) -> dict[str, Any]:
    rules = rules_for(network)
    text, link = fields["text"] or "", (fields["link"] or "").strip() or None
    media = fields["media"] or []
    shown = text if rules.link_attachment else text_with_link(text, link)
    length, notes = measure(network, shown)
    problems = validate(network, text, media_items(media), link, fields["first_comment"])
    return {
        "channel_id": channel_id, "network": network, "network_name": rules.name,
        "name": name, "handle": handle,
        "preview": {"text": shown, "link_card": link if rules.link_attachment else None,
                    "media": media, "first_comment": fields["first_comment"] or None},
        "length": length, "max_length": rules.max_text, "unit": UNITS[rules.text_counting],
        "notes": notes, "links_clickable": rules.links_clickable,
        "first_comment_allowed": rules.first_comment,
        "problems": [{"field": p.field, "code": p.code, "message": p.message,
                      "severity": p.severity} for p in problems],
        "ok": not any(p.severity == ERROR for p in problems)}
