"""A project's transcription jobs paged in GraphQL (``transcriptionJobsConnection``): every
job once, in REST's order, with REST's cursors bound to their project's list; v1's whole
``transcriptionJobs`` list deprecated and costed as its largest page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from public_api_helpers import two_people
from smtp_server import SmtpServer
from test_public_api_graphql import gql
from test_public_api_graphql_transcripts import nodes, walk
from transcript_seed import queued_job, transcribed_project

from dawserver.keys import DATABASE
from dawserver.public_api.graphql.limits import MAX_COST, UNPAGED

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
JOBS = """
query Jobs($id: ID!, $first: Int!, $after: String, $status: String) {
  project(id: $id) {
    transcriptionJobsConnection(first: $first, after: $after, status: $status) {
      edges { cursor node { id status } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
DEPRECATION = """
{ __type(name: "Project") { fields(includeDeprecated: true) {
    name isDeprecated deprecationReason } } }"""


def connection(data: dict[str, Any]) -> dict[str, Any]:
    return data["project"]["transcriptionJobsConnection"]


async def test_jobs_page_every_job_once_in_rests_order_with_rests_cursors(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Jobs", ("a",))
        other = await transcribed_project(app, ada.person_id, tmp_path, "Other", ("b",))
        bobs = await transcribed_project(app, bob.person_id, tmp_path, "Bob's", ("c",))
        made = [await queued_job(app, project) for _ in range(5)]
        await queued_job(app, other)
        await queued_job(app, bobs)
        jobs_path = f"/api/v1/projects/{project}/transcription-jobs"
        status, cancelled, _ = await ada.call("POST", f"{jobs_path}/{made[2]}/cancel")
        assert status == 200, cancelled

        pages = await walk(ada, JOBS, {"id": project, "first": 2}, connection)
        assert [len(p) for p in pages] == [2, 2, 1]
        _, rest, _ = await ada.call("GET", f"{jobs_path}?limit=200")
        assert [j["id"] for p in pages for j in p] == [j["id"] for j in rest["data"]]
        assert sorted(j["id"] for p in pages for j in p) == sorted(made)

        # status filters, as REST's does
        only = await gql(ada, JOBS, {"id": project, "first": 10, "status": "cancelled"})
        assert nodes(connection(only["data"])) == [{"id": made[2], "status": "cancelled"}]
        lost = await gql(ada, JOBS, {"id": project, "first": 10, "status": "lost"})
        assert lost["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        # REST's cursor goes on in GraphQL, and GraphQL's in REST
        _, first_rest, _ = await ada.call("GET", f"{jobs_path}?limit=2")
        after_rest = await gql(ada, JOBS, {"id": project, "first": 2,
                                           "after": first_rest["next_cursor"]})
        assert nodes(connection(after_rest["data"])) == pages[1]
        first = await gql(ada, JOBS, {"id": project, "first": 2})
        cursor = connection(first["data"])["pageInfo"]["endCursor"]
        status, rest_after, _ = await ada.call("GET", f"{jobs_path}?limit=2&cursor={cursor}")
        assert status == 200 and [j["id"] for j in rest_after["data"]] == [
            j["id"] for j in pages[1]]

        # a cursor of another project's jobs (Ada's own or Bob's), or of the project's
        # transcripts, is refused on this list
        bob_first = await gql(bob, JOBS, {"id": bobs, "first": 1})
        bob_cursor = connection(bob_first["data"])["pageInfo"]["endCursor"]
        _, transcripts, _ = await ada.call(
            "GET", f"/api/v1/projects/{other}/transcripts?limit=1")
        other_first = await gql(ada, JOBS, {"id": other, "first": 1})
        other_cursor = connection(other_first["data"])["pageInfo"]["endCursor"]
        assert None not in (bob_cursor, other_cursor)
        for caller, project_id, foreign in ((ada, project, bob_cursor),
                                            (ada, project, other_cursor),
                                            (bob, bobs, cursor)):
            refused = await gql(caller, JOBS, {"id": project_id, "first": 1,
                                               "after": foreign})
            [error] = refused["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", refused
            assert "not one this list gave out" in error["message"]
        assert transcripts["next_cursor"] is None  # (one transcript: no cursor to misuse)

        # the page size is bounded
        for size in (0, 201):
            too_big = await gql(ada, JOBS, {"id": project, "first": size})
            assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_v1s_whole_job_list_answers_as_before_deprecated_and_costed(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Old", ("a",))
        made = [await queued_job(app, project) for _ in range(3)]
        # made within one millisecond, the API's precision, in the reverse of id order:
        # the whole list kept the database's order, the pages the API's (time, then id)
        for n, job_id in enumerate(sorted(made, reverse=True)):
            await app[DATABASE].execute("UPDATE jobs SET created_at = ? WHERE id = ?",
                                        1_000_000.0001 + n / 10_000_000, job_id)
        old = await gql(ada, 'query($id: ID!) { project(id: $id) { transcriptionJobs { id '
                             'status } } }', {"id": project})
        assert old.get("errors") is None, old
        paged = await gql(ada, JOBS, {"id": project, "first": 200})
        assert old["data"]["project"]["transcriptionJobs"] == nodes(connection(paged["data"]))
        assert sorted(j["id"] for j in old["data"]["project"]["transcriptionJobs"]) == \
            sorted(made)

        fields = (await gql(ada, DEPRECATION))["data"]["__type"]["fields"]
        reasons = {f["name"]: f["deprecationReason"] for f in fields if f["isDeprecated"]}
        assert reasons["transcriptionJobs"] == (
            "Use transcriptionJobsConnection(first, after), which pages them. This whole "
            "list stays in v1 and counts as 200 items in the query cost.")
        assert "transcriptionJobsConnection" not in reasons

        # the whole list counts as the largest page: fifty projects' jobs through it are
        # over the limit (20 jobs a list before), through default pages they are not
        whole = await gql(ada, "{ projects(first: 50) { edges { node { transcriptionJobs { "
                               "id status } } } } }")
        [too_costly] = whole["errors"]
        assert too_costly["extensions"]["code"] == "QUERY_TOO_COSTLY"
        assert too_costly["extensions"]["cost"] == \
            1 + 50 * (1 + 1 + 1 + UNPAGED["transcriptionJobs"] * 2) > MAX_COST
        pages = await gql(ada, "{ projects(first: 50) { edges { node { "
                               "transcriptionJobsConnection { edges { node { id status } } } "
                               "} } } }")
        assert pages.get("errors") is None, pages
