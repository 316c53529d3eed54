"""Writes of the core through GraphQL mutations and /api/v1 track routes on a running
server: the same scopes, idempotency keys, If-Match and errors as REST, another
account's project a 404, and the schema's SDL served and linked from the docs portal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from public_api_helpers import Caller, two_people
from smtp_server import SmtpServer

from accounts.service import Actor
from dawserver.keys import ACCOUNTS, ROOMS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
GRAPHQL = "/api/graphql"
PROJECT = "id name role"
TRACK = "id name position channels gainDb pan mute"


async def gql(caller: Caller, query: str, **variables: Any) -> dict[str, Any]:
    status, answer, _ = await caller.call("POST", GRAPHQL, {"query": query,
                                                            "variables": variables})
    assert status == 200, answer
    return answer


def failure(answer: dict[str, Any]) -> dict[str, Any]:
    """The one error's extensions (and its message as ``message``)."""
    (error,) = answer["errors"]
    return {**error["extensions"], "message": error["message"]}


async def key_of(app: Any, caller: Caller, scopes: list[str]) -> Caller:
    """Another key of ``caller``'s account, holding ``scopes`` only."""
    key, _ = await app[ACCOUNTS].create_key(Actor(caller.person_id), caller.person_id,
                                            "+".join(scopes), scopes)
    return Caller(caller.base_url, key, caller.person_id, caller.http)


CREATE = f"""mutation($name: String!, $key: String) {{
  createProject(name: $name, idempotencyKey: $key) {{ {PROJECT} }} }}"""
ADD = f"""mutation($p: ID!, $name: String!, $key: String) {{
  addTrack(projectId: $p, name: $name, idempotencyKey: $key) {{ {TRACK} }} }}"""
MIX = f"""mutation($p: ID!, $t: ID!, $gain: Float, $pan: Float, $mute: Boolean) {{
  setTrackMix(projectId: $p, trackId: $t, gainDb: $gain, pan: $pan, mute: $mute) {{ {TRACK} }}
}}"""
RENAME_TRACK = f"""mutation($p: ID!, $t: ID!, $name: String!, $etag: String) {{
  renameTrack(projectId: $p, trackId: $t, name: $name, ifMatch: $etag) {{ {TRACK} }} }}"""
RENAME = f"""mutation($id: ID!, $name: String!) {{
  renameProject(id: $id, name: $name) {{ {PROJECT} }} }}"""
DELETE = "mutation($id: ID!) { deleteProject(id: $id) { id deleted } }"


