"""Privacy on a running server: a person's export (a zip made by a job) and their erasure.

Export: every part is there, nothing secret, nothing of another person; the
distribution plug-in adds its parts through ``account_export``. The person's own
account's developer webhooks (with their delivery log) and API usage, their sample
library (their uploads' files, a server folder's listed only) and the content of the
projects they own (the project file, which reads back with its audio, the document,
the audio itself) are in it, made through the server's routes; past the files' limit
the manifest lists what was left out. Erasure: the
account stops at once, the last owner of an organisation is refused, and then
the job forgets the person everywhere: the security log and the money records
keep them only as a pseudonym, shared documents lose their name and comments
(a connected client sees it), and the raw bytes the collaboration store keeps
(on SQLite and PostgreSQL) no longer hold the old text; their webhooks, delivery log
and API usage rows are gone, counts still in the meter's memory included. Their own
projects that nobody else holds a role on are deleted: no row in any collaboration
table, no file.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from project_helpers import files_of, made_project, tone, upload, with_audio_and_bounce
from public_api_helpers import Caller
from smtp_server import SmtpServer
from test_transcription_registry import model_dir
from webhook_receiver import Receiver

from accounts.pseudonyms import pseudonym_of
from business.distribution.services import services
from collab.client import SyncClient
from collab.store import PROJECT_TABLES, QuarantinedUpdate
from dawclient.channel import connect
from dawserver.keys import DATABASE, PLUGIN_CONTEXT_KEY, ROOMS, STORE
from dawserver.privacy_export import ExportJob, archive_path
from dawserver.privacy_files import OVER_LIMIT
from dawserver.public_api.state import api_state
from dawserver.sample_service import ENV_ROOTS
from dsp_core.project import load_project
from dsp_core.session import Clip, Track
from jobs import JobContext, JobRecord, Permanent
from transcription.registry import ModelRegistry
from transcription.transcript import Transcript

pytestmark = pytest.mark.asyncio


class StepsSeen(JobContext):
    """A job context that keeps every progress report (the worker keeps the latest)."""

    def __init__(self, job: JobRecord) -> None:
        super().__init__(job)
        self.seen: list[tuple[float, str | None]] = []

    def progress(self, fraction: float, note: str | None = None) -> None:
        self.seen.append((fraction, note))
        super().progress(fraction, note)


def _job_record(person_id: str) -> JobRecord:
    return JobRecord(account_id=person_id, id="direct", queue="privacy.export",
                     payload={"person_id": person_id}, state="running", priority=0,
                     attempts=1, max_attempts=1, run_at=0.0, lease_until=0.0,
                     lease_token=None, worker=None, progress=0.0, note="", result=None,
                     last_error="", idempotency_key=None, cancel_requested=False,
                     created_at=0.0, updated_at=0.0, finished_at=None)

ISRC = "QZABC2600001"
STATEMENT = "store,territory,isrc,units,amount,currency\nS,US,QZABC2600001,1,10.00,USD\n"
CORE_PARTS = {"profile", "emails", "identities", "memberships", "sessions", "keys", "audit",
              "invitations", "projects", "documents", "transcriptions", "webhooks",
              "api_usage", "samples"}
HOOKS = "/api/v1/webhooks"
#: Webhook deliveries to a receiver on loopback (the default refuses it).
LOOPBACK_HOOKS = {"allow_loopback": True, "backoff_base_s": 0.2, "backoff_cap_s": 0.4}
WEBHOOK_TABLES = ("webhook_subscriptions", "webhook_deliveries", "webhook_attempts")
USAGE_TABLES = ("api_usage", "api_usage_latency")
DISTRIBUTION_PARTS = {"releases", "presave_campaigns", "splits", "payees", "statements",
                      "ledger", "paid_elsewhere", "royalty_changes"}


async def _wait_job(person: Person, url: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll a privacy job until it is finished; its last answer."""
    async with asyncio.timeout(timeout):
        while True:
            status, job, _ = await person.call("GET", url)
            assert status == 200, job
            if job["state"] in ("done", "failed", "cancelled"):
                return job
            assert 0.0 <= job["progress"] <= 1.0
            await asyncio.sleep(0.1)


async def _webhook(call: Any, url: str, account: str = "") -> dict[str, Any]:
    """Register a webhook through ``/api/v1/webhooks`` (a key's or a session's call; for
    the organisation ``account``); the answer, with its signing secret."""
    status, made, _ = await call("POST", HOOKS + (f"?account={account}" if account else ""),
                                 {"url": url, "events": ["marketplace.sale"],
                                  "description": f"hook of {account or 'me'}"})
    assert status == 201, made
    return made


