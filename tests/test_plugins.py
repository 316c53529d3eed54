"""The plug-in contract: discovery, configuration, and what a plug-in may contribute."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from dawserver.cli import main
from dawserver.plugin_api import Permission, Principal, Role, hookimpl
from dawserver.plugins import (
    DEFAULT_PLUGINS,
    PluginError,
    describe,
    emit_project_rendered,
    install,
    load_plugins,
)


def _header_identity(request: web.Request) -> Principal | None:
    """Who a test request is: ``X-Account`` and ``X-Role`` headers (none: anonymous)."""
    account = request.headers.get("X-Account")
    if account is None:
        return None
    return Principal(account, request.headers.get("X-Role", "owner"), f"user-of-{account}")

THIRD_PARTY = textwrap.dedent('''
    import asyncio

    from dawserver.plugin_api import (
        PUBLIC, Empty, Event, Job, Media, Migration, Model, Permission, QueueSettings, Role,
        Route, Worker, hookimpl)

    SEEN = {"jobs": 0, "rendered": [], "events": [], "greeted": []}
    READ = Permission("greeter.read", "read the greetings", Role.VIEWER)
    SECRET = Permission("greeter.secret", "read the secret greeting")
    WRITE = Permission("greeter.write", "change the greeting", Role.EDITOR)


    class Words(Model):
        account: str
        words: list[str]


    class Who(Model):
        role: str
        user: str


    class Account(Model):
        account: str


    class Demo(Model):
        pass


    @hookimpl
    def plugin_info():
        return {"name": "greeter", "version": "0.1", "description": "says hello"}

    @hookimpl
    def migrations():
        return [Migration("greeter", 1, "greetings", "CREATE TABLE greetings (account_id TEXT "
                          "NOT NULL, word TEXT NOT NULL, PRIMARY KEY (account_id, word))")]

    @hookimpl
    def permissions():
        return [READ, SECRET, WRITE]

    @hookimpl
    def permission_allowed(principal, permission):
        if permission == SECRET:
            return principal.account_id == "boss"
        return None

    @hookimpl
    def events():
        return [Event("demo.event", Demo)]


    class Greet(Model):
        word: str


    async def greet(context, payload, job):
        job.progress(0.5, "greeting")
        SEEN["greeted"].append((payload.word, job.attempt))
        return {"greeted": payload.word}


    @hookimpl
    def jobs():
        return [Job("greeter.greet", Greet, greet, "greet someone",
                    QueueSettings(concurrency=2, max_attempts=2))]

    async def hello(request):
        db = request.context.database()
        await db.execute("INSERT INTO greetings VALUES (?, ?) ON CONFLICT DO NOTHING",
                         request.account_id, request.params["word"])
        rows = await db.fetch("SELECT word FROM greetings WHERE account_id = ?",
                              request.account_id)
        return {"account": request.account_id, "words": [r["word"] for r in rows]}

    async def secret(request):
        return "psst"

    async def write(request):
        return {"role": request.role, "user": request.user}

    async def welcome(request):
        return {"account": request.account_id}

    @hookimpl
    def routes(context):
        return [
            Route(method="GET", path="/hello/{word}", handler=hello, permission=READ,
                  response=Words),
            Route(method="GET", path="/secret", handler=secret, permission=SECRET,
                  response=Media("text/plain")),
            Route(method="POST", path="/greeting", handler=write, permission=WRITE,
                  body=Empty, response=Who),
            Route(method="GET", path="/welcome", handler=welcome, permission=PUBLIC,
                  response=Account),
        ]

    async def tick(context):
        while True:
            SEEN["jobs"] += 1
            await asyncio.sleep(0.01)

    @hookimpl
    def workers(context):
        return [Worker("greeter.tick", tick)]

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
    assert infos["greeter"].routes == 4
    assert infos["greeter"].permissions == ("greeter.read", "greeter.secret", "greeter.write")
    assert "business.distribution.plugin" in DEFAULT_PLUGINS
    assert infos["core"].source == "built-in" and infos["core"].routes > 30


def test_configuration_disables_plugins(third_party) -> None:  # noqa: ANN001
    manager = load_plugins({"plugins": {"greeter": False, "distribution": False}})
    names = {name for name, plugin in manager.list_name_plugin() if plugin is not None}
    assert names == {"core", "distribution-https-drop", "social", "analytics",
                     "marketplace"}
    with pytest.raises(PluginError, match="'core' plug-in serves the server's own routes"):
        load_plugins({"plugins": {"core": False}})


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


def test_every_hook_the_contract_declares_is_called_somewhere() -> None:
    import re

    from business.distribution import hookspecs as distribution_hookspecs
    from dawserver import plugin_api

    root = Path(__file__).resolve().parents[1]
    code = "".join(source.read_text() for package in ("dawserver", "business")
                   for source in (root / package).rglob("*.py"))
    declared = {name for module in (plugin_api, distribution_hookspecs)
                for name, value in vars(module).items()
                if callable(value) and hasattr(value, "maxbooster_spec")}
    called = {a or b for a, b in re.findall(
        r'hook\.(\w+)(?:\(|\.get_hookimpls\()|(?:call_one|each_plugin)\([\w.]+, "(\w+)"', code)}
    assert declared and declared <= called, declared - called


def test_plugins_import_only_the_plugin_api_from_the_core() -> None:
    import re

    root = Path(__file__).resolve().parents[1]
    core = r"(?:dawserver|database)\b[\w.]*"
    pattern = rf"^from ({core}) import|^import ({core})"
    for source in (root / "business").rglob("*.py"):
        imported = set(re.findall(pattern, source.read_text(), re.MULTILINE))
        assert {a or b for a, b in imported} <= {"dawserver.plugin_api"}, source


def test_a_plugin_migration_is_the_database_layers_own_and_nothing_else() -> None:
    import database
    from business.distribution.plugin import MIGRATIONS
    from dawserver import plugin_api
    from dawserver.plugins import collect_migrations

    assert plugin_api.Migration is database.Migration
    assert plugin_api.load_migrations is database.load_migrations
    found = collect_migrations(load_plugins())
    assert [m for m in found if m.component == "distribution"] == MIGRATIONS

    class Untyped:
        PLUGIN_NAME = "untyped"

        @hookimpl
        def migrations(self) -> list:
            return [("untyped", 1, "things", "CREATE TABLE things (account_id TEXT)")]

    with pytest.raises(PluginError, match="'untyped': its 'migrations' hook returned .*"
                                          "return plugin_api.Migration declarations"):
        collect_migrations(load_plugins(extra=[Untyped()]))


def test_installed_plugin_serves_routes_runs_jobs_and_hooks(third_party, tmp_path: Path
                                                            ) -> None:  # noqa: ANN001
    async def go() -> None:
        app = web.Application()
        context = install(app, {"data_dir": tmp_path, "plugins": {"distribution": False}},
                          identify=_header_identity)
        async with TestClient(TestServer(app)) as client:
            first = await client.get("/hello/hi", headers={"X-Account": "ada"})
            second = await client.get("/hello/ho", headers={"X-Account": "ada"})
            assert first.status == 200
            assert (await second.json()) == {"account": "ada", "words": ["hi", "ho"]}
            anonymous = await client.get("/hello/hi")
            assert anonymous.status == 401
            assert "no token" in (await anonymous.json())["error"]
            assert "needs a token" in (await anonymous.json())["error"]
            public = await client.get("/welcome")
            assert public.status == 200 and await public.json() == {"account": ""}
            denied = await client.get("/secret", headers={"X-Account": "ada"})
            assert denied.status == 403
            assert "greeter.secret" in (await denied.json())["error"]
            allowed = await client.get("/secret", headers={"X-Account": "boss"})
            assert await allowed.text() == "psst"
            for role, status in (("viewer", 403), ("editor", 200), ("owner", 200)):
                answer = await client.post("/greeting",
                                           headers={"X-Account": "ada", "X-Role": role})
                assert answer.status == status, role
                if status == 403:
                    assert "needs editor or higher" in (await answer.json())["error"]
                else:
                    assert await answer.json() == {"role": role, "user": "user-of-ada"}
            await emit_project_rendered(app, "ada", "p1", tmp_path / "p1.wav", {"lufs": -14})
            await context.announce("demo.event", {}, account_id="ada")
            queued = await context.enqueue("greeter.greet", {"word": "hi"}, account_id="ada",
                                           idempotency_key="once")
            again = await context.enqueue("greeter.greet", {"word": "hi"}, account_id="ada",
                                          idempotency_key="once")
            assert again.id == queued.id
            with pytest.raises(PluginError, match="word"):
                await context.enqueue("greeter.greet", {"words": 1}, account_id="ada")
            async with asyncio.timeout(20):
                while (await context.background.queue.get("ada", queued.id)).state != "done" \
                        or not third_party.SEEN["events"]:
                    await asyncio.sleep(0.02)
            done = await context.background.queue.get("ada", queued.id)
            assert done.result == {"greeted": "hi"}
            assert third_party.SEEN["greeted"] == [("hi", 1)]
            assert third_party.SEEN["jobs"] > 0
            assert third_party.SEEN["rendered"] == [("ada", "p1", str(tmp_path / "p1.wav"))]
            assert third_party.SEEN["events"] == ["demo.event"]
            assert context.db is not None
        assert context.db is None or not context.db.started  # closed on shutdown
        assert (tmp_path / "collab.sqlite3").exists()

    asyncio.run(go())


class Rogue:
    """A plug-in that says yes to every permission, its own or not."""

    PLUGIN_NAME = "rogue"

    def __init__(self, declares: list[Permission] | None = None) -> None:
        self.declares = declares or []

    @hookimpl
    def permissions(self) -> list[Permission]:
        return self.declares

    @hookimpl
    def permission_allowed(self, principal: Principal, permission: Permission) -> bool:
        return True


def test_only_the_plugin_that_declared_a_permission_may_overrule_its_roles(
        third_party, tmp_path: Path) -> None:  # noqa: ANN001
    async def go() -> None:
        app = web.Application()
        config = {"data_dir": tmp_path}
        install(app, config, manager=load_plugins(config, extra=[Rogue()]),
                identify=_header_identity)
        async with TestClient(TestServer(app)) as client:
            async def status(path: str, role: str, account: str = "ada",
                             method: str = "GET") -> int:
                headers = {"X-Account": account, "X-Role": role}
                async with client.request(method, path, headers=headers) as answer:
                    return answer.status

            # the greeter still decides its own permission; the rogue's yes is not asked
            assert await status("/secret", "owner") == 403
            assert await status("/secret", "owner", account="boss") == 200
            for role, expected in (("viewer", 403), ("editor", 403), ("owner", 200)):
                assert await status("/api/distribution/balances", role) == expected, role
            # an unknown role holds nothing
            assert await status("/greeting", "admin", method="POST") == 403

    asyncio.run(go())


def test_a_permission_belongs_to_one_plugin_and_names_a_known_role(third_party
                                                                   ) -> None:  # noqa: ANN001
    taken = Rogue([Permission("distribution.royalties", "pay myself", Role.VIEWER)])
    with pytest.raises(PluginError, match="'distribution.royalties' is declared by both"):
        install(web.Application(), {}, manager=load_plugins(extra=[taken]))
    misnamed = Rogue([Permission("rogue.read", "read", "admin")])
    with pytest.raises(PluginError, match="'rogue.read': unknown role 'admin'; use one of"):
        install(web.Application(), {}, manager=load_plugins(extra=[misnamed]))


def test_cli_lists_loaded_plugins(third_party) -> None:  # noqa: ANN001
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    names = [p["name"] for p in json.loads(result.output)]
    assert names == sorted(names) and "greeter" in names and "distribution" in names
    table = CliRunner().invoke(main, ["plugins", "--disable", "greeter"])
    assert table.exit_code == 0 and "greeter" not in table.output
    assert "distribution 1.0  (built-in)" in table.output


def test_server_app_maps_project_tokens_to_accounts_and_roles_to_permissions(
        tmp_path: Path) -> None:
    from dawserver.app import create_app
    from dawserver.config import ServerConfig
    from dawserver.keys import STORE, TOKENS

    async def go() -> None:
        app = create_app(ServerConfig(data_dir=tmp_path, engine=False))
        async with TestClient(TestServer(app)) as client:
            tokens = app[TOKENS]
            owner = tokens.issue("song", "owner", user="ada")
            editor = tokens.issue("song", "editor", user="eddie")
            viewer = tokens.issue("song", "viewer", user="bob")
            # the owner of another project names a user of "song": a different account
            stranger = tokens.issue("other", "owner", user="ada")
            admin = tokens.issue("*", "owner", user="root")
            releases = "/api/distribution/releases"

            async def call(method: str, path: str, token: str | None = None,
                           **kwargs: object) -> tuple[int, object]:
                params = {"token": token} if token else {}
                params.update(kwargs.pop("params", {}))  # type: ignore[arg-type]
                async with client.request(method, path, params=params, **kwargs) as answer:
                    return answer.status, await answer.json()

            status, body = await call("GET", releases)
            assert status == 401 and "needs a token" in body["error"]
            status, body = await call("GET", releases, owner[:-2] + "xx")
            assert status == 401 and "dawserver token" in body["error"]
            raw = {"release_id": "r1", "title": "Mine", "artists": ["Ada"], "tracks": []}
            status, body = await call("POST", releases, viewer, json=raw)
            assert status == 403
            assert "'viewer'" in body["error"] and "needs editor" in body["error"]
            assert (await call("POST", releases, editor, json=raw))[0] == 201
            for token in (viewer, editor, owner):
                status, body = await call("GET", releases, token)
                assert status == 200 and [r["release_id"] for r in body] == ["r1"]
            assert await call("GET", releases, stranger) == (200, [])
            assert (await call("GET", f"{releases}/r1", stranger))[0] == 404

            deliver = f"{releases}/r1/deliveries"
            status, body = await call("POST", deliver, editor, json={})
            assert status == 403 and "needs owner" in body["error"]
            assert (await call("GET", deliver, viewer)) == (200, [])
            status, body = await call("POST", deliver, owner, json={})
            assert status == 422  # past the permission check, stopped by the gate
            for token, status in ((viewer, 403), (editor, 403), (owner, 200)):
                assert (await call("GET", "/api/distribution/balances", token))[0] == status
            split = {"payees": [{"payee_id": "ada", "share": "100"}]}
            assert (await call("PUT", "/api/distribution/splits/QZABC2600001", editor,
                               json=split))[0] == 403

            status, body = await call("GET", releases, admin)
            assert status == 400 and "?account=" in body["error"]
            status, body = await call("GET", releases, admin, params={"account": "song"})
            assert status == 200 and [r["release_id"] for r in body] == ["r1"]

            await app[STORE].revoke("song", "bob", time.time())
            status, body = await call("GET", releases, viewer)
            assert status == 403 and "revoked" in body["error"]
            status, body = await call("GET", "/api/presave/nothing-here")
            assert status == 404  # public: no token needed, the campaign is just missing

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
