"""A person's analytics data on a running server with accounts (SQLite and PostgreSQL): what
they connect, back-fill, decide and save through the plug-in's routes lands in their
export (``POST /me/export``) without a secret, and their erasure (``POST /me/delete``)
leaves no analytics row naming their id, name, address or its hash, except as the
pseudonym, while another person's analytics stay as they were."""

from __future__ import annotations

import asyncio
import csv
import inspect
import io
import json
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from analytics_helpers import migrated
from cryptography.fernet import Fernet
from smtp_server import SmtpServer

from accounts.pseudonyms import pseudonym_of
from business.analytics.alerts import recipient_key
from business.analytics.connections import (
    GRANT_FORGOTTEN,
    NEEDS_RECONNECT,
    Connections,
    forget_grants_of,
)
from business.analytics.credentials import CredentialBox
from business.analytics.fakes import FAKES, FakeSources
from business.analytics.plugin import MIGRATIONS
from business.analytics.privacy import OWN_TABLES
from business.analytics.services import services
from business.analytics.sources.base import Credentials
from business.analytics.sources.records import Identity
from dawserver.keys import DATABASE, PLUGIN_CONTEXT_KEY

pytestmark = [pytest.mark.timeout(240)]

A = "/api/analytics"
ADA_SECRET = "ada-client-secret-5c9e1f"
ADA_REFRESH = "ada-refresh-token-77aa01"
BO_SECRET = "bo-client-secret-31d0b7"
RANGE = {"from": "2024-06-01", "to": "2024-06-07"}
EXPORT_PARTS = {"sources", "runs", "freshness", "catalog_entities", "catalog_links", "genres",
                "milestones", "thresholds", "catalog_audit", "dashboards",
                "alert_preferences", "alert_mail", "alerts_held"}


def test_erasure_covers_every_analytics_table() -> None:
    """A table added by a migration must be placed in the erasure too."""
    made = {name for m in MIGRATIONS for dialect in ("sqlite", "postgresql")
            for name in re.findall(r"CREATE TABLE (\w+)", m.text(dialect))}
    assert made == set(OWN_TABLES)


async def _ok(person: Person, method: str, path: str, body: Any = None,
              status: int = 200) -> Any:
    got, answer, _ = await person.call(method, path, body)
    assert got == status, (method, path, answer)
    return answer


