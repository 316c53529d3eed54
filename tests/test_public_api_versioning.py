"""Versioning of the public API: the compatibility check, the snapshot, Sunset headers."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dawserver.openapi import openapi_document
from dawserver.plugin_api import (
    Model,
    Permission,
    Principal,
    Role,
    Route,
    Sunset,
    hookimpl,
)
from dawserver.plugins import install, load_plugins
from dawserver.public_api.compat import breaking_changes, check, major

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_openapi_compat.py"
SNAPSHOT = ROOT / "docs" / "openapi-v1.json"


def snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text())


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, check=False)


def test_the_served_document_is_compatible_with_the_committed_snapshot() -> None:
    done = run_script()
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_path_version_is_the_documents_major_version() -> None:
    document = snapshot()
    assert major(document) == 1
    assert all(path.startswith("/api/v1/") for path in document["paths"])


def test_a_removed_path_operation_or_answer_field_is_incompatible() -> None:
    old = snapshot()
    new = copy.deepcopy(old)
    del new["paths"]["/api/v1/projects/{project_id}/tracks/{track_id}"]
    del new["paths"]["/api/v1/projects/{project_id}"]["delete"]
    del new["components"]["schemas"]["Clip"]["properties"]["fade_in"]
    found = check(old, new)
    assert "/api/v1/projects/{project_id}/tracks/{track_id}: path removed" in found
    assert "DELETE /api/v1/projects/{project_id}: operation removed" in found
    # the clip is nested two levels down, in a page of tracks
    assert "GET /api/v1/projects/{project_id}/tracks 200.data[].clips[].fade_in: answer " \
           "field removed" in found


def test_a_new_required_request_field_or_parameter_is_incompatible() -> None:
    old = snapshot()
    new = copy.deepcopy(old)
    new["components"]["schemas"]["NewProject"]["properties"]["genre"] = {"type": "string"}
    new["components"]["schemas"]["NewProject"]["required"].append("genre")
    new["paths"]["/api/v1/projects"]["get"]["parameters"].append(
        {"name": "team", "in": "query", "required": True, "schema": {"type": "string"}})
    assert sorted(check(old, new)) == [
        "GET /api/v1/projects: new required query parameter 'team'",
        "POST /api/v1/projects body.genre: new required request field"]


def test_a_retyped_answer_field_is_incompatible() -> None:
    old = snapshot()
    new = copy.deepcopy(old)
    new["components"]["schemas"]["Project"]["properties"]["name"] = {"type": "integer"}
    assert any("name: type ['string'] became ['integer']" in p for p in check(old, new))


def test_additions_are_compatible() -> None:
    old = snapshot()
    new = copy.deepcopy(old)
    new["paths"]["/api/v1/made-up-widgets"] = {"get": {"responses": {"200": {}}}}
    new["components"]["schemas"]["Project"]["properties"]["genre"] = {"type": "string"}
    new["components"]["schemas"]["NewProject"]["properties"]["genre"] = {"type": "string"}
    new["info"]["version"] = "1.1.0"
    assert check(old, new) == []


def test_a_major_version_bump_allows_incompatible_changes() -> None:
    old = snapshot()
    new = copy.deepcopy(old)
    new["paths"].clear()
    assert breaking_changes(old, new)
    new["info"]["version"] = "2.0.0"
    assert check(old, new) == []


def test_the_script_fails_on_an_incompatible_snapshot_and_passes_on_additions(
        tmp_path: Path) -> None:
    # a snapshot with a field the server no longer answers: the server "removed" it
    old = snapshot()
    old["components"]["schemas"]["Project"]["properties"]["colour"] = {"type": "string"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    done = run_script("--snapshot", str(path))
    assert done.returncode == 1
    assert "Project" not in done.stdout or "colour: answer field removed" in done.stdout
    assert "without a version bump" in done.stderr
    # a snapshot missing a path the server now serves: an addition
    old = snapshot()
    del old["paths"]["/api/v1/projects/{project_id}/tracks/{track_id}"]
    path.write_text(json.dumps(old))
    done = run_script("--snapshot", str(path), "--write")
    assert done.returncode == 0, done.stderr
    assert json.loads(path.read_text()) == snapshot()


OLD = Permission("old.read", "read the old thing", Role.VIEWER)


class Gone(Model):
    ok: bool


async def old_thing(request: Any) -> Gone:
    """The old way."""
    return Gone(ok=True)


class OldPlugin:
    PLUGIN_NAME = "old"
    sunset = Sunset(deprecated_at=1767225600, sunset_at=1798761600,
                    link="https://example.org/changelog#old")

    @hookimpl
    def permissions(self) -> list[Permission]:
        return [OLD]

    @hookimpl
    def routes(self, context: object) -> list[Route]:
        return [Route(method="GET", path="/old", handler=old_thing, permission=OLD,
                      response=Gone, sunset=self.sunset, problem=True),
                Route(method="GET", path="/new", handler=old_thing, permission=OLD,
                      response=Gone)]


@pytest.mark.asyncio
async def test_a_sunset_route_announces_its_deprecation_on_every_answer(tmp_path: Path
                                                                        ) -> None:
    app = web.Application()
    config = {"data_dir": tmp_path, "plugins": {"distribution": False}}
    install(app, config, manager=load_plugins(config, entry_points=False, extra=[OldPlugin()]),
            identify=lambda request: Principal("acc", request.headers.get("X-Role", "owner"),
                                               "ada") if "X-Role" in request.headers else None)
    async with TestClient(TestServer(app)) as client:
        async with client.get("/old", headers={"X-Role": "viewer"}) as answer:
            assert answer.status == 200
            assert answer.headers["Deprecation"] == "@1767225600"
            assert answer.headers["Sunset"] == "Fri, 01 Jan 2027 00:00:00 GMT"
            assert answer.headers["Link"] == '<https://example.org/changelog#old>; ' \
                                             'rel="deprecation"'
        async with client.get("/old") as answer:  # errors carry it too, as problems
            assert answer.status == 401 and answer.headers["Deprecation"] == "@1767225600"
            assert answer.content_type == "application/problem+json"
            assert (await answer.json())["status"] == 401
        async with client.get("/new", headers={"X-Role": "viewer"}) as answer:
            assert "Deprecation" not in answer.headers and "Sunset" not in answer.headers
        async with client.get("/new") as answer:
            assert answer.content_type == "application/json"
            assert "error" in await answer.json()
    document = openapi_document(app)
    assert document["paths"]["/old"]["get"]["deprecated"] is True
    assert "deprecated" not in document["paths"]["/new"]["get"]
    problem = document["paths"]["/old"]["get"]["responses"]["401"]["content"]
    assert list(problem) == ["application/problem+json"]
