"""Social's resources in the public REST API (``/api/v1``): scheduled and published posts
with their per-network targets, their page and filters, and the body of its write (a new
scheduled post)."""

from __future__ import annotations

from pydantic import Field

from business.social.models import POST_STATES
from business.social.schemas import PostIn
from dawserver.plugin_api import Model, PublicListing, PublicResource

_STATES = ", ".join(POST_STATES)


class SocialPostTarget(Model):
    """One channel (network account) a post goes to, and where its publishing stands."""

    channel_id: str
    network: str = Field(description="The channel's network (x, instagram, ...)")
    state: str = Field(description=_STATES)
    remote_id: str = Field(description="The network's id of the published post; '' before "
                           "('sandbox-<post id>' for a sandbox post: simulated)")
    url: str = Field(description="The published post's address; '' before")
    error: str = Field(description="The last publishing error; '' without one")
    attempts: int
    published_at: str | None = Field(description="RFC 3339, UTC; null until published")


class SocialPost(PublicResource):
    """A post of the account: its text, when it goes out and its state per network."""

    id: str
    text: str
    campaign: str
    state: str = Field(description=_STATES)
    publish_at: str | None = Field(description="RFC 3339, UTC; null: not scheduled")
    time_zone: str = Field(description="IANA name the post was scheduled in")
    created_at: str = Field(description="RFC 3339, UTC")
    updated_at: str = Field(description="RFC 3339, UTC")
    targets: list[SocialPostTarget]


class SocialPostPage(Model):
    """A page of posts, by publish time (unscheduled last), then creation."""

    data: list[SocialPost]
    next_cursor: str | None


class SocialPostFilter(PublicListing):
    """Posts, filtered by state, campaign and channel."""

    state: str | None = Field(None, pattern=f"^({'|'.join(POST_STATES)})$")
    campaign: str | None = Field(None, max_length=200, description="Only this campaign's")
    channel_id: str | None = Field(None, max_length=200,
                                   description="Only posts with a target on this channel")


class NewSocialPost(PostIn):
    """A post to schedule: the composer's fields as the module takes them
    (docs/social.md): a base text, media references (uploaded asset ids) and link, a
    variant per channel in ``targets``, and when it goes out; its id is the server's.
    It goes to its channels' approvers, or straight onto the schedule. A test-mode
    key's post is a sandbox one, whose publishing is simulated."""

    publish_at: str = Field(description="When it goes out: ISO 8601 with an offset, or a "
                            "local time with time_zone; in the future",
                            examples=["2026-05-01T09:00+02:00"])
