"""PostgreSQL stopped and started again under a running server with connected editors.

The server's store is a PostgreSQL server of the test's own. Edits acknowledged before
the outage (seen by another editor: the server relays only what is stored) are kept;
an edit made during the outage is refused (its sender is closed with 1011 and asked to
reconnect) and never shown to anyone, so nothing is acknowledged and then lost; the
editor's client still holds it and sends it again on reconnecting, and it is stored
then. The same server process serves new editors, HTTP and jobs once PostgreSQL is back.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from fault_helpers import OwnPostgres, linked_servers, texts
from nodepeer import eventually

from collab.schema import ProjectDocument

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


@pytest.fixture
def own_postgres():
    with OwnPostgres() as server:
        yield server


async def fresh_database(server: OwnPostgres) -> str:
    name = f"faults_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url.rsplit("/", 1)[0] + f"/{name}"


async def list_bounces(dep) -> tuple[int, object, str | None]:
    """``GET /projects/{id}/bounces`` (read from the job queue in the database)."""
    async with aiohttp.ClientSession() as http, http.get(
            f"{dep.configs[0].base_url}/projects/{dep.project_id}/bounces",
            headers={"Authorization": f"Bearer {dep.token()}"}) as answer:
        return answer.status, await answer.json(), answer.headers.get("Retry-After")


async def test_a_postgres_restart_keeps_acknowledged_edits_and_refuses_the_rest(
        tmp_path: Path, own_postgres: OwnPostgres) -> None:
    database = await fresh_database(own_postgres)
    loop = asyncio.get_running_loop()
    async with linked_servers(tmp_path, database, [None]) as dep:
        ana_document = ProjectDocument()
        async with dep.client(0, "ben") as ben:
            async with dep.client(0, "ana", document=ana_document) as ana:
                for i in range(10):
                    ana.document.add_comment("ana", f"before {i}")
                before = [f"before {i}" for i in range(10)]
                await eventually(lambda: texts(ben.document) == before)  # acknowledged

                await loop.run_in_executor(None, own_postgres.stop)
                ana.document.add_comment("ana", "during")
                async with asyncio.timeout(30):
                    await ana.closed.wait()
                assert ana.channel.close_code == 1011
            seen_during_outage = texts(ben.document)
            status, body, retry = await list_bounces(dep)  # HTTP: "try again shortly"
            assert status == 503 and "database" in body["error"], body
            assert retry == "5"
            assert "during" not in seen_during_outage  # never shown before it is stored

            await loop.run_in_executor(None, own_postgres.start)
            # The same server, no restart: ana reconnects with what her client holds.
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with dep.client(0, "ana", document=ana_document) as ana:
                            await eventually(lambda: "during" in texts(ben.document),
                                             timeout=20)
                            ana.document.add_comment("ana", "after")
                            await eventually(lambda: "after" in texts(ben.document))
                        break
                    except (ConnectionError, OSError, AssertionError):
                        await asyncio.sleep(0.5)
        assert (await list_bounces(dep))[:2] == (200, [])
        everything = sorted([*before, "during", "after"])
        stored = texts(await dep.stored())
        assert stored == everything  # each exactly once
        assert set(seen_during_outage) <= set(stored)
        async with dep.client(0, "cy") as cy:  # a fresh editor loads the whole project
            assert texts(cy.document) == everything
