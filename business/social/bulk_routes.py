"""HTTP route of bulk scheduling: a CSV file of posts, checked row by row, scheduled.

``POST /api/social/bulk`` reads the file with :func:`~.bulk.import_csv` against the
account's channels and its live posts (duplicates within 3 days; not the sandbox posts
of test-mode keys, which reach no network) and the account's media
library (a row's media, :mod:`.media_library`, checked by the network's rules as the
composer's), adds the rows the person may not schedule on their channel
(:mod:`.rights`), and schedules what the mode
lets through in one transaction (:meth:`~.posts.Posts.schedule_rows`): every valid
row, or none in ``all_or_nothing`` mode when any row has an error. The file is read
and checked first, in a worker thread and outside any transaction (on SQLite a
transaction holds the server's one writer); inside it, under the account's bulk lock,
the live posts are read again and the checked rows compared with them
(:func:`~.bulk.recheck_duplicates`), so the same file sent twice at once (a retry)
schedules its rows once: the second upload finds the first's posts as duplicates.

The route takes an ``Idempotency-Key`` (the platform's, ``Route.idempotent``): a retry
with the same key, file and query gets the first answer again (``Idempotent-Replayed:
true``, the same ``post_ids``) instead of a report of duplicates; the key with another
file or mode answers 422, and a retry while the first still runs 409.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import Field

from business.social import rights
from business.social.bulk import (
    DUPLICATE_WINDOW_S,
    BulkFileError,
    BulkRow,
    ExistingPost,
    MediaRefused,
    RowError,
    import_csv,
    media_refs,
    recheck_duplicates,
    recheck_times,
)
from business.social.errors import ConflictError, NotAllowedError
from business.social.media_library import describe
from business.social.models import DISCONNECTED, Channel
from business.social.networks.base import MediaItem
from business.social.permissions import COMPOSE
from business.social.posts import media_items
from business.social.routes import BASE, _api, _person
from business.social.services import PLUGIN_NAME, services
from dawserver.plugin_api import (
    BadRequest,
    Media,
    Model,
    Query,
    Request,
    Route,
    sandbox_ids,
)

#: The most bytes a bulk file may have (:data:`MAX_BULK_ROWS` long rows fit several times).
MAX_BULK_BYTES = 16 * 1024 * 1024
#: The most rows a bulk file may have: one upload is one transaction holding the
#: account's bulk lock (10,000 X rows took 11.5 s end to end on SQLite).
MAX_BULK_ROWS = 10_000
#: The most different media one bulk file may name: each is a library look-up and an
#: ffprobe run before the file is checked.
MAX_BULK_MEDIA = 500
#: How many of a bulk file's media are looked up at once (each an asset read, perhaps
#: from object storage, and an ffprobe run).
MEDIA_LOOKUPS_AT_ONCE = 4
#: The longest all of one upload's media look-ups may take: those not done by then are
#: refused (``media_timeout``) and the rest of the file is checked.
MEDIA_LOOKUP_S = 120.0
#: Later than any post's time (epoch seconds, year 5138).
FAR_FUTURE = 1e11


class BulkQuery(Query):
    """How to schedule a bulk file."""

    mode: Literal["valid_rows", "all_or_nothing"] = "valid_rows"
    #: IANA zone of times written without an offset or a ``timezone`` cell.
    zone: str = ""


class BulkProblem(Model):
    """What is wrong in one cell (row as a spreadsheet numbers it, header = 1)."""

    row: int
    column: str
    code: str
    message: str


class BulkOut(Model):
    """What a bulk file did: rows read, posts made, problems per row and column."""

    mode: str
    total_rows: int
    scheduled: int
    post_ids: list[str] = Field(default_factory=list)
    errors: list[BulkProblem] = Field(default_factory=list)
    warnings: list[BulkProblem] = Field(default_factory=list)


def _by_name(channels: list[Channel]) -> dict[str, Channel]:
    """Channels by id, by ``network:handle``, and by handle alone where no other live
    channel has the same one (the same handle on X and Bluesky names neither)."""
    live = [c for c in channels if c.state != DISCONNECTED]
    handles = [c.handle.lstrip("@").casefold() for c in live if c.handle]
    named: dict[str, Channel] = {c.channel_id: c for c in live}
    for channel in live:
        handle = channel.handle.lstrip("@").casefold()
        if not handle:
            continue
        for name in (f"{channel.network}:{handle}", f"{channel.network}:@{handle}"):
            named.setdefault(name, channel)
        if handles.count(handle) == 1:
            named.setdefault(handle, channel)
    return named


def _refused(row: BulkRow, channel: Channel, person: str) -> RowError | None:
    """The row's error when ``person`` may not schedule on its channel, else None."""
    try:
        rights.check_schedule([channel], person)
    except (NotAllowedError, ConflictError) as exc:
        return RowError(row.row, "channel", "not_allowed", str(exc))
    return None


