"""The plug-in contract: discovery, configuration, and what a plug-in may contribute."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from dawserver.cli import main
from dawserver.plugins import (
    DEFAULT_PLUGINS,
    PLUGIN_CONTEXT_KEY,
    PluginError,
    describe,
    emit_project_rendered,
    install,
    load_plugins,
)

THIRD_PARTY = textwrap.dedent('''
    import asyncio
    import pluggy

    hookimpl = pluggy.HookimplMarker("maxbooster")
    SEEN = {"jobs": 0, "rendered": [], "events": []}

    @hookimpl
    def plugin_info():
        return {"name": "greeter", "version": "0.1", "description": "says hello"}

    @hookimpl
    def migrations():
        return [("greeter", 1, "greetings", "CREATE TABLE greetings (account_id TEXT NOT NULL, "
                 "word TEXT NOT NULL, PRIMARY KEY (account_id, word))")]

    @hookimpl
    def permissions():
        return [("greeter.secret", "read the secret greeting")]

    @hookimpl
    def permission_allowed(account_id, permission, request):
        if permission == "greeter.secret":
            return account_id == "boss"
        return None

    async def hello(request):
        db = request.context.database()
        await db.execute("INSERT INTO greetings VALUES (?, ?) ON CONFLICT DO NOTHING",
                         request.account_id, request.match_info["word"])
        rows = await db.fetch("SELECT word FROM greetings WHERE account_id = ?",
                              request.account_id)
        return 200, {"account": request.account_id, "words": [r["word"] for r in rows]}

    async def secret(request):
        return 200, "psst"

    @hookimpl
    def routes(context):
        return [("GET", "/hello/{word}", hello), ("GET", "/secret", secret, "greeter.secret")]

    async def tick(context):
        while True:
            SEEN["jobs"] += 1
            await asyncio.sleep(0.01)

    @hookimpl
    def background_jobs(context):
        return [("greeter.tick", tick)]

    @hookimpl
    def project_rendered(context, account_id, project_id, path, metadata):
        SEEN["rendered"].append((account_id, project_id, path))

    @hookimpl
    def business_event(context, name, payload):
        SEEN["events"].append(name)
''')


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A plug-in installed the real way: a module plus a dist-info with an entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "greeter_plugin.py").write_text(THIRD_PARTY)
    info = site / "greeter_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: greeter-plugin\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[maxbooster.plugins]\ngreeter = greeter_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.invalidate_caches()
    yield importlib.import_module("greeter_plugin")


def test_built_in_plugins_load_like_third_party_ones(third_party) -> None:  # noqa: ANN001
    infos = {i.name: i for i in describe(load_plugins())}
    assert {"distribution", "distribution-https-drop", "greeter"} <= set(infos)
    assert infos["distribution"].source == "built-in"
    assert infos["greeter"].source == "entry point greeter_plugin"
    assert infos["greeter"].routes == 2 and infos["greeter"].permissions == ("greeter.secret",)
    assert "business.distribution.plugin" in DEFAULT_PLUGINS


def test_configuration_disables_plugins(third_party) -> None:  # noqa: ANN001
    manager = load_plugins({"plugins": {"greeter": False, "distribution": False}})
    names = {name for name, plugin in manager.list_name_plugin() if plugin is not None}
    assert names == {"distribution-https-drop"}


def test_configuring_an_unknown_plugin_is_an_error() -> None:
    with pytest.raises(PluginError, match=r"unknown plug-ins \['nope'\]"):
        load_plugins({"plugins": {"nope": {"x": 1}}})
    with pytest.raises(PluginError, match="must be true, false or a settings mapping"):
        load_plugins({"plugins": {"distribution": "yes"}})


def test_core_packages_never_import_business() -> None:
    root = Path(__file__).resolve().parents[1]
    for package in ("dawserver", "collab", "dsp_core"):
        for source in (root / package).rglob("*.py"):
            text = source.read_text()
            assert "import business" not in text and "from business" not in text, source


def test_installed_plugin_serves_routes_runs_jobs_and_hooks(third_party, tmp_path: Path
                                                            ) -> None:  # noqa: ANN001
    async def go() -> None:
        app = web.Application()
        context = install(app, {"data_dir": tmp_path, "plugins": {"distribution": False}},
                          identify=lambda r: r.headers.get("X-Account", "local"))
        async with TestClient(TestServer(app)) as client:
            first = await client.get("/hello/hi", headers={"X-Account": "ada"})
            second = await client.get("/hello/ho", headers={"X-Account": "ada"})
            assert first.status == 200
            assert (await second.json()) == {"account": "ada", "words": ["hi", "ho"]}
            denied = await client.get("/secret", headers={"X-Account": "ada"})
            assert denied.status == 403
            assert "greeter.secret" in (await denied.json())["error"]
            allowed = await client.get("/secret", headers={"X-Account": "boss"})
            assert await allowed.text() == "psst"
            await emit_project_rendered(app, "ada", "p1", tmp_path / "p1.wav", {"lufs": -14})
            await app[PLUGIN_CONTEXT_KEY].announce("demo.event", {})
            await asyncio.sleep(0.05)
            assert third_party.SEEN["jobs"] > 0
            assert third_party.SEEN["rendered"] == [("ada", "p1", str(tmp_path / "p1.wav"))]
            assert third_party.SEEN["events"] == ["demo.event"]
            assert context.db is not None
        assert context.db is None or context.db._conn is None  # closed on shutdown
        assert (tmp_path / "collab.sqlite3").exists()

    asyncio.run(go())


def test_cli_lists_loaded_plugins(third_party) -> None:  # noqa: ANN001
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    names = [p["name"] for p in json.loads(result.output)]
    assert names == sorted(names) and "greeter" in names and "distribution" in names
    table = CliRunner().invoke(main, ["plugins", "--disable", "greeter"])
    assert table.exit_code == 0 and "greeter" not in table.output
    assert "distribution 1.0  (built-in)" in table.output


def test_server_app_loads_distribution_and_keeps_accounts_apart(tmp_path: Path) -> None:
    from dawserver.app import create_app
    from dawserver.config import ServerConfig
    from dawserver.keys import TOKENS

    async def go() -> None:
        app = create_app(ServerConfig(data_dir=tmp_path, engine=False))
        async with TestClient(TestServer(app)) as client:
            ada = app[TOKENS].issue("song", "owner", user="ada")
            bob = app[TOKENS].issue("song", "viewer", user="bob")
            raw = {"release_id": "r1", "title": "Mine", "artists": ["Ada"], "tracks": []}
            made = await client.post("/api/distribution/releases", json=raw,
                                     headers={"Authorization": f"Bearer {ada}"})
            assert made.status == 201
            mine = await client.get("/api/distribution/releases", params={"token": ada})
            theirs = await client.get("/api/distribution/releases", params={"token": bob})
            anonymous = await client.get("/api/distribution/releases")
            assert [r["release_id"] for r in await mine.json()] == ["r1"]
            assert await theirs.json() == [] and await anonymous.json() == []
            forged = await client.get("/api/distribution/releases",
                                      params={"token": ada[:-2] + "xx"})
            assert forged.status == 401 and "dawserver token" in (await forged.json())["error"]

    asyncio.run(go())


def test_server_app_without_the_plugin_has_no_distribution_routes(tmp_path: Path) -> None:
    from dawserver.app import create_app
    from dawserver.config import ServerConfig

    async def go() -> None:
        app = create_app(ServerConfig(data_dir=tmp_path, engine=False,
                                      plugins={"distribution": False}))
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/api/distribution/releases")).status == 404

    asyncio.run(go())


def test_settings_file_in_the_data_dir_configures_plugins(tmp_path: Path) -> None:
    (tmp_path / "plugins.json").write_text(json.dumps({"distribution": False}))
    listed = CliRunner().invoke(main, ["plugins", "--data", str(tmp_path)])
    assert listed.exit_code == 0 and "distribution 1.0" not in listed.output
    assert "distribution-https-drop" in listed.output
    (tmp_path / "plugins.json").write_text("{oops")
    broken = CliRunner().invoke(main, ["plugins", "--data", str(tmp_path)])
    assert broken.exit_code == 1
    assert broken.output.startswith("error: cannot read plug-in settings")
    assert "Traceback" not in broken.output
