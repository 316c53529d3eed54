"""Assets and bounces on a real S3 server (SeaweedFS on loopback) through the HTTP API:
uploads (small and multipart), downloads by presigned URL, expiry, account isolation,
bounces, the bounded local cache the engine renders from, and an S3 server that is down."""

from __future__ import annotations

import asyncio
import io
import uuid
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
from dawserver import asset_objects
from dawserver.assets import ASSETS, account_asset_file
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dawserver.storage import StorageSettings, open_object_store
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio
LINK_SECONDS = 2


def wav(seconds: float, channels: int = 1, hz: float = 220.0) -> bytes:
    t = np.arange(int(48000 * seconds)) / 48000
    audio = np.stack([0.3 * np.sin(2 * np.pi * (hz + 50 * c) * t) for c in range(channels)])
    buffer = io.BytesIO()
    sf.write(buffer, audio.T.astype(np.float32), 48000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


class Studio:
    """A running server on S3 with two projects, and an HTTP client."""

    def __init__(self, app, base: str, projects: list[str], bucket: str) -> None:  # noqa: ANN001
        self.app, self.base, self.projects, self.bucket = app, base, projects, bucket
        self.http = aiohttp.ClientSession()

    def headers(self, project: str, role: Role = Role.EDITOR) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.app[TOKENS].issue(project, role, 'ana')}"}

    async def call(self, method: str, project: str, path: str, **kw) -> tuple[int, object, dict]:
        async with self.http.request(method, f"{self.base}/projects/{project}{path}",
                                     headers=self.headers(project), allow_redirects=False,
                                     **kw) as response:
            body = (await response.json() if response.content_type == "application/json"
                    else await response.read())
            return response.status, body, dict(response.headers)

    async def upload(self, project: str, data: bytes, name: str = "take.wav"):  # noqa: ANN201
        return await self.call("POST", project, "/assets", data=data, params={"name": name})

    async def fetch(self, url: str) -> tuple[int, bytes]:
        """A plain GET with no token, as a browser following the redirect would do."""
        async with aiohttp.ClientSession() as plain, plain.get(url) as response:
            return response.status, await response.read()

    async def objects(self) -> list[str]:
        return await self.app_objects().keys("")

    def app_objects(self):  # noqa: ANN201 - the default region's object store
        from dawserver.storage.service import OBJECT_STORES

        return self.app[OBJECT_STORES]["default"]


async def make_bucket(s3_server) -> str:  # noqa: ANN001 - S3Server
    bucket = f"studio-{uuid.uuid4().hex[:12]}"
    async with open_object_store(f"s3://{bucket}", StorageSettings(**s3_server.settings())
                                 ) as store:
        await store.create_bucket()
    return bucket


async def studio_on(tmp_path: Path, storage_url: str, options: dict, *,
                    engine: bool = False) -> AsyncIterator[Studio]:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=engine,
                          storage_url=storage_url, storage_options={
                              **options, "multipart_threshold_mb": 5, "part_size_mb": 5,
                              "presign_seconds": LINK_SECONDS, "cache_mb": 4})
    async with running_server(config) as app:
        projects = [(await import_session(app[STORE], Session(name=name))).project_id
                    for name in ("A", "B")]
        studio = Studio(app, f"http://127.0.0.1:{config.port}", projects,
                        storage_url.removeprefix("s3://").split("/")[0])
        try:
            yield studio
        finally:
            await studio.http.close()


@pytest_asyncio.fixture
async def studio(s3_server, tmp_path: Path) -> AsyncIterator[Studio]:  # noqa: ANN001
    bucket = await make_bucket(s3_server)
    async for running in studio_on(tmp_path, f"s3://{bucket}/studio", s3_server.settings()):
        yield running


async def test_an_upload_lands_in_s3_and_downloads_by_a_presigned_url(studio: Studio) -> None:
    a, _ = studio.projects
    data = wav(0.5)
    status, asset, _ = await studio.upload(a, data)
    assert status == 201, asset
    keys = await studio.objects()
    assert f"assets/objects/{asset['id'][:2]}/{asset['id']}.wav" in keys
    assert f"assets/objects/{asset['id'][:2]}/{asset['id']}.json" in keys
    assert f"assets/projects/{a}/{asset['id']}" in keys
    status, _, headers = await studio.call("GET", a, f"/assets/{asset['id']}")
    assert status == 302 and "X-Amz-Signature" in headers["Location"]
    assert studio.bucket in headers["Location"]
    assert await studio.fetch(headers["Location"]) == (200, data)
    status, listed, _ = await studio.call("GET", a, "/assets")
    assert [row["id"] for row in listed] == [asset["id"]]


