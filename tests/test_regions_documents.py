"""Data regions for documents and files: a project lives in its owner's region.

Over HTTP with regions ``eu`` (SQLite, then PostgreSQL) and ``us`` (SQLite), each with a
storage directory of its own, an eu person makes a project, edits it over the
collaboration WebSocket, uploads audio, bounces the mix and exports their data; then
every table of every database and every file on disk is read back. The store facade
(:class:`collab.regional_store.RegionalCollabStore`) is tested on its own too.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from accounts_helpers import PASSWORD, Person, accounts_server
from smtp_server import SmtpServer

from collab.client import SyncClient
from collab.errors import StoreError
from collab.regional_store import RegionalCollabStore, UnknownStoreRegion
from collab.store import Store, store_for
from database import Database, open_database
from dawclient.channel import connect
from dawserver.config import RegionConfig, ServerConfig
from dsp_core.session import Clip, Track

COLLAB_TABLES = {"collab_projects", "collab_updates", "collab_snapshots",
                 "collab_quarantined_updates", "collab_revocations"}


async def mentions(url: str, *needles: str) -> dict[str, int]:
    """``{table: rows}`` of every table of the database at ``url`` with a row holding one
    of ``needles`` (opened on its own: a server may hold it open too)."""
    found: dict[str, int] = {}
    async with open_database(url) as db:
        for table in await db.tables():
            for row in await db.fetch(f"SELECT * FROM {table}"):
                text = " ".join(str(value) for value in row.values())
                if any(needle in text for needle in needles):
                    found[table] = found.get(table, 0) + 1
    return found


def files_under(root: Path, *needles: str) -> list[Path]:
    """Files under ``root`` whose path or (small) contents hold one of ``needles``."""
    hits = []
    for path in (p for p in root.rglob("*") if p.is_file()) if root.exists() else ():
        text = str(path)
        if path.stat().st_size < 1 << 16:
            text += path.read_bytes().decode("latin-1")
        if any(needle in text for needle in needles):
            hits.append(path)
    return hits


def tone(hz: float) -> bytes:
    """One second of a quiet tone as a WAV file (each person's own: assets are stored
    by the hash of their bytes)."""
    t = np.arange(48000) / 48000
    buffer = io.BytesIO()
    sf.write(buffer, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 48000,
             format="WAV", subtype="FLOAT")
    return buffer.getvalue()


async def signed_up_in(person: Person, region: str) -> None:
    """Sign ``person`` up in ``region``, verify by the mailed link, sign in."""
    status, body, _ = await person.call("POST", "/auth/sign-up", {
        "email": person.email, "password": PASSWORD, "name": person.email, "region": region})
    assert status == 202, body
    status, body, _ = await person.call("POST", "/auth/verify",
                                        {"token": await person.link_token("verify")})
    assert status == 200, body
    await person.sign_in()
    assert person.id.startswith(f"p_{region}_")


async def upload(person: Person, project_id: str, data: bytes) -> dict:
    """Upload ``data`` as an asset of the project; the asset's JSON."""
    async with person.http.post(f"{person.base_url}/projects/{project_id}/assets?name=tone.wav",
                                data=data, headers={"X-CSRF-Token": person.csrf}) as response:
        body = await response.json()
        assert response.status in (200, 201), body
        return body


async def finished(person: Person, path: str, key: str) -> dict:
    """Poll the job at ``path`` until its ``key`` says it finished."""
    async with asyncio.timeout(30):
        while True:
            status, job, _ = await person.call("GET", path)
            assert status == 200, job
            if job[key] in ("done", "failed", "cancelled", "dead"):
                return job
            await asyncio.sleep(0.05)


