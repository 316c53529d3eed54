"""Schemathesis fuzzes every route of a real server against its own OpenAPI document.

The server runs on loopback (SQLite store, the engine on, the built-in plug-ins) with
one project holding a clip of real audio. Requests carry valid tokens: an
administrator's on server and project routes (it opens any project), the project
owner's on account routes. Most requests name the real project, so they get past
the 404 and into the handlers. Every answer must be no server error, with a
documented status, content type and body.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import schemathesis
import soundfile as sf
from aiohttp import web
from hypothesis import HealthCheck, settings
from loopback import free_port
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dawserver.app import create_app
from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.openapi import OPENAPI_PATH
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
#: Examples per route: enough to reach every handler with valid and invalid input
#: while the whole run stays near a minute; ``DAW_FUZZ_EXAMPLES`` asks for a deeper run.
EXAMPLES = int(os.environ.get("DAW_FUZZ_EXAMPLES", "12"))


class Server:
    """A real server in a thread of its own, with a project and tokens for it."""

    def __init__(self, data_dir: Path) -> None:
        self.config = ServerConfig(port=free_port(), data_dir=data_dir)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="conformance-server")
        self.project = ""
        self.admin = self.owner = ""
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        audio = self.config.data_dir / "tone.flac"
        audio.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(48000) / 48000
        sf.write(audio, (0.25 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)
        app = create_app(self.config)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.config.port).start()
        session = Session(name="Fuzz", tracks=[Track("t1", clips=[Clip(str(audio), 0, 48000)])])
        self.project = (await import_session(app[STORE], session)).project_id
        self.admin = app[TOKENS].issue("*", "owner", "root")
        self.owner = app[TOKENS].issue(self.project, "owner", "olga")
        self._stop = asyncio.Event()
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(60)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)

    @property
    def base_url(self) -> str:
        return self.config.base_url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("conformance"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api_schema(server: Server):  # noqa: ANN201 - schemathesis' schema
    return schemathesis.openapi.from_url(server.base_url + OPENAPI_PATH)


schema = schemathesis.pytest.from_fixture("api_schema")
_turn = itertools.count()


#: One test fuzzes every operation of the document (over 200, twelve examples each): about
#: three minutes on a quiet two-core machine, eight on a loaded one; the suite's 300 s
#: limit is per test, so this one gets its own, still a bound on a hang.
@pytest.mark.timeout(1200)
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_route_answers_as_its_openapi_document_says(case, server: Server) -> None:  # noqa: ANN001
    parameters = case.path_parameters or {}
    deletes_it = (case.method.upper(), case.operation.path) == ("DELETE", "/projects/{project_id}")
    if "project_id" in parameters and next(_turn) % 4 and not deletes_it:
        # (the real project is never deleted: the other routes would have none to reach)
        parameters["project_id"] = server.project
    on_project = "project_id" in parameters or case.operation.path == "/projects"
    token = server.admin if on_project else server.owner
    case.call_and_validate(base_url=server.base_url,
                           headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
