"""``Idempotency-Key`` on POST: the same key and body replay the first answer.

The first request with a key claims it (a row with no answer yet), runs, and keeps its
success answer for :data:`TTL_SECONDS`; a retry with the same key and the same request
(method, path, caller, body) gets that answer again with ``Idempotent-Replayed: true``
and runs nothing. The same key with another request answers 422; a retry while the
first is still running answers 409. An error answer is not kept (the claim is dropped),
so a corrected retry may reuse the key; neither is a streamed answer, nor one over
:data:`MAX_ANSWER_BYTES` or still over :data:`MAX_KEPT_BYTES` once compressed (a retry
runs the request again, as without a key). An answer over :data:`COMPRESS_FROM` bytes,
or not UTF-8 text, is kept compressed (zlib in base64, ``body_encoding``). An answer
that could not be written down (the database failing) is still returned. An answer that
holds a secret (a new webhook's signing secret) is kept sealed (``sealer``, ``body_encoding``
:data:`SEALED`), never in clear. Keys are
kept per account (``account_id`` leads the table's key, the Citus rule) and expire
after 24 hours.

A claim is a lease of :data:`LEASE_SECONDS`, renewed every third of it while the request
runs (a heartbeat), so a slow request keeps its claim however long it takes and a retry
answers 409 instead of running it twice. If the process running the first request dies
before it answers (a crash, an OOM kill), the heartbeat stops and a retry with the same
request takes the claim over once the lease has passed, instead of answering 409 until
the key expires. Each claim has a random token: keeping an answer, releasing and renewing
are fenced by it, so a request whose claim was taken over changes nothing.
Expired rows of every account are deleted by the purge job (:mod:`.retention`).
Test-mode keys have their own keys (kept as :data:`TEST_MODE_PREFIX` + the key, a
space no key may hold): a live key sending the same key and request as the same
person's test-mode key runs it in live mode, and never gets the sandbox's answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel

from database import Database, load_migrations

from ..errors import BadRequest, Conflict, Unprocessable
from .conditional import etag_of
from .respond import CACHE_HEADERS

log = logging.getLogger(__name__)
MIGRATIONS = load_migrations("public_api", Path(__file__).with_name("migrations"))
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
TTL_SECONDS = 24 * 3600
#: How long a claim holds before a retry of the same request may take it over.
LEASE_SECONDS = 60.0
#: The most a kept answer takes in the database, compressed where it is (see below).
MAX_KEPT_BYTES = 4 * 1024 * 1024
#: The largest answer kept at all, before compression (a social bulk upload's report of
#: 50,000 rows, its most, each with an error, is about 8 MiB; compressed, 0.4 MiB).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Answers from this size on are kept compressed (smaller ones are kept as they are).
COMPRESS_FROM = 64 * 1024
#: ``body_encoding`` of a compressed body: zlib, then base64 to fit the text column.
ZLIB_BASE64 = "zlib+base64"
#: How often a claim is tried while the row it meets is released under it.
CLAIM_TRIES = 5
#: ``body_encoding`` of a body kept sealed (it holds a secret, such as a webhook's).
SEALED = "sealed"
#: How a body is kept: its text and ``body_encoding`` (None: the text is the body).
KeptBody = tuple[str, str | None]
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
#: What a test-mode key's keys are kept under (keys are visible ASCII: no space).
TEST_MODE_PREFIX = "test "

BAD_KEY = (f"{HEADER} must be 1 to 255 visible ASCII characters (a UUID is a good choice), "
           "got {key!r}")
OTHER_REQUEST = (f"{HEADER} {{key!r}} was used for another request (method, path or body "
                 "differ) in the last 24 hours; use a new key for a new request")
IN_FLIGHT = (f"the first request with {HEADER} {{key!r}} is still running; retry in a "
             "moment to get its answer")


class Sealer(Protocol):
    """Seals an answer that holds a secret for keeping, and opens it for a replay
    (:class:`~.webhooks.sealing.SecretBox`)."""

    def seal(self, secret: str) -> str:
        """``secret`` encrypted."""
        ...

    def open(self, stored: str) -> str:
        """The text :meth:`seal` encrypted."""
        ...


def _data(value: Any) -> Any:
    """``value`` as JSON data: a model's fields, raw bytes (a file) by their SHA-256."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, bytes | bytearray):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    return value


