"""A person's social data: their export, and what erasing them keeps and forgets.

The plug-in's ``account_export`` and ``account_erased`` hooks call these.

Export (:func:`export_account`): the channels (what they are, never their tokens),
posts with their channels' variants and outcomes, approval decisions, audit, uploaded
media (their descriptions), listening (queries, inbox, rules, spike alerts, replies) and
results (metric readings, short links with their click counts, attributions) of the
person's own account; and in other accounts the posts they wrote, the channels they
connected, the media they uploaded, the approval decisions they made, the steps they
took, the inbox items assigned to or answered by them and the replies they wrote.

Erasure (:func:`erase_account`): the person's own account loses its channels (tokens
and all), connects in progress, posts, their targets, approval decisions and uploaded
media (the rows; the plug-in's ``account_erased`` hook deletes the files), and its
queued publish jobs are cancelled. The audit trails are kept pseudonymised: the own
account's steps move under the pseudonym, and in every account each mention of the
person (as author, connector, approver or actor, in notes and details) becomes the
pseudonym. Posts they wrote for an organisation stay the organisation's, authored by
the pseudonym. Each own channel's grant is queued, in the same transaction, to be
withdrawn at its network (:mod:`.revocation`, under the pseudonym); the erasure does not
wait for it. Channels they connected for an organisation stay the organisation's, tokens
and all (the organisation disconnects them if it wants).
"""

from __future__ import annotations

import json
from typing import Any

from business.social.revocation import ERASED, REVOKE, queue_revoke
from dawserver.plugin_api import (
    JobQueue,
    Pseudonymiser,
    move_account_rows,
    pseudonymise_mentions,
)

#: The own account's tables that are deleted.
FORGOTTEN = ("social_post_targets", "social_approval_steps", "social_posts",
             "social_connects", "social_channels",
             # results (0003): readings, schedules, short links, clicks, attributions
             "social_metric_snapshots", "social_metric_schedule", "social_short_links",
             "social_link_clicks", "social_attributions",
             # listening and inbox (0004)
             "social_inbox_items", "social_inbox_rules", "social_spike_alerts",
             "social_listen_queries",
             # inbox replies and direct messages (0005)
             "social_inbox_replies",
             # uploaded images and videos (0008; the plug-in deletes their files)
             "social_media_uploads")
#: Where a kept row of another account may name a person: (table, key, text columns,
#: JSON columns). Channels' workflows and rights, and audit details, are JSON whose keys
#: and words (roles, accesses) the code reads: :func:`_pseudonymise_documents` rewrites
#: them by their shape instead, so a display name such as "Admin", "Person" or "View"
#: renames nothing but the person.
MENTIONS = (
    ("social_posts", ("account_id", "post_id"), ("author_id",), ()),
    ("social_channels", ("account_id", "channel_id"), ("connected_by",), ()),
    ("social_approval_steps", ("account_id", "post_id", "channel_id", "version", "tier"),
     ("decided_by", "note"), ()),
    ("social_audit", ("account_id", "audit_id"), ("actor",), ()),
    ("social_inbox_items", ("account_id", "item_id"), ("assignee", "responder"), ()),
    ("social_inbox_rules", ("account_id", "rule_id"), (), ("team",)),
    ("social_inbox_replies", ("account_id", "reply_id"), ("person",), ()),
    ("social_media_uploads", ("account_id", "media_id"), ("uploaded_by",), ()),
)
CHANNEL_FIELDS = ("channel_id, network, remote_id, name, handle, state, scope, expires_at, "
                  "last_error, connected_by, approval_tiers, queue_slots, access_rights, "
                  "time_zone, created_at, updated_at")
POST_FIELDS = ("post_id, author_id, text, media, link, first_comment, campaign, publish_at, "
               "time_zone, state, version, submitted_at, created_at, updated_at")
TARGET_FIELDS = ("post_id, channel_id, text, media, link, first_comment, state, remote_id, "
                 "url, error, attempts, published_at")