async def test_graphql_mutations_write_like_rest(tmp_path: Path,
                                                  smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        made = await gql(ada, CREATE, name="Demo", key="create-1")
        project = made["data"]["createProject"]
        assert project["name"] == "Demo" and project["role"] == "owner", made
        again = await gql(ada, CREATE, name="Demo", key="create-1")
        assert again["data"]["createProject"] == project  # replayed, not made twice
        other = failure(await gql(ada, CREATE, name="Other", key="create-1"))
        assert other["code"] == "BAD_USER_INPUT" and other["status"] == 422
        blank = failure(await gql(ada, CREATE, name="   "))
        assert blank["status"] == 422 and blank["fields"][0]["field"] == "name"
        pid = project["id"]

        first = (await gql(ada, ADD, p=pid, name="Bass", key="track-1"))["data"]["addTrack"]
        assert first["name"] == "Bass" and first["position"] == 0 and first["channels"] == 1
        assert (await gql(ada, ADD, p=pid, name="Bass", key="track-1"))["data"][
            "addTrack"] == first
        status, tracks, _ = await ada.call("GET", f"/api/v1/projects/{pid}/tracks")
        assert status == 200 and [t["id"] for t in tracks["data"]] == [first["id"]]

        mixed = await gql(ada, MIX, p=pid, t=first["id"], gain=-6.0, pan=0.5, mute=True)
        assert mixed["data"]["setTrackMix"] == {**first, "gainDb": -6.0, "pan": 0.5,
                                                "mute": True}
        loud = failure(await gql(ada, MIX, p=pid, t=first["id"], gain=30.0))
        assert loud["status"] == 422 and loud["fields"][0]["field"] == "gain_db"
        nothing = failure(await gql(ada, MIX, p=pid, t=first["id"]))
        assert nothing["status"] == 422 and "at least one" in nothing["message"]
        missing = failure(await gql(ada, MIX, p=pid, t="no-such-track", mute=False))
        assert missing["code"] == "NOT_FOUND" and missing["status"] == 404

        stale = failure(await gql(ada, RENAME_TRACK, p=pid, t=first["id"], name="Sub",
                                  etag='"stale"'))
        assert stale["code"] == "PRECONDITION_FAILED" and stale["status"] == 412
        _, _, headers = await ada.call("GET", f"/api/v1/projects/{pid}/tracks/{first['id']}")
        renamed = await gql(ada, RENAME_TRACK, p=pid, t=first["id"], name="Sub",
                            etag=headers["ETag"])
        assert renamed["data"]["renameTrack"]["name"] == "Sub", renamed
        assert (await gql(ada, RENAME, id=pid, name="Single"))["data"]["renameProject"][
            "name"] == "Single"
        status, shown, _ = await ada.call("GET", f"/api/v1/projects/{pid}")
        assert status == 200 and shown["name"] == "Single"

        # another account's project is not there; a key without the scope is refused
        for query, variables in ((RENAME, {"id": pid, "name": "Mine"}),
                                 (ADD, {"p": pid, "name": "Mine"}), (DELETE, {"id": pid})):
            refused = failure(await gql(bob, query, **variables))
            assert refused["code"] == "NOT_FOUND" and refused["status"] == 404, refused
        reader = await key_of(app, ada, ["project.read", "account.read"])
        for query, variables in ((CREATE, {"name": "No"}), (RENAME, {"id": pid, "name": "No"}),
                                 (MIX, {"p": pid, "t": first["id"], "mute": False})):
            refused = failure(await gql(reader, query, **variables))
            assert refused["code"] == "FORBIDDEN" and refused["status"] == 403, refused
            assert "scope" in refused["message"]

        gone = await gql(ada, DELETE, id=pid)
        assert gone["data"]["deleteProject"] == {"id": pid, "deleted": True}
        assert (await gql(ada, "query($id: ID!) { project(id: $id) { id } }", id=pid))[
            "data"]["project"] is None


async def test_tracks_are_added_and_changed_over_rest(tmp_path: Path,
                                                      smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        status, project, _ = await ada.call("POST", "/api/v1/projects", {"name": "Demo"})
        assert status == 201, project
        tracks = f"/api/v1/projects/{project['id']}/tracks"
        status, track, headers = await ada.call("POST", tracks, {"name": "Keys", "channels": 2},
                                                headers={"Idempotency-Key": "k-1"})
        assert status == 201 and track["channels"] == 2, track
        assert headers["Location"] == f"{tracks}/{track['id']}"
        status, replay, headers = await ada.call("POST", tracks, {"name": "Keys",
                                                                  "channels": 2},
                                                 headers={"Idempotency-Key": "k-1"})
        assert status == 201 and replay == track and headers["Idempotent-Replayed"] == "true"

        _, _, headers = await ada.call("GET", f"{tracks}/{track['id']}")
        status, changed, _ = await ada.call("PATCH", f"{tracks}/{track['id']}",
                                            {"gain_db": -3.5, "mute": True},
                                            headers={"If-Match": headers["ETag"]})
        assert status == 200 and changed["gain_db"] == -3.5 and changed["mute"] is True
        status, problem, _ = await ada.call("PATCH", f"{tracks}/{track['id']}", {"pan": 0},
                                            headers={"If-Match": headers["ETag"]})
        assert status == 412 and problem["etag"], problem
        status, problem, _ = await ada.call("PATCH", f"{tracks}/{track['id']}", {})
        assert status == 422 and "at least one" in str(problem), problem
        status, problem, _ = await ada.call("PATCH", f"{tracks}/{track['id']}", {"pan": 2})
        assert status == 422, problem

        assert (await bob.call("POST", tracks, {"name": "Mine"}))[0] == 404
        reader = await key_of(app, ada, ["project.read"])
        assert (await reader.call("POST", tracks, {"name": "No"}))[0] == 403
        assert (await reader.call("PATCH", f"{tracks}/{track['id']}", {"mute": False}))[0] \
            == 403


async def test_the_graphql_schema_is_served_and_linked(tmp_path: Path,
                                                       smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (_, ada, _bob):
        async with ada.http.get(f"{ada.base_url}{GRAPHQL}/schema.graphql") as answer:
            sdl = await answer.text()
            assert answer.status == 200 and answer.content_type == "text/plain"
        assert "type Mutation {" in sdl and "setTrackMix(" in sdl and "type Query {" in sdl
        async with ada.http.get(f"{ada.base_url}/developer/docs") as answer:
            assert f'href="{GRAPHQL}/schema.graphql"' in await answer.text()


async def test_a_track_list_walk_survives_tracks_removed_and_added_before_its_cursor(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """The tracks' cursor names the last track given, not its index: a collaborator
    removing or adding tracks before it between pages skips and repeats none."""
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        status, project, _ = await ada.call("POST", "/api/v1/projects", {"name": "Walk"})
        assert status == 201, project
        tracks = f"/api/v1/projects/{project['id']}/tracks"
        for n in range(8):
            assert (await ada.call("POST", tracks, {"name": f"T{n}"}))[0] == 201
        everyone = [t["id"] for t in (await ada.call("GET", f"{tracks}?limit=200"))[1][
            "data"]]
        _, first, _ = await ada.call("GET", f"{tracks}?limit=3")
        assert [t["id"] for t in first["data"]] == everyone[:3]
        async with app[ROOMS].use(project["id"]) as room:  # a collaborator's edit
            await room.edit(lambda document: document.remove_track(everyone[0]))
        status, second, _ = await ada.call("GET", f"{tracks}?limit=3&cursor="
                                                  f"{first['next_cursor']}")
        assert status == 200 and [t["id"] for t in second["data"]] == everyone[3:6], second
        assert (await ada.call("POST", tracks, {"name": "Late"}))[0] == 201
        async with app[ROOMS].use(project["id"]) as room:  # the cursor's own track
            await room.edit(lambda document: document.remove_track(everyone[5]))
        status, third, _ = await ada.call("GET", f"{tracks}?limit=3&cursor="
                                                 f"{second['next_cursor']}")
        assert status == 200, third
        names = [t["name"] for t in third["data"]]
        assert names == ["T6", "T7", "Late"] and third["next_cursor"] is None, names
        forged = second["next_cursor"].split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAA"
        assert (await ada.call("GET", f"{tracks}?cursor={forged}"))[0] == 400
