"""Publish times: ISO 8601 with an offset, or a local time with an IANA zone, to UTC
epoch seconds (and back).

``2026-05-01T09:00:00+02:00`` stands alone; ``2026-05-01T09:00`` needs a zone, given
as ``time_zone`` or as an RFC 9557 suffix (``2026-05-01T09:00[Europe/Berlin]``). A local
time the zone skips (the hour a clock springs forward) is refused; one it repeats
(the hour it falls back) is the first of the two. A zone, however given, must be an IANA
name, also after a time with an offset (``2026-05-01T09:00:00+02:00[Europe/Berlin]``).
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from business.social.errors import SocialError

_SUFFIX = re.compile(r"^(?P<time>[^\[]+)\[(?P<zone>[^\]]+)\]$")


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Berlin``, ``UTC``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SocialError(f"unknown time zone {name!r}: use an IANA name such as "
                          "'Europe/Berlin' or 'America/New_York'") from None


def parse_time(text: str, time_zone: str | None = None, *,
               kept_zone: str = "UTC") -> tuple[float, str]:
    """``(UTC epoch seconds, zone name)`` of an ISO 8601 time with an offset or a zone.

    A time with an offset and no zone named keeps ``kept_zone`` (a post's own zone, when
    only its time changes)."""
    text, time_zone = _split_zone(text, time_zone)
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SocialError(f"{text!r} is not an ISO 8601 time; write e.g. "
                          "'2026-05-01T09:00:00+02:00' or a local time with a time zone"
                          ) from None
    if when.tzinfo is not None:
        return when.timestamp(), time_zone or kept_zone
    if not time_zone:
        raise SocialError(f"{text!r} has no offset: add one (+02:00, Z) or give its "
                          "time_zone (an IANA name such as 'Europe/Berlin')")
    local = when.replace(tzinfo=zone(time_zone))
    back = dt.datetime.fromtimestamp(local.timestamp(), local.tzinfo)
    if back.replace(tzinfo=None) != when:
        raise SocialError(f"{text} does not exist in {time_zone} (the clocks skip it); "
                          "pick another time")
    return local.timestamp(), time_zone


def _split_zone(text: str, time_zone: str | None) -> tuple[str, str | None]:
    """The time and its zone name (an RFC 9557 suffix wins over ``time_zone``).

    The zone is checked here, even after a time with an offset (which then needs none):
    the name is kept with the post and every later reading of it converts through it.
    """
    match = _SUFFIX.match(text.strip())
    if match:
        text, time_zone = match["time"], match["zone"]
    if time_zone:
        zone(time_zone)
    return text, time_zone


def iso(epoch: float | None, time_zone: str = "UTC") -> str | None:
    """``epoch`` as ISO 8601 in ``time_zone`` with its offset (None stays None)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, zone(time_zone)).isoformat()