def fingerprint(method: str, path: str, user: str, body: Any, also: Any = None) -> str:
    """The SHA-256 of what makes two requests the same request (``also``: more of the
    request that matters, such as a plug-in route's query)."""
    parts = [method.upper(), path, user, _data(body)]
    if also is not None:
        parts.append(_data(also))
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotencyStore:
    """The kept answers, in the platform database (table ``api_idempotency``)."""

    def __init__(self, db: Database, *, ttl: float = TTL_SECONDS,
                 lease: float = LEASE_SECONDS) -> None:
        self.db, self.ttl, self.lease = db, ttl, lease

    async def claim(self, account_id: str, key: str, print_: str, now: float,
                    token: str = "") -> dict[str, Any] | None:
        """Claim ``key`` under ``token``: None when claimed now (or taken over from a claim
        whose lease passed, for the same request), else the row already there (live)."""
        await self.db.execute("DELETE FROM api_idempotency WHERE account_id = ? "
                              "AND expires_at <= ?", account_id, now)
        for _ in range(CLAIM_TRIES):
            claimed = await self.db.execute(
                "INSERT INTO api_idempotency (account_id, idem_key, fingerprint, created_at, "
                "expires_at, claimed_until, claim_token) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, idem_key) DO NOTHING",
                account_id, key, print_, now, now + self.ttl, now + self.lease, token)
            if claimed:
                return None
            # one conditional update: of two retries racing for a dead claim, one takes it
            taken = await self.db.execute(
                "UPDATE api_idempotency SET claimed_until = ?, created_at = ?, "
                "expires_at = ?, claim_token = ? WHERE account_id = ? AND idem_key = ? AND "
                "status IS NULL AND fingerprint = ? AND COALESCE(claimed_until, "
                "created_at + ?) <= ?", now + self.lease, now, now + self.ttl, token,
                account_id, key, print_, self.lease, now)
            if taken:
                return None
            row = await self.db.fetchrow(
                "SELECT * FROM api_idempotency WHERE account_id = ? AND idem_key = ?",
                account_id, key)
            if row is not None:
                return row
            # the claim was released (its request failed) since the insert: claim it now,
            # never run the request without a claim (its answer would not be kept)
        # released again each time: never run without a claim; the client retries
        raise Conflict(IN_FLIGHT.format(key=key), headers={"Retry-After": "1"})

    async def purge(self, now: float) -> int:
        """Delete every account's expired rows; how many."""
        return await self.db.execute("DELETE FROM api_idempotency WHERE expires_at <= ?", now)

    async def renew(self, account_id: str, key: str, token: str, now: float) -> bool:
        """Extend the lease of the claim ``token`` holds; False if it holds it no more."""
        return bool(await self.db.execute(
            "UPDATE api_idempotency SET claimed_until = ? WHERE account_id = ? AND "
            "idem_key = ? AND status IS NULL AND claim_token = ?", now + self.lease,
            account_id, key, token))

    async def keep(self, account_id: str, key: str, response: web.Response,
                   token: str = "", kept: KeptBody | None = None) -> bool:
        """Keep the answer of ``key`` claimed under ``token`` (its body as ``kept``, else
        as :func:`kept_body` keeps it); False if the claim was taken over (nothing is
        written)."""
        if kept is None:
            kept = await kept_body(response)
            if kept is None:
                raise ValueError("this answer is not kept: see kept_body")
        text, encoding = kept
        return bool(await self.db.execute(
            "UPDATE api_idempotency SET status = ?, content_type = ?, location = ?, body = ?, "
            "body_encoding = ? WHERE account_id = ? AND idem_key = ? AND status IS NULL AND "
            "claim_token = ?",
            response.status, response.content_type, response.headers.get("Location"),
            text, encoding, account_id, key, token))

    async def release(self, account_id: str, key: str, token: str = "") -> None:
        """Drop the claim ``token`` holds on ``key`` (its request failed: a retry may run
        it)."""
        await self.db.execute("DELETE FROM api_idempotency WHERE account_id = ? AND "
                              "idem_key = ? AND status IS NULL AND claim_token = ?",
                              account_id, key, token)

    @contextlib.asynccontextmanager
    async def heartbeat(self, account_id: str, key: str, token: str) -> AsyncIterator[None]:
        """Renew the claim every third of the lease while the ``async with`` block runs."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                try:
                    held = await self.renew(account_id, key, token, time.time())
                except Exception:  # a database hiccup: the next beat tries again
                    log.warning("could not renew the claim on %s", HEADER, exc_info=True)
                    continue
                if not held:
                    log.warning("a claim on %s %r was lost while its request ran", HEADER,
                                key[:80])
                    return

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _replay(row: dict[str, Any], sealer: Sealer | None) -> web.Response:
    text = row["body"] or ""
    if row["body_encoding"] == ZLIB_BASE64:
        body = zlib.decompress(base64.b64decode(text))
    elif row["body_encoding"] == SEALED:
        if sealer is None:
            raise RuntimeError(f"a sealed answer to {HEADER} is replayed only with its sealer")
        body = sealer.open(text).encode()
    else:
        body = text.encode()
    headers = {**CACHE_HEADERS, "ETag": etag_of(body), REPLAYED: "true"}
    if row["location"]:
        headers["Location"] = row["location"]
    return web.Response(status=int(row["status"]), body=body, headers=headers,
                        content_type=row["content_type"] or "application/json")


async def idempotent(request: Any, store: IdempotencyStore,
                     run: Callable[[], Awaitable[web.StreamResponse]], *, also: Any = None,
                     sealer: Sealer | None = None) -> web.StreamResponse:
    """``await run()`` once per ``Idempotency-Key`` of ``request`` (a plug-in API Request);
    ``also``: more of the request that makes it the same (a route's query), beside its
    method, path, caller and body (a raw body counts by its SHA-256); ``sealer``: the
    answer holds a secret, kept sealed with it."""
    key = request.headers.get(HEADER)
    if key is None:
        return await run()
    if not _KEY.fullmatch(key):
        raise BadRequest(BAD_KEY.format(key=key[:80]))
    account = request.account_id
    kept_as = f"{TEST_MODE_PREFIX}{key}" if getattr(request, "test_mode", False) else key
    print_ = fingerprint(request.native.method, request.native.path, request.user,
                         request.body, also)
    token = secrets.token_hex(16)
    row = await store.claim(account, kept_as, print_, time.time(), token)
    if row is not None:
        if row["fingerprint"] != print_:
            raise Unprocessable(OTHER_REQUEST.format(key=key))
        if row["status"] is None:
            raise Conflict(IN_FLIGHT.format(key=key), headers={"Retry-After": "1"})
        return _replay(row, sealer)
    try:
        async with store.heartbeat(account, kept_as, token):
            response = await run()
    except BaseException:  # an error answer, or cancelled: a retry may run it
        await store.release(account, kept_as, token)
        raise
    if not 200 <= response.status < 300:
        await store.release(account, kept_as, token)
    elif (kept := await kept_body(response, sealer)) is None:
        # a streamed or very large answer cannot be replayed: the key is let go, so a
        # retry runs the request again (as without a key), never replays half an answer
        log.warning("the answer to %s %r (%s) is not kept: streamed, or over %d bytes "
                    "(%d compressed)", HEADER, key[:80], request.native.path,
                    MAX_ANSWER_BYTES, MAX_KEPT_BYTES)
        await store.release(account, kept_as, token)
    else:
        try:
            await store.keep(account, kept_as, response, token, kept)
        except Exception:  # the work is done: its answer stands, kept or not
            log.exception("the answer to %s %r could not be kept; a retry after the "
                          "claim's lease runs the request again", HEADER, key[:80])
    return response


async def kept_body(response: web.StreamResponse, sealer: Sealer | None = None
                    ) -> KeptBody | None:
    """How ``response``'s body is kept for replay, or None when it is not: a streamed
    answer, one over :data:`MAX_ANSWER_BYTES`, or one still over :data:`MAX_KEPT_BYTES`
    compressed. A body from :data:`COMPRESS_FROM` bytes on, or not UTF-8 text, is
    compressed (in a thread: a large report takes tens of milliseconds). With ``sealer``
    the body (UTF-8 text) is kept sealed by it, never in clear."""
    if not isinstance(response, web.Response):
        return None
    body = response.body
    if body is None:
        return "", None
    if not isinstance(body, bytes) or len(body) > MAX_ANSWER_BYTES:
        return None
    if sealer is not None:
        with contextlib.suppress(UnicodeDecodeError):
            text = sealer.seal(body.decode())
            return (text, SEALED) if len(text) <= MAX_KEPT_BYTES else None
        return None
    if len(body) < COMPRESS_FROM:
        with contextlib.suppress(UnicodeDecodeError):
            return (body.decode(), None) if len(body) <= MAX_KEPT_BYTES else None
    text = await asyncio.to_thread(_compressed, body)  # ASCII: its length is its bytes
    return (text, ZLIB_BASE64) if len(text) <= MAX_KEPT_BYTES else None


def _compressed(body: bytes) -> str:
    return base64.b64encode(zlib.compress(body, 6)).decode("ascii")
