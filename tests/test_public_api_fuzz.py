"""Schemathesis fuzzes ``/api/v1`` (the plug-ins' routes too) and ``/api/graphql``
(queries and mutations) of a real server.

A person with an API key of every public-API scope owns a project with a track, a
clip and an uploaded asset; most requests name that project so they reach the
handlers. Every REST answer must be no server error, with a documented status, content
type (problem details for errors) and body; every GraphQL query generated from the
schema (hypothesis-graphql) answers 200 with no masked server error.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from accounts_helpers import TEST_HASHING
from aiohttp import web
from hypothesis import HealthCheck, settings
from loopback import free_port
from public_api_helpers import SCOPES, wav_bytes
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.service import Actor
from dawserver.app import create_app
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ACCOUNTS, STORE
from dawserver.projects import import_session
from dawserver.public_api.graphql.route import GRAPHQL_PATH
from dawserver.public_api.openapi_v1 import OPENAPI_V1_PATH
from dsp_core.session import Clip, Session, Track

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = int(os.environ.get("DAW_FUZZ_EXAMPLES", "12"))
#: The plug-ins' read scopes too, so their /api/v1 routes reach their handlers.
FUZZ_SCOPES = [*SCOPES, "distribution.read", "distribution.royalties", "marketplace.read",
               "marketplace.library", "social.read", "analytics.read"]


class Server:
    """A real server in its own thread: a person, their key, their project."""

    def __init__(self, data_dir: Path) -> None:
        self.config = ServerConfig(port=free_port(), data_dir=data_dir,
                                   password_hashing=TEST_HASHING)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="public-api-fuzz")
        self.project = self.key = self.asset = ""
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
        app = create_app(self.config)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.config.port).start()
        service = app[ACCOUNTS]
        person = await service.create_person("fuzz@example.org", "correct horse battery",
                                              "Fuzz")
        # the paid plan's 1,000 requests a second is past what the fuzz can send, so no
        # example meets a 429 from the free plan's 100 (as on an idle CI machine it did)
        await service.store.update_account(person.account_id, plan="paid")
        self.key, _ = await service.create_key(Actor(person.account_id), person.account_id,
                                               "fuzz", FUZZ_SCOPES)
        source = self.config.data_dir / "tone.wav"
        source.write_bytes(wav_bytes(0.5))
        session = Session(name="Fuzz", tracks=[Track("t1", clips=[Clip(str(source), 0, 4000,
                                                                        id="c1")])])
        self.project = (await import_session(app[STORE], session)).project_id
        await service.store.own_project(person.account_id, self.project)
        asset = await app[ASSETS].ingest_stream(_chunks(wav_bytes()), project_id=self.project,
                                                name="a.wav")
        self.asset = asset.id
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


async def _chunks(data: bytes):  # noqa: ANN202 - an async iterator of one chunk
    yield data


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("public-api-fuzz"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api_schema(server: Server):  # noqa: ANN201 - schemathesis' schema
    return schemathesis.openapi.from_url(server.config.base_url + OPENAPI_V1_PATH)


schema = schemathesis.pytest.from_fixture("api_schema")
_turn = itertools.count()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_v1_route_answers_as_its_openapi_document_says(case, server: Server) -> None:  # noqa: ANN001
    parameters = case.path_parameters or {}
    deletes_it = case.method.upper() == "DELETE"
    if "project_id" in parameters and next(_turn) % 4 and not deletes_it:
        # (the real project is never deleted: the other routes would have none to reach)
        parameters["project_id"] = server.project
        if "asset_id" in parameters:
            parameters["asset_id"] = server.asset
        if "track_id" in parameters:
            parameters["track_id"] = "t1"
    case.call_and_validate(base_url=server.config.base_url,
                           headers={"Authorization": f"Bearer {server.key}"}, checks=CHECKS)


@pytest.fixture(scope="module")
def graphql_schema(server: Server):  # noqa: ANN201 - schemathesis' schema
    return schemathesis.graphql.from_url(server.config.base_url + GRAPHQL_PATH,
                                         headers={"Authorization": f"Bearer {server.key}"})


graphql = schemathesis.pytest.from_fixture("graphql_schema")


@graphql.parametrize()
@settings(max_examples=EXAMPLES * 4, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_graphql_field_answers_without_a_server_error(case, server: Server) -> None:  # noqa: ANN001
    answer = case.call(base_url=server.config.base_url,
                       headers={"Authorization": f"Bearer {server.key}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) <= {"data", "errors"}, body
    messages = [error["message"] for error in body.get("errors") or []]
    # an error is the client's (a limit, a bad cursor), never a masked server failure
    assert "Unexpected error." not in messages, (case.body, messages)