async def _delivered(person: Person, hook: str, account: str = "") -> None:
    """Wait until the hook's newest delivery is delivered (asked with the session)."""
    query = f"?account={account}" if account else ""
    async with asyncio.timeout(20):
        while True:
            status, page, _ = await person.call("GET", f"{HOOKS}/{hook}/deliveries{query}")
            assert status == 200, page
            if page["data"] and page["data"][0]["state"] == "delivered":
                return
            await asyncio.sleep(0.05)


async def _upload_sample(person: Person, name: str, data: bytes) -> dict[str, Any]:
    """Upload a sample to the person's own library through ``POST /samples/uploads``."""
    async with person.http.post(
            f"{person.base_url}/samples/uploads?account={person.id}&name={name}", data=data,
            headers={"Content-Type": "audio/wav", "X-CSRF-Token": person.csrf}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _index_folder(person: Person, folder: Path) -> None:
    """Index a folder of the server into the person's library, to the job's end."""
    status, job, _ = await person.call("POST", "/samples/index", {"folder": str(folder)})
    assert status == 202, job
    async with asyncio.timeout(60):
        while job["state"] not in ("done", "failed", "dead"):
            await asyncio.sleep(0.05)
            _, job, _ = await person.call("GET", f"/samples/index-jobs/{job['id']}")
    assert job["state"] == "done", job


async def _audio_on_a_track(person: Person, app: Any, project_id: str, data: bytes) -> str:
    """Upload audio to the project and put it on a new track; the asset id."""
    status, asset = await upload(person, project_id, data)
    assert status == 201, asset
    async with app[ROOMS].use(project_id) as room:
        await room.edit(lambda d: d.add_clip(d.add_track(Track("t1", name="Vocal")),
                                             Clip(asset["source"], 0, 24000)))
    return asset["id"]


async def _comment(app: Any, project_id: str, author: str, text: str) -> str:
    ids: list[str] = []
    async with app[ROOMS].use(project_id) as room:
        await room.edit(lambda document: ids.append(document.add_comment(author, text)))
    return ids[0]


async def test_one_export_runs_at_a_time_and_three_start_a_day(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            racing = await asyncio.gather(*(ada.call("POST", "/me/export", {})
                                            for _ in range(3)))
            assert [status for status, _, _ in racing] == [202] * 3
            assert len({job["id"] for _, job, _ in racing}) == 1  # the one under way
            first = await _wait_job(ada, racing[0][1]["url"])
            assert first["state"] == "done"
            for _ in range(2):
                status, job, _ = await ada.call("POST", "/me/export", {})
                assert status == 202 and job["id"] != first["id"]
                assert (await _wait_job(ada, job["url"]))["state"] == "done"
            status, body, headers = await ada.call("POST", "/me/export", {})
            assert status == 429 and "3 exports in the last 24 hours" in body["error"]
            assert 86_000 < int(headers["Retry-After"]) <= 86_400
            assert (await ada.call("GET", first["download"]))[0] == 200  # still there
        finally:
            await ada.close()


async def test_a_new_export_starts_after_old_ones_were_purged(
        tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key counted the person's exports on record: once a done one was purged (and a
    failed one kept) the count named the failed job again, and every request got it."""
    from dawserver import privacy_export
    from dawserver.keys import BACKGROUND

    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            _, first, _ = await ada.call("POST", "/me/export", {})
            assert (await _wait_job(ada, first["url"]))["state"] == "done"
            parts = privacy_export.account_parts

            async def storage_down(*args: Any, **kwargs: Any) -> Any:
                raise Permanent("the object store is down")

            monkeypatch.setattr(privacy_export, "account_parts", storage_down)
            _, second, _ = await ada.call("POST", "/me/export", {})
            assert (await _wait_job(ada, second["url"]))["state"] == "failed"
            monkeypatch.setattr(privacy_export, "account_parts", parts)
            await asyncio.sleep(0.01)
            assert await app[BACKGROUND].queue.purge(0.0) >= 1  # the done one, 30 days on
            status, third, _ = await ada.call("POST", "/me/export", {})
            assert status == 202 and third["id"] not in (first["id"], second["id"]), third
            assert (await _wait_job(ada, third["url"]))["state"] == "done"
        finally:
            await ada.close()


async def test_export_holds_every_part_no_secret_and_nobody_else(
        tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # once each: a float WAV's PEAK chunk holds the time it was written
    audio = {hz: tone(hz) for hz in (330, 440, 660, 770, 880, 990)}
    library = tmp_path / "server-samples"  # a folder of the server's, not Ada's upload
    library.mkdir()
    (library / "Pad.wav").write_bytes(audio[880])
    monkeypatch.setenv(ENV_ROOTS, str(library))
    async with accounts_server(tmp_path, smtp_server, webhooks=LOOPBACK_HOOKS) as (
            app, config), aiohttp.ClientSession() as http, Receiver() as receiver:
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada Lovelace")
            await bo.sign_up_and_in("Bo Diddley")
            status, org, _ = await ada.call("POST", "/accounts", {"name": "Ada's Label"})
            status, project, _ = await ada.call("POST", f"/accounts/{org['id']}/projects",
                                                {"name": "Single"})
            assert status == 201
            status, key, _ = await ada.call("POST", f"/accounts/{ada.id}/keys", {
                "name": "ci", "scopes": ["project.read", "account.read", "webhooks.manage"]})
            assert status == 201
            await _comment(app, project["id"], ada.id, "the bridge is too long")
            # decodes of her own project (hers), her label's and Bo's (not hers)
            registry = ModelRegistry(app[DATABASE])
            version, _ = await registry.register(
                "whisper-base", model_dir(tmp_path / "model", b"w"), registered_by="server")
            mine = await made_project(ada, "Demo")
            theirs = await made_project(bo, "Bo's tape")
            for project_id in (mine, project["id"], theirs):
                await registry.record_inference(project_id, version,
                                                Transcript(language="fr", duration=2.0))
            await _comment(app, project["id"], bo.id, "Bo was never here")
            royalties = services(app[PLUGIN_CONTEXT_KEY]).royalties
            await royalties.set_split(ada.id, ISRC, {"payees": [
                {"payee_id": ada.id, "share": "60", "name": "Ada Lovelace"},
                {"payee_id": "cy", "share": "40", "name": "Cy"}]}, changed_by=ada.id)
            await royalties.import_statement(ada.id, STATEMENT, "nov.csv")
            await royalties.set_split(bo.id, ISRC, {"payees": [
                {"payee_id": bo.id, "share": "100", "name": "Bo Diddley"}]}, changed_by=bo.id)

            # developer data: her key registers a webhook, pings it and makes calls (4
            # metered requests, one an error); her label's webhook and Bo's are not hers
            caller = Caller(config.base_url, key["key"], ada.id, http)
            hook = await _webhook(caller.call, receiver.url)
            status, ping, _ = await caller.call("POST", f"{HOOKS}/{hook['id']}/test")
            assert status == 202, ping
            assert (await caller.call("GET", "/api/v1/projects"))[0] == 200
            assert (await caller.call("GET", f"/api/v1/projects/{theirs}"))[0] == 404
            await _delivered(ada, hook["id"])
            label_hook = await _webhook(ada.call, receiver.url + "?label", org["id"])
            bos_hook = await _webhook(bo.call, receiver.url + "?bo")
            status, bos_key, _ = await bo.call("POST", f"/accounts/{bo.id}/keys",
                                               {"name": "bo-ci", "scopes": ["account.read"]})
            bo_caller = Caller(config.base_url, bos_key["key"], bo.id, http)
            assert (await bo_caller.call("GET", "/api/v1/projects"))[0] == 200
            # her samples: an upload and a server folder's file; Bo's upload
            kick = await _upload_sample(ada, "Kick.wav", audio[330])
            await _index_folder(ada, library)
            await _upload_sample(bo, "Bosnare.wav", audio[990])
            # audio of her own project (hers), of her label's and of Bo's (not hers)
            asset_id = await _audio_on_a_track(ada, app, mine, audio[440])
            await _audio_on_a_track(ada, app, project["id"], audio[770])
            await _audio_on_a_track(bo, app, theirs, audio[660])

            status, job, _ = await ada.call("POST", "/me/export", {})
            assert status == 202 and job["state"] == "queued" and job["download"] is None
            assert (await bo.call("GET", job["url"]))[0] == 404
            job = await _wait_job(ada, job["url"])
            assert job["state"] == "done" and job["progress"] == 1.0
            assert (await bo.call("GET", job["download"]))[0] == 404
            status, data, headers = await ada.call("GET", job["download"])
            assert status == 200 and headers["Content-Type"] == "application/zip"

            archive = zipfile.ZipFile(io.BytesIO(data))
            names = set(archive.namelist())
            manifest = json.loads(archive.read("manifest.json"))
            assert {"README.txt", "manifest.json"} <= names
            assert {p["file"] for p in manifest["parts"]} == names - {"README.txt",
                                                                      "manifest.json"}
            assert {f"core/{p}.json" for p in CORE_PARTS} <= names
            assert {f"distribution/{p}.json" for p in DISTRIBUTION_PARTS} <= names

            def part(name: str) -> Any:
                return json.loads(archive.read(name))

            assert part("core/profile.json")["email"] == "ada@example.org"
            assert [m["organisation"] for m in part("core/memberships.json")] == [org["id"]]
            assert [k["prefix"] for k in part("core/keys.json")] == [key["prefix"]]
            assert project["id"] in [p["id"] for p in part("core/projects.json")]
            documents = part("core/documents.json")
            assert [c["text"] for d in documents for c in d["comments"]] == [
                "the bridge is too long"]
            assert "export" in [e["action"] for e in part("core/audit.json")["own"]]
            decoded = part("core/transcriptions.json")
            assert [(d["project"], [(e["model_name"], e["model_version"], e["language"],
                                     e["duration_s"]) for e in d["decodes"]])
                    for d in decoded] == [(mine, [("whisper-base", 1, "fr", 2.0)])]
            assert [s["isrc"] for s in part("distribution/splits.json")] == [ISRC]
            assert {e["payee_id"] for e in part("distribution/ledger.json")} == {ada.id, "cy"}

            # her webhook with its delivery log; not her label's, not Bo's
            (webhook,) = part("core/webhooks.json")
            assert (webhook["id"], webhook["url"], webhook["events"]) == (
                hook["id"], receiver.url, ["marketplace.sale"])
            (delivery,) = webhook["deliveries"]
            assert (delivery["id"], delivery["event_type"], delivery["state"]) == (
                ping["id"], "webhook.test", "delivered")
            assert json.loads(delivery["body"])["data"]["webhook_id"] == hook["id"]
            assert [(a["status"], a["response"]) for a in delivery["attempt_log"]] == [
                (200, "answer 200")]
            # her key's usage, per day: the 4 requests above, one of them an error
            (usage,) = part("core/api_usage.json")
            assert (usage["key"], usage["key_prefix"], usage["requests"], usage["errors"],
                    usage["rejected"]) == (key["id"], key["prefix"], 4, 1, 0)
            assert sum(b["count"] for b in usage["latency_ms_histogram"]) == 4

            # her samples: the upload with its file, the server folder's listed only
            samples = {s["name"]: s for s in part("core/samples.json")}
            assert set(samples) == {"Kick.wav", "Pad.wav"}
            assert samples["Kick.wav"]["id"] == kick["id"] and samples["Kick.wav"]["uploaded"]
            assert archive.read(samples["Kick.wav"]["file"]) == audio[330]
            pad = samples["Pad.wav"]
            assert not pad["uploaded"] and pad["file"] is None and "server" in pad[
                "why_no_file"]
            assert (pad["size"], pad["sha256"]) == (len(audio[880]),
                                                    hashlib.sha256(audio[880]).hexdigest())
            assert str(library) not in json.dumps(pad)  # no server path

            # her own project: the project file, which reads back with its audio, the
            # document, the list of its audio and the audio; not her label's, not Bo's
            folder = f"core/projects/{mine}"
            assert {n for n in names if n.startswith("core/projects/")} == {
                f"{folder}/project.json", f"{folder}/document.json", f"{folder}/assets.json",
                f"{folder}/audio/{asset_id}.wav"}
            (listed,) = part(f"{folder}/assets.json")
            assert (listed["id"], listed["sha256"], listed["bytes"], listed["file"]) == (
                asset_id, hashlib.sha256(audio[440]).hexdigest(), len(audio[440]),
                f"{folder}/audio/{asset_id}.wav")
            assert archive.read(listed["file"]) == audio[440]
            document = part(f"{folder}/document.json")
            assert [t["name"] for t in document["tracks"].values()] == ["Vocal"]
            assert "comments" not in document
            archive.extractall(tmp_path / "unzipped")
            session = load_project(tmp_path / "unzipped" / folder / "project.json")
            (clip,) = session.tracks[0].clips
            assert Path(clip.source).read_bytes() == audio[440]
            assert manifest["files"] == {"limit_bytes": 2 << 30, "included": 2,
                                         "included_bytes": len(audio[440]) + len(audio[330]),
                                         "left_out": []}

            text = b"".join(archive.read(n) for n in names
                            if n.endswith((".json", ".txt"))).decode()
            raw = b"".join(archive.read(n) for n in names)
            cookie = {c.key: c.value for c in ada.http.cookie_jar}["mbs_session"]
            sealed = [r["secret"] for r in await app[DATABASE].fetch(
                "SELECT secret FROM webhook_subscriptions")]
            secrets = [key["key"], hashlib.sha256(key["key"].encode()).hexdigest(), cookie,
                       ada.csrf, "$argon2", "password_hash", "totp_secret", "code_hash",
                       hook["secret"], label_hook["secret"], *sealed, "whsec_"]
            assert [s for s in secrets if s.encode() in raw] == []
            assert [s for s in (bo.id, "bo@example.org", "Bo Diddley", "never here", theirs,
                                bos_key["id"], bos_hook["id"], label_hook["id"], "Bosnare")
                    if s in text] == []
            assert [n for n in names if theirs in n or project["id"] in n] == []
            for others in (audio[660], audio[770], audio[880], audio[990]):
                assert others not in raw

            # the job reports each step's progress as it goes (the worker writes the
            # latest at most twice a second, which a job this small outruns); past the
            # files' limit the manifest lists what it left out
            ctx = StepsSeen(_job_record(ada.id))
            result = await ExportJob(app, files_limit=len(audio[440]))(ctx)
            assert [note for _, note in ctx.seen] == [
                "account", "documents", "developer", "projects", "samples", "plug-ins",
                "archive"]
            fractions = [fraction for fraction, _ in ctx.seen]
            assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] < 1
            assert "distribution/ledger.json" in result["parts"]
            assert result["files_left_out"] == 1
            capped = zipfile.ZipFile(archive_path(app, ada.id, "direct"))
            files = json.loads(capped.read("manifest.json"))["files"]
            kick_file = samples["Kick.wav"]["file"]
            assert files["left_out"] == [{
                "file": kick_file, "bytes": len(audio[330]),
                "sha256": hashlib.sha256(audio[330]).hexdigest(),
                "why": OVER_LIMIT.format(limit=len(audio[440]))}]
            assert kick_file not in capped.namelist()
            assert capped.read(f"{folder}/audio/{asset_id}.wav") == audio[440]
            (kept,) = [s for s in json.loads(capped.read("core/samples.json"))
                       if s["name"] == "Kick.wav"]
            assert kept["file"] is None and "limit" in kept["why_no_file"]
            assert f"up to {len(audio[440])} bytes" in capped.read("README.txt").decode()
        finally:
            await ada.close()
            await bo.close()


async def test_export_on_object_storage_holds_the_audio_and_leaves_no_download_behind(
        s3_server: Any, tmp_path: Path, smtp_server: SmtpServer) -> None:
    """With the assets in an object store, the export downloads each file of the person's
    own project into its job's folder, puts it in the archive and deletes the folder."""
    from test_storage_http import make_bucket

    from dawserver.assets import ASSETS
    from dawserver.privacy_export import export_directory

    bucket = await make_bucket(s3_server)
    async with accounts_server(tmp_path, smtp_server, storage_url=f"s3://{bucket}/main",
                               storage_options=s3_server.settings()) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            mine = await made_project(ada, "Demo")
            data = tone(440)
            asset_id = await _audio_on_a_track(ada, app, mine, data)
            assert app[ASSETS].objects is not None
            status, job, _ = await ada.call("POST", "/me/export", {})
            assert status == 202, job
            job = await _wait_job(ada, job["url"])
            assert job["state"] == "done", job
            status, zipped, _ = await ada.call("GET", job["download"])
            assert status == 200
            archive = zipfile.ZipFile(io.BytesIO(zipped))
            assert archive.read(f"core/projects/{mine}/audio/{asset_id}.wav") == data
            assert not (export_directory(app, ada.id) / f"{job['id']}.files").exists()
        finally:
            await ada.close()


@pytest.mark.parametrize("storage", ["local", "s3"])
async def test_erasure_deletes_export_archives_whose_jobs_were_purged(
        storage: str, request: pytest.FixtureRequest, tmp_path: Path,
        smtp_server: SmtpServer) -> None:
    """Finished jobs are purged after 30 days; their archives (the person's whole data
    set) were found through the job rows only, so the erasure left them for good."""
    from dawserver.keys import BACKGROUND
    from dawserver.privacy_export import export_key
    from dawserver.storage.service import account_objects

    options: dict[str, Any] = {}
    if storage == "s3":
        from test_storage_http import make_bucket

        s3_server = request.getfixturevalue("s3_server")
        options = {"storage_url": f"s3://{await make_bucket(s3_server)}/main",
                   "storage_options": s3_server.settings()}
    async with accounts_server(tmp_path, smtp_server, **options) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            await bo.sign_up_and_in("Bo")
            archives = []
            for person in (ada, bo):
                status, job, _ = await person.call("POST", "/me/export", {})
                assert status == 202, job
                assert (await _wait_job(person, job["url"]))["state"] == "done"
                archives.append((person, job))
            objects = account_objects(app, ada.id)

            async def kept(person: Person, job: dict[str, Any]) -> bool:
                if objects.redirects:
                    return await objects.exists(export_key(person.id, job["id"]))
                return archive_path(app, person.id, job["id"]).is_file()

            assert [await kept(p, j) for p, j in archives] == [True, True]
            await asyncio.sleep(0.01)
            assert await app[BACKGROUND].queue.purge(0.0) >= 2  # as 30 days on would
            status, job, _ = await ada.call("POST", "/me/delete", {"password": PASSWORD})
            assert status == 202, job
            assert (await _wait_job(ada, job["url"]))["state"] == "done"
            assert [await kept(p, j) for p, j in archives] == [False, True]  # Bo's stays
        finally:
            await ada.close()
            await bo.close()


async def _raw_collab_bytes(app: Any) -> bytes:
    db = app[DATABASE]
    rows = [*await db.fetch("SELECT data FROM collab_updates"),
            *await db.fetch("SELECT data FROM collab_snapshots")]
    return b"".join(bytes(row["data"]) for row in rows)


async def test_erasure_forgets_the_person_everywhere_and_keeps_money_pseudonymised(
        tmp_path: Path, smtp_server: SmtpServer, collab_database_url: str) -> None:
    async with accounts_server(tmp_path, smtp_server, database_url=collab_database_url,
                               webhooks=LOOPBACK_HOOKS) as (app, config), \
            Receiver() as receiver:
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        anyone = Person(config.base_url, smtp_server, "nobody@example.org")
        try:
            await ada.sign_up_and_in("Ada Lovelace")
            await bo.sign_up_and_in("Bo Diddley")
            status, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
            status, project, _ = await ada.call("POST", f"/accounts/{org['id']}/projects",
                                                {"name": "Single"})
            pid = project["id"]
            await ada.call("POST", f"/accounts/{org['id']}/invitations",
                           {"email": "bo@example.org", "role": "member"})
            status, _, _ = await bo.call("POST", "/invitations/accept",
                                         {"token": await bo.link_token("invite")})
            assert status == 200
            status, key, _ = await ada.call("POST", f"/accounts/{ada.id}/keys",
                                            {"name": "ci", "scopes": ["account.self"]})
            # her webhook with a delivery log, Bo's webhook; her key's metered usage,
            # flushed, then one request more whose count is still in the meter's memory
            hook = await _webhook(ada.call, receiver.url)
            assert (await ada.call("POST", f"{HOOKS}/{hook['id']}/test"))[0] == 202
            await _delivered(ada, hook["id"])
            bos_hook = await _webhook(bo.call, receiver.url + "?bo")
            with_key = {"Authorization": f"Bearer {key['key']}"}
            assert (await anyone.call("GET", "/me/projects", headers=with_key))[0] == 200
            meter = api_state(app[PLUGIN_CONTEXT_KEY]).usage
            await meter.flush()
            assert (await anyone.call("GET", "/me/projects", headers=with_key))[0] == 200
            # Ada's words in the shared document, one comment already deleted again
            kept = await _comment(app, pid, ada.id, "my secret lyric idea")
            gone = await _comment(app, pid, ada.id, "a deleted confession")
            await _comment(app, pid, bo.id, "Bo thanks Ada Lovelace")
            async with app[ROOMS].use(pid) as room:
                await room.edit(lambda d: d.remove_comment(gone))
                await room.edit(lambda d: d.add_marker(0, "take by Ada Lovelace"))
            royalties = services(app[PLUGIN_CONTEXT_KEY]).royalties
            for account in (org["id"], ada.id):
                await royalties.set_split(account, ISRC, {"payees": [
                    {"payee_id": ada.id, "share": "50", "name": "Ada Lovelace"},
                    {"payee_id": bo.id, "share": "50", "name": "Bo Diddley"}]},
                    changed_by=ada.id)
                await royalties.import_statement(account, STATEMENT, "ada@example.org.csv")
            db = app[DATABASE]
            for table in (*WEBHOOK_TABLES, *USAGE_TABLES):
                assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",
                                         ada.id) > 0, table
            ledger_before = await db.fetchval("SELECT COUNT(*) FROM dist_ledger")

            status, token, _ = await bo.call("POST", f"/projects/{pid}/collab-token", {})
            async with connect(token["websocket"], token["token"]) as channel, \
                    SyncClient(channel) as client:
                await client.wait_synced()
                assert len(client.document.comments()) == 2

                status, body, _ = await ada.call("POST", "/me/delete",
                                                 {"password": "not my password"})
                assert status == 401
                status, body, _ = await ada.call("POST", "/me/delete", {"password": PASSWORD})
                assert status == 409 and org["id"] in body["error"]
                status, _, _ = await ada.call("PUT", f"/accounts/{org['id']}/members/{bo.id}",
                                              {"role": "owner"})
                assert status == 200
                status, job, _ = await ada.call("POST", "/me/delete", {"password": PASSWORD})
                assert status == 202 and job["kind"] == "deletion"
                # at once: the session and the key are dead
                assert (await ada.call("GET", "/me"))[0] == 401
                status, _, _ = await anyone.call(
                    "GET", "/me/projects", headers={"Authorization": f"Bearer {key['key']}"})
                assert status == 401
                job = await _wait_job(anyone, job["url"])
                assert job["state"] == "done" and job["progress"] == 1.0, job

                pseudonym = pseudonym_of(ada.id)
                async with asyncio.timeout(10):  # the connected client sees the scrub
                    while not any(c["author"] == pseudonym
                                  for c in client.document.comments()):
                        await asyncio.sleep(0.05)
                comments = {c["id"]: c for c in client.document.comments()}
                assert comments[kept]["text"] == "" and comments[kept]["author"] == pseudonym
                assert [c["text"] for c in comments.values() if c["id"] != kept] == [
                    f"Bo thanks {pseudonym}"]
                assert [m["name"] for m in client.document.markers()] == [
                    f"take by {pseudonym}"]

            status, body, _ = await ada.call("POST", "/auth/sign-in",
                                             {"email": "ada@example.org", "password": PASSWORD})
            assert status == 401
            status, members, _ = await bo.call("GET", f"/accounts/{org['id']}/members")
            assert [m["id"] for m in members] == [bo.id]
            status, audit, _ = await bo.call("GET", f"/accounts/{org['id']}/audit")
            dumped = json.dumps(audit)
            assert ada.id not in dumped and "ada@example.org" not in dumped
            assert pseudonym in dumped
            actions = [r["action"] for r in await db.fetch(
                "SELECT action FROM audit_log WHERE account_id = ?", pseudonym)]
            assert "deletion" in actions and "sign_in" in actions
            assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE account_id = ? OR "
                                     "actor_id = ? OR target = ?", ada.id, ada.id, ada.id) == 0
            for table in ("accounts", "memberships", "sessions", "api_keys", "account_emails"):
                column = {"accounts": "account_id", "api_keys": "owner_id"}.get(table,
                                                                              "person_id")
                assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?",
                                         ada.id) == 0, table

            # her webhooks, their log and her usage are gone, even once the meter's
            # counts are written; Bo's webhook stays
            await meter.flush()
            for table in (*WEBHOOK_TABLES, *USAGE_TABLES):
                assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",
                                         ada.id) == 0, table
            assert [r["id"] for r in await db.fetch(
                "SELECT id FROM webhook_subscriptions WHERE account_id = ?", bo.id)] == [
                bos_hook["id"]]

            # money records kept, naming only the pseudonym
            assert await db.fetchval("SELECT COUNT(*) FROM dist_ledger") == ledger_before
            assert await db.fetchval("SELECT COUNT(*) FROM dist_ledger WHERE payee_id = ?",
                                     pseudonym) > 0
            money = json.dumps([dict(r) for table in (
                "dist_ledger", "dist_payees", "dist_splits", "dist_split_history",
                "dist_statements", "dist_audit") for r in await db.fetch(
                f"SELECT * FROM {table}")], default=str)
            for old in (ada.id, "Ada Lovelace", "ada@example.org"):
                assert old not in money
            assert "Bo Diddley" in money and pseudonym in money

            # the store keeps no byte of what the person wrote or was called
            raw = await _raw_collab_bytes(app)
            for old in (ada.id, "Ada Lovelace", "secret lyric", "deleted confession"):
                assert old.encode() not in raw, old
            assert b"Bo thanks" in raw
        finally:
            for person in (ada, bo, anyone):
                await person.close()


