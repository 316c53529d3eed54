"""Test-mode keys: they reach sandbox projects only, and live keys never reach those.

Over a real server: one person's live and test keys, REST (lists, items, nested
routes), GraphQL and a core route; the other mode's project answers 404 like a
missing one, and the signed-in person (not a key) sees both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from public_api_helpers import SCOPES, Caller, key_of, signed_in
from smtp_server import SmtpServer

from dawserver.keys import DATABASE

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
V1 = "/api/v1"
GRAPHQL = "/api/graphql"


async def test_test_mode_keys_see_sandbox_projects_only_and_live_keys_never_do(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server, "ada@example.org") as (
            app, (person, live)):
        status, made, _ = await person.call("POST", f"/accounts/{person.id}/keys",
                                            {"name": "sandbox", "scopes": SCOPES,
                                             "test": True})
        assert status == 201 and made["key"].startswith("mbk_test_")
        test = Caller(live.base_url, made["key"], person.id, live.http)

        status, sandbox, _ = await test.call("POST", f"{V1}/projects", {"name": "Sandbox"})
        assert status == 201, sandbox
        status, real, _ = await live.call("POST", f"{V1}/projects", {"name": "Real"})
        assert status == 201, real

        _, page, _ = await test.call("GET", f"{V1}/projects")
        assert [p["id"] for p in page["data"]] == [sandbox["id"]]
        _, page, _ = await live.call("GET", f"{V1}/projects")
        assert [p["id"] for p in page["data"]] == [real["id"]]

        for caller, own, other in ((test, sandbox, real), (live, real, sandbox)):
            for path in ("", "/tracks", "/assets", "/bounces"):
                status, _, _ = await caller.call("GET", f"{V1}/projects/{own['id']}{path}")
                assert status == 200, path
                status, problem, _ = await caller.call(
                    "GET", f"{V1}/projects/{other['id']}{path}")
                assert status == 404 and other["id"] in problem["detail"], path
            status, _, _ = await caller.call("PATCH", f"{V1}/projects/{other['id']}",
                                             {"name": "taken"})
            assert status == 404
            status, _, _ = await caller.call("DELETE", f"{V1}/projects/{other['id']}")
            assert status == 404
            # a core route outside /api/v1 answers the same
            status, _, _ = await caller.call("GET", f"/projects/{other['id']}/assets")
            assert status == 404
            status, _, _ = await caller.call("GET", f"/projects/{own['id']}/assets")
            assert status == 200

            query = ("query($id: ID!) { projects { edges { node { id } } } "
                     "project(id: $id) { id } }")
            status, answer, _ = await caller.call(
                "POST", GRAPHQL, {"query": query, "variables": {"id": other["id"]}})
            assert status == 200 and "errors" not in answer, answer
            data = answer["data"]
            assert [e["node"]["id"] for e in data["projects"]["edges"]] == [own["id"]]
            assert data["project"] is None

        # the person signed in (not a key) sees both, and the names are untouched
        _, page, _ = await person.call("GET", f"{V1}/projects")
        assert {p["name"] for p in page["data"]} == {"Sandbox", "Real"}

        # deleting a sandbox project drops its mark
        status, _, _ = await test.call("DELETE", f"{V1}/projects/{sandbox['id']}")
        assert status == 200
        marks = await app[DATABASE].fetch("SELECT object_id FROM api_sandbox")
        assert marks == []


async def test_a_project_a_test_mode_key_makes_outside_v1_is_a_sandbox_project(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server) as (
            app, (person, live), (bob_person, bob)):
        test = await key_of(person, live, SCOPES, test=True)
        made = f"/accounts/{person.id}/projects"
        status, sandbox, _ = await test.call("POST", made, {"name": "Sandbox"})
        assert status == 201, sandbox
        status, real, _ = await live.call("POST", made, {"name": "Real"})
        assert status == 201, real

        assert [p["id"] for p in (await test.call("GET", f"{V1}/projects"))[1]["data"]] \
            == [sandbox["id"]]
        assert [p["id"] for p in (await live.call("GET", f"{V1}/projects"))[1]["data"]] \
            == [real["id"]]
        for caller, own, other in ((test, sandbox, real), (live, real, sandbox)):
            assert (await caller.call("GET", f"{V1}/projects/{own['id']}"))[0] == 200
            assert (await caller.call("GET", f"{V1}/projects/{other['id']}"))[0] == 404
            assert (await caller.call("GET", f"/projects/{other['id']}/assets"))[0] == 404
        # another account's ids: Bob's key reaches neither, nor makes one in Ada's account
        for project in (sandbox, real):
            assert (await bob.call("GET", f"{V1}/projects/{project['id']}"))[0] == 404
        status, _, _ = await bob.call("POST", made, {"name": "Intruder"})
        assert status == 404
        marks = await app[DATABASE].fetch("SELECT account_id, object_id FROM api_sandbox")
        assert [(m["account_id"], m["object_id"]) for m in marks] == [
            (person.id, sandbox["id"])]


async def test_a_test_mode_key_makes_only_test_mode_keys(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server, "ada@example.org") as (
            _app, (person, live)):
        test = await key_of(person, live, [*SCOPES, "account.admin"], test=True)
        keys = f"/accounts/{person.id}/keys"
        status, problem, _ = await test.call("POST", keys, {"name": "out", "scopes": SCOPES})
        assert status == 403 and "test-mode" in problem["error"], problem
        status, made, _ = await test.call("POST", keys, {"name": "in", "scopes": SCOPES,
                                                         "test": True})
        assert status == 201 and made["key"].startswith("mbk_test_"), made
        admin = await key_of(person, live, [*SCOPES, "account.admin"])
        status, made, _ = await admin.call("POST", keys, {"name": "ok", "scopes": SCOPES})
        assert status == 201 and made["key"].startswith("mbk_live_"), made
