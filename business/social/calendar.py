"""Calendar data and queue slots.

The calendar lists an account's dated posts in a window (a week or a month view),
filtered by channel, campaign and state. Queue slots are a channel's weekly times in
its own time zone ("Mondays 09:30 Europe/Berlin"); the next free slot is the first
one after a time that no live post of the channel holds. Slot times follow the
zone's clock changes (09:30 stays 09:30 local across daylight saving time).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from business.social.errors import NotFoundError, SocialError
from business.social.models import HOLDS_SLOT, Post
from business.social.store import SocialStore
from business.social.times import zone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The longest calendar window one request may ask for.
MAX_WINDOW_S = 92 * 86_400.0
#: How far ahead the next free slot is looked for.
SLOT_HORIZON_DAYS = 366
#: Two posts within this many seconds share a slot.
SLOT_TOLERANCE_S = 60.0


def parse_slot_time(text: str) -> dt.time:
    """``HH:MM`` (24 h) as a time of day."""
    try:
        hours, minutes = (int(part) for part in text.split(":"))
        return dt.time(hours, minutes)
    except ValueError:
        raise SocialError(f"slot time {text!r} is not HH:MM (24 h), e.g. '09:30'") from None


def normalise_slots(slots: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Checked slots, sorted by weekday and time, without repeats."""
    seen = set()
    for slot in slots:
        day = str(slot["weekday"]).lower()[:3]
        if day not in WEEKDAYS:
            raise SocialError(f"weekday {slot['weekday']!r} is not one of {list(WEEKDAYS)}")
        seen.add((WEEKDAYS.index(day), parse_slot_time(str(slot["time"])).strftime("%H:%M")))
    return [{"weekday": WEEKDAYS[d], "time": t} for d, t in sorted(seen)]


class Calendar:
    """Posts in time windows, and each channel's queue slots."""

    def __init__(self, store: SocialStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def window(self, account_id: str, start: float, end: float, *,
                     channel_id: str = "", campaign: str = "", state: str = "") -> list[Post]:
        """The account's posts due in ``[start, end)``, by time."""
        if end <= start:
            raise SocialError("'to' must come after 'from'")
        if end - start > MAX_WINDOW_S:
            raise SocialError("ask for at most 92 days at a time (a month view needs 6 weeks)")
        return await self.store.posts(account_id, state=state, campaign=campaign,
                                      channel_id=channel_id, start=start, end=end)

    async def set_slots(self, account_id: str, channel_id: str, slots: list[dict[str, Any]],
                        time_zone: str) -> list[dict[str, str]]:
        """Replace the channel's weekly slots (times in ``time_zone``)."""
        zone(time_zone)
        if await self.store.channel(account_id, channel_id) is None:
            raise NotFoundError(f"there is no channel {channel_id!r}")
        checked = normalise_slots(slots)
        await self.store.set_slots(account_id, channel_id, checked, time_zone, self.clock())
        return checked

    async def next_free(self, account_id: str, channel_id: str, after: float | None = None
                        ) -> float | None:
        """The first of the channel's slots after ``after`` (now) that no live post
        holds; None when it has no slots."""
        channel = await self.store.channel(account_id, channel_id)
        if channel is None:
            raise NotFoundError(f"there is no channel {channel_id!r}")
        if not channel.slots:
            return None
        after = self.clock() if after is None else after
        horizon = after + SLOT_HORIZON_DAYS * 86_400.0
        taken = sorted(await self.store.channel_times(account_id, channel_id,
                                                      after - SLOT_TOLERANCE_S, horizon,
                                                      HOLDS_SLOT))
        tz = zone(channel.time_zone)
        day = dt.datetime.fromtimestamp(after, tz).date()
        times = [(WEEKDAYS.index(s["weekday"]), parse_slot_time(s["time"]))
                 for s in channel.slots]
        for offset in range(SLOT_HORIZON_DAYS + 1):
            date = day + dt.timedelta(days=offset)
            for weekday, at in times:
                if weekday != date.weekday():
                    continue
                local = dt.datetime.combine(date, at, tzinfo=tz)
                if dt.datetime.fromtimestamp(local.timestamp(), tz).time() != at:
                    continue  # the clocks skip this time that day
                when = local.timestamp()
                if when > after and not any(abs(when - t) < SLOT_TOLERANCE_S for t in taken):
                    return when
        return None