QUERY_FIELDS = ("query_id, channel_id, network, kind, term, sensitivity, min_count, "
                "cooldown_s, notify_email, polled_at, last_error, last_alert_at, created_at")
ITEM_FIELDS = ("item_id, query_id, network, remote_id, thread, text, author, author_id, url, "
               "posted_at, received_at, language, sentiment, score, assignee, rule_id, "
               "first_response_at, responder")
UPLOAD_FIELDS = ("media_id, name, kind, content_type, size_bytes, width, height, duration_s, "
                 "sha256, uploaded_by, created_at")
REPLY_FIELDS = ("reply_id, item_id, channel_id, network, kind, target, text, person, state, "
                "remote_id, url, error, created_at, sent_at")


def _decoded(row: dict[str, Any], *columns: str) -> dict[str, Any]:
    return {**row, **{c: json.loads(row[c]) for c in columns if row.get(c) is not None}}


async def _posts(db: Any, where: str, *args: Any) -> list[dict[str, Any]]:
    posts = [_decoded(dict(r), "media") for r in await db.fetch(
        f"SELECT account_id, {POST_FIELDS} FROM social_posts WHERE deleted = 0 AND {where} "
        "ORDER BY created_at, post_id", *args)]
    for post in posts:
        post["targets"] = [_decoded(dict(t), "media") for t in await db.fetch(
            f"SELECT {TARGET_FIELDS} FROM social_post_targets WHERE account_id = ? "
            "AND post_id = ? ORDER BY channel_id", post["account_id"], post["post_id"])]
    return posts


async def export_account(db: Any, account_id: str) -> dict[str, Any]:
    """The social parts of ``account_id``'s export (JSON-able; no token anywhere)."""
    async def rows(sql: str, *json_columns: str) -> list[dict[str, Any]]:
        return [_decoded(dict(r), *json_columns) for r in await db.fetch(sql, account_id)]

    return {
        "channels": await rows(f"SELECT {CHANNEL_FIELDS} FROM social_channels "
                               "WHERE account_id = ? ORDER BY created_at, channel_id",
                               "approval_tiers", "queue_slots", "access_rights"),
        "posts": await _posts(db, "account_id = ?", account_id),
        "approval_decisions": [dict(r) for r in await db.fetch(
            "SELECT account_id, post_id, channel_id, version, tier, decision, decided_by, "
            "note, decided_at FROM social_approval_steps WHERE account_id = ? "
            "OR decided_by = ? ORDER BY decided_at", account_id, account_id)],
        "audit": await rows("SELECT subject, action, actor, detail, at FROM social_audit "
                            "WHERE account_id = ? ORDER BY audit_id", "detail"),
        "listening": {
            "queries": await rows(f"SELECT {QUERY_FIELDS} FROM social_listen_queries "
                                  "WHERE account_id = ? ORDER BY created_at, query_id"),
            "inbox_items": await rows(f"SELECT {ITEM_FIELDS} FROM social_inbox_items "
                                      "WHERE account_id = ? ORDER BY received_at, item_id"),
            "inbox_rules": await rows("SELECT rule_id, ordinal, kind, pattern, language, team, "
                                      "created_at FROM social_inbox_rules WHERE account_id = ? "
                                      "ORDER BY ordinal, rule_id", "team"),
            "spike_alerts": await rows("SELECT alert_id, query_id, at, last_hour, baseline "
                                       "FROM social_spike_alerts WHERE account_id = ? "
                                       "ORDER BY at, alert_id"),
            "replies": await rows(f"SELECT {REPLY_FIELDS} FROM social_inbox_replies "
                                  "WHERE account_id = ? ORDER BY created_at, reply_id"),
        },
        "media_uploads": await rows(f"SELECT {UPLOAD_FIELDS} FROM social_media_uploads "
                                    "WHERE account_id = ? ORDER BY created_at, media_id"),
        "results": {
            "metric_snapshots": await rows(
                "SELECT post_id, channel_id, network, taken_at, impressions, reach, likes, "
                "comments, shares, clicks, video_views FROM social_metric_snapshots "
                "WHERE account_id = ? ORDER BY post_id, channel_id, taken_at"),
            # clicks as counts per link: each row names a visitor (a salted hash), not them
            "short_links": await rows(
                "SELECT l.code, l.post_id, l.channel_id, l.network, l.url, l.campaign, "
                "l.created_at, (SELECT COUNT(*) FROM social_link_clicks c WHERE "
                "c.account_id = l.account_id AND c.code = l.code) AS clicks "
                "FROM social_short_links l WHERE l.account_id = ? ORDER BY l.created_at, l.code"),
            "attributions": await rows(
                "SELECT event_id, kind, post_id, channel_id, code, amount_cents, currency, at "
                "FROM social_attributions WHERE account_id = ? ORDER BY at, event_id"),
        },
        "elsewhere": {
            "posts_written": await _posts(db, "author_id = ? AND account_id <> author_id",
                                          account_id),
            "channels_connected": await rows(
                f"SELECT account_id, {CHANNEL_FIELDS} FROM social_channels WHERE "
                "connected_by = ? AND account_id <> connected_by ORDER BY created_at",
                "approval_tiers", "queue_slots", "access_rights"),
            "steps": await rows("SELECT account_id, subject, action, actor, detail, at FROM "
                                "social_audit WHERE actor = ? AND account_id <> actor "
                                "ORDER BY at", "detail"),
            "inbox_items_handled": [dict(r) for r in await db.fetch(
                f"SELECT account_id, {ITEM_FIELDS} FROM social_inbox_items WHERE "
                "(assignee = ? OR responder = ?) AND account_id <> ? "
                "ORDER BY received_at, item_id", account_id, account_id, account_id)],
            "media_uploaded": await rows(
                f"SELECT account_id, {UPLOAD_FIELDS} FROM social_media_uploads WHERE "
                "uploaded_by = ? AND account_id <> uploaded_by ORDER BY created_at, media_id"),
            "replies_written": await rows(
                f"SELECT account_id, {REPLY_FIELDS} FROM social_inbox_replies WHERE "
                "person = ? AND account_id <> person ORDER BY created_at, reply_id"),
        },
    }