async def test_a_presigned_download_url_expires(studio: Studio) -> None:
    a, _ = studio.projects
    _, asset, _ = await studio.upload(a, wav(0.2))
    _, _, headers = await studio.call("GET", a, f"/assets/{asset['id']}")
    await asyncio.sleep(LINK_SECONDS + 1.2)
    status, body = await studio.fetch(headers["Location"])
    assert status == 403, body


async def test_a_large_upload_goes_in_parts_and_the_cache_stays_bounded(studio: Studio) -> None:
    a, _ = studio.projects
    big = wav(16.0, channels=2)  # 6.1 MB: above the 5 MiB multipart threshold
    assert len(big) > 5 << 20
    status, first, _ = await studio.upload(a, big, "stem.wav")
    assert status == 201, first
    _, _, headers = await studio.call("GET", a, f"/assets/{first['id']}")
    assert await studio.fetch(headers["Location"]) == (200, big)
    objects = studio.app_objects()
    head = await objects.client.head_object(Bucket=objects.bucket, Key=objects._key(
        asset_objects.object_key(first["id"], "wav")))
    assert head["ETag"].strip('"').endswith("-2")  # S3 marks a two-part upload's ETag
    store = studio.app[ASSETS]
    cached = Path(store.asset(first["id"]).path)  # the server's cache file
    assert cached.is_file()  # the newest stays even above the 4 MiB bound
    status, second, _ = await studio.upload(a, wav(16.0, channels=2, hz=330), "stem2.wav")
    assert status == 201, second
    assert not cached.exists()  # least recently used: evicted from the local cache
    path = await asset_objects.local_file(store, first["id"])  # read through, from S3
    assert path == cached and path.read_bytes() == big


async def test_another_projects_asset_answers_404_like_a_missing_one(studio: Studio) -> None:
    a, b = studio.projects
    _, asset, _ = await studio.upload(a, wav(0.3))
    for path in (f"/assets/{asset['id']}", f"/assets/{asset['id']}/info",
                 f"/assets/{asset['id']}/peaks"):
        status, body, _ = await studio.call("GET", b, path)
        missing, _, _ = await studio.call("GET", b, f"/assets/{'0' * 64}{path[70:]}")
        assert status == missing == 404, (path, body)
    status, listed, _ = await studio.call("GET", b, "/assets")
    assert status == 200 and listed == []
    assert await account_asset_file(studio.app, b, asset["id"]) is None
    assert await account_asset_file(studio.app, a, asset["id"]) == studio.app[ASSETS].asset(
        asset["id"]).path


async def test_each_project_names_shared_bytes_its_own_way_on_every_node(
        studio: Studio) -> None:
    """Identical bytes are stored once in S3, but a project shows the name it uploaded
    them under, also on a node that never saw the upload (the name travels in the
    project's membership object), and never another project's name."""
    a, b = studio.projects
    data = wav(0.3)
    _, first, _ = await studio.upload(a, data, name="unreleased-single.wav")
    status, second, _ = await studio.upload(b, data, name="beat.wav")
    assert status == 201 and second["name"] == "beat.wav", second
    store = studio.app[ASSETS]
    for names in (store.root / "projects").glob("*.names.json"):
        names.unlink()  # another node: only the object store knows the names
    for project, name in ((a, "unreleased-single.wav"), (b, "beat.wav")):
        status, listed, _ = await studio.call("GET", project, "/assets")
        assert status == 200 and [x["name"] for x in listed] == [name], listed
        status, info, _ = await studio.call("GET", project, f"/assets/{first['id']}/info")
        assert status == 200 and info["name"] == name, info


async def test_a_bounce_renders_from_the_cache_and_is_stored_in_s3(studio: Studio) -> None:
    a, _ = studio.projects
    _, asset, _ = await studio.upload(a, wav(0.5))
    assert asset["source"] == asset["id"]  # what a clip names
    Path(studio.app[ASSETS].asset(asset["id"]).path).unlink()  # as if evicted: fetched back
    async with studio.app[ROOMS].use(a) as room:
        await room.edit(lambda d: d.add_clip(d.add_track(Track("t1", name="Vox")),
                                             Clip(asset["source"], 0, 24000)))
    status, job, _ = await studio.call("POST", a, "/bounces", json={"format": "wav"})
    assert status == 202, job
    async with asyncio.timeout(60):
        while job["status"] not in ("done", "failed", "cancelled"):
            await asyncio.sleep(0.1)
            _, job, _ = await studio.call("GET", a, f"/bounces/{job['id']}")
    assert job["status"] == "done", job
    keys = await studio.objects()
    assert f"bounces/{a}/{job['id']}.wav" in keys
    assert f"bounces/{a}/{job['id']}.snapshot" not in keys  # done with
    status, _, headers = await studio.call("GET", a, f"/bounces/{job['id']}/audio")
    assert status == 302
    status, body = await studio.fetch(headers["Location"])
    audio, rate = sf.read(io.BytesIO(body), dtype="float32")
    assert status == 200 and rate == 48000 and audio.shape[0] == job["frames"] == 24000
    assert np.abs(audio).max() == pytest.approx(job["peak"], abs=1e-6)


