"""A GraphQL request runs at most ``MAX_MUTATIONS`` mutations: aliased copies of a write
in one request are refused before any of them runs, with ``TOO_MANY_MUTATIONS``."""

from __future__ import annotations

from pathlib import Path

import pytest
from public_api_helpers import Caller, ids, two_people
from smtp_server import SmtpServer

from dawserver.public_api.graphql.limits import MAX_MUTATIONS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]
GRAPHQL = "/api/graphql"


def creates(count: int, also: str = "") -> str:
    """A mutation of ``count`` aliased ``createProject`` fields (and ``also``)."""
    fields = " ".join(f'p{n}: createProject(name: "Bulk {n}") {{ id }}' for n in range(count))
    return f"mutation {{ {also} {fields} }}"


async def run(caller: Caller, query: str) -> dict:
    status, answer, _ = await caller.call("POST", GRAPHQL, {"query": query})
    assert status == 200, answer
    return answer


async def test_fifty_aliased_mutations_are_refused_and_none_runs(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (_app, ada, _bob):
        before = await ids(ada, "/api/v1/projects")
        answer = await run(ada, creates(50))
        assert answer.get("data") is None
        (error,) = answer["errors"]
        assert error["extensions"] == {"code": "TOO_MANY_MUTATIONS", "count": 50,
                                       "limit": MAX_MUTATIONS}
        assert f"at most {MAX_MUTATIONS}" in error["message"]
        assert await ids(ada, "/api/v1/projects") == before  # nothing was made

        # fragments count where they are spread; __typename is no mutation
        spread = ("fragment Many on Mutation { "
                  + " ".join(f'f{n}: createProject(name: "F {n}") {{ id }}'
                             for n in range(MAX_MUTATIONS)) +
                  " } mutation { ...Many extra: createProject(name: \"X\") { id } }")
        refused = await run(ada, spread)
        assert refused["errors"][0]["extensions"]["count"] == MAX_MUTATIONS + 1

        allowed = await run(ada, creates(MAX_MUTATIONS, also="__typename"))
        assert "errors" not in allowed or not allowed["errors"], allowed
        made = await ids(ada, "/api/v1/projects")
        assert len(made) == len(before) + MAX_MUTATIONS
