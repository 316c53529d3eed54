"""The TypeScript SDK (sdk/typescript): its generated types fresh from docs/openapi-v1.json,
built with tsc, and run with node against a running server with real keys: pages (projects
and the plug-ins' releases, deliveries, statements, beats, orders, licences), idempotent
creates, If-Match (projects and tracks), typed errors, a real 429 retried after its
Retry-After, a 404 not retried, network errors retried then raised."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from accounts_helpers import accounts_server
from loopback import free_port
from public_api_helpers import person_with_key
from sdk_seed import key_for_sdk, seed, store_settings
from smtp_server import SmtpServer
from transcript_seed import queued_job, transcribed_project

from business.distribution.stores.fakestore import FakeStore
from dawserver.keys import ACCOUNTS, RATE_LIMITER
from dawserver.transcription_service import TRANSCRIPTION

REPO = Path(__file__).resolve().parents[1]
SDK = REPO / "sdk" / "typescript"
SNAPSHOT = REPO / "docs" / "openapi-v1.json"
NO_TOOLS = shutil.which("node") is None or not (SDK / "node_modules" / "typescript").is_dir()
needs_node = pytest.mark.skipif(
    NO_TOOLS, reason="sdk/typescript/node_modules is missing: run 'npm ci' in sdk/typescript")
pytestmark = pytest.mark.timeout(120)


def test_the_committed_types_were_generated_from_the_current_snapshot() -> None:
    header = (SDK / "src" / "schema.ts").read_text().splitlines()[1]
    digest = hashlib.sha256(SNAPSHOT.read_bytes()).hexdigest()
    assert header.endswith(f"sha256: {digest}"), \
        "sdk/typescript/src/schema.ts is stale: run 'npm run generate' in sdk/typescript"


@needs_node
def test_the_generator_reproduces_the_committed_types(tmp_path: Path) -> None:
    out = tmp_path / "schema.ts"
    subprocess.run(["node", "scripts/generate.mjs", "--out", str(out)], cwd=SDK, check=True,
                   capture_output=True, timeout=60)
    assert out.read_bytes() == (SDK / "src" / "schema.ts").read_bytes()
    for operation in json.loads(SNAPSHOT.read_text())["paths"]["/api/v1/projects"].values():
        assert f"    {operation['operationId']}: {{" in out.read_text()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if NO_TOOLS:
        pytest.skip("sdk/typescript/node_modules is missing: run 'npm ci' in sdk/typescript")
    out = tmp_path_factory.mktemp("sdk-ts") / "dist"
    built = subprocess.run([str(SDK / "node_modules" / ".bin" / "tsc"), "-p", "tsconfig.json",
                            "--outDir", str(out)], cwd=SDK, capture_output=True, text=True,
                           timeout=90)
    assert built.returncode == 0, built.stdout + built.stderr
    yield out


async def _scenario(dist: Path, base_url: str, key: str, name: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node", str(SDK / "test" / "scenarios.mjs"), str(dist), base_url, key, name,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        raise
    assert process.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


@pytest.mark.asyncio
async def test_the_client_pages_creates_once_and_honours_if_match(
        dist: Path, tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            seen = await _scenario(dist, config.base_url, caller.key,
                                   "pagesCreatesOnceAndHonoursIfMatch")
            assert seen["waits"] == []
            _, page, _ = await caller.call("GET", "/api/v1/projects")
            # one "One" despite the replayed create; deleted; the 422 created nothing
            assert [p["id"] for p in page["data"]] == seen["made"][1:]
            assert [p["name"] for p in page["data"]] == ["Two", "Three"]
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_a_job_is_cancelled_and_a_transcript_edited_once_per_key(
        dist: Path, tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            project = await transcribed_project(app, person.id, tmp_path, "Talk",
                                                ("one", "two", "three"))
            job = await queued_job(app, project)
            seen = await _scenario(dist, config.base_url, caller.key,
                                   "cancelsJobsAndEditsTranscripts")
            assert (seen["project"], seen["job"], seen["waits"]) == (project, job, [])
            assert (await app[TRANSCRIPTION].get(project, job)).status == "cancelled"
            _, page, _ = await caller.call("GET", f"/api/v1/projects/{project}/transcripts")
            texts = {t["id"]: t["text"] for t in page["data"]}
            # the replayed edit cut no second word
            assert " ".join(texts[c] for c in seen["clips"]) == "one three", texts
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_a_text_edit_is_undone_once_per_key_and_redone(
        dist: Path, tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            project = await transcribed_project(app, person.id, tmp_path, "Talk",
                                                ("one", "two", "three"))
            _, before, _ = await caller.call("GET", f"/api/v1/projects/{project}/transcripts")
            seen = await _scenario(dist, config.base_url, caller.key,
                                   "undoesAndRedoesTextEdits")
            assert (seen["project"], seen["waits"]) == (project, [])
            assert seen["undone"] == [t["id"] for t in before["data"]]
            _, page, _ = await caller.call("GET", f"/api/v1/projects/{project}/transcripts")
            texts = {t["id"]: t["text"] for t in page["data"]}
            # redone once after one undo (replayed under its key): the cut is back
            assert " ".join(texts[c] for c in seen["clips"]) == "one three", texts
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_plugin_resources_page_and_tracks_are_written_once_and_if_match(
        dist: Path, tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with FakeStore() as store, \
            accounts_server(tmp_path, smtp_server, plugins=store_settings(store.url)) as (
                app, config), aiohttp.ClientSession() as http:
        person, ada = await person_with_key(config.base_url, smtp_server, "ada@example.org", http)
        try:
            caller = await key_for_sdk(person, ada)
            await seed(app, ada.person_id)
            seen = await _scenario(dist, config.base_url, caller.key,
                                   "pluginResourcesAndTrackWrites")
            assert seen["waits"] == []
            _, tracks, _ = await caller.call("GET", f"/api/v1/projects/{seen['project']}/tracks")
            # the replayed add made no second track; the stale change changed nothing
            assert [(t["id"], t["pan"]) for t in tracks["data"]] == [(seen["track"], 0.0)]
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_a_429_is_retried_after_its_retry_after_and_a_404_is_not(
        dist: Path, tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server, "ada@example.org",
                                               http)
        try:
            [key] = await app[ACCOUNTS].store.keys_of(person.id)
            for _ in range(100):  # the key's free budget for this second, spent
                await app[RATE_LIMITER].hit(key.key_id, "free")
            seen = await _scenario(dist, config.base_url, caller.key, "rateLimited")
            assert seen["waits"] == [{"attempt": 1, "waitMs": 1000, "status": 429}]
            _, report, _ = await person.call("GET", "/api/v1/usage")
            total = report["keys"][0]["total"]
            assert total["rejected"] == 1 and total["requests"] == 3
        finally:
            await person.close()


@pytest.mark.asyncio
async def test_network_errors_are_retried_then_raised_and_bad_input_refused(
        dist: Path) -> None:
    seen = await _scenario(dist, f"http://127.0.0.1:{free_port()}", "mbk_live_x", "unreachable")
    assert [w["attempt"] for w in seen["waits"]] == [1, 2]
    assert all(w["waitMs"] <= 10 for w in seen["waits"])
    await _scenario(dist, "http://127.0.0.1:1", "mbk_live_x", "badInput")
