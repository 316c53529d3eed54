"""A person's analytics data: their export, and what erasing them keeps and forgets.

The plug-in's ``account_export`` and ``account_erased`` hooks call these. A person's own
account has the same id as the person; an organisation's rows are the organisation's.

Export (:func:`export_account`): of the person's own account, the connected sources
(platform, entity, state, when: never the sealed credentials nor an error text, which
may quote a request), the ingestion runs (days, counts, state), freshness, the catalogue
(entities and platform links), the genres, the milestones, the thresholds and the points
(``points.csv``); in every account the sources they connected, the thresholds they
added, the catalogue decisions they made (merges, splits, genres set: the catalogue
audit), their dashboards, their alert preferences, and when alert mail last went to
their address and which milestones wait for its digest (kept under a hash of the
address, :func:`.alerts.recipient_key`).

Erasure (:func:`erase_account`): every row of the person's own account is deleted (the
sources with their sealed credentials, points, runs, catalogue, audit, milestones,
thresholds, dashboards...) and its queued ingestion jobs are cancelled; in every account
their alert preferences, their unshared dashboards and the alert-mail cooldown and
digest rows of their addresses are deleted. A source they connected for an account
that stays (an organisation) keeps its points but not their grant: its sealed
credentials are deleted, it turns ``needs_reconnect`` saying why, and that account's audit
trail records it (:func:`.connections.forget_grants_of`); an ingestion run already under
way cannot write a rotated token back. What else they did in an account that stays (a
threshold, a catalogue decision, a shared dashboard) is kept, with each mention of them
(connector, author, audit actor and details, owner, words in names, titles and filters,
error texts) replaced by the pseudonym. Every grant forgotten (their own account's
sources' and those they granted to others) is queued, in the same transaction, to be
withdrawn at its platform (:mod:`.revocation`); the erasure does not wait for it, and a
platform that fails for good leaves the deletion here as it is. Names the platforms
report for an account's catalogue (artists, tracks, playlists) are that account's
catalogue, not mentions of a platform user: they stay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from business.analytics.alerts import recipient_key
from business.analytics.connections import forget_grants_of
from business.analytics.exports import csv_bytes
from business.analytics.reconnect import GRANT_FORGOTTEN_REASON, ReconnectNotices
from business.analytics.revocation import ERASED, REVOKE_JOB, queue_revoke
from dawserver.plugin_api import JobQueue, Pseudonymiser, pseudonymise_mentions

#: Every analytics table, each keyed by ``account_id`` first: an erasure deletes the
#: person's own account's rows of each (dependants before what they hang on).
OWN_TABLES = ("analytics_points", "analytics_runs", "analytics_freshness",
              "analytics_genres", "analytics_links", "analytics_entities",
              "analytics_catalog_audit", "analytics_alert_held", "analytics_alert_mail",
              "analytics_alert_preferences", "analytics_milestones", "analytics_thresholds",
              "analytics_dashboards", "analytics_sources")
#: Where a kept row of another account may name the person: (table, key, text columns,
#: JSON columns).
MENTIONS = (
    ("analytics_sources", ("account_id", "source_id"),
     ("connected_by", "entity_name", "last_error"), ()),
    ("analytics_runs", ("account_id", "run_id"), ("error",), ()),
    ("analytics_catalog_audit", ("account_id", "audit_id"), ("actor",), ("detail",)),
    ("analytics_thresholds", ("account_id", "threshold_id"), ("created_by",), ()),
    ("analytics_dashboards", ("account_id", "dashboard_id"), ("owner", "name"),
     ("filters", "widgets")),
)
#: What the export shows of a source: never ``credentials`` (sealed secrets) nor
#: ``last_error`` (a platform's answer may quote the request that carried a key).
SOURCE_FIELDS = ("account_id, source_id, source, entity_kind, entity_id, entity_name, state, "
                 "last_run_at, created_at, updated_at")
POINT_COLUMNS = ("source", "entity_kind", "entity_id", "metric", "grain", "dimensions", "at",
                 "value", "fetched_at")
#: Job states in which an ingestion job may still write the account's rows.
LIVE_JOB_STATES = ("queued", "retrying", "running")


def _decoded(row: Any, *columns: str) -> dict[str, Any]:
    found = dict(row)
    return {**found, **{c: json.loads(found[c]) for c in columns if found.get(c)}}


def _marks(values: Iterable[Any]) -> str:
    return ", ".join("?" for _ in values)


async def export_account(db: Any, account_id: str, addresses: Iterable[str] = ()
                         ) -> dict[str, Any]:
    """The analytics parts of person ``account_id``'s export (JSON-able; ``points.csv``
    as bytes); ``addresses``: theirs, to find the alert mail kept under their hashes."""
    async def rows(sql: str, *args: Any, json_columns: tuple[str, ...] = ()
                   ) -> list[dict[str, Any]]:
        return [_decoded(r, *json_columns) for r in await db.fetch(sql, *args)]

    person = account_id
    own = "WHERE account_id = ?"
    keys = sorted({recipient_key(a) for a in addresses if a})
    points = await db.fetch(
        f"SELECT {', '.join(POINT_COLUMNS)} FROM analytics_points {own} ORDER BY source, "
        "entity_kind, entity_id, metric, grain, dimensions, at", person)
    return {
        "sources": await rows(f"SELECT {SOURCE_FIELDS} FROM analytics_sources WHERE "
                              "account_id = ? OR connected_by = ? ORDER BY account_id, "
                              "created_at, source_id", person, person),
        "runs": await rows("SELECT run_id, source_id, kind, first_day, last_day, "
                           "complete_through, points, pages, gaps, state, created_at, "
                           f"updated_at FROM analytics_runs {own} ORDER BY created_at, "
                           "run_id", person),
        "freshness": await rows("SELECT source, fetched_at, queryable_at, points FROM "
                                f"analytics_freshness {own} ORDER BY source", person),
        "catalog_entities": await rows(
            "SELECT entity_id, kind, name, artist_name, isrc, upc, duration_ms, merged_into, "
            f"created_at, updated_at FROM analytics_entities {own} ORDER BY kind, name, "
            "entity_id", person),
        "catalog_links": await rows(
            "SELECT source, platform_kind, platform_id, entity_id, method, confidence, "
            f"manual, name, isrc, created_at FROM analytics_links {own} ORDER BY source, "
            "platform_kind, platform_id", person),
        "genres": await rows("SELECT entity_id, genre, source, created_at FROM "
                             f"analytics_genres {own} ORDER BY entity_id, genre, source",
                             person),
        "milestones": await rows(
            "SELECT milestone_id, kind, source, entity_kind, platform_id, entity_id, "
            "entity_name, metric, day, value, threshold, detail, alerted, created_at FROM "
            f"analytics_milestones {own} ORDER BY day, milestone_id", person,
            json_columns=("detail",)),
        "thresholds": await rows(
            "SELECT account_id, threshold_id, metric, value, entity_id, created_by, "
            "created_at FROM analytics_thresholds WHERE account_id = ? OR created_by = ? "
            "ORDER BY account_id, metric, value", person, person),
        "catalog_audit": await rows(
            "SELECT account_id, audit_id, action, actor, entity_id, detail, at FROM "
            "analytics_catalog_audit WHERE account_id = ? OR actor = ? ORDER BY at, "
            "audit_id", person, person, json_columns=("detail",)),
        "dashboards": await rows(
            "SELECT account_id, dashboard_id, name, shared, filters, widgets, created_at, "
            "updated_at FROM analytics_dashboards WHERE owner = ? ORDER BY account_id, "
            "created_at, dashboard_id", person, json_columns=("filters", "widgets")),
        "alert_preferences": await rows(
            "SELECT account_id, email, kinds, cooldown_s, updated_at FROM "
            "analytics_alert_preferences WHERE person_id = ? ORDER BY account_id", person),
        "alert_mail": await rows(
            "SELECT account_id, last_mailed_at FROM analytics_alert_mail WHERE recipient IN "
            f"({_marks(keys)}) ORDER BY account_id", *keys) if keys else [],
        "alerts_held": await rows(
            "SELECT account_id, milestone_id, held_at FROM analytics_alert_held WHERE "
            f"recipient IN ({_marks(keys)}) ORDER BY account_id, held_at, milestone_id",
            *keys) if keys else [],
        "points.csv": csv_bytes(POINT_COLUMNS, [[r[c] for c in POINT_COLUMNS]
                                                for r in points]),
    }


async def erase_account(db: Any, queue: JobQueue, ingest_queue: str, pz: Pseudonymiser,
                        clock: Callable[[], float] = time.time,
                        notices: ReconnectNotices | None = None) -> dict[str, int]:
    """Forget ``pz``'s person in the analytics tables (idempotent); rows, by table.
    ``notices``: mails the owners of each source whose grant was forgotten, once it is."""
    person_id = pz.account_id
    for job in await queue.find(account_id=person_id, queue=ingest_queue,
                                states=LIVE_JOB_STATES):
        await queue.cancel(person_id, job.id)
    keys = sorted({recipient_key(name) for name in pz.names if "@" in name})
    changed: dict[str, int] = {}
    async with db.transaction() as tx:
        # the own account's grants, withdrawn under the pseudonym (nobody left to mail)
        revokes = 0
        for row in await tx.fetch(
                "SELECT source_id, source, entity_kind, entity_id, entity_name, credentials "
                "FROM analytics_sources WHERE account_id = ? AND credentials != ''",
                person_id):
            revokes += await queue_revoke(queue, tx, pz.pseudonym, dict(row),
                                          row["credentials"], ERASED, notify=False)
        for table in OWN_TABLES:
            changed[table] = await tx.execute(f"DELETE FROM {table} WHERE account_id = ?",
                                              person_id)
        changed["alert_preferences"] = await tx.execute(
            "DELETE FROM analytics_alert_preferences WHERE person_id = ?", person_id)
        # shared dashboards are the team's: kept below, owned by the pseudonym
        changed["unshared_dashboards"] = await tx.execute(
            "DELETE FROM analytics_dashboards WHERE owner = ? AND shared = 0", person_id)
        if keys:
            for table in ("analytics_alert_mail", "analytics_alert_held"):
                changed[f"{table}_of_address"] = await tx.execute(
                    f"DELETE FROM {table} WHERE recipient IN ({_marks(keys)})", *keys)
        # before the mentions: the sources are found by the person's own id
        now = clock()
        forgotten = await forget_grants_of(tx, person_id, pz.pseudonym, now)
        changed["grants_forgotten"] = len(forgotten)
        for source in forgotten:
            revokes += await queue_revoke(queue, tx, source["account_id"], source,
                                          source.pop("credentials"), ERASED,
                                          exclude_keys=keys)
        changed["revocations_queued"] = revokes
        changed["mentions"] = await pseudonymise_mentions(tx, pz, MENTIONS)
    if revokes:
        queue.wake(REVOKE_JOB)
    if notices is not None:  # after the commit: a mail never tells of a rolled-back flag
        addresses = [name for name in pz.names if "@" in name]
        for source in forgotten:
            named = await db.fetchrow(  # as kept: any mention of the person pseudonymised
                "SELECT source_id, source, entity_kind, entity_id, entity_name FROM "
                "analytics_sources WHERE account_id = ? AND source_id = ?",
                source["account_id"], source["source_id"])
            await notices.notify_safely(source["account_id"], dict(named or source),
                                        GRANT_FORGOTTEN_REASON, now, exclude=addresses)
    return changed
