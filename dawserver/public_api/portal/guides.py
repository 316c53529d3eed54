"""The portal's guides: Markdown under ``guides/`` and the API changelog, rendered once.

Rendered with markdown-it-py in CommonMark mode with raw HTML off, so a guide's text can
never inject markup into the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt

GUIDES_DIR = Path(__file__).with_name("guides")
#: The repository's changelog of the public API (docs/api-changelog.md).
CHANGELOG = Path(__file__).resolve().parents[3] / "docs" / "api-changelog.md"
_DOC_LINK = re.compile(r"\]\((?:public-api|accounts|jobs-and-events)\.md(#[^)]*)?\)")


@dataclass(frozen=True, slots=True)
class Guide:
    """One guide: its URL segment under ``/developer/docs/`` and its title."""

    slug: str
    title: str


#: The guides in reading order.
GUIDES: tuple[Guide, ...] = (
    Guide("authentication", "Authentication with API keys"),
    Guide("pagination", "Pagination, filters and sparse fields"),
    Guide("idempotency", "Idempotency keys"),
    Guide("webhooks", "Webhooks and signature checks"),
    Guide("rate-limits", "Rate limits"),
    Guide("versioning", "Versioning"),
    Guide("changelog", "Changelog"),
)
BY_SLUG = {guide.slug: guide for guide in GUIDES}


def _source(slug: str) -> str:
    if slug == "changelog":
        text = CHANGELOG.read_text(encoding="utf-8")
        # The repository's doc links lead nowhere on the site: point them at the guides.
        return _DOC_LINK.sub("](versioning)", text).replace("](openapi-v1.json)",
                                                            "](/api/v1/openapi.json)")
    return (GUIDES_DIR / f"{slug}.md").read_text(encoding="utf-8")


@cache
def render(slug: str) -> str:
    """The HTML of the guide ``slug`` (one of :data:`GUIDES`); KeyError for another."""
    guide = BY_SLUG[slug]
    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    return markdown.render(_source(guide.slug))
