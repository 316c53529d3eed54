"""A release names only its own account's files: its renders, or its distribution folder.

Another account's render, a server file, a symlink or ``..`` out of the folder: all
refused alike (400), whether the file exists or not, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from distribution_helpers import make_art, make_audio, migrate, release_dict

from business.distribution.catalog import Catalog
from business.distribution.errors import ForeignFileError, NotFoundError
from business.distribution.services import services
from database import open_database
from dawserver.plugin_api import Principal
from dawserver.plugins import (
    PLUGIN_CONTEXT_KEY,
    emit_project_rendered,
    install,
    load_plugins,
)


def _files(data: Path) -> dict[str, Path]:
    """Ada's render and cover (in her folder), Eve's cover and take, and a link out of
    her folder."""
    for name in ("ada", "eve"):
        (data / "distribution" / name).mkdir(parents=True)
    (data / "bounces" / "p-ada").mkdir(parents=True)
    made = {"render": make_audio(data / "bounces" / "p-ada" / "j1.wav", seconds=1.0),
            "ada_art": make_art(data / "distribution" / "ada" / "cover.jpg", size=64),
            "eve_art": make_art(data / "distribution" / "eve" / "cover.jpg", size=64),
            "eve_audio": make_audio(data / "distribution" / "eve" / "take.wav", seconds=1.0),
            "eve_link": data / "distribution" / "eve" / "mine.wav"}
    os.symlink(made["render"], made["eve_link"])
    return made


def test_a_release_names_only_its_own_accounts_files(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = _files(data)

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            catalog = Catalog(db, media_root=data)
            await catalog.record_render("ada", "p-ada", str(files["render"]), {})
            own = release_dict(tmp_path, release_id="ok", art=files["ada_art"],
                               audio=[files["render"]])
            await catalog.save_release("ada", own)
            by_project = dict(own, release_id="by-project", tracks=[
                dict(own["tracks"][0], audio_path="", project_id="p-ada")])
            made = await catalog.save_release("ada", by_project)
            assert made.tracks[0].audio_path == str(files["render"])

            eve = dict(own, artwork_path=str(files["eve_art"]), tracks=[
                dict(own["tracks"][0], audio_path=str(files["eve_audio"]))])
            await catalog.save_release("eve", dict(eve, release_id="eves"))  # all hers
            messages = set()
            for n, (field, path) in enumerate([
                    ("tracks[0].audio_path", files["render"]),  # ada's render
                    ("tracks[0].audio_path", files["eve_link"]),  # a link to it
                    ("artwork_path", files["ada_art"]),  # ada's folder
                    ("artwork_path", data / "distribution" / "eve" / ".." / "ada" /
                     "cover.jpg"),
                    ("artwork_path", "/etc/shadow"), ("artwork_path", "/etc/no-such"),
                    ("artwork_path", data / "distribution" / "eve")]):
                raw = dict(eve, release_id=f"r{n}")
                if field == "artwork_path":
                    raw["artwork_path"] = str(path)
                else:
                    raw["tracks"] = [dict(eve["tracks"][0], audio_path=str(path))]
                with pytest.raises(ForeignFileError) as refused:
                    await catalog.save_release("eve", raw)
                messages.add(str(refused.value))
                with pytest.raises(NotFoundError):
                    await catalog.get_release("eve", f"r{n}")
            assert len(messages) == 2  # per field: the same whether a file exists or not
            # a release stored before the rule (or by hand) is checked when it is checked
            await db.execute("UPDATE dist_releases SET data = ? WHERE account_id = ? AND "
                             "release_id = ?", json.dumps(dict(eve, tracks=[dict(
                                 eve["tracks"][0], audio_path=str(files["render"]))])),
                             "eve", "eves")
            for gate in (catalog.check, catalog.snapshot):
                with pytest.raises(ForeignFileError):
                    await gate("eve", "eves")
            with pytest.raises(ForeignFileError):  # eve cannot use ada's project either
                await catalog.save_release("eve", dict(by_project, artwork_path=str(
                    files["eve_art"]), tracks=[dict(by_project["tracks"][0],
                                                    audio_path=str(tmp_path / "x.wav"))]))

    asyncio.run(go())


def test_the_http_api_refuses_another_accounts_file_with_400(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = _files(data)

    def ident(request: web.Request) -> Principal | None:
        account = request.headers.get("X-Account")
        return Principal(account, "owner", account) if account else None

    async def go() -> None:
        config = {"data_dir": data, "plugins": {"distribution": {"presave_check_s": 3600}}}
        app = web.Application()
        install(app, config, manager=load_plugins(config), identify=ident)
        async with TestClient(TestServer(app)) as client:
            assert services(app[PLUGIN_CONTEXT_KEY]).catalog.media_root == data  # the server's
            await emit_project_rendered(app, "ada", "p-ada", str(files["render"]), {})
            raw = release_dict(tmp_path, art=files["eve_art"], audio=[files["render"]])
            answers = []
            for art in (files["eve_art"], "/etc/shadow", "/etc/no-such"):
                made = await client.post("/api/distribution/releases",
                                         json=dict(raw, artwork_path=str(art)),
                                         headers={"X-Account": "eve"})
                answers.append((made.status, (await made.json()).get("error")))
            assert answers[0][0] == 400 and "tracks[0].audio_path" in answers[0][1]
            assert answers[1] == answers[2] and answers[1][0] == 400
            mine = dict(raw, artwork_path=str(files["ada_art"]))
            made = await client.post("/api/distribution/releases", json=mine,
                                     headers={"X-Account": "ada"})
            assert made.status == 201, await made.json()

    asyncio.run(go())
