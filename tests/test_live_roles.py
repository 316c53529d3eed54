"""A token made for an account never acts above the account's current role.

A collaboration token derived from a session lasts an hour; the person behind it can be
demoted or lose the project meanwhile. HTTP routes and the WebSocket hold the token to
the role its account has now, and the change reaches live connections at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from nodepeer import eventually
from smtp_server import SmtpServer

from collab import protocol as p
from collab.client import SyncClient
from dawclient.channel import connect

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def bearer(person: Person, method: str, path: str, token: str) -> int:
    """The status of a request made with a project token only (no session cookie)."""
    async with person.http.request(method, person.base_url + path,
                                   headers={"Authorization": f"Bearer {token}"},
                                   cookies={}) as response:
        return response.status


@asynccontextmanager
async def ada_bo_and_a_project(tmp_path: Path, smtp_server: SmtpServer
                               ) -> AsyncIterator[tuple[Person, Person, str, str]]:
    """Ada and Bo signed in; Ada's project: (ada, bo, its path, its WebSocket URL)."""
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            await bo.sign_up_and_in("Bo")
            _, project, _ = await ada.call("POST", f"/accounts/{ada.id}/projects",
                                           {"name": "Song"})
            yield (ada, bo, f"/projects/{project['id']}",
                   f"{config.collab_url}/{project['id']}")
        finally:
            await ada.close()
            await bo.close()


async def test_a_demoted_owner_token_cannot_delete_and_a_removed_one_cannot_read(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with ada_bo_and_a_project(tmp_path, smtp_server) as (ada, bo, path, _):
        assert (await ada.call("PUT", f"{path}/grants/{bo.id}", {"role": "owner"}))[0] == 200
        status, made, _ = await bo.call("POST", f"{path}/collab-token")
        assert status == 201 and made["role"] == "owner"
        bo.http.cookie_jar.clear()  # from here on Bo acts by the token alone
        assert await bearer(bo, "GET", f"{path}/grants", made["token"]) == 200

        assert (await ada.call("PUT", f"{path}/grants/{bo.id}", {"role": "viewer"}))[0] == 200
        assert await bearer(bo, "GET", f"{path}/grants", made["token"]) == 200
        assert await bearer(bo, "DELETE", path, made["token"]) == 403  # owners only
        assert await bearer(bo, "POST", f"{path}/tokens", made["token"]) == 403

        assert (await ada.call("DELETE", f"{path}/grants/{bo.id}"))[0] == 200
        assert await bearer(bo, "GET", f"{path}/grants", made["token"]) == 403
        # each role given or taken is in the owning account's security log
        status, audit, _ = await ada.call("GET", f"/accounts/{ada.id}/audit")
        assert status == 200
        project_id = path.rsplit("/", 1)[1]
        assert [(e["action"], e["actor"], e["target"], e["detail"]) for e in audit
                if e["action"].startswith("project.role")] == [
            ("project.role_revoked", ada.id, bo.id, {"project": project_id, "role": "viewer"}),
            ("project.role_granted", ada.id, bo.id, {"project": project_id, "role": "viewer"}),
            ("project.role_granted", ada.id, bo.id, {"project": project_id, "role": "owner"})]
        assert (await ada.call("DELETE", path))[0] == 200  # the owner's own still can


async def test_live_connections_follow_grants_and_old_tokens_reopen_at_the_new_role(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with ada_bo_and_a_project(tmp_path, smtp_server) as (ada, bo, path, url):
        await ada.call("PUT", f"{path}/grants/{bo.id}", {"role": "editor"})
        _, made, _ = await bo.call("POST", f"{path}/collab-token")
        _, hers, _ = await ada.call("POST", f"{path}/collab-token")
        async with connect(url, made["token"]) as channel, SyncClient(channel) as client, \
                connect(url, hers["token"]) as her_channel, SyncClient(her_channel) as ada_sees:
            await client.wait_synced()
            await ada_sees.wait_synced()
            client.document.add_marker(100, "as an editor")
            # the room took it (Ada sees it) before Bo's role is lowered
            await eventually(lambda: len(ada_sees.document.markers()) == 1)

            assert (await ada.call("PUT", f"{path}/grants/{bo.id}",
                                   {"role": "viewer"}))[0] == 200
            client.document.add_marker(200, "as a viewer")
            await eventually(lambda: client.denials)
            assert "role viewer cannot edit" in client.denials[0]
            assert not client.closed.is_set()

            assert (await ada.call("DELETE", f"{path}/grants/{bo.id}"))[0] == 200
            await eventually(lambda: client.closed.is_set())
            assert channel.close_code == p.CloseCode.ROLE_REVOKED

        # the editor token opens the project again once Bo holds a role, at that role
        await ada.call("PUT", f"{path}/grants/{bo.id}", {"role": "viewer"})
        async with connect(url, made["token"]) as channel, SyncClient(channel) as client:
            await client.wait_synced()
            assert [m["name"] for m in client.document.markers()] == ["as an editor"]
            client.document.add_marker(300, "still a viewer")
            await eventually(lambda: client.denials)


async def test_a_removed_or_erased_account_token_is_refused_beyond_project_routes(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with ada_bo_and_a_project(tmp_path, smtp_server) as (ada, bo, path, _):
        await ada.call("PUT", f"{path}/grants/{bo.id}", {"role": "editor"})
        _, made, _ = await bo.call("POST", f"{path}/collab-token")
        token = made["token"]
        # a route without the project in its path: held to the role all the same
        before = await bearer(bo, "GET", "/api/v1/projects", token)
        assert (await ada.call("DELETE", f"{path}/grants/{bo.id}"))[0] == 200
        assert before != 403 and await bearer(bo, "GET", "/api/v1/projects", token) == 403

        await ada.call("PUT", f"{path}/grants/{bo.id}", {"role": "editor"})
        assert await bearer(bo, "GET", f"{path}/grants", token) == 200
        status, job, _ = await bo.call("POST", "/me/delete", {"password": PASSWORD})
        assert status == 202, job
        async with asyncio.timeout(60):  # until the erasure has deleted Bo's account row
            while (await bo.call("GET", job["url"]))[1]["state"] != "done":
                await asyncio.sleep(0.1)
        # erased: the token is refused, not taken for a guest's that keeps its role
        assert await bearer(bo, "GET", f"{path}/grants", token) == 403
