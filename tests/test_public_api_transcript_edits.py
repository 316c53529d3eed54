"""Undo and redo of transcript text edits through the public API (``/api/v1``'s
``transcript-edits/undo|redo`` and GraphQL's ``undoTranscriptEdit``/``redoTranscriptEdit``):
the studio's undo history, REST's refusals, 409 when there is nothing to take, and one
step per ``Idempotency-Key``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from public_api_helpers import Caller, two_people
from smtp_server import SmtpServer
from test_public_api_graphql import gql
from transcript_seed import transcribed_project

from accounts.service import Actor
from dawserver.keys import ACCOUNTS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
UNDO = """
mutation Undo($project: ID!, $key: String) {
  undoTranscriptEdit(projectId: $project, idempotencyKey: $key) { clips canUndo canRedo }
}"""
REDO = """
mutation Redo($project: ID!, $key: String) {
  redoTranscriptEdit(projectId: $project, idempotencyKey: $key) { clips canUndo canRedo }
}"""


def v1(project_id: str, path: str) -> str:
    return f"/api/v1/projects/{project_id}{path}"


async def texts(caller: Caller, project_id: str) -> dict[str, str]:
    """Each clip's transcript text, by clip id, as REST lists them."""
    status, page, _ = await caller.call("GET", v1(project_id, "/transcripts?limit=200"))
    assert status == 200, page
    return {t["id"]: t["text"] for t in page["data"]}


async def cut(caller: Caller, project_id: str, clip_id: str, *indices: int) -> list[str]:
    """Delete the words at ``indices`` of ``clip_id``; the clips that play the rest."""
    status, edited, _ = await caller.call("POST", v1(project_id,
                                                     f"/transcripts/{clip_id}/edit"),
                                          {"delete": list(indices)})
    assert status == 200, edited
    return edited["clips"]


def refused(answer: dict[str, Any]) -> tuple[str, int, str]:
    """The one error's code, status and message of a refused mutation."""
    assert answer["data"] is None, answer
    [error] = answer["errors"]
    return error["extensions"]["code"], error["extensions"]["status"], error["message"]


async def test_undo_and_redo_walk_the_projects_text_edits_last_first(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Talk",
                                            ("one", "two", "three"), ("four", "five"))
        before = await texts(ada, project)
        # nothing to undo or redo yet: a 409 problem that says why, and GraphQL's CONFLICT
        for direction in ("undo", "redo"):
            status, problem, headers = await ada.call(
                "POST", v1(project, f"/transcript-edits/{direction}"))
            assert status == 409, problem
            assert headers["Content-Type"].startswith("application/problem+json")
            assert f"no text edit to {direction}" in problem["detail"]
            assert project in problem["detail"]
        code, status, message = refused(await gql(ada, UNDO, {"project": project}))
        assert (code, status) == ("CONFLICT", 409) and "no text edit to undo" in message

        first = await cut(ada, project, "speech", 1)
        one_cut = await texts(ada, project)
        assert texts_of(one_cut, first) == "one three"
        second = await cut(ada, project, "speech-2", 0)
        both_cut = await texts(ada, project)
        assert texts_of(both_cut, second) == "five"

        # the last edit is undone first, though it edited another clip
        status, step, _ = await ada.call("POST", v1(project, "/transcript-edits/undo"))
        assert status == 200, step
        assert (step["can_undo"], step["can_redo"]) == (True, True)
        assert await texts(ada, project) == one_cut and step["clips"] == sorted(one_cut)
        undone = await gql(ada, UNDO, {"project": project})
        assert undone.get("errors") is None, undone
        assert undone["data"]["undoTranscriptEdit"] == {
            "clips": sorted(before), "canUndo": False, "canRedo": True}
        assert await texts(ada, project) == before
        code, status, _ = refused(await gql(ada, UNDO, {"project": project}))
        assert (code, status) == ("CONFLICT", 409)

        redone = await gql(ada, REDO, {"project": project})
        assert redone["data"]["redoTranscriptEdit"] == {
            "clips": sorted(one_cut), "canUndo": True, "canRedo": True}
        assert await texts(ada, project) == one_cut
        status, step, _ = await ada.call("POST", v1(project, "/transcript-edits/redo"))
        assert status == 200 and (step["can_undo"], step["can_redo"]) == (True, False)
        assert await texts(ada, project) == both_cut
        status, problem, _ = await ada.call("POST", v1(project, "/transcript-edits/redo"))
        assert status == 409 and "no text edit to redo" in problem["detail"]


