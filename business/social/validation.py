"""Validate one post variant against a network's rules (a minimal stand-in).

The rules helper's fuller module replaces this one at the merge; it keeps this
signature: ``validate(network, text, media, link, first_comment) -> list[Problem]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from business.social.networks.base import MediaItem

ERROR, WARNING = "error", "warning"
#: Longest text per network (characters).
MAX_TEXT = {"x": 280, "instagram": 2200, "facebook": 63206, "tiktok": 2200,
            "youtube": 5000, "linkedin": 3000, "threads": 500, "bluesky": 300}
MEDIA_REQUIRED = frozenset({"instagram", "tiktok", "youtube"})


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field of a post, and how to fix it."""

    field: str
    code: str
    message: str
    severity: str = ERROR


def validate(network: str, text: str, media: Sequence[MediaItem] = (),
             link: str | None = None, first_comment: str | None = None) -> list[Problem]:
    """Every problem of one post variant on ``network`` (empty: nothing to change)."""
    if network not in MAX_TEXT:
        raise ValueError(f"unknown network {network!r}: use one of {sorted(MAX_TEXT)}")
    problems = []
    if len(text) > MAX_TEXT[network]:
        problems.append(Problem("text", "text_too_long",
                                f"{network} takes at most {MAX_TEXT[network]} characters; "
                                f"this text has {len(text)}: shorten it"))
    if network in MEDIA_REQUIRED and not media:
        problems.append(Problem("media", "media_required",
                                f"{network} posts need an image or a video: attach one"))
    return problems
