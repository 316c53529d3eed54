"""GraphQL at ``/api/graphql``: batched loading, limits, persisted queries, permissions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import Person
from public_api_helpers import Caller, two_people, wav_bytes
from smtp_server import SmtpServer

from dawserver.keys import ACCOUNTS, DATABASE, ROOMS, STORE
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
GRAPHQL = "/api/graphql"
PROJECTS_WITH_ASSETS = """
query Catalogue($first: Int!) {
  projects(first: $first) {
    edges { node { id name role assets { id name format frames } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
#: Background work (the job worker's polls, the event outbox) is not the request's.
BACKGROUND_TABLES = ("jobs", "events_outbox", "schema_migrations")
DB_METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "read", "write")


async def gql(caller: Caller, query: str | None, variables: dict[str, Any] | None = None,
              **extra: Any) -> dict[str, Any]:
    body = {"query": query, "variables": variables, **extra}
    status, answer, _ = await caller.call("POST", GRAPHQL, body)
    assert status == 200, answer
    return answer


@contextmanager
def counted_queries(db: Any, *, job_reads: bool = False) -> Iterator[list[str]]:
    """Every database call made while the block runs (background polls left out); with
    ``job_reads``, the request's own reads of ``jobs`` count too (the worker's claims and
    finishes still do not)."""
    calls: list[str] = []
    originals = {name: getattr(db, name) for name in DB_METHODS}

    def background(what: str) -> bool:
        if job_reads and "jobs" in what and what.startswith("SELECT"):
            return False
        return any(table in what for table in BACKGROUND_TABLES)

    def wrap(name: str, method: Any) -> Any:
        async def counted(first: Any, *args: Any, **kwargs: Any) -> Any:
            what = first if isinstance(first, str) else getattr(first, "__qualname__", "?")
            if not background(what):
                calls.append(f"{name}: {what}")
            return await method(first, *args, **kwargs)
        return counted

    for name, method in originals.items():
        setattr(db, name, wrap(name, method))
    try:
        yield calls
    finally:
        for name in originals:
            delattr(db, name)


async def make_projects(app: Any, caller: Caller, count: int, start: int = 0) -> list[str]:
    """``count`` projects of ``caller``'s account, each with one uploaded asset."""
    made = []
    for index in range(start, start + count):
        info = await import_session(app[STORE], Session(name=f"P{index}"), name=f"P{index}")
        await app[ACCOUNTS].store.own_project(caller.person_id, info.project_id)
        status, body, _ = await caller.call("POST", f"/projects/{info.project_id}/assets",
                                            data=wav_bytes(0.05),
                                            headers={"Content-Type": "audio/wav"})
        assert status == 201, body
        made.append(info.project_id)
    return made


async def test_projects_with_their_assets_cost_the_same_queries_for_2_or_20_projects(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        await make_projects(app, ada, 2)
        await gql(ada, PROJECTS_WITH_ASSETS, {"first": 50})  # warm: the key's first use
        with counted_queries(app[DATABASE]) as few:
            answer = await gql(ada, PROJECTS_WITH_ASSETS, {"first": 50})
        assert len(answer["data"]["projects"]["edges"]) == 2
        await make_projects(app, ada, 18, start=2)
        with counted_queries(app[DATABASE]) as many:
            answer = await gql(ada, PROJECTS_WITH_ASSETS, {"first": 50})
        edges = answer["data"]["projects"]["edges"]
        assert len(edges) == 20
        assert all(len(e["node"]["assets"]) == 1 and e["node"]["assets"][0]["format"] == "wav"
                   for e in edges)
        assert few, "the counter saw no query: it is not counting the server's database"
        assert len(many) == len(few), (few, many)
        assert len([c for c in many if "get_project" in c or "collab_projects" in c]) == 1


PROJECTS_WITH_TRACKS = """
{ projects(first: 20) { edges { node { id
    tracks { id name gainDb mute clips { id position } }
    again: tracks { id }
} } } }"""
PROJECT_TRACKS = """
query($id: ID!) { project(id: $id) {
    tracks { id name position channels gainDb pan mute solo
             clips { id source position length offset gainDb fadeIn fadeOut } }
} }"""


def camel(value: Any) -> Any:
    """REST's JSON with GraphQL's field names (``gain_db`` -> ``gainDb``)."""
    if isinstance(value, list):
        return [camel(item) for item in value]
    if isinstance(value, dict):
        return {key.split("_")[0] + "".join(w.title() for w in key.split("_")[1:]): camel(v)
                for key, v in value.items()}
    return value


async def make_mixes(app: Any, caller: Caller, count: int, start: int = 0) -> list[str]:
    """``count`` projects of ``caller``'s account, each with two tracks of its own."""
    made = []
    for index in range(start, start + count):
        session = Session(name=f"M{index}", tracks=[
            Track("lead", name=f"Lead {index}", gain_db=-float(index), pan=0.25,
                  clips=[Clip(f"/a{index}.wav", 100 * index, 50, offset=3, fade_in=7,
                              id=f"c{index}")]),
            Track("bass", name="Bass", channels=2, mute=index % 2 == 0, solo=True)])
        info = await import_session(app[STORE], session, name=f"M{index}")
        await app[ACCOUNTS].store.own_project(caller.person_id, info.project_id)
        made.append(info.project_id)
    return made


async def test_tracks_of_2_or_20_projects_are_read_in_one_store_read(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        rooms = app[ROOMS]
        made: list[str] = []
        counts = []
        for more in (2, 18):
            made += await make_mixes(app, ada, more, start=len(made))
            await gql(ada, PROJECTS_WITH_TRACKS)  # warm: the key's and projects' caches
            for project_id in list(rooms.rooms):  # documents not in memory, but the first
                await rooms._unload(project_id)  # noqa: SLF001 - the idle unload, no wait
            stored: list[list[str]] = []

            async def counting_load_many(project_ids: list[str], *,
                                         _seen: list[list[str]] = stored,
                                         _read: Any = rooms.store.load_many) -> Any:
                _seen.append(list(project_ids))
                return await _read(project_ids)

            async with rooms.use(made[0]):  # in memory: read in its room
                rooms.store.load_many = counting_load_many
                try:
                    with counted_queries(app[DATABASE]) as calls:
                        answer = await gql(ada, PROJECTS_WITH_TRACKS)
                finally:
                    del rooms.store.load_many
                assert set(rooms.rooms) == {made[0]}, "reading tracks must not load rooms"
            assert answer.get("errors") is None, answer
            nodes = [e["node"] for e in answer["data"]["projects"]["edges"]]
            assert [n["id"] for n in nodes] == made
            # one store read for every document not in memory, whatever the aliases
            assert stored == [made[1:]], stored
            counts.append(calls)
            for node in nodes:  # the very tracks REST answers (from the room)
                assert [t["id"] for t in node["again"]] == ["lead", "bass"]
                full = (await gql(ada, PROJECT_TRACKS, {"id": node["id"]}))["data"]["project"]
                status, rest, _ = await ada.call("GET", f"/api/v1/projects/{node['id']}/tracks")
                assert status == 200, rest
                assert full["tracks"] == camel(rest["data"]), node["id"]
                assert node["tracks"] == [
                    {"id": t["id"], "name": t["name"], "gainDb": t["gainDb"], "mute": t["mute"],
                     "clips": [{"id": c["id"], "position": c["position"]} for c in t["clips"]]}
                    for t in full["tracks"]]
        few, many = counts
        assert few, "the counter saw no query: it is not counting the server's database"
        assert len(many) == len(few), (few, many)
        assert [c for c in many if "load" in c] == ["read: SqliteStore.load_many.<locals>.work"]


async def test_connection_pages_project_tracks_clips_and_me(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        session = Session(name="Mix", tracks=[
            Track("lead", name="Lead", clips=[Clip("/a.wav", 100, 50, id="c1")])])
        info = await import_session(app[STORE], session, name="Mix")
        await app[ACCOUNTS].store.own_project(ada.person_id, info.project_id)
        others = await make_projects(app, ada, 2)

        me = await gql(ada, "{ me { id kind via } }")
        assert me["data"]["me"] == {"id": ada.person_id, "kind": "person", "via": "key"}

        seen, after = [], None
        while True:
            page = await gql(ada, "query($after: String) { projects(first: 2, after: $after) "
                                  "{ edges { node { id } } pageInfo { hasNextPage endCursor } } }",
                             {"after": after})
            projects = page["data"]["projects"]
            seen += [e["node"]["id"] for e in projects["edges"]]
            if not projects["pageInfo"]["hasNextPage"]:
                break
            after = projects["pageInfo"]["endCursor"]
        assert seen == [info.project_id, *others]
        bad = await gql(ada, '{ projects(after: "forged.cursor") { edges { cursor } } }')
        assert "next_cursor" in bad["errors"][0]["message"]

        query = ('query($id: ID!) { project(id: $id) { name role tracks { id name '
                 'clips { id position length } } } }')
        found = await gql(ada, query, {"id": info.project_id})
        assert found["data"]["project"] == {"name": "Mix", "role": "owner", "tracks": [
            {"id": "lead", "name": "Lead", "clips": [{"id": "c1", "position": 100,
                                                       "length": 50}]}]}
        # Bob: Ada's project is null, as a missing one; his list is empty
        assert (await gql(bob, query, {"id": info.project_id}))["data"]["project"] is None
        assert (await gql(bob, query, {"id": "no-such"}))["data"]["project"] is None
        listed = await gql(bob, "{ projects { edges { node { id } } } }")
        assert listed["data"]["projects"]["edges"] == []


async def test_deep_and_wide_queries_are_refused_before_they_run(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        await make_projects(app, ada, 1)
        fine = await gql(ada, "{ projects(first: 10) { edges { node { id tracks { id clips "
                              "{ id } } assets { id } } } } }")
        assert "errors" not in fine or fine["errors"] is None
        wide = await gql(ada, "{ projects(first: 200) { edges { node { id name tracks { id "
                              "name clips { id source position length } } } } } }")
        assert wide["data"] is None
        assert wide["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
        assert "first:" in wide["errors"][0]["message"]
        # a fragment spread counts where it is spread
        spread = await gql(ada, "fragment T on Track { id name clips { id source position "
                                "length offset } } { projects(first: 200) { edges { node { "
                                "tracks { ...T } } } } }")
        assert spread["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
        aliases = " ".join(f"p{i}: projects(first: 200) {{ edges {{ node {{ id }} }} }}"
                           for i in range(60))
        too_many = await gql(ada, "{ " + aliases + " }")
        assert too_many["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
        # a page of less than one item subtracts nothing: it counts as the largest page
        wide_alias = ("wide: projects(first: 200) { edges { node { id name tracks { id "
                      "name clips { id source position length } } } } }")
        for sibling in ("projects(first: -100000000) { edges { node { id } } }",
                        'project(id: "x") { transcriptsConnection(first: -1000000) { '
                        "edges { node { id } } } }",
                        "projects(first: 0) { edges { node { id } } }"):
            cut = await gql(ada, "{ " + wide_alias + " neg: " + sibling + " }")
            assert cut["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY", sibling
        # projects' default page (50) counts when first is left out
        unpaged = await gql(ada, "{ projects { edges { node { assets { project { assets "
                                 "{ id } } } } } } }")
        assert unpaged["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
        # an asset leads back to its project: depth 9 (the words of a project's
        # transcripts) is served, 10 refused
        loop = "assets { project { assets { project { assets { project { %s } } } } } }"
        back = await gql(ada, "{ projects(first: 1) { edges { node { %s } } } }" % (
            loop % "id"))
        assert back.get("errors") is None, back
        depth = await gql(ada, "{ projects(first: 1) { edges { node { %s } } } }" % (
            loop % "role assets { id }"))
        assert depth["data"] is None
        assert any("exceeds maximum operation depth" in e["message"] for e in depth["errors"])


async def test_persisted_queries_by_sha256(tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (_app, ada, _bob):
        query = "{ me { id } }"
        digest = hashlib.sha256(query.encode()).hexdigest()
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
        missing = await gql(ada, None, extensions=extensions)
        assert missing["errors"][0]["message"] == "PersistedQueryNotFound"
        assert missing["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        wrong = await gql(ada, "{ me { kind } }", extensions=extensions)
        assert wrong["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
        first = await gql(ada, query, extensions=extensions)
        assert first["data"]["me"]["id"] == ada.person_id
        again = await gql(ada, None, extensions=extensions)
        assert again["data"] == first["data"]
        bad = await gql(ada, None, extensions={"persistedQuery": {"version": 2}})
        assert bad["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_INVALID"
        empty = await gql(ada, None)
        assert empty["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_graphql_holds_the_same_permissions_as_rest(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (_app, ada, _bob):
        status, problem, headers = await ada.call("POST", GRAPHQL, {"query": "{ me { id } }"},
                                                  headers={"Authorization": "Bearer nope"})
        assert status == 401 and headers["Content-Type"].startswith("application/problem+json")
        # a key with project.read only may read a project but not list the account's
        status, made, _ = await ada.call("POST", "/api/v1/projects", {"name": "One"})
        assert status == 201
        person = Person(ada.base_url, smtp_server, "ada@example.org")
        await person.sign_in()
        status, key, _ = await person.call("POST", f"/accounts/{person.id}/keys",
                                           {"name": "narrow", "scopes": ["project.read"]})
        assert status == 201
        narrow = Caller(ada.base_url, key["key"], person.id, ada.http)
        listed = await gql(narrow, "{ projects { edges { node { id } } } }")
        assert "account.read" in listed["errors"][0]["message"]
        one = await gql(narrow, 'query($id: ID!) { project(id: $id) { id } }',
                        {"id": made["id"]})
        assert one["data"]["project"] == {"id": made["id"]}
        status, _, _ = await narrow.call("GET", "/api/v1/projects")
        assert status == 403  # REST refuses the same key the same listing
        await person.close()