async def _wait_job(person: Person, url: str, timeout: float = 90.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            job = await _ok(person, "GET", url)
            if job["state"] in ("done", "failed", "cancelled"):
                return job
            await asyncio.sleep(0.1)


async def _wait_run(person: Person, run_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            run = await _ok(person, "GET", f"{A}/runs/{run_id}")
            if run["job_state"] in ("done", "dead"):
                return run
            await asyncio.sleep(0.1)


async def _tables(db: Any) -> dict[str, list[str]]:
    """Every analytics row, as sorted JSON per table."""
    return {table: sorted(json.dumps(dict(r), sort_keys=True, default=str)
                          for r in await db.fetch(f"SELECT * FROM {table}"))
            for table in OWN_TABLES}


def _names_anyone(row: str, needles: list[str]) -> bool:
    return any(n.lower() in row.lower() for n in needles)


async def _analytics_of(person: Person, account: str, name: str) -> dict[str, Any]:
    """Someone's analytics in ``account`` through the routes: a source connected (its
    credentials sealed), a dashboard kept to themselves and one shared (named after
    them, their address in a widget's title), alert preferences and a threshold."""
    q = "" if account == person.id else f"?account={account}"
    ada = name == "Ada Lovelace"
    source = await _ok(person, "POST", f"{A}/sources{q}", {
        "source": "spotify", "entity_kind": "artist",
        "entity_id": "roster-a" if ada else "roster-b", "entity_name": f"{name} roster",
        "client_id": "client-id",        "client_secret": ADA_SECRET if ada else BO_SECRET,
        "refresh_token": ADA_REFRESH if ada else ""}, 201)
    widgets = [{"widget_id": "w1", "title": f"{person.email} streams", "kind": "line",
                "metric": "streams"}]
    own = await _ok(person, "POST", f"{A}/dashboards{q}", {
        "name": f"{name} private", "widgets": widgets}, 201)
    shared = await _ok(person, "POST", f"{A}/dashboards{q}", {
        "name": f"{name}'s picks", "widgets": widgets}, 201)
    await _ok(person, "POST", f"{A}/dashboards/{shared['dashboard_id']}/share{q}",
              {"shared": True})
    await _ok(person, "PUT", f"{A}/alerts/preferences{q}",
              {"email": True, "kinds": ["threshold"], "cooldown_s": 3600})
    await _ok(person, "POST", f"{A}/thresholds{q}",
              {"metric": "streams", "value": 777 if ada else 888}, 201)
    return {"source": source, "own": own, "shared": shared}


@pytest.mark.asyncio
async def test_a_persons_analytics_are_exported_without_secrets_and_erased(
        tmp_path: Path, smtp_server: SmtpServer, collab_database_url: str) -> None:
    fake = FAKES["spotify"](client_secret=ADA_SECRET)
    async with FakeSources([fake]) as fakes, accounts_server(
            tmp_path, smtp_server, database_url=collab_database_url, plugins={"analytics": {
                "sources": {"spotify": {"base_url": fakes.base_url("spotify")}},
                "schedule_check_s": 3600}}) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada Lovelace")
            await bo.sign_up_and_in("Bo Diddley")
            org = (await ada.call("POST", "/accounts", {"name": "Label"}))[1]["id"]
            await ada.call("POST", f"/accounts/{org}/invitations",
                           {"email": "bo@example.org", "role": "member"})
            await _ok(bo, "POST", "/invitations/accept",
                      {"token": await bo.link_token("invite")})
            await _ok(ada, "PUT", f"/accounts/{org}/members/{bo.id}", {"role": "owner"})
            module = services(app[PLUGIN_CONTEXT_KEY])
            db = app[DATABASE]

            # Ada's own account: Spotify connected and back-filled as a job, her catalogue
            # decisions, genres, dashboards, preferences and a threshold
            mine = await _analytics_of(ada, ada.id, "Ada Lovelace")
            backfilled = await _ok(ada, "POST", f"{A}/sources", {
                "source": "spotify", "entity_kind": "artist", "entity_id": fake.artist_id,
                "entity_name": "Ada Lovelace", "client_id": "client-id",
                "client_secret": ADA_SECRET, "refresh_token": ADA_REFRESH}, 201)
            run = await _ok(ada, "POST", f"{A}/sources/{backfilled['source_id']}/backfill",
                            RANGE, 202)
            assert (await _wait_run(ada, run["run_id"]))["job_state"] == "done"
            tracks = await _ok(ada, "GET", f"{A}/catalog?kind=recording")
            assert len(tracks) >= 2
            await _ok(ada, "POST", f"{A}/catalog/{tracks[0]['entity_id']}/merge",
                      {"others": [tracks[1]["entity_id"]]})
            await module.catalog.resolve(ada.id, [
                Identity("spotify", "artist", fake.artist_id, "Ada Lovelace")])
            [artist] = await _ok(ada, "GET", f"{A}/catalog?kind=artist")
            await _ok(ada, "PUT", f"{A}/catalog/{artist['entity_id']}/genres",
                      {"genres": ["Synth Pop"]})

            # the label: both connect, decide and save; a milestone mailed to both owners,
            # the next one held for the digest by the cooldown
            q = f"?account={org}"
            labels = await _analytics_of(ada, org, "Ada Lovelace")
            await _analytics_of(bo, org, "Bo Diddley")
            await module.catalog.resolve(org, [
                Identity("spotify", "track", "lt1", "Harbour Lights", isrc="QZLB12400001"),
                Identity("spotify", "track", "lt2", "Velvet Engine", isrc="QZLB12400002"),
                Identity("spotify", "track", "lt3", "Paper Moons", isrc="QZLB12400003"),
                Identity("spotify", "artist", "la1", "The Harbour Band")])
            label_tracks = await _ok(ada, "GET", f"{A}/catalog{q}&kind=recording")
            by_name = {t["name"]: t["entity_id"] for t in label_tracks}
            await _ok(ada, "POST", f"{A}/catalog/{by_name['Harbour Lights']}/merge{q}",
                      {"others": [by_name["Velvet Engine"]]})
            [band] = await _ok(bo, "GET", f"{A}/catalog{q}&kind=artist")
            await _ok(ada, "PUT", f"{A}/catalog/{band['entity_id']}/genres{q}",
                      {"genres": ["Dream Pop"]})
            await _ok(bo, "PUT", f"{A}/catalog/{band['entity_id']}/genres{q}",
                      {"genres": ["Shoegaze"]})
            for milestone_id in ("m-first", "m-held"):
                mailed = await module.alerts.notify(org, [{
                    "milestone_id": milestone_id, "kind": "threshold", "recent": True,
                    "text": "Harbour Lights reached 1K streams"}])
                assert set(mailed) == ({"ada@example.org", "bo@example.org"}
                                       if milestone_id == "m-first" else set())
            # Bo's own account
            await _analytics_of(bo, bo.id, "Bo Diddley")

            sealed = {(r["account_id"], r["source_id"]): r["credentials"] for r in await db.fetch(
                "SELECT account_id, source_id, credentials FROM analytics_sources WHERE "
                "connected_by = ?", ada.id)}
            assert len(sealed) == 3 and all(sealed.values())
            points = await module.store.count(ada.id)
            assert points > 0

            # -- export: every analytics part, her data, no secret, nobody else's
            job = await _ok(ada, "POST", "/me/export", {}, 202)
            job = await _wait_job(ada, job["url"])
            assert job["state"] == "done", job
            status, data, _ = await ada.call("GET", job["download"])
            assert status == 200
            archive = zipfile.ZipFile(io.BytesIO(data))
            names = set(archive.namelist())
            assert {f"analytics/{p}.json" for p in EXPORT_PARTS} | {
                "analytics/points.csv"} <= names

            def part(name: str) -> Any:
                return json.loads(archive.read(f"analytics/{name}.json"))

            sources = part("sources")
            assert sorted((s["account_id"], s["entity_id"]) for s in sources) == sorted([
                (ada.id, "roster-a"), (ada.id, fake.artist_id), (org, "roster-a")])
            assert all(set(s) >= {"source", "state", "created_at"} and "credentials" not in s
                       and "last_error" not in s for s in sources)
            assert [(r["run_id"], r["state"]) for r in part("runs")] == [
                (run["run_id"], "done")]
            assert [f["source"] for f in part("freshness")] == ["spotify"]
            assert {"recording", "artist"} <= {e["kind"] for e in part("catalog_entities")}
            assert part("catalog_links")
            assert [(g["genre"], g["source"]) for g in part("genres")] == [
                ("synth pop", "manual")]
            assert {(t["account_id"], t["value"]) for t in part("thresholds")} == {
                (ada.id, 777.0), (org, 777.0)}
            audit = part("catalog_audit")
            assert sorted((a["account_id"], a["action"]) for a in audit) == sorted([
                (ada.id, "merge"), (ada.id, "genres"), (org, "merge"), (org, "genres")])
            assert {a["actor"] for a in audit} == {ada.id}
            assert sorted((d["account_id"], d["name"]) for d in part("dashboards")) == sorted(
                [(ada.id, "Ada Lovelace private"), (ada.id, "Ada Lovelace's picks"),
                 (org, "Ada Lovelace private"), (org, "Ada Lovelace's picks")])
            assert {p["account_id"] for p in part("alert_preferences")} == {ada.id, org}
            assert [m["account_id"] for m in part("alert_mail")] == [org]
            assert [(h["account_id"], h["milestone_id"]) for h in part("alerts_held")] == [
                (org, "m-held")]
            table = list(csv.reader(io.StringIO(archive.read("analytics/points.csv").decode())))
            assert table[0][:4] == ["source", "entity_kind", "entity_id", "metric"]
            assert len(table) - 1 == points
            text = b"".join(archive.read(n) for n in names if n.startswith("analytics/"))
            for secret in (ADA_SECRET, ADA_REFRESH, *sealed.values(), "credentials",
                           bo.id, "Bo Diddley", "bo@example.org", BO_SECRET,
                           recipient_key("ada@example.org")):
                assert secret.encode() not in text, secret

            # -- erasure: nothing names her but the pseudonym; nobody else's rows change
            # every credential she granted goes, the label's source's too
            needles = [ada.id, "Ada Lovelace", "ada@example.org",
                       recipient_key("ada@example.org"), *sealed.values()]
            before = await _tables(db)
            assert all(before[t] for t in OWN_TABLES), [t for t in OWN_TABLES if not before[t]]
            job = await _ok(ada, "POST", "/me/delete", {"password": PASSWORD}, 202)
            job = await _wait_job(bo, job["url"])
            assert job["state"] == "done", job
            pseudonym = pseudonym_of(ada.id)
            after = await _tables(db)
            for table, rows in after.items():
                assert [r for r in rows if _names_anyone(r, needles)] == [], table
                kept = Counter(r for r in before[table] if not _names_anyone(r, needles))
                assert not kept - Counter(rows), (table, "another's row changed or went")
            for table in OWN_TABLES:
                for account in (ada.id, pseudonym):
                    assert await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE "
                                             "account_id = ?", account) == 0, table
            # the label's source she connected keeps its points, not her grant: the label's
            # people see it wants reconnecting and why, and the audit trail says so
            label_source = labels["source"]["source_id"]
            source = await db.fetchrow(
                "SELECT connected_by, credentials FROM analytics_sources WHERE account_id = ? "
                "AND source_id = ?", org, label_source)
            assert source["connected_by"] == pseudonym
            assert source["credentials"] == ""
            listed = {s["source_id"]: s for s in await _ok(bo, "GET", f"{A}/sources{q}")}
            assert listed[label_source]["state"] == "needs_reconnect"
            assert "erased" in listed[label_source]["last_error"]
            assert "reconnect" in listed[label_source]["last_error"]
            assert [s["state"] for k, s in listed.items() if k != label_source] == ["active"]
            assert await db.fetchval(  # Bo's grant to the label stays
                "SELECT COUNT(*) FROM analytics_sources WHERE account_id = ? AND "
                "connected_by = ? AND credentials != ''", org, bo.id) == 1
            [forgotten] = [a for a in await _ok(bo, "GET", f"{A}/audit{q}")
                           if a["action"] == "source.grant_forgotten"]
            assert (forgotten["actor"], forgotten["entity_id"]) == (pseudonym, label_source)
            assert forgotten["detail"]["entity_id"] == "roster-a"
            # what else she did for the label stays, under the pseudonym
            actors = [(r["action"], r["actor"]) for r in await db.fetch(
                "SELECT action, actor FROM analytics_catalog_audit WHERE account_id = ? "
                "ORDER BY at", org)]
            assert actors == [("merge", pseudonym), ("genres", pseudonym), ("genres", bo.id),
                              ("source.grant_forgotten", pseudonym)]
            assert [r["created_by"] for r in await db.fetch(
                "SELECT created_by FROM analytics_thresholds WHERE account_id = ? AND "
                "value = 777", org)] == [pseudonym]
            dashboards = await _ok(bo, "GET", f"{A}/dashboards{q}")
            assert sorted((d["name"], d["owner"]) for d in dashboards) == sorted([
                (f"{pseudonym}'s picks", pseudonym), ("Bo Diddley private", bo.id),
                ("Bo Diddley's picks", bo.id)])
            [picks] = [d for d in dashboards if d["owner"] == pseudonym]
            assert picks["widgets"][0]["title"] == f"{pseudonym} streams"
            assert mine["own"]["dashboard_id"] not in json.dumps(after)
            assert await db.fetchval("SELECT COUNT(*) FROM analytics_alert_held WHERE "
                                     "account_id = ?", org) == 1  # Bo's

            # the hook again (a retried job) changes nothing
            context = app[PLUGIN_CONTEXT_KEY]
            for answer in context.manager.hook.account_erased(
                    context=context, account_id=ada.id, pseudonym=pseudonym,
                    names=["Ada Lovelace", "ada@example.org"]):
                if inspect.isawaitable(answer):
                    await answer
            assert await _tables(db) == after
        finally:
            await ada.close()
            await bo.close()


@pytest.mark.asyncio
async def test_a_run_under_way_cannot_put_back_a_grant_forgotten_with_its_granter(
        db_url: str) -> None:
    async with migrated(db_url) as db:
        connections = Connections(db, CredentialBox([Fernet.generate_key()]))
        grant = Credentials(client_id="c", client_secret=ADA_SECRET, refresh_token=ADA_REFRESH)
        label = await connections.connect("org-1", "spotify", "artist", "a1", grant, "ada")
        others = await connections.connect("org-1", "spotify", "artist", "a2", grant, "bo")
        own = await connections.connect("ada", "spotify", "artist", "a1", grant, "ada")
        async with db.transaction() as tx:
            forgotten = await forget_grants_of(tx, "ada", "pseudonym-1", 1000.0)
        assert [(f["account_id"], f["source_id"]) for f in forgotten] == [
            ("org-1", label.source_id)]
        # an ingestion run that read the source before saves the token the platform rotated
        await connections.save_credentials(label, Credentials(
            client_id="c", client_secret=ADA_SECRET, refresh_token="rotated-refresh"))
        after = await connections.get("org-1", label.source_id)
        assert (after.credentials, after.state) == ("", NEEDS_RECONNECT)
        assert (await connections.get("org-1", others.source_id)).credentials
        assert (await connections.get("ada", own.source_id)).credentials  # erasure deletes it
        [entry] = await db.fetch("SELECT action, actor, entity_id, at FROM "
                                 "analytics_catalog_audit WHERE account_id = 'org-1'")
        assert dict(entry) == {"action": GRANT_FORGOTTEN, "actor": "pseudonym-1",
                               "entity_id": label.source_id, "at": 1000.0}
        async with db.transaction() as tx:  # a retried erasure: nothing left to forget
            assert await forget_grants_of(tx, "ada", "pseudonym-1", 1001.0) == []