def _person_entries(entries: Any, person_id: str, pseudonym: str) -> Any:
    """A workflow tier or rights list with the entries naming ``person_id`` as a person
    (``{"person": id, ...}``) naming ``pseudonym``; everything else as it was."""
    if isinstance(entries, list):
        return [_person_entries(e, person_id, pseudonym) for e in entries]
    if isinstance(entries, dict) and entries.get("person") == person_id:
        return {**entries, "person": pseudonym}
    return entries


def _detail_values(pz: Pseudonymiser, value: Any) -> Any:
    """An audit detail with the person's mentions replaced in its values, never in its
    keys (the code reads them: ``content``, ``version``)."""
    if isinstance(value, str):
        return pz.text(value)
    if isinstance(value, dict):
        return {k: _detail_values(pz, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_detail_values(pz, v) for v in value]
    return value


async def _pseudonymise_documents(tx: Any, pz: Pseudonymiser) -> int:
    """Replace the person in channels' workflows and rights (by id, where an entry
    names them as a person) and in audit details (values only); rows changed."""
    person_id, changed = pz.account_id, 0
    for row in await tx.fetch(
            "SELECT account_id, channel_id, approval_tiers, access_rights FROM "
            "social_channels WHERE approval_tiers LIKE ? OR access_rights LIKE ?",
            f"%{json.dumps(person_id)}%", f"%{json.dumps(person_id)}%"):
        tiers = json.dumps(_person_entries(json.loads(row["approval_tiers"]), person_id,
                                           pz.pseudonym))
        rights = json.dumps(_person_entries(json.loads(row["access_rights"]), person_id,
                                            pz.pseudonym))
        if (json.loads(tiers), json.loads(rights)) != (json.loads(row["approval_tiers"]),
                                                       json.loads(row["access_rights"])):
            changed += await tx.execute(
                "UPDATE social_channels SET approval_tiers = ?, access_rights = ? WHERE "
                "account_id = ? AND channel_id = ?", tiers, rights, row["account_id"],
                row["channel_id"])
    where = " OR ".join("LOWER(detail) LIKE ?" for _ in pz.needles)
    for row in await tx.fetch(f"SELECT account_id, audit_id, detail FROM social_audit "
                              f"WHERE {where}", *(f"%{n}%" for n in pz.needles)):
        old = json.loads(row["detail"])
        new = _detail_values(pz, old)
        if new != old:
            changed += await tx.execute(
                "UPDATE social_audit SET detail = ? WHERE account_id = ? AND audit_id = ?",
                json.dumps(new), row["account_id"], row["audit_id"])
    return changed


async def _hold_channels(db: Any, tx: Any, person_id: str) -> None:
    """On PostgreSQL, in ``tx`` before it changes any row: hold, in (account, channel)
    order, every channel row the erasure changes and every channel of a post it
    changes. A decision, submission or edit holds its post's channels (``FOR UPDATE``)
    and then writes the post; the erasure taking the channels first too makes the two
    take turns instead of deadlocking (one of them aborted). SQLite writes one
    transaction at a time."""
    if getattr(db, "dialect", "") != "postgresql":
        return
    named = f"%{json.dumps(person_id)}%"
    rows = await tx.fetch(
        "SELECT account_id, channel_id FROM social_channels WHERE account_id = ? OR "
        "connected_by = ? OR approval_tiers LIKE ? OR access_rights LIKE ?",
        person_id, person_id, named, named)
    rows += await tx.fetch(
        "SELECT DISTINCT t.account_id, t.channel_id FROM social_post_targets t JOIN "
        "social_posts p ON p.account_id = t.account_id AND p.post_id = t.post_id "
        "WHERE p.author_id = ?", person_id)
    for account_id, channel_id in sorted({(r["account_id"], r["channel_id"])
                                          for r in rows}):
        await tx.fetch("SELECT channel_id FROM social_channels WHERE account_id = ? AND "
                       "channel_id = ? FOR UPDATE", account_id, channel_id)


async def erase_account(db: Any, queue: JobQueue, publish_queue: str, pz: Pseudonymiser
                        ) -> dict[str, int]:
    """Forget ``pz``'s person in the social tables (idempotent); rows, by table."""
    person_id = pz.account_id
    for job in await queue.find(account_id=person_id, queue=publish_queue,
                                states=("queued", "retrying", "running")):
        await queue.cancel(person_id, job.id)
    changed: dict[str, int] = {}
    async with db.transaction() as tx:
        await _hold_channels(db, tx, person_id)
        revokes = 0
        for row in await tx.fetch(
                "SELECT channel_id, network, remote_id, remote_user, access_token, "
                "refresh_token FROM social_channels "
                "WHERE account_id = ? AND (access_token <> '' OR refresh_token <> '')",
                person_id):
            revokes += await queue_revoke(queue, tx, pz.pseudonym, row["channel_id"],
                                          row["network"], row["access_token"],
                                          row["refresh_token"], ERASED,
                                          remote_id=row["remote_id"],
                                          remote_user=row["remote_user"])
        changed["revocations_queued"] = revokes
        for table in FORGOTTEN:
            changed[table] = await tx.execute(f"DELETE FROM {table} WHERE account_id = ?",
                                              person_id)
        changed["social_connects_started"] = await tx.execute(
            "DELETE FROM social_connects WHERE person_id = ?", person_id)
        changed["social_audit"] = await move_account_rows(tx, "social_audit", person_id,
                                                          pz.pseudonym)
        # channels before posts, the order every decision, submission and edit takes
        changed["documents"] = await _pseudonymise_documents(tx, pz)
        changed["mentions"] = await pseudonymise_mentions(tx, pz, MENTIONS)
    if revokes:
        queue.wake(REVOKE)
    return changed
