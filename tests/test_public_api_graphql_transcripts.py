"""Transcripts and transcription jobs in GraphQL: the same answers as ``/api/v1``, each
project's document and job list read once per query (batched across projects), the
same refusals as REST, ``startTranscription`` idempotent, cost limits on words, and
v1's deprecated whole lists answering as before."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import Person
from public_api_helpers import Caller, two_people
from smtp_server import SmtpServer
from test_public_api_graphql import counted_queries, gql
from transcript_seed import queued_job, transcribed_project

from accounts.service import Actor
from dawserver.keys import ACCOUNTS, DATABASE, ROOMS, STORE
from dawserver.public_api.graphql.limits import UNPAGED
from dawserver.transcription_service import TRANSCRIPTION
from transcription.jobs import FINISHED

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
LISTING = """
{
  projects(first: 10) {
    edges { node {
      id
      transcriptsConnection { edges { node { id language model durationS wordCount text } } }
      again: transcriptsConnection { edges { node { id } } }
      transcript(clipId: "speech") { id wordsConnection { edges { node {
        text startS endS probability } } } }
      transcriptionJobs { id clipId status finished }
    } }
  }
}"""
ONE = """
query One($id: ID!, $job: ID!) {
  project(id: $id) {
    transcriptsConnection { edges { node { id } } }
    transcriptionJob(id: $job) { id clipId }
  }
}"""
TRANSCRIPTS_AND_JOBS = """
{ projects(first: 50) { edges { node {
    id transcriptsConnection { edges { node { id text } } }
    transcriptionJobsConnection(first: 20) { edges { node { id status } } }
} } } }"""
START = """
mutation Start($project: ID!, $clip: ID!, $language: String, $key: String) {
  startTranscription(projectId: $project, clipId: $clip, language: $language,
                     idempotencyKey: $key) {
    id clipId language status progress createdAt transcript { id }
  }
}"""


def nodes(connection: dict[str, Any]) -> list[Any]:
    """The items of one page of a GraphQL connection."""
    return [edge["node"] for edge in connection["edges"]]


@contextmanager
def counted_reads(app: Any) -> Iterator[tuple[Counter[str], list[list[str]], list[list[str]]]]:
    """While the block runs: how often each project's room is opened, and the projects
    of each batched read of documents (``load_many``) and of job lists (``find_many``)."""
    opened: Counter[str] = Counter()
    stored: list[list[str]] = []
    listed: list[list[str]] = []
    rooms, queue = app[ROOMS], app[TRANSCRIPTION].queue
    use, load_many, find_many = rooms.use, rooms.store.load_many, queue.find_many

    def counting_use(project_id: str) -> Any:
        opened[project_id] += 1
        return use(project_id)

    async def counting_load_many(project_ids: list[str]) -> Any:
        stored.append(list(project_ids))
        return await load_many(project_ids)

    async def counting_find_many(account_ids: Any, **kwargs: Any) -> Any:
        listed.append(list(account_ids))
        return await find_many(account_ids, **kwargs)

    rooms.use, rooms.store.load_many, queue.find_many = (
        counting_use, counting_load_many, counting_find_many)
    try:
        yield opened, stored, listed
    finally:
        del rooms.use, rooms.store.load_many, queue.find_many


async def finished(app: Any, project_id: str, job_id: str) -> None:
    """Wait until the job is finished (no Whisper model here: it fails) and its state is
    written into the document."""
    service = app[TRANSCRIPTION]
    async with asyncio.timeout(120):
        while (await service.get(project_id, job_id)).status not in FINISHED:
            await asyncio.sleep(0.05)
    await service.close()  # the document writes still under way


async def test_transcripts_and_jobs_match_rest_and_each_document_is_read_once(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        seeded = (app, ada.person_id, tmp_path)
        first = await transcribed_project(*seeded, "First", ("hello", "there"))
        second = await transcribed_project(*seeded, "Second", ("one", "two", "three"))
        silent = await transcribed_project(*seeded, "Silent")
        status, job, _ = await ada.call("POST", f"/api/v1/projects/{first}/transcription-jobs",
                                        {"clip_id": "speech", "language": "en"})
        assert status == 202, job
        await finished(app, first, job["id"])  # (its state writes open the document too)

        await app[ROOMS]._unload(second)  # noqa: SLF001 - the idle unload, without the wait
        in_memory = set(app[ROOMS].rooms)
        with counted_reads(app) as (opened, stored, listed):
            answer = await gql(ada, LISTING)
        assert answer.get("errors") is None, answer
        by_id = {n["id"]: n for n in nodes(answer["data"]["projects"])}
        assert list(by_id) == [first, second, silent]
        # each document read once, whatever the fields and aliases: in its room when it is
        # in memory, else all in one store read; no room opened; all job lists in one query
        assert opened == Counter() and set(app[ROOMS].rooms) == in_memory, opened
        assert second in stored[0] and stored == [[p for p in by_id if p not in in_memory]]
        assert listed == [list(by_id)], listed

        for project_id, node in by_id.items():
            _, rest, _ = await ada.call("GET", f"/api/v1/projects/{project_id}/transcripts")
            assert nodes(node["transcriptsConnection"]) == [
                {"id": t["id"], "language": t["language"], "model": t["model"],
                 "durationS": t["duration_s"], "wordCount": t["word_count"], "text": t["text"]}
                for t in rest["data"]]
            assert nodes(node["again"]) == [{"id": t["id"]} for t in rest["data"]]
            status, full, _ = await ada.call(
                "GET", f"/api/v1/projects/{project_id}/transcripts/speech")
            if status == 404:
                assert node["transcript"] is None
                continue
            assert nodes(node["transcript"]["wordsConnection"]) == [
                {"text": w["text"], "startS": w["start_s"], "endS": w["end_s"],
                 "probability": w["probability"]} for w in full["words"]]
        assert nodes(by_id[second]["transcriptsConnection"])[0]["text"] == "one two three"
        assert nodes(by_id[silent]["transcriptsConnection"]) == []
        assert by_id[silent]["transcript"] is None
        [listed_job] = by_id[first]["transcriptionJobs"]
        assert listed_job["id"] == job["id"] and listed_job["clipId"] == "speech"
        assert by_id[second]["transcriptionJobs"] == []

        # a job is found through its own project only
        found = await gql(ada, ONE, {"id": first, "job": job["id"]})
        assert found["data"]["project"]["transcriptionJob"] == {"id": job["id"],
                                                                "clipId": "speech"}
        elsewhere = await gql(ada, ONE, {"id": second, "job": job["id"]})
        assert elsewhere["data"]["project"]["transcriptionJob"] is None
        bad = await gql(ada, '{ projects { edges { node { transcriptionJobs(status: "lost") '
                             '{ id } } } } }')
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def unload_rooms(app: Any) -> None:
    """Persist and drop every room nobody uses, so documents are read from the store."""
    rooms = app[ROOMS]
    for project_id in list(rooms.rooms):
        await rooms._unload(project_id)  # noqa: SLF001 - the idle unload, without the wait


async def test_transcripts_and_jobs_cost_the_same_queries_for_2_or_20_projects(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        seeded = (app, ada.person_id, tmp_path)
        made = [await transcribed_project(*seeded, f"P{n}", ("take", str(n)))
                for n in range(2)]
        status, job, _ = await ada.call("POST", f"/api/v1/projects/{made[0]}/transcription-jobs",
                                        {"clip_id": "speech"})
        assert status == 202, job
        await finished(app, made[0], job["id"])
        counts = []
        for more in (0, 18):
            made += [await transcribed_project(*seeded, f"P{n}", ("take", str(n)))
                     for n in range(len(made), len(made) + more)]
            await gql(ada, TRANSCRIPTS_AND_JOBS)  # warm: the key's and projects' caches
            await unload_rooms(app)  # documents not in memory: read from the store
            with counted_queries(app[DATABASE], job_reads=True) as calls:
                answer = await gql(ada, TRANSCRIPTS_AND_JOBS)
            assert answer.get("errors") is None, answer
            listed = nodes(answer["data"]["projects"])
            assert [n["id"] for n in listed] == made
            assert [nodes(n["transcriptsConnection"]) for n in listed] == [
                [{"id": "speech", "text": f"take {n}"}] for n in range(len(made))]
            assert [len(nodes(n["transcriptionJobsConnection"])) for n in listed] == \
                [1] + [0] * (len(made) - 1)
            assert app[ROOMS].rooms == {}, "reading a document must not load its room"
            counts.append(calls)
        few, many = counts
        assert any("jobs" in c for c in few), f"the job lists' query is not counted: {few}"
        assert len(many) == len(few), (len(few), len(many), few, many)
        assert [c for c in many if "load" in c] == ["read: SqliteStore.load_many.<locals>.work"]
        assert len([c for c in many if "FROM jobs" in c]) == 1, many


async def test_a_stored_document_that_cannot_be_read_fails_only_its_project(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        good = await transcribed_project(app, ada.person_id, tmp_path, "Good", ("fine",))
        await app[STORE].create_project("broken", "Broken", b"not a yjs update")
        await app[ACCOUNTS].store.own_project(ada.person_id, "broken")
        await unload_rooms(app)
        with counted_reads(app) as (_opened, stored, _listed):
            texts = "transcriptsConnection { edges { node { text } } }"
            answer = await gql(ada, f'query($id: ID!) {{ good: project(id: $id) {{ {texts} }} '
                                    f'bad: project(id: "broken") {{ {texts} }} }}', {"id": good})
        assert stored == [[good, "broken"]]  # one batch
        assert answer["data"] == {
            "good": {"transcriptsConnection": {"edges": [{"node": {"text": "fine"}}]}},
            "bad": None}
        [error] = answer["errors"]
        assert error["path"] == ["bad", "transcriptsConnection"]


async def test_another_account_sees_nothing_and_writes_nothing(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Ada's",
                                            ("secret", "words"))
        _, job, _ = await ada.call("POST", f"/api/v1/projects/{project}/transcription-jobs",
                                   {"clip_id": "speech"})
        seen = await gql(bob, ONE, {"id": project, "job": job["id"]})
        assert seen["data"]["project"] is None and seen.get("errors") is None
        listed = await gql(bob, "{ projects { edges { node { transcriptsConnection { edges { "
                                "node { text } } } } } } }")
        assert listed["data"]["projects"]["edges"] == []

        started = await gql(bob, START, {"project": project, "clip": "speech"})
        assert started["data"] is None
        [error] = started["errors"]
        assert error["extensions"]["code"] == "NOT_FOUND" and error["extensions"]["status"] == 404
        status, _, _ = await bob.call("POST", f"/api/v1/projects/{project}/transcription-jobs",
                                      {"clip_id": "speech"})
        assert status == 404  # REST answers Bob the same
        assert len(await app[TRANSCRIPTION].for_project(project)) == 1

        # a key of Ada's without project.edit may read the transcripts but not start a job
        person = Person(ada.base_url, smtp_server, "ada@example.org")
        await person.sign_in()
        try:
            status, key, _ = await person.call("POST", f"/accounts/{person.id}/keys",
                                               {"name": "read", "scopes": ["project.read"]})
            assert status == 201
            reader = Caller(ada.base_url, key["key"], person.id, ada.http)
            read = await gql(reader, ONE, {"id": project, "job": job["id"]})
            assert nodes(read["data"]["project"]["transcriptsConnection"]) == [{"id": "speech"}]
            refused = await gql(reader, START, {"project": project, "clip": "speech"})
            assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            status, _, _ = await reader.call(
                "POST", f"/api/v1/projects/{project}/transcription-jobs", {"clip_id": "speech"})
            assert status == 403
        finally:
            await person.close()


async def test_start_transcription_is_idempotent_and_checks_its_input(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Talk")
        variables = {"project": project, "clip": "speech", "language": "English", "key": "t-1"}
        first = await gql(ada, START, variables)
        assert first.get("errors") is None, first
        job = first["data"]["startTranscription"]
        assert job["clipId"] == "speech" and job["language"] == "en"
        assert job["status"] in ("queued", "running", "failed") and job["transcript"] is None
        again = await gql(ada, START, variables)
        assert again["data"]["startTranscription"]["id"] == job["id"]
        assert [j.id for j in await app[TRANSCRIPTION].for_project(project)] == [job["id"]]

        reused = await gql(ada, START, {**variables, "language": None})
        assert reused["errors"][0]["extensions"]["status"] == 422
        unknown = await gql(ada, START, {**variables, "language": "klingon", "key": None})
        assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "klingon" in unknown["errors"][0]["message"]
        missing = await gql(ada, START, {**variables, "clip": "nope", "key": None})
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert "nope" in missing["errors"][0]["message"]
        assert len(await app[TRANSCRIPTION].for_project(project)) == 1


async def test_words_count_toward_the_cost_limit(tmp_path: Path,
                                                 smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Words", ("a", "b"))
        words = ("transcriptsConnection { edges { node { id wordsConnection { edges { node { "
                 "text startS endS } } } } } }")
        one = await gql(ada, f'query($id: ID!) {{ project(id: $id) {{ {words} }} }}',
                        {"id": project})
        assert one.get("errors") is None, one
        [transcript] = nodes(one["data"]["project"]["transcriptsConnection"])
        assert [w["text"] for w in nodes(transcript["wordsConnection"])] == ["a", "b"]
        every = await gql(ada, f"{{ projects(first: 10) {{ edges {{ node {{ {words} }} }} }} }}")
        assert every["data"] is None
        assert every["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
        summaries = await gql(ada, "{ projects(first: 50) { edges { node { "
                                   "transcriptsConnection { edges { node { id text wordCount } "
                                   "} } transcriptionJobsConnection(first: 20) { edges { "
                                   "node { id status } } } } } } }")
        assert summaries.get("errors") is None, summaries
        # a page size asked in a variable counts as the largest page
        paged = ("query($n: Int!) { project(id: \"x\") { transcriptsConnection(first: $n) { "
                 "edges { node { wordsConnection(first: $n) { edges { node { text } } } } } } } }")
        variable = await gql(ada, paged, {"n": 1})
        assert variable["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


#: A v1 client's query from before the pages (2cd1840): whole lists, as it still works.
WHOLE = """
query Whole($id: ID!) {
  project(id: $id) {
    transcripts { id language model durationS wordCount text }
    transcript(clipId: "speech-3") { id words { text startS endS probability } }
  }
}"""
DEPRECATIONS = """
{ project: __type(name: "Project") { fields(includeDeprecated: true) {
    name isDeprecated deprecationReason } }
  transcript: __type(name: "Transcript") { fields(includeDeprecated: true) {
    name isDeprecated deprecationReason } } }"""


async def test_v1_whole_lists_answer_as_before_deprecated_and_costed(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        spoken = [("one", "two", "three"), ("four",), ("five", "six")]
        project = await transcribed_project(app, ada.person_id, tmp_path, "Old", *spoken)
        old = await gql(ada, WHOLE, {"id": project})
        assert old.get("errors") is None, old
        whole = old["data"]["project"]
        _, rest, _ = await ada.call("GET", f"/api/v1/projects/{project}/transcripts")
        # every transcript by clip id, and every word of one: REST's answers, unpaged
        assert whole["transcripts"] == [
            {"id": t["id"], "language": t["language"], "model": t["model"],
             "durationS": t["duration_s"], "wordCount": t["word_count"], "text": t["text"]}
            for t in rest["data"]]
        assert [t["text"] for t in whole["transcripts"]] == [" ".join(w) for w in spoken]
        _, full, _ = await ada.call("GET", f"/api/v1/projects/{project}/transcripts/speech-3")
        assert whole["transcript"] == {"id": "speech-3", "words": [
            {"text": w["text"], "startS": w["start_s"], "endS": w["end_s"],
             "probability": w["probability"]} for w in full["words"]]}
        assert [w["text"] for w in whole["transcript"]["words"]] == ["five", "six"]

        # deprecated, each naming its replacement and its size in the cost
        fields = (await gql(ada, DEPRECATIONS))["data"]
        deprecated = {(kind, f["name"]): f["deprecationReason"]
                      for kind in ("project", "transcript") for f in fields[kind]["fields"]
                      if f["isDeprecated"]}
        assert deprecated == {
            ("project", "transcripts"): "Use transcriptsConnection(first, after), which "
            "pages them. This whole list stays in v1 and counts as 200 items in the query "
            "cost.",
            ("project", "transcriptionJobs"): "Use transcriptionJobsConnection(first, "
            "after), which pages them. This whole list stays in v1 and counts as 200 items "
            "in the query cost.",
            ("transcript", "words"): "Use wordsConnection(first, after), which pages them. "
            "This whole list stays in v1 and counts as 1,000 items in the query cost."}

        # a whole list costs at least what its largest page costs: every word of every
        # transcript is refused through the whole lists as through the largest pages
        unpaged = await gql(ada, "query($id: ID!) { project(id: $id) { transcripts { id "
                                 "words { text } } } }", {"id": project})
        paged = await gql(ada, "query($id: ID!) { project(id: $id) { transcriptsConnection("
                               "first: 200) { edges { node { id wordsConnection(first: 200) "
                               "{ edges { node { text } } } } } } } }", {"id": project})
        [too_costly] = unpaged["errors"]
        assert too_costly["extensions"]["code"] == "QUERY_TOO_COSTLY"
        assert too_costly["extensions"]["cost"] > UNPAGED["transcripts"] * UNPAGED["words"]
        assert too_costly["extensions"]["cost"] >= paged["errors"][0]["extensions"]["cost"]


PAGES = """
query Page($id: ID!, $first: Int!, $after: String) {
  project(id: $id) {
    transcriptsConnection(first: $first, after: $after) {
      edges { cursor node { id } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
WORDS = """
query Words($id: ID!, $clip: ID!, $first: Int!, $after: String) {
  project(id: $id) { transcript(clipId: $clip) {
    wordsConnection(first: $first, after: $after) {
      edges { node { index text } } pageInfo { hasNextPage endCursor }
    }
  } }
}"""


async def walk(caller: Caller, query: str, variables: dict[str, Any],
               connection: Callable[[dict[str, Any]], dict[str, Any]]) -> list[list[Any]]:
    """Every page of a connection, following ``endCursor`` until the last page."""
    pages: list[list[Any]] = []
    after = None
    for _ in range(100):
        answer = await gql(caller, query, {**variables, "after": after})
        assert answer.get("errors") is None, answer
        found = connection(answer["data"])
        pages.append(nodes(found))
        if not found["pageInfo"]["hasNextPage"]:
            return pages
        after = found["pageInfo"]["endCursor"]
    raise AssertionError("the pages never end")


async def test_transcripts_and_words_page_every_item_once_with_cursors_of_their_own_list(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        # (a clip is two seconds long: four words of half a second fit)
        spoken = [tuple(f"w{c}-{n}" for n in range(min(c, 3) + 1)) for c in range(5)]
        project = await transcribed_project(app, ada.person_id, tmp_path, "Many", *spoken)
        other = await transcribed_project(app, ada.person_id, tmp_path, "Other", ("x",),
                                          ("y",))
        bobs = await transcribed_project(app, bob.person_id, tmp_path, "Bob's", ("b",), ("c",))

        pages = await walk(ada, PAGES, {"id": project, "first": 2},
                           lambda d: d["project"]["transcriptsConnection"])
        assert [len(p) for p in pages] == [2, 2, 1]
        _, rest, _ = await ada.call("GET", f"/api/v1/projects/{project}/transcripts?limit=200")
        assert [t["id"] for p in pages for t in p] == [t["id"] for t in rest["data"]]
        assert len({t["id"] for p in pages for t in p}) == len(spoken)

        words = await walk(ada, WORDS, {"id": project, "clip": "speech-5", "first": 3},
                           lambda d: d["project"]["transcript"]["wordsConnection"])
        assert [len(p) for p in words] == [3, 1]
        assert [w["text"] for p in words for w in p] == list(spoken[4])
        assert [w["index"] for p in words for w in p] == list(range(4))

        # REST's cursor of the same list goes on where GraphQL's would
        _, first_rest, _ = await ada.call("GET",
                                          f"/api/v1/projects/{project}/transcripts?limit=2")
        after_rest = await gql(ada, PAGES, {"id": project, "first": 2,
                                            "after": first_rest["next_cursor"]})
        assert nodes(after_rest["data"]["project"]["transcriptsConnection"]) == pages[1]

        # a cursor of another project (Ada's own or Bob's), or of a transcript's words, is
        # refused on this list
        first = await gql(ada, PAGES, {"id": project, "first": 1})
        cursor = first["data"]["project"]["transcriptsConnection"]["pageInfo"]["endCursor"]
        bob_first = await gql(bob, PAGES, {"id": bobs, "first": 1})
        bob_cursor = bob_first["data"]["project"]["transcriptsConnection"]["pageInfo"]["endCursor"]
        word_first = await gql(ada, WORDS, {"id": project, "clip": "speech-5", "first": 1})
        word_cursor = word_first["data"]["project"]["transcript"]["wordsConnection"]["pageInfo"][
            "endCursor"]
        for caller, project_id, foreign in ((ada, other, cursor), (ada, project, bob_cursor),
                                            (ada, project, word_cursor),
                                            (bob, bobs, cursor)):
            refused = await gql(caller, PAGES, {"id": project_id, "first": 1,
                                                "after": foreign})
            [error] = refused["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", refused
            assert "not one this list gave out" in error["message"]
        other_words = await gql(ada, WORDS, {"id": project, "clip": "speech-4", "first": 1,
                                             "after": word_cursor})
        assert other_words["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        # the page size is bounded
        for first_size in (0, 201):
            too_big = await gql(ada, PAGES, {"id": project, "first": first_size})
            assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


CANCEL = """
mutation Cancel($project: ID!, $job: ID!) {
  cancelTranscription(projectId: $project, jobId: $job) { id clipId status finished }
}"""
EDIT = """
mutation Edit($project: ID!, $clip: ID!, $delete: [Int!], $order: [Int!],
             $words: [String!]) {
  editTranscript(projectId: $project, clipId: $clip, delete: $delete, order: $order,
                 words: $words) {
    clips
  }
}"""
TEXTS = """
query Texts($id: ID!) {
  project(id: $id) { transcriptsConnection { edges { node { id text } } } }
}"""


def refusal(answer: dict[str, Any], *ids: str) -> tuple[Any, ...]:
    """The one error's code, status and message with ``ids`` blanked out."""
    assert answer["data"] is None, answer
    [error] = answer["errors"]
    message = error["message"]
    for blank in ids:
        message = message.replace(blank, "<id>")
    return error["extensions"]["code"], error["extensions"]["status"], message


async def test_cancel_and_edit_are_refused_as_rest_refuses_them(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Ada's",
                                            ("one", "two", "three"))
        unshared = await transcribed_project(app, ada.person_id, tmp_path, "Private", ("x",))
        bobs = await transcribed_project(app, bob.person_id, tmp_path, "Bob's", ("b",))
        await app[ACCOUNTS].store.grant(project, bob.person_id, "viewer", ada.person_id)
        job = await queued_job(app, project)

        # a viewer (whose key has every scope) may read but not write
        read = await gql(bob, TEXTS, {"id": project})
        assert nodes(read["data"]["project"]["transcriptsConnection"])[0]["text"] == "one two three"
        for query, variables in ((CANCEL, {"project": project, "job": job}),
                                 (EDIT, {"project": project, "clip": "speech",
                                         "delete": [0]})):
            code, status, _ = refusal(await gql(bob, query, variables))
            assert (code, status) == ("FORBIDDEN", 403)

        # another account's project, or its job through one's own project, answers as
        # an unknown id does
        for query, extra in ((CANCEL, {"job": job}),
                             (EDIT, {"clip": "speech", "delete": [0]})):
            foreign = refusal(await gql(bob, query, {"project": unshared, **extra}), unshared)
            unknown = refusal(await gql(bob, query, {"project": "nope", **extra}), "nope")
            assert foreign == unknown and foreign[:2] == ("NOT_FOUND", 404), foreign
        via_own = refusal(await gql(bob, CANCEL, {"project": bobs, "job": job}), job)
        no_such = refusal(await gql(bob, CANCEL, {"project": bobs, "job": "nojob"}), "nojob")
        assert via_own == no_such and via_own[:2] == ("NOT_FOUND", 404), via_own
        status, _, _ = await bob.call("DELETE",
                                      f"/projects/{bobs}/transcription-jobs/{job}")
        assert status == 404  # the core's REST route answers Bob the same

        # a key of Ada's without project.edit is refused for its scope
        reader = Caller(ada.base_url, (await app[ACCOUNTS].create_key(
            Actor(ada.person_id), ada.person_id, "read", ["project.read"]))[0],
            ada.person_id, ada.http)
        code, status, message = refusal(await gql(reader, CANCEL, {"project": project,
                                                                  "job": job}))
        assert (code, status) == ("FORBIDDEN", 403) and "project.edit" in message

        # nothing was changed by any of them
        assert (await app[TRANSCRIPTION].get(project, job)).status == "queued"
        after = await gql(ada, TEXTS, {"id": project})
        assert nodes(after["data"]["project"]["transcriptsConnection"]) == [
            {"id": "speech", "text": "one two three"}]


async def test_cancel_and_edit_take_effect_for_an_editor(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        project = await transcribed_project(app, ada.person_id, tmp_path, "Talk",
                                            ("one", "two", "three"))
        job = await queued_job(app, project)
        cancelled = await gql(ada, CANCEL, {"project": project, "job": job})
        assert cancelled.get("errors") is None, cancelled
        assert cancelled["data"]["cancelTranscription"] == {
            "id": job, "clipId": "speech", "status": "cancelled", "finished": True}
        assert (await app[TRANSCRIPTION].get(project, job)).status == "cancelled"
        status, rest, _ = await ada.call("GET",
                                         f"/api/v1/projects/{project}/transcription-jobs/{job}")
        assert status == 200 and rest["status"] == "cancelled"
        again = await gql(ada, CANCEL, {"project": project, "job": job})
        assert again["data"]["cancelTranscription"]["status"] == "cancelled"

        outside = refusal(await gql(ada, EDIT, {"project": project, "clip": "speech",
                                                "delete": [7]}))
        assert outside[:2] == ("BAD_REQUEST", 400) and "outside" in outside[2], outside
        neither = refusal(await gql(ada, EDIT, {"project": project, "clip": "speech"}))
        assert neither[:2] == ("BAD_USER_INPUT", 422), neither

        edited = await gql(ada, EDIT, {"project": project, "clip": "speech", "delete": [1],
                                       "words": ["one", "two", "three"]})
        assert edited.get("errors") is None, edited
        clips = edited["data"]["editTranscript"]["clips"]
        assert clips[0] == "speech" and len(clips) == 2
        texts = {t["id"]: t["text"] for t in nodes(
            (await gql(ada, TEXTS, {"id": project}))["data"]["project"]["transcriptsConnection"])}
        assert " ".join(texts[c] for c in clips) == "one three", texts
        stale = refusal(await gql(ada, EDIT, {"project": project, "clip": "speech",
                                              "delete": [0], "words": ["one", "two", "three"]}))
        assert stale[:2] == ("CONFLICT", 409) and "changed since" in stale[2], stale


BOTH = """
{ projects(first: 10) { edges { node {
    id tracks { id name clips { id } } transcriptsConnection { edges { node { id text } } }
    again: tracks { id } transcript(clipId: "speech") { wordCount }
} } } }"""


async def test_tracks_and_transcripts_share_one_read_of_each_document(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        made = [await transcribed_project(app, ada.person_id, tmp_path, f"P{n}", ("take",))
                for n in range(3)]
        await gql(ada, BOTH)  # warm: the key's and projects' caches
        await unload_rooms(app)
        with counted_reads(app) as (opened, stored, _listed), \
                counted_queries(app[DATABASE]) as calls:
            answer = await gql(ada, BOTH)
        assert answer.get("errors") is None, answer
        listed = nodes(answer["data"]["projects"])
        assert [n["id"] for n in listed] == made
        for node in listed:
            _, rest, _ = await ada.call("GET", f"/api/v1/projects/{node['id']}/tracks")
            assert node["tracks"] == [{"id": t["id"], "name": t["name"],
                                       "clips": [{"id": c["id"]} for c in t["clips"]]}
                                      for t in rest["data"]]
            assert node["again"] == [{"id": t["id"]} for t in rest["data"]]
            assert nodes(node["transcriptsConnection"]) == [{"id": "speech", "text": "take"}]
            assert node["transcript"] == {"wordCount": 1}
        # one store read of every document serves tracks and transcripts alike (two reads,
        # 12 database calls in all, when they were two loaders; 11 now)
        assert opened == Counter() and stored == [made], stored
        assert len([c for c in calls if "load_many" in c]) == 1, calls