async def _look_up(request: Request, refs: list[str]
                   ) -> dict[str, dict[str, Any] | MediaRefused]:
    """Each of ``refs`` described (:func:`.media_library.describe`) or refused,
    :data:`MEDIA_LOOKUPS_AT_ONCE` at a time; those not read within
    :data:`MEDIA_LOOKUP_S` in all are refused as unread (their look-ups cancelled)."""
    library: dict[str, dict[str, Any] | MediaRefused] = {}
    at_once = asyncio.Semaphore(MEDIA_LOOKUPS_AT_ONCE)

    async def look_up(ref: str) -> None:
        async with at_once:
            try:
                library[ref] = await describe(request.context, request.account_id, ref)
            except MediaRefused as exc:
                library[ref] = exc

    try:
        async with asyncio.timeout(MEDIA_LOOKUP_S):
            await asyncio.gather(*(look_up(ref) for ref in refs))
    except TimeoutError:
        late = MediaRefused("media_timeout", f"The file's media were not all read within "
                            f"{MEDIA_LOOKUP_S:.0f} s: this one was not; send fewer media "
                            "per file, or send the file again.")
        for ref in refs:
            library.setdefault(ref, late)
    return library


@_api
async def bulk_schedule(request: Request) -> Any:
    """Check a CSV file of posts row by row and schedule what the mode lets through."""
    module = services(request.context)
    query: BulkQuery = request.query
    person = _person(request)
    channels = _by_name(await module.store.channels(request.account_id))
    now = module.channels.clock()

    # the file's media are looked up here, on the event loop, before the file is read in
    # a worker thread: that thread then only reads what was found (a thread waiting on
    # the loop while the loop's own work waits on threads could stall the server)
    try:
        refs = await asyncio.to_thread(media_refs, request.body, channels,
                                       max_rows=MAX_BULK_ROWS)
    except (BulkFileError, ValueError) as exc:
        raise BadRequest(str(exc)) from None
    if len(refs) > MAX_BULK_MEDIA:
        raise BadRequest(f"The file names {len(refs):,} different media; at most "
                         f"{MAX_BULK_MEDIA:,} are looked up per upload: split the file.")
    library = await _look_up(request, refs)

    def resolve(ref: str) -> MediaItem:
        found = library.get(ref)
        if found is None:  # media_refs and import_csv read the same cells
            raise MediaRefused("unknown_media", f"{ref!r} was not looked up.")
        if isinstance(found, MediaRefused):
            raise found
        return media_items([found])[0]

    async def existing(tx: Any = None) -> list[ExistingPost]:
        rows = await module.store.texts_between(request.account_id,
                                                now - DUPLICATE_WINDOW_S, FAR_FUTURE, tx=tx)
        # a test-mode key's posts reach no network: no live row duplicates them
        sandboxed = await sandbox_ids(request.context, PLUGIN_NAME, request.account_id,
                                      {r["post_id"] for r in rows}, tx=tx)
        return [ExistingPost(r["channel_id"], r["publish_at"], r["text"] or "")
                for r in rows if r["post_id"] not in sandboxed]

    # the file is read and checked before the transaction (in a worker thread): on
    # SQLite the transaction holds the server's one writer, which no parse may keep
    try:
        result = await asyncio.to_thread(
            import_csv, request.body, channels, mode=query.mode, now=now,
            existing=await existing(), default_zone=query.zone or None,
            max_rows=MAX_BULK_ROWS, resolve_media=resolve,
            # a refused row is no post: later rows are not its duplicates
            refuse=lambda row: _refused(row, channels[row.channel_id], person))
    except (BulkFileError, ValueError) as exc:
        raise BadRequest(str(exc)) from None

    async def read_rows(tx: Any) -> list[dict[str, Any]]:
        # under the account's bulk lock: the posts of an upload that finished meanwhile
        # (the same file sent again) are duplicates here, not scheduled twice
        recheck_times(result, module.posts.clock())
        recheck_duplicates(result, await existing(tx))
        return [{"channel_id": r.channel_id, "publish_at": r.publish_at, "text": r.text,
                 "link": r.link, "first_comment": r.first_comment, "time_zone": r.time_zone,
                 "media": [library[m] for m in r.media]}
                for r in result.to_schedule]

    posts = await module.posts.schedule_rows(request.account_id, person, read_rows,
                                             source="bulk")
    result.errors.sort(key=lambda e: (e.row, e.column))

    def problems(found: list[RowError]) -> list[dict[str, Any]]:
        return [{"row": e.row, "column": e.column, "code": e.code, "message": e.message}
                for e in found]

    return {"mode": query.mode, "total_rows": result.total_rows, "scheduled": len(posts),
            "post_ids": [p.post_id for p in posts], "errors": problems(result.errors),
            "warnings": problems(result.warnings)}


BULK_ROUTES = [
    Route(method="POST", path=f"{BASE}/bulk", handler=bulk_schedule, permission=COMPOSE,
          query=BulkQuery, body=Media("text/csv", "text/plain"), response=BulkOut,
          max_body=MAX_BULK_BYTES, idempotent=True),
]
