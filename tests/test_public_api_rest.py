"""``/api/v1``: projects, tracks, assets and bounces over a real server with API keys.

Covers the conventions end to end: cursors, filters, sparse fields, ETags with
``If-None-Match`` (304) and ``If-Match`` (412), ``Idempotency-Key`` (replay, 422, 24 h
expiry, kept with the account id), problem details, and another account's ids (404).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from public_api_helpers import two_people, wav_bytes
from smtp_server import SmtpServer

from dawserver.keys import ACCOUNTS, DATABASE, STORE
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
V1 = "/api/v1"
PROBLEM = "application/problem+json"


async def test_projects_are_created_read_renamed_and_deleted_with_etags(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (_, ada, _bob):
        status, made, headers = await ada.call("POST", f"{V1}/projects", {"name": "  Night  "})
        assert status == 201, made
        assert made["name"] == "Night" and made["role"] == "owner"
        assert headers["Location"] == f"{V1}/projects/{made['id']}"
        assert made["created_at"].endswith("Z")

        status, got, headers = await ada.call("GET", f"{V1}/projects/{made['id']}")
        assert status == 200 and got == made
        etag = headers["ETag"]
        assert headers["Cache-Control"] == "private, no-cache"
        status, body, again = await ada.call("GET", f"{V1}/projects/{made['id']}",
                                             headers={"If-None-Match": etag})
        assert status == 304 and body == b"" and again["ETag"] == etag

        status, problem, headers = await ada.call(
            "PATCH", f"{V1}/projects/{made['id']}", {"name": "Day"},
            headers={"If-Match": '"stale"'})
        assert status == 412 and headers["Content-Type"].startswith(PROBLEM)
        assert problem["status"] == 412 and problem["etag"] == etag
        assert "GET it again" in problem["detail"]

        status, renamed, headers = await ada.call(
            "PATCH", f"{V1}/projects/{made['id']}", {"name": "Day"}, headers={"If-Match": etag})
        assert status == 200 and renamed["name"] == "Day"
        assert headers["ETag"] != etag
        status, _, _ = await ada.call("GET", f"{V1}/projects/{made['id']}",
                                      headers={"If-None-Match": etag})
        assert status == 200  # the old ETag is stale now

        status, _, _ = await ada.call("DELETE", f"{V1}/projects/{made['id']}",
                                      headers={"If-Match": etag})
        assert status == 412
        status, gone, _ = await ada.call("DELETE", f"{V1}/projects/{made['id']}",
                                         headers={"If-Match": headers["ETag"]})
        assert status == 200 and gone == {"id": made["id"], "deleted": True}
        status, problem, _ = await ada.call("GET", f"{V1}/projects/{made['id']}")
        assert status == 404 and problem["title"] == "Not Found"


async def test_lists_page_with_signed_cursors_filter_and_cut_fields(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (_, ada, _bob):
        names = ["Alpha", "Beta", "Gamma", "Delta", "Alphabet"]
        made = [(await ada.call("POST", f"{V1}/projects", {"name": n}))[1]["id"] for n in names]

        seen, cursor, pages = [], None, 0
        while True:
            path = f"{V1}/projects?limit=2" + (f"&cursor={cursor}" if cursor else "")
            status, page, _ = await ada.call("GET", path)
            assert status == 200, page
            assert len(page["data"]) <= 2
            seen += [p["id"] for p in page["data"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made and pages == 3  # oldest first, each once

        _, first, _ = await ada.call("GET", f"{V1}/projects?limit=2")
        payload, _, mac = first["next_cursor"].partition(".")
        forged = base64.urlsafe_b64encode(json.dumps(["9", "z"]).encode()).decode().rstrip("=")
        for bad in (f"{forged}.{mac}", "nonsense", first["next_cursor"] + "x"):
            status, problem, headers = await ada.call("GET", f"{V1}/projects?cursor={bad}")
            assert status == 400 and headers["Content-Type"].startswith(PROBLEM)
            assert "next_cursor" in problem["detail"]

        _, found, _ = await ada.call("GET", f"{V1}/projects?name_contains=alpha")
        assert [p["name"] for p in found["data"]] == ["Alpha", "Alphabet"]
        _, found, _ = await ada.call("GET", f"{V1}/projects?role=viewer")
        assert found["data"] == []

        _, sparse, _ = await ada.call("GET", f"{V1}/projects?fields=name&limit=1")
        assert sparse["data"] == [{"id": made[0], "name": "Alpha"}]
        assert sparse["next_cursor"]
        _, one, _ = await ada.call("GET", f"{V1}/projects/{made[1]}?fields=role")
        assert one == {"id": made[1], "role": "owner"}
        status, problem, _ = await ada.call("GET", f"{V1}/projects?fields=name,secret")
        assert status == 400 and "'secret'" in problem["detail"] and "name" in problem["detail"]


async def test_idempotency_keys_replay_refuse_other_bodies_and_expire(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        key = {"Idempotency-Key": "create-night-1"}
        status, first, _ = await ada.call("POST", f"{V1}/projects", {"name": "Night"},
                                          headers=key)
        assert status == 201
        status, again, headers = await ada.call("POST", f"{V1}/projects", {"name": "Night"},
                                                headers=key)
        assert status == 201 and again == first
        assert headers["Idempotent-Replayed"] == "true"
        assert headers["ETag"] and headers["Cache-Control"] == "private, no-cache"
        assert headers["Location"] == f"{V1}/projects/{first['id']}"
        _, listed, _ = await ada.call("GET", f"{V1}/projects")
        assert [p["id"] for p in listed["data"]] == [first["id"]]

        status, problem, _ = await ada.call("POST", f"{V1}/projects", {"name": "Day"},
                                            headers=key)
        assert status == 422 and "another request" in problem["detail"]
        # another account's same key is its own
        status, bobs, _ = await bob.call("POST", f"{V1}/projects", {"name": "Night"},
                                         headers=key)
        assert status == 201 and bobs["id"] != first["id"]
        rows = await app[DATABASE].fetch(
            "SELECT account_id, idem_key, status FROM api_idempotency ORDER BY account_id")
        assert {(r["account_id"], r["status"]) for r in rows} == {
            (ada.person_id, 201), (bob.person_id, 201)}

        status, problem, _ = await ada.call("POST", f"{V1}/projects", {"name": "X"},
                                            headers={"Idempotency-Key": "bad key\u00e9"[:7]})
        assert status == 400 and "Idempotency-Key" in problem["detail"]
        # a failed request keeps no answer: a corrected retry with its key runs
        status, _, _ = await ada.call("POST", f"{V1}/projects", {"name": ""},
                                      headers={"Idempotency-Key": "k2"})
        assert status == 422
        status, _, _ = await ada.call("POST", f"{V1}/projects", {"name": "Fixed"},
                                      headers={"Idempotency-Key": "k2"})
        assert status == 201

        # after 24 hours the key is forgotten: the same request runs again
        await app[DATABASE].execute("UPDATE api_idempotency SET expires_at = 0 "
                                    "WHERE idem_key = ?", "create-night-1")
        status, later, headers = await ada.call("POST", f"{V1}/projects", {"name": "Night"},
                                                headers=key)
        assert status == 201 and later["id"] != first["id"]
        assert "Idempotent-Replayed" not in headers


async def test_tracks_assets_and_bounces_are_served_and_bounces_are_idempotent(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, bob):
        status, made, _ = await ada.call("POST", f"{V1}/projects", {"name": "Song"})
        project_id = made["id"]
        status, asset, _ = await ada.call("POST", f"/projects/{project_id}/assets",
                                          data=wav_bytes(),
                                          headers={"Content-Type": "audio/wav"})
        assert status == 201, asset
        session = Session(name="Mix", tracks=[
            Track("lead", name="Lead", clips=[Clip(asset["source"], 0, 1600, id="c1")]),
            Track("bass", name="Bass", gain_db=-3.0)])
        info = await import_session(app[STORE], session, name="Mix")
        await app[ACCOUNTS].store.own_project(ada.person_id, info.project_id)

        status, tracks, _ = await ada.call("GET", f"{V1}/projects/{info.project_id}/tracks")
        assert status == 200, tracks
        assert [(t["id"], t["name"], t["position"]) for t in tracks["data"]] == [
            ("lead", "Lead", 0), ("bass", "Bass", 1)]
        assert tracks["data"][0]["clips"] == [{
            "id": "c1", "source": asset["source"], "position": 0, "length": 1600,
            "offset": 0, "gain_db": 0.0, "fade_in": 0, "fade_out": 0}]
        status, bass, _ = await ada.call("GET",
                                         f"{V1}/projects/{info.project_id}/tracks/bass")
        assert status == 200 and bass["gain_db"] == -3.0 and bass["clips"] == []
        status, _, _ = await ada.call("GET", f"{V1}/projects/{info.project_id}/tracks/nope")
        assert status == 404

        status, assets, _ = await ada.call("GET", f"{V1}/projects/{project_id}/assets")
        assert status == 200 and [a["id"] for a in assets["data"]] == [asset["id"]]
        assert assets["data"][0]["download_url"] == f"/projects/{project_id}/assets/{asset['id']}"
        _, flac, _ = await ada.call("GET", f"{V1}/projects/{project_id}/assets?format=flac")
        assert flac["data"] == []
        status, one, _ = await ada.call(
            "GET", f"{V1}/projects/{project_id}/assets/{asset['id']}?fields=format,frames")
        assert one == {"id": asset["id"], "format": "wav", "frames": 1600}

        key = {"Idempotency-Key": "bounce-1"}
        status, bounce, headers = await ada.call(
            "POST", f"{V1}/projects/{info.project_id}/bounces", {"format": "wav"}, headers=key)
        assert status == 202, bounce
        assert headers["Location"].endswith(f"/bounces/{bounce['id']}")
        status, again, headers = await ada.call(
            "POST", f"{V1}/projects/{info.project_id}/bounces", {"format": "wav"}, headers=key)
        assert status == 202 and again["id"] == bounce["id"]
        _, listed, _ = await ada.call("GET", f"{V1}/projects/{info.project_id}/bounces")
        assert [b["id"] for b in listed["data"]] == [bounce["id"]]
        status, got, _ = await ada.call(
            "GET", f"{V1}/projects/{info.project_id}/bounces/{bounce['id']}")
        assert status == 200 and got["project_id"] == info.project_id
        status, empty, _ = await ada.call("POST", f"{V1}/projects/{project_id}/bounces",
                                          {"format": "wav"})
        assert status == 409 and empty["status"] == 409  # no clips: the core's refusal

        # Bob sees none of it: every id of Ada's answers 404, as if it did not exist
        for path in (f"{V1}/projects/{project_id}", f"{V1}/projects/{info.project_id}/tracks",
                     f"{V1}/projects/{project_id}/assets/{asset['id']}",
                     f"{V1}/projects/{info.project_id}/bounces/{bounce['id']}"):
            status, problem, _ = await bob.call("GET", path)
            assert status == 404, (path, problem)
            assert project_id not in json.dumps(problem) or "no project" in problem["detail"]
        for method, path, body in (("PATCH", f"{V1}/projects/{project_id}", {"name": "x"}),
                                   ("DELETE", f"{V1}/projects/{project_id}", None),
                                   ("POST", f"{V1}/projects/{info.project_id}/bounces", {})):
            status, _, _ = await bob.call(method, path, body)
            assert status == 404
        _, bobs, _ = await bob.call("GET", f"{V1}/projects")
        assert bobs["data"] == []
