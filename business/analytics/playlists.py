"""Playlist tracking read from the stored placements (:mod:`.sources.playlists`): which of
the account's tracks are on which playlists, their adds and removes, position history,
and reach over time, editorial vs user.

- A track is **added** on the first day it has a position on a playlist after a day its
  source reported playlists without it, and **removed** on the first such day after a day
  with it. The days a source *reported playlists* are the days it has any placement in the
  account (a day with no placement at all is a day not fetched, not a removal), so the
  first day ever seen is not an add: we do not know when it joined.
- **Reach** of a track on a day: the followers of the playlists it is on that day, summed
  (a listener following two playlists counts twice: platforms give no overlap), in total
  and per curator (``editorial`` or ``user``).

Tracks are the catalogue's: a recording's platform ids on every source are read together.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from business.analytics.sources.playlists import CURATORS, FOLLOWERS, POSITION
from business.analytics.store import decode_dimensions, epoch


@dataclass(frozen=True)
class _Row:
    source: str
    track: str
    playlist: str
    curator: str
    day: date
    position: int


def _day(at: int) -> date:
    return datetime.fromtimestamp(at, UTC).date()


class PlaylistTracker:
    """Queries over the account's placements (always scoped by account)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def _placements(self, account_id: str, start: date, end: date,
                          tracks: list[tuple[str, str]] | None) -> list[_Row]:
        rows = await self.db.fetch(
            "SELECT source, entity_id, dimensions, at, value FROM analytics_points WHERE "
            "account_id = ? AND metric = ? AND grain = 'daily' AND at >= ? AND at <= ? "
            "ORDER BY source, entity_id, dimensions, at", account_id, POSITION,
            epoch(start), epoch(end))
        wanted = set(tracks) if tracks is not None else None
        out = []
        for r in rows:
            if wanted is not None and (r["source"], r["entity_id"]) not in wanted:
                continue
            dims = dict(decode_dimensions(r["dimensions"]))
            out.append(_Row(r["source"], r["entity_id"], dims.get("playlist", ""),
                            dims.get("curator", "user"), _day(int(r["at"])), int(r["value"])))
        return out

    async def _reported_days(self, account_id: str, start: date, end: date
                             ) -> dict[str, set[date]]:
        rows = await self.db.fetch(
            "SELECT DISTINCT source, at FROM analytics_points WHERE account_id = ? AND "
            "metric = ? AND grain = 'daily' AND at >= ? AND at <= ?", account_id, POSITION,
            epoch(start), epoch(end))
        out: dict[str, set[date]] = defaultdict(set)
        for r in rows:
            out[r["source"]].add(_day(int(r["at"])))
        return out

    async def _followers(self, account_id: str, start: date, end: date
                         ) -> dict[tuple[str, str], dict[date, float]]:
        rows = await self.db.fetch(
            "SELECT source, entity_id, at, value FROM analytics_points WHERE account_id = ? "
            "AND metric = ? AND entity_kind = 'playlist' AND grain = 'daily' AND "
            "dimensions = '' AND at >= ? AND at <= ?", account_id, FOLLOWERS, epoch(start),
            epoch(end))
        out: dict[tuple[str, str], dict[date, float]] = defaultdict(dict)
        for r in rows:
            out[(r["source"], r["entity_id"])][_day(int(r["at"]))] = float(r["value"])
        return out

    async def _names(self, account_id: str) -> dict[tuple[str, str, str], tuple[str, str]]:
        """(source, platform kind, platform id) -> (catalogue entity, name)."""
        rows = await self.db.fetch(
            "SELECT l.source AS source, l.platform_kind AS kind, l.platform_id AS platform_id, "
            "l.entity_id AS entity_id, e.name AS name FROM analytics_links l LEFT JOIN "
            "analytics_entities e ON e.account_id = l.account_id AND e.entity_id = l.entity_id "
            "WHERE l.account_id = ? AND l.platform_kind IN ('playlist', 'track')", account_id)
        return {(r["source"], r["kind"], r["platform_id"]): (r["entity_id"], r["name"] or "")
                for r in rows}

    async def _tracks_of(self, account_id: str, entity_id: str) -> list[tuple[str, str]]:
        rows = await self.db.fetch(
            "SELECT source, platform_id FROM analytics_links WHERE account_id = ? AND "
            "entity_id = ? AND platform_kind = 'track'", account_id, entity_id)
        return [(r["source"], r["platform_id"]) for r in rows]

    async def placements(self, account_id: str, start: date, end: date,
                         entity_id: str | None = None) -> list[dict[str, Any]]:
        """Each (track, playlist) seen in the range: curator, position now and best, first
        and last day seen, the playlist's latest followers, and the position history."""
        tracks = await self._tracks_of(account_id, entity_id) if entity_id else None
        rows = await self._placements(account_id, start, end, tracks)
        names = await self._names(account_id)
        followers = await self._followers(account_id, start, end)
        grouped: dict[tuple[str, str, str], list[_Row]] = defaultdict(list)
        for r in rows:
            grouped[(r.source, r.track, r.playlist)].append(r)
        out = []
        for (source, track, playlist), found in sorted(grouped.items()):
            last = found[-1]
            reach = followers.get((source, playlist), {})
            entity, track_name = names.get((source, "track", track), ("", ""))
            out.append({
                "source": source, "playlist_id": playlist,
                "playlist_name": names.get((source, "playlist", playlist), ("", playlist))[1]
                or playlist, "curator": last.curator, "track_id": track, "entity_id": entity,
                "track_name": track_name, "first_day": found[0].day.isoformat(),
                "last_day": last.day.isoformat(), "on_last_day": last.day == end,
                "position": last.position, "best_position": min(r.position for r in found),
                "followers": reach[max(reach)] if reach else None,
                "positions": [[r.day.isoformat(), r.position] for r in found]})
        return out

    async def changes(self, account_id: str, start: date, end: date,
                      entity_id: str | None = None) -> list[dict[str, Any]]:
        """Adds and removes in the range, oldest first (see the module)."""
        tracks = await self._tracks_of(account_id, entity_id) if entity_id else None
        before = start - timedelta(days=1)
        rows = await self._placements(account_id, before, end, tracks)
        reported = await self._reported_days(account_id, before, end)
        names = await self._names(account_id)
        on: dict[tuple[str, str, str], dict[date, _Row]] = defaultdict(dict)
        for r in rows:
            on[(r.source, r.track, r.playlist)][r.day] = r
        out = []
        for (source, track, playlist), days in sorted(on.items()):
            seen = sorted(reported.get(source, ()))
            curator = next(iter(days.values())).curator
            for previous, day in zip(seen, seen[1:], strict=False):
                if day < start:
                    continue
                was, now = previous in days, day in days
                if was == now:
                    continue
                row = days[day] if now else days[previous]
                entity, track_name = names.get((source, "track", track), ("", ""))
                out.append({"day": day.isoformat(), "change": "add" if now else "remove",
                            "source": source, "playlist_id": playlist,
                            "playlist_name": names.get((source, "playlist", playlist),
                                                       ("", playlist))[1] or playlist,
                            "curator": curator, "track_id": track, "entity_id": entity,
                            "track_name": track_name, "position": row.position})
        out.sort(key=lambda c: (c["day"], c["source"], c["playlist_id"], c["track_id"]))
        return out

    async def reach(self, account_id: str, entity_id: str, start: date, end: date
                    ) -> dict[str, Any]:
        """A recording's daily playlist reach: total, per curator, and playlists counted."""
        tracks = await self._tracks_of(account_id, entity_id)
        rows = await self._placements(account_id, start, end, tracks)
        followers = await self._followers(account_id, start, end)
        days: dict[date, dict[str, float]] = defaultdict(
            lambda: {"total": 0.0, **dict.fromkeys(CURATORS, 0.0), "playlists": 0})
        for r in rows:
            count = followers.get((r.source, r.playlist), {}).get(r.day)
            day = days[r.day]
            day["playlists"] += 1
            if count is None:
                continue
            day["total"] += count
            day[r.curator if r.curator in CURATORS else "user"] += count
        return {"entity_id": entity_id, "first_day": start.isoformat(),
                "last_day": end.isoformat(),
                "days": [{"day": d.isoformat(), **v} for d, v in sorted(days.items())]}
