"""Per-channel rights: what one person may do with one channel's posts.

A channel's owner names people with one of three accesses; a person not named keeps
what their account role gives (an editor publishes, a viewer reads):

- ``publish``: compose, schedule and publish as the role allows;
- ``approval``: compose, but every post to the channel goes through its approval
  workflow (a channel without one refuses their submission, saying so);
- ``view``: see the channel and its posts, and put nothing on it.
"""

from __future__ import annotations

from collections.abc import Iterable

from business.social.errors import ConflictError, NotAllowedError
from business.social.models import Channel

PUBLISH, APPROVAL, VIEW = "publish", "approval", "view"
ACCESSES = (PUBLISH, APPROVAL, VIEW)


def access_of(channel: Channel, person_id: str) -> str:
    """The person's access to the channel (``publish`` where the channel names them not)."""
    return dict(channel.rights).get(person_id, PUBLISH)


def caller_rights(channel: Channel, person_id: str, *, composes: bool, manages: bool
                  ) -> dict[str, object]:
    """What the person may do with the channel: their ``access`` (what the channel names
    them with, capped by their role: one who may not compose only views), whether the
    channel ``named`` them, and whether they ``manage`` it (its rights and workflows)."""
    named = dict(channel.rights).get(person_id)
    access = (named or PUBLISH) if composes else VIEW
    return {"access": access, "named": named is not None, "manage": manages}


def check_compose(channels: Iterable[Channel], person_id: str) -> None:
    """Refuse a post that puts anything on a channel the person may only view."""
    viewed = [c.channel_id for c in channels if access_of(c, person_id) == VIEW]
    if viewed:
        raise NotAllowedError(f"you may only view channel(s) {viewed}: take them out of "
                              "'targets', or ask an owner for the right to publish there "
                              "(PUT /api/social/channels/{channel_id}/rights)")


def check_schedule(channels: Iterable[Channel], person_id: str) -> None:
    """Refuse scheduling, without approval, on a channel where the person needs it."""
    check_compose(channels, person_id)
    unchecked = [c.channel_id for c in channels
                 if access_of(c, person_id) == APPROVAL and not c.tiers]
    if unchecked:
        raise ConflictError(f"your posts to channel(s) {unchecked} need approval, and they "
                            "have no approval workflow: an owner sets one (PUT /api/social/"
                            "channels/{channel_id}/approvals) or gives you the right to "
                            "publish")