def texts_of(found: dict[str, str], clips: list[str]) -> str:
    """The words the clips play, in order (clips gone or silent add nothing)."""
    return " ".join(found[c] for c in clips if found.get(c))


async def test_an_undo_retried_under_its_key_takes_back_one_edit_only(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Talk",
                                            ("one", "two", "three"))
        before = await texts(ada, project)
        await cut(ada, project, "speech", 2)
        one_cut = await texts(ada, project)
        await cut(ada, project, "speech", 1)
        key = {"Idempotency-Key": "undo-1"}
        status, first, headers = await ada.call("POST", v1(project, "/transcript-edits/undo"),
                                                headers=key)
        assert status == 200 and "Idempotent-Replayed" not in headers
        status, again, headers = await ada.call("POST", v1(project, "/transcript-edits/undo"),
                                                headers=key)
        assert status == 200 and again == first and headers["Idempotent-Replayed"] == "true"
        assert await texts(ada, project) == one_cut  # one edit undone, not both
        # the key names this request only: a redo under it is another request
        status, _, _ = await ada.call("POST", v1(project, "/transcript-edits/redo"),
                                      headers=key)
        assert status == 422

        # GraphQL: the same idempotencyKey answers the first undo again
        variables = {"project": project, "key": "gql-undo-1"}
        once = await gql(ada, UNDO, variables)
        twice = await gql(ada, UNDO, variables)
        assert once.get("errors") is None and twice == once, (once, twice)
        assert once["data"]["undoTranscriptEdit"]["canUndo"] is False
        assert await texts(ada, project) == before
        # the key names the project too: sent for another project it is another request
        other = await transcribed_project(app, ada.person_id, tmp_path, "Other", ("x", "y"))
        await cut(ada, other, "speech", 0)
        other_cut = await texts(ada, other)
        code, status, message = refused(await gql(ada, UNDO, {**variables, "project": other}))
        assert (code, status) == ("BAD_USER_INPUT", 422) and "another request" in message
        assert await texts(ada, other) == other_cut  # not undone, nor answered as undone


async def test_undo_and_redo_are_refused_as_the_edit_is(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Ada's",
                                            ("one", "two", "three"))
        unshared = await transcribed_project(app, ada.person_id, tmp_path, "Private", ("x",))
        await app[ACCOUNTS].store.grant(project, bob.person_id, "viewer", ada.person_id)
        await cut(ada, project, "speech", 1)
        edited = await texts(ada, project)
        reader = Caller(ada.base_url, (await app[ACCOUNTS].create_key(
            Actor(ada.person_id), ada.person_id, "read", ["project.read"]))[0],
            ada.person_id, ada.http)

        for direction, mutation in (("undo", UNDO), ("redo", REDO)):
            path = f"/transcript-edits/{direction}"
            # a viewer may read but not undo
            status, problem, _ = await bob.call("POST", v1(project, path))
            assert status == 403, problem
            assert refused(await gql(bob, mutation, {"project": project}))[:2] == (
                "FORBIDDEN", 403)
            # a key without project.edit is refused for its scope, on its own project
            status, problem, _ = await reader.call("POST", v1(project, path))
            assert status == 403 and "project.edit" in problem["detail"], problem
            code, status, message = refused(await gql(reader, mutation, {"project": project}))
            assert (code, status) == ("FORBIDDEN", 403) and "project.edit" in message
            # another account's project answers as an unknown one
            foreign, _, _ = await bob.call("POST", v1(unshared, path))
            unknown, _, _ = await bob.call("POST", v1("nope", path))
            assert foreign == unknown == 404
            assert refused(await gql(bob, mutation, {"project": unshared}))[:2] == (
                "NOT_FOUND", 404)
        # none of them took anything back
        assert await texts(ada, project) == edited
        status, step, _ = await ada.call("POST", v1(project, "/transcript-edits/undo"))
        assert status == 200 and step["can_undo"] is False
