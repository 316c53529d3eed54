"""A local store that speaks the drop protocol and fails at random (for tests and demos).

It checks what a real store checks (token, file checksums, well-formed ERN that
references only uploaded files) and deduplicates by message id. It records every
request per message (:class:`FakeStoreStats`), so a test can tell a message
accepted once from one sent twice and deduplicated, and check that a re-send only
followed a lost acknowledgement. Failures: a 503 before doing anything, or doing
the work and then dropping the connection before answering (a lost acknowledgement).
``GET /drop/{message_id}`` tells whether a message was accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from lxml import etree

from business.distribution.ddex import ERN_NS


@dataclass
class FakeStoreStats:
    """What the store saw (counters per message id where it matters)."""

    requests: int = 0
    failed_503: int = 0
    #: Answers dropped after the work was done (uploads and completes).
    dropped: int = 0
    #: Completes of a message already accepted (answered "duplicate", changing nothing).
    duplicates: int = 0
    #: Completes that reached the store's logic (past auth and random 503s), per message.
    completes: Counter = field(default_factory=Counter)
    #: Each time a complete made the store accept a message (a message id appears once
    #: unless the store's deduplication is broken).
    acceptances: list[str] = field(default_factory=list)
    #: Answers to completes dropped after the work was done, per message.
    lost_acks: Counter = field(default_factory=Counter)
    #: Status probes answered "accepted", per message.
    probed_accepted: Counter = field(default_factory=Counter)


class FakeStore:
    """An aiohttp drop-protocol server on 127.0.0.1 (an async context manager)."""

    def __init__(self, *, token: str = "secret", fail_rate: float = 0.0,
                 drop_rate: float = 0.0, seed: int | None = None, delay_s: float = 0.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.token = token
        self.fail_rate = fail_rate
        self.drop_rate = drop_rate
        self.delay_s = delay_s
        self._rng = random.Random(seed)
        self._ssl = ssl_context
        self.files: dict[str, dict[str, str]] = {}
        self.accepted: dict[str, dict[str, str]] = {}
        self.stats = FakeStoreStats()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_put("/drop/{message_id}/{name}", self._put)
        app.router.add_post("/drop/{message_id}/complete", self._complete)
        app.router.add_get("/drop/{message_id}", self._status)
        return app

    async def start(self) -> None:
        """Listen on a free loopback port; :attr:`url` says where."""
        if self._runner is not None:
            raise RuntimeError("fake store is already started")
        self._runner = web.AppRunner(self._app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if self._ssl else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _gate(self, request: web.Request) -> web.Response | None:
        self.stats.requests += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        if self._rng.random() < self.fail_rate:
            self.stats.failed_503 += 1
            return web.json_response({"error": "store busy, try again"}, status=503)
        return None

    def _maybe_drop(self, request: web.Request, complete_of: str = "") -> None:
        if self._rng.random() < self.drop_rate:
            self.stats.dropped += 1
            if complete_of:
                self.stats.lost_acks[complete_of] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # the client never sees an answer

    async def _put(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused:
            return refused
        data = await request.read()
        digest = hashlib.sha256(data).hexdigest()
        if request.headers.get("X-Content-SHA256") not in (None, digest):
            return web.json_response({"error": "checksum mismatch, upload again"}, status=400)
        message_id, name = request.match_info["message_id"], request.match_info["name"]
        self.files.setdefault(message_id, {})[name] = digest
        self._maybe_drop(request)
        return web.json_response({"status": "stored", "sha256": digest}, status=201)

    async def _complete(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused:
            return refused
        message_id = request.match_info["message_id"]
        body = await request.read()  # a sender that died mid-request never gets further
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.stats.completes[message_id] += 1
        if message_id in self.accepted:
            self.stats.duplicates += 1
            self._maybe_drop(request, message_id)
            return web.json_response({"status": "duplicate", "message_id": message_id})
        try:
            root = etree.fromstring(body)
        except etree.XMLSyntaxError as exc:
            return web.json_response({"error": f"not well-formed XML: {exc}"}, status=400)
        if root.tag != f"{{{ERN_NS}}}NewReleaseMessage":
            return web.json_response({"error": f"unexpected root {root.tag}"}, status=400)
        if root.findtext("MessageHeader/MessageId") != message_id:
            return web.json_response({"error": "MessageId differs from the drop folder"},
                                     status=400)
        action = request.headers.get("X-Action", "new")
        if action != "takedown":
            uploaded = self.files.get(message_id, {})
            for file in root.iter("File"):
                uri, digest = file.findtext("URI"), file.findtext("HashSum/HashSumValue")
                if uploaded.get(uri or "") != digest:
                    return web.json_response(
                        {"error": f"file {uri} missing or checksum differs; upload it"},
                        status=409)
        self.accepted[message_id] = {
            "action": action,
            "icpn": root.findtext("ReleaseList/Release/ReleaseId/ICPN") or "",
            "title": root.findtext("ReleaseList/Release/DisplayTitleText") or "",
        }
        self.stats.acceptances.append(message_id)
        self._maybe_drop(request, message_id)
        return web.json_response({"status": "accepted", "message_id": message_id}, status=201)

    async def _status(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused:
            return refused
        message_id = request.match_info["message_id"]
        state = "accepted" if message_id in self.accepted else "unknown"
        if state == "accepted":
            self.stats.probed_accepted[message_id] += 1
        return web.json_response({"message_id": message_id, "status": state})