async def test_the_live_engine_fetches_an_asset_missing_from_the_local_cache(
        s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """A node whose cache lost (or never had) an asset's audio plays it from S3."""
    bucket = await make_bucket(s3_server)
    async for studio in studio_on(tmp_path, f"s3://{bucket}/studio", s3_server.settings(),
                                  engine=True):
        a, _ = studio.projects
        _, asset, _ = await studio.upload(a, wav(0.5))
        local = Path(studio.app[ASSETS].asset(asset["id"]).path)
        local.unlink()  # evicted, or uploaded through another node
        def add_clip(d, source: str = asset["source"]) -> None:  # noqa: ANN001 - a document
            d.add_clip(d.add_track(Track("t1", name="Vox")), Clip(source, 0, 24000))

        async with studio.app[ROOMS].use(a) as room:
            await room.edit(add_clip)
        status, body, _ = await studio.call("GET", a, "/render",
                                            params={"start": 0, "frames": 24000})
        assert status == 200, body
        audio, _ = sf.read(io.BytesIO(body), dtype="float32")
        assert np.abs(audio).max() > 0.1  # the clip is heard, not skipped
        assert local.is_file()  # fetched back into the cache


async def test_project_deletion_removes_its_objects(studio: Studio) -> None:
    a, b = studio.projects
    data = wav(0.2)  # made once: a float WAV's PEAK chunk holds the time it was written
    _, shared, _ = await studio.upload(a, data)
    _, again, _ = await studio.upload(b, data)  # the same bytes in B: stored once, kept
    assert again["id"] == shared["id"]
    _, own, _ = await studio.upload(a, wav(0.2, hz=500))
    from dawserver.project_deletion import delete_project

    assert await delete_project(studio.app, a, actor="ana") is not None
    keys = await studio.objects()
    # its own asset stops existing at once; its audio waits out the grace period
    assert asset_objects.object_key(own["id"], "json") not in keys
    assert f"assets/forgotten/{own['id']}" in keys
    assert f"assets/projects/{b}/{shared['id']}" in keys
    assert asset_objects.object_key(shared["id"], "json") in keys
    assert not any(key.startswith(f"assets/projects/{a}/") for key in keys)
    assert await asset_objects.collect_forgotten(studio.app[ASSETS], grace_s=0) == 2
    keys = await studio.objects()
    assert not any(own["id"] in key for key in keys)
    assert asset_objects.object_key(shared["id"], "wav") in keys


async def test_s3_down_answers_503_and_records_nothing(tmp_path: Path) -> None:
    dead = {"endpoint_url": f"http://127.0.0.1:{free_port()}", "access_key_id": "a",
            "secret_access_key": "b", "connect_timeout": 1, "max_attempts": 1}
    async for studio in studio_on(tmp_path, "s3://nowhere/studio", dead):
        a, _ = studio.projects
        async with asyncio.timeout(30):
            status, body, headers = await studio.upload(a, wav(0.2))
        assert status == 503 and "cannot be reached" in body["error"], body
        assert headers.get("Retry-After") == "5", headers  # worth sending again soon
        root = studio.app[ASSETS].root
        assert not [p for p in (root / "objects").rglob("*") if p.is_file()]
        assert studio.app[ASSETS].project_assets(a) == []
        elsewhere = "0" * 64  # an asset this node does not hold: the store must be asked
        async with studio.app[ROOMS].use(a) as room:
            await room.edit(lambda d: d.add_track(Track("t1", name="Vox")))
            await room.edit(lambda d, source=elsewhere: d.add_clip("t1", Clip(source, 0, 48_000)))
        status, body, headers = await studio.call("POST", a, "/bounces", json={})
        assert status == 503 and "the bounce could not be queued" in body["error"], body
        assert headers.get("Retry-After") == "5", headers
        for path in ("/assets", f"/assets/{elsewhere}", f"/assets/{elsewhere}/info"):
            status, body, headers = await studio.call("GET", a, path)
            assert status == 503 and "cannot be reached" in body["error"], (path, body)
            assert headers.get("Retry-After") == "5", (path, headers)


async def test_plug_ins_get_a_presigned_url_only_for_their_accounts_assets(
        studio: Studio) -> None:
    from dawserver.keys import PLUGIN_CONTEXT_KEY

    a, b = studio.projects
    data = wav(0.3, hz=700)
    _, asset, _ = await studio.upload(a, data, "beat.wav")
    context = studio.app[PLUGIN_CONTEXT_KEY]
    url = await context.asset_url(a, asset["id"])  # a project's business account: its id
    assert url is not None and await studio.fetch(url) == (200, data)
    assert await context.asset_url(b, asset["id"]) is None
    assert await context.asset_url(a, "f" * 64) is None


async def test_local_presigned_links_are_served_signed_and_expire(tmp_path: Path) -> None:
    from dawserver.storage.service import OBJECT_STORES

    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        store = app[OBJECT_STORES]["default"]
        assert not store.redirects  # the default: local disk under the data directory
        await store.put("exports/x.zip", b"PK-archive")
        url = await store.presigned_url("exports/x.zip", 60, filename="mine.zip")
        assert url.startswith(config.base_url + "/storage/exports/x.zip?")
        async with http.get(url) as response:
            assert response.status == 200 and await response.read() == b"PK-archive"
            assert 'filename="mine.zip"' in response.headers["Content-Disposition"]
        async with http.get(url.replace("x.zip", "y.zip")) as response:
            assert response.status == 403, await response.text()
        expired = await store.presigned_url("exports/x.zip", -1)
        async with http.get(expired) as response:
            assert response.status == 403 and "expired" in (await response.json())["error"]
        async with http.get(f"{config.base_url}/storage/exports/x.zip") as response:
            assert response.status == 400


async def test_a_persons_export_is_kept_in_s3_and_erased_there(
        s3_server, tmp_path: Path, smtp_server) -> None:  # noqa: ANN001
    from accounts_helpers import Person, accounts_server

    from dawserver.privacy_erase import delete_exports
    from dawserver.privacy_export import archive_path
    from dawserver.storage.service import OBJECT_STORES

    bucket = await make_bucket(s3_server)
    async with accounts_server(tmp_path, smtp_server, storage_url=f"s3://{bucket}/eu",
                               storage_options=s3_server.settings()) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            status, job, _ = await ada.call("POST", "/me/export", {})
            assert status == 202, job
            async with asyncio.timeout(60):
                while job["state"] not in ("done", "failed", "cancelled"):
                    await asyncio.sleep(0.1)
                    _, job, _ = await ada.call("GET", job["url"])
            assert job["state"] == "done", job
            objects = app[OBJECT_STORES]["default"]
            key = f"exports/{ada.id}/{job['id']}.zip"
            assert await objects.exists(key)
            assert not archive_path(app, ada.id, job["id"]).exists()  # no local copy left
            status, data, headers = await ada.call("GET", job["download"])  # via the redirect
            assert status == 200 and data[:2] == b"PK", headers
            assert await delete_exports(app, ada.id) == 1
            assert not await objects.exists(key)
        finally:
            await ada.close()


async def test_a_region_on_s3_keeps_its_projects_files_in_its_own_prefix(
        s3_server, tmp_path: Path, smtp_server) -> None:  # noqa: ANN001
    from accounts_helpers import Person, accounts_server
    from test_regions_documents import project_with_everything, signed_up_in

    from dawserver.config import RegionConfig
    from dawserver.storage.service import OBJECT_STORES

    bucket = await make_bucket(s3_server)
    regions = {"eu": RegionConfig(f"sqlite://{tmp_path / 'eu.sqlite3'}", f"s3://{bucket}/eu")}
    async with accounts_server(tmp_path, smtp_server, regions=regions,
                               storage_options=s3_server.settings()) as (app, config):
        eve = Person(config.base_url, smtp_server, "eve@example.eu")
        try:
            await signed_up_in(eve, "eu")
            project_id, asset = await project_with_everything(eve, 220)  # upload, bounce, export
            eu = app[OBJECT_STORES]["eu"]
            keys = await eu.keys("")
            assert f"assets/projects/{project_id}/{asset['id']}" in keys
            assert any(k.startswith(f"bounces/{project_id}/") and k.endswith(".wav")
                       for k in keys)
            assert len([k for k in keys if k.startswith("exports/")]) == 1
            assert not app[OBJECT_STORES]["default"].redirects  # the default stays on disk
            local = config.data_dir
            assert not list((local / "bounces").rglob("*.snapshot"))
            assert not list((local / "exports").rglob("*.zip"))
        finally:
            await eve.close()


async def test_s3_refusing_answers_503_with_its_reason(s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    """A bucket that is not there (or credentials S3 refuses) is the server's storage
    settings at fault: a 503 that says what S3 answered, never a bare 500."""
    bucket = await make_bucket(s3_server)
    wrong = {**s3_server.settings(), "secret_access_key": "not-the-secret"}
    async for studio in studio_on(tmp_path, f"s3://{bucket}/studio", wrong):
        a, _ = studio.projects
        for method, path, kwargs in (("POST", "/assets", {"data": wav(0.2),
                                                          "params": {"name": "t.wav"}}),
                                     ("GET", "/assets", {})):
            status, body, _ = await studio.call(method, a, path, **kwargs)
            assert status == 503 and "SignatureDoesNotMatch" in body["error"], (path, body)
