"""A deleted project's lists (assets, bounces, transcription jobs and log) and jobs
answer 404, as its other routes do, to a token that still verifies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import running_server

from collab.tokens import Role
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.projects import import_session
from dawserver.transcription_service import TRANSCRIPTION
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

LISTS = ("/assets", "/bounces", "/transcription-jobs", "/transcription-log")


class Project:
    """A served project with one asset, and an HTTP client."""

    def __init__(self, app, base: str, project_id: str, http: aiohttp.ClientSession) -> None:
        self.app, self.base, self.project_id, self.http = app, base, project_id, http

    def url(self, path: str = "") -> str:
        return f"{self.base}/projects/{self.project_id}{path}"

    def headers(self, role: Role = Role.VIEWER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.app[TOKENS].issue(self.project_id, role, 'ana')}"}

    async def status(self, method: str, path: str, headers: dict[str, str]) -> int:
        async with self.http.request(method, self.url(path), headers=headers) as answer:
            await answer.read()
            return answer.status


@pytest_asyncio.fixture
async def project(tmp_path: Path) -> AsyncIterator[Project]:
    audio = tmp_path / "one.wav"
    sf.write(audio, np.linspace(-0.5, 0.5, 3000, dtype=np.float32), 48000, subtype="FLOAT")
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    session = Session(name="Doomed", tracks=[Track("t0", clips=[Clip(str(audio), 0, 3000,
                                                                     id="c0")])])
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        yield Project(app, f"http://127.0.0.1:{config.port}", info.project_id, http)


async def test_a_deleted_projects_lists_answer_404(project: Project) -> None:
    viewer = project.headers()  # issued before the deletion: it still verifies after it
    for path in LISTS:
        assert await project.status("GET", path, viewer) == 200, path
    assert await project.status("DELETE", "", project.headers(Role.OWNER)) == 200
    assert await project.status("GET", "", viewer) == 404  # the project itself
    assert {path: await project.status("GET", path, viewer) for path in LISTS} == \
        dict.fromkeys(LISTS, 404)


async def test_a_deleted_projects_jobs_answer_404(project: Project) -> None:
    """Its finished job records stay until purged; its routes no longer show them."""
    editor = project.headers(Role.EDITOR)
    async with project.http.post(project.url("/bounces"), json={},
                                 headers=editor) as answer:
        assert answer.status == 202, await answer.text()
        bounce = (await answer.json())["id"]
    job = await project.app[TRANSCRIPTION].submit(project.project_id, "/nowhere.wav")
    jobs = (f"/bounces/{bounce}", f"/transcription-jobs/{job.id}")
    for path in jobs:
        assert await project.status("GET", path, editor) == 200, path
    assert await project.status("DELETE", "", project.headers(Role.OWNER)) == 200
    assert {(method, path): await project.status(method, path, editor)
            for method in ("GET", "DELETE") for path in jobs} == \
        dict.fromkeys([(method, path) for method in ("GET", "DELETE") for path in jobs], 404)