async def project_with_everything(person: Person, hz: float) -> tuple[str, dict]:
    """Make a project, upload audio, edit over the WebSocket (a track with a clip of the
    audio), revoke a guest, bounce and export; the project id and the asset."""
    status, project, _ = await person.call("POST", f"/accounts/{person.id}/projects",
                                           {"name": f"Song of {person.email}"})
    assert status == 201, project
    project_id = project["id"]
    asset = await upload(person, project_id, tone(hz))
    status, derived, _ = await person.call("POST", f"/projects/{project_id}/collab-token", {})
    assert status == 201, derived
    async with asyncio.timeout(20), connect(derived["websocket"], derived["token"]) as channel, \
            SyncClient(channel) as client:
        await client.wait_synced()
        document = client.document
        document.rename(f"Edited by {person.email}")
        track = document.add_track(Track("t1", name="Vocal"))
        document.add_clip(track, Clip(asset["source"], 0, 48000))
        while True:  # the edit has reached the server once the document there has it
            status, shown, _ = await person.call("GET", f"/projects/{project_id}")
            if shown["document"]["meta"]["name"] == f"Edited by {person.email}" and \
                    shown["document"]["clips"]:
                break
            await asyncio.sleep(0.05)
    status, body, _ = await person.call("DELETE", f"/projects/{project_id}/members/guest-1")
    assert status == 200, body
    status, job, _ = await person.call("POST", f"/projects/{project_id}/bounces",
                                       {"format": "wav"})
    assert status == 202, job
    job = await finished(person, f"/projects/{project_id}/bounces/{job['id']}", "status")
    assert job["status"] == "done", job
    status, audio, _ = await person.call("GET", job["audio"])
    assert status == 200 and len(audio) > 48000
    status, export, _ = await person.call("POST", "/me/export", {})
    assert status == 202, export
    export = await finished(person, export["url"], "state")
    assert export["state"] == "done", export
    status, archive, _ = await person.call("GET", export["download"])
    assert status == 200 and archive[:2] == b"PK"
    return project_id, asset


@pytest.mark.asyncio
async def test_an_eu_project_lives_in_the_eu_database_and_storage(
        tmp_path: Path, smtp_server: SmtpServer, collab_database_url: str) -> None:
    us_url = f"sqlite://{tmp_path / 'us.sqlite3'}"
    regions = {"eu": RegionConfig(collab_database_url, "eu-files"),
               "us": RegionConfig(us_url, str(tmp_path / "us-files"))}
    async with accounts_server(tmp_path, smtp_server, regions=regions) as (app, config):
        eve = Person(config.base_url, smtp_server, "eve@example.eu")
        sam = Person(config.base_url, smtp_server, "sam@example.com")
        try:
            await signed_up_in(eve, "eu")
            await signed_up_in(sam, "us")
            eu_project, eu_asset = await project_with_everything(eve, 220)
            us_project, us_asset = await project_with_everything(sam, 330)
            # while the server runs, the eu document's log is in the eu database alone
            assert {"collab_projects", "collab_updates", "collab_revocations"} <= set(
                await mentions(collab_database_url, eu_project))
            status, listed, _ = await eve.call("GET", "/me/projects")
            assert [p["id"] for p in listed] == [eu_project]
        finally:
            await eve.close()
            await sam.close()
    main_url = f"sqlite://{config.data_dir / 'collab.sqlite3'}"
    eu_files, us_files = config.data_dir / "eu-files", tmp_path / "us-files"
    # every table of every database: the eu project's rows are in eu only, the us one's in us
    eu_rows = await mentions(collab_database_url, eu_project)
    assert {"collab_projects", "collab_snapshots", "collab_revocations",
            "account_projects"} <= set(eu_rows)
    assert await mentions(us_url, eu_project) == {}
    us_rows = await mentions(us_url, us_project)
    assert {"collab_projects", "collab_snapshots", "collab_revocations"} <= set(us_rows)
    assert await mentions(collab_database_url, us_project) == {}
    # not routed yet: the job queue (bounce and export jobs) and plug-in tables (the
    # distribution plug-in records each render) are in the main database; no document row
    in_main = set(await mentions(main_url, eu_project, us_project))
    assert in_main & COLLAB_TABLES == set()
    assert in_main <= {"jobs", "dist_renders"}  # the job queue, a plug-in's table
    # files: the asset (by its hash), its index, the bounce and the export in the region's
    # directory only
    eu_found = files_under(eu_files, eu_project, eu_asset["id"])
    assert {"assets", "bounces"} <= {p.relative_to(eu_files).parts[0] for p in eu_found}
    assert eu_asset["source"] == eu_asset["id"]  # clips name the asset, not a server path
    assert stored_audio(eu_files, eu_asset["id"])
    assert len(list((eu_files / "exports").rglob("*.zip"))) == 1
    assert len(list((us_files / "exports").rglob("*.zip"))) == 1
    assert files_under(us_files, eu_project, eu_asset["id"]) == []
    assert files_under(eu_files, us_project, us_asset["id"]) == []
    for name in ("assets", "bounces", "exports"):
        assert files_under(config.data_dir / name, eu_project, eu_asset["id"], us_project,
                           us_asset["id"], ".zip") == []
    # a restarted server loads the eu project from the eu database, its audio from eu files
    async with accounts_server(tmp_path, smtp_server, regions=regions) as (_, config):
        eve = Person(config.base_url, smtp_server, "eve@example.eu")
        try:
            await eve.sign_in()
            status, shown, _ = await eve.call("GET", f"/projects/{eu_project}")
            assert status == 200, shown
            assert shown["document"]["meta"]["name"] == "Edited by eve@example.eu"
            status, assets, _ = await eve.call("GET", f"/projects/{eu_project}/assets")
            assert status == 200 and [a["id"] for a in assets] == [eu_asset["id"]]
            status, audio, _ = await eve.call("GET", assets[0]["download"])
            assert status == 200 and hashlib.sha256(audio).hexdigest() == eu_asset["id"]
            status, _, _ = await eve.call("GET", f"/projects/{us_project}")
            assert status == 404  # nothing crosses accounts, regions or not
        finally:
            await eve.close()