async def test_erasure_deletes_the_persons_own_unshared_projects_and_keeps_shared_ones(
        tmp_path: Path, smtp_server: SmtpServer, collab_database_url: str) -> None:
    """A person's own project nobody else holds a role on is deleted with them (every row
    of every collaboration table, every file); one shared with someone, and their
    organisation's, stay: scrubbed, the shared one without an owner."""
    async with accounts_server(tmp_path, smtp_server,
                               database_url=collab_database_url) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada Lovelace")
            await bo.sign_up_and_in("Bo Diddley")
            solo = await made_project(ada, "Solo")
            duet = await made_project(ada, "Duet")
            status, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
            label = await made_project(ada, "Label song", org["id"])
            await ada.call("POST", f"/accounts/{org['id']}/invitations",
                           {"email": "bo@example.org", "role": "member"})
            await bo.call("POST", "/invitations/accept",
                          {"token": await bo.link_token("invite")})
            await ada.call("PUT", f"/accounts/{org['id']}/members/{bo.id}", {"role": "owner"})
            asset = await with_audio_and_bounce(app, ada, solo, tone(550))
            async with ada.http.post(  # a sample in her own library
                    f"{config.base_url}/samples/uploads?account={ada.id}&name=Tone.wav",
                    data=tone(550), headers={"Content-Type": "audio/wav",
                                             "X-CSRF-Token": ada.csrf}) as response:
                assert response.status == 200, await response.text()
            await app[STORE].quarantine(solo, [QuarantinedUpdate(999, b"bad", "test")])
            await ada.call("DELETE", f"/projects/{solo}/members/guest")
            for project_id in (duet, label):
                await _comment(app, project_id, ada.id, "Ada Lovelace was here")
            status, _, _ = await ada.call("PUT", f"/projects/{duet}/grants/{bo.id}",
                                          {"role": "editor"})
            assert status == 200
            db = app[DATABASE]
            assert all((await _project_rows(db, solo)).values())  # a row in every table
            assert files_of(config.data_dir, solo, asset["id"])

            status, job, _ = await ada.call("POST", "/me/delete", {"password": PASSWORD})
            assert status == 202, job
            job = await _wait_job(bo, job["url"])
            assert job["state"] == "done", job

            # her own project nobody shared: gone from every table and from the disk
            assert await _project_rows(db, solo) == dict.fromkeys(PROJECT_TABLES, 0)
            for table in ("account_projects", "project_grants", "dist_renders"):
                assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE project_id = ?",
                                         solo) == 0, table
            assert files_of(config.data_dir, solo, asset["id"]) == []
            # and her sample library: rows and uploaded files
            assert await db.fetchval("SELECT COUNT(*) FROM samples WHERE account_id = ?",
                                     ada.id) == 0
            assert not (config.data_dir / "samples" / ada.id).exists()
            assert b"the secret bridge" not in await _raw_collab_bytes(app)
            # the shared one stays, scrubbed and without an owner; bo keeps his role
            assert await db.fetchval("SELECT COUNT(*) FROM account_projects WHERE "
                                     "project_id = ?", duet) == 0
            status, listed, _ = await bo.call("GET", "/me/projects")
            assert {entry["id"]: entry["role"] for entry in listed} == {
                duet: "editor", label: "owner"}
            for project_id in (duet, label):
                status, shown, _ = await bo.call("GET", f"/projects/{project_id}")
                assert status == 200
                assert "Ada Lovelace" not in json.dumps(shown["document"])
            assert b"Ada Lovelace" not in await _raw_collab_bytes(app)
        finally:
            await ada.close()
            await bo.close()


async def _project_rows(db: Any, project_id: str) -> dict[str, int]:
    return {table: await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE project_id = ?",
                                     project_id) for table in PROJECT_TABLES}