@pytest.mark.asyncio
async def test_without_regions_projects_and_files_stay_where_they_were(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        from dawserver.keys import STORE

        assert not isinstance(app[STORE], RegionalCollabStore)
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            project_id, asset = await project_with_everything(ada, 440)
        finally:
            await ada.close()
    assert asset["source"] == asset["id"]
    assert stored_audio(config.data_dir, asset["id"])
    assert (config.data_dir / "bounces" / project_id).is_dir()
    assert len(list((config.data_dir / "exports").rglob("*.zip"))) == 1
    assert not (config.data_dir / "regions").exists()


def test_shared_directories_and_buckets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'default' and 'eu' keep their files"):
        ServerConfig(data_dir=tmp_path, storage_url="s3://bucket/eu/", regions={
            "eu": RegionConfig(f"sqlite://{tmp_path / 'eu.db'}", "s3://bucket/eu")})
    with pytest.raises(ValueError, match="give s3://BUCKET/PREFIX"):
        ServerConfig(data_dir=tmp_path, storage_url="/srv/files")
    for main, eu in (("s3://bucket", "s3://bucket/eu"), ("s3://bucket/eu/x", "s3://bucket/eu")):
        with pytest.raises(ValueError, match="'default' and 'eu' keep their files.*overlap"):
            ServerConfig(data_dir=tmp_path, storage_url=main, regions={
                "eu": RegionConfig(f"sqlite://{tmp_path / 'eu.db'}", eu)})
    ServerConfig(data_dir=tmp_path, storage_url="s3://bucket/eu2", regions={
        "eu": RegionConfig(f"sqlite://{tmp_path / 'eu.db'}", "s3://bucket/eu")})
    s3 = ServerConfig(data_dir=tmp_path, storage_url="s3://bucket/main", regions={
        "eu": RegionConfig(f"sqlite://{tmp_path / 'eu.db'}", "s3://bucket/eu")})
    assert s3.object_storage_of("eu") == "s3://bucket/eu"
    assert s3.object_storage_of("default") == "s3://bucket/main"
    assert s3.storage_of("eu") == tmp_path / "regions" / "eu"  # its local cache
    with pytest.raises(ValueError, match="'eu' and 'us' keep their files in the same"):
        ServerConfig(data_dir=tmp_path, regions={
            "eu": RegionConfig(f"sqlite://{tmp_path / 'eu.db'}", "files"),
            "us": RegionConfig(f"sqlite://{tmp_path / 'us.db'}", str(tmp_path / "files"))})
    with pytest.raises(ValueError, match="'default' and 'eu' keep their files"):
        ServerConfig(data_dir=tmp_path, regions={
            "eu": RegionConfig(f"sqlite://{tmp_path / 'eu.db'}", ".")})
    config = ServerConfig(data_dir=tmp_path, regions={
        "eu": RegionConfig(f"sqlite://{tmp_path / 'eu.db'}"),
        "us": RegionConfig(f"sqlite://{tmp_path / 'us.db'}", "/srv/us")})
    assert config.storage_of("default") == tmp_path
    assert config.storage_of("eu") == tmp_path / "regions" / "eu"
    assert config.storage_of("us") == Path("/srv/us")


# -- the store facade on its own ---------------------------------------------------------


@pytest_asyncio.fixture
async def databases(collab_database_url: str, tmp_path: Path
                    ) -> AsyncIterator[dict[str, Database]]:
    async with (open_database(f"sqlite://{tmp_path / 'main.db'}") as main,
                open_database(collab_database_url) as eu,
                open_database(f"sqlite://{tmp_path / 'us.db'}") as us):
        yield {"default": main, "eu": eu, "us": us}


def regional(databases: dict[str, Database]) -> RegionalCollabStore:
    return RegionalCollabStore({name: store_for(db) for name, db in databases.items()})


@pytest.mark.asyncio
async def test_the_facade_routes_by_the_region_a_project_was_made_in(
        databases: dict[str, Database]) -> None:
    async with regional(databases) as store:
        eu = await store.create_project_in("eu", "song-eu", "Eu", None)
        await store.create_project("song-main", "Main", None)  # no owner: the main region
        with pytest.raises(UnknownStoreRegion, match="data region 'mars'"):
            await store.create_project_in("mars", "song-x", "X", None)
        with pytest.raises(StoreError, match="already exists"):
            await store.create_project_in("us", "song-eu", "Again", None)
        await store.append("song-eu", 1, [b"u1", b"u2"])
        await store.revoke("song-eu", "guest", 5.0)
        assert await store.rename_project("song-eu", "Eu 2") is not None
        assert [p.project_id for p in await store.list_projects()] == ["song-eu", "song-main"]
        assert eu.project_id == "song-eu"
    eu_tables = await mentions_of(databases["eu"], "song-eu")
    assert {"collab_projects", "collab_updates", "collab_revocations"} <= set(eu_tables)
    assert await mentions_of(databases["us"], "song-eu") == {}
    assert await mentions_of(databases["default"], "song-eu") == {}
    assert "collab_projects" in await mentions_of(databases["default"], "song-main")
    # a new process (a restart) finds each project's region by asking them all
    async with regional(databases) as store:
        assert (await store.load("song-eu")).updates == [b"u1", b"u2"]
        assert await store.region_of("song-eu") == "eu"
        assert await store.region_of("song-main") == "default"
        assert await store.revoked_at("song-eu", "guest") == 5.0
        assert (await store.get_project("song-eu")).name == "Eu 2"
        assert await store.get_project("nowhere") is None
        assert await store.region_of("nowhere") == "default"


async def mentions_of(db: Database, needle: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for table in await db.tables():
        for row in await db.fetch(f"SELECT * FROM {table}"):
            if any(needle in str(value) for value in row.values()):
                found[table] = found.get(table, 0) + 1
    return found


@pytest.mark.asyncio
async def test_appends_are_group_committed_per_region(databases: dict[str, Database]) -> None:
    async with regional(databases) as store:
        projects = [(f"p{i}-{region}", region) for region in ("eu", "us") for i in range(20)]
        for project_id, region in projects:
            await store.create_project_in(region, project_id, project_id, None)
        before = store.commits
        await asyncio.gather(*(store.append(project_id, 1, [b"x"])
                               for project_id, _ in projects))
        # 40 appends at once, in two regions: far fewer than 40 commits
        assert 2 <= store.commits - before < 20
        for project_id, region in projects:
            assert (await store.stores[region].load(project_id)).updates == [b"x"]
            other = "us" if region == "eu" else "eu"
            assert await store.stores[other].get_project(project_id) is None
        store.group_commit = False
        assert not any(s.group_commit for s in store.stores.values())


def counting_load_many(store: RegionalCollabStore) -> dict[str, list[list[str]]]:
    """Wrap every region store's ``load_many``; ``{region: [ids of each call]}``."""
    calls: dict[str, list[list[str]]] = {region: [] for region in store.stores}
    for region, inner in store.stores.items():
        def counted(project_ids: list[str], *, _region: str = region,
                    _read: Any = inner.load_many) -> Any:
            calls[_region].append(list(project_ids))
            return _read(project_ids)
        inner.load_many = counted  # type: ignore[method-assign]
    return calls


@pytest.mark.asyncio
async def test_load_many_reads_each_region_once_and_merges_the_documents(
        databases: dict[str, Database]) -> None:
    async with regional(databases) as store:
        await store.create_project_in("eu", "song-eu", "Eu", b"eu-first")
        await store.append("song-eu", 1, [b"e1", b"e2"])
        await store.create_project_in("us", "song-us", "Us", None)
        await store.append("song-us", 1, [b"s1"])
        await store.create_project("song-main", "Main", b"main-first")
        await store.create_project_in("us", "song-gone", "Gone", b"gone")
        assert await store.delete_project("song-gone")
        asked = ["song-us", "nowhere", "song-eu", "song-gone", "song-main", "song-eu"]
        calls = counting_load_many(store)
        found = await store.load_many(asked)
        assert {region: len(each) for region, each in calls.items()} == {
            "default": 1, "eu": 1, "us": 1}
        assert list(found) == ["song-us", "song-eu", "song-main"]  # unknown, deleted: out
        for project_id, document in found.items():
            assert document == await store.stores[await store.region_of(project_id)
                                                  ].load(project_id), project_id
        assert (found["song-eu"].snapshot, found["song-eu"].updates) == (
            b"eu-first", [b"e1", b"e2"])
        assert (found["song-us"].snapshot, found["song-us"].updates) == (None, [b"s1"])
        assert found["song-main"].snapshot == b"main-first"
        assert await store.load_many([]) == {}
    # a new process (a restart) knows no region: one load_many per region finds them
    # all, and after that each project is read in its own region alone
    async with regional(databases) as store:
        calls = counting_load_many(store)
        assert sorted(await store.load_many(["song-eu", "song-us", "nowhere"])) == [
            "song-eu", "song-us"]
        assert all(len(each) == 1 for each in calls.values()), calls
        assert await store.region_of("song-eu") == "eu"
        calls = counting_load_many(store)
        assert list(await store.load_many(["song-us", "song-eu"])) == ["song-us", "song-eu"]
        assert calls == {"default": [], "eu": [["song-eu"]], "us": [["song-us"]]}
        # deleted by another process while this one remembers its region: left out
        async with regional(databases) as other:
            assert await other.delete_project("song-us")
        assert list(await store.load_many(["song-us", "song-eu"])) == ["song-eu"]


def test_the_facade_routes_every_method_of_the_store() -> None:
    """A method added to Store must be routed in RegionalCollabStore too."""
    abstract = sorted(Store.__abstractmethods__)
    assert abstract, "Store has abstract methods"
    for name in abstract:
        assert getattr(RegionalCollabStore, name) is not getattr(Store, name), name
    assert not inspect.isabstract(RegionalCollabStore)
    assert RegionalCollabStore.append is not Store.append
    assert RegionalCollabStore.load_many is not Store.load_many


def stored_audio(files: Path, asset_id: str) -> list[Path]:
    """The audio of ``asset_id`` in the asset store under ``files``."""
    return [p for p in (files / "assets" / "objects" / asset_id[:2]).glob(f"{asset_id}.*")
            if p.suffix in (".wav", ".flac", ".aiff")]
