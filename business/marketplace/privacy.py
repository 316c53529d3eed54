"""A person's marketplace data: their export, and what erasing them keeps and forgets.

The plug-in's ``account_export`` and ``account_erased`` hooks call these.

Export (:func:`export_account`): as a seller, the person's own account's seller record,
storefront (never its domain token), beats and tiers, coupons, the orders and licences
they sold (without who bought: that is the buyers' data), their ledger and the split
money held of their sales for collaborators who had not agreed yet; as a buyer, the
orders they placed and licences they hold in every store; as a collaborator, the shares
paid to them and the parts held for them.

Erasure (:func:`erase_account`): what is the person's alone and holds no money is
deleted: the storefront and its handle and domain claims, coupons, beats and tiers, the
webhook inbox, the contract template, the voice tag and rendered previews, deals and
carts (theirs as a seller, and their own lines in every store), splits (theirs, and any
naming them as a collaborator); the contract PDFs naming the person (as seller or buyer:
their text cannot be pseudonymised in place). Money records the law requires to keep
(the seller record, orders, licences, the ledger's postings, entries and balances,
payouts, split transfers, disputes, membership plans, memberships, their free downloads
and invoices) are kept: the rows of their own account move under the pseudonym, and in
every store each mention of them as a buyer (``buyer_account``, a note), a collaborator
paid by transfer or a member of a plan becomes the pseudonym, so nothing left is keyed
by them. A buyer's licences stay valid under the pseudonym.
"""

from __future__ import annotations

import json
from typing import Any

from business.marketplace.split_hold_claims import CLAIM_TTL_S, live_claim_sql
from dawserver.plugin_api import (
    Pseudonymiser,
    Retry,
    move_account_rows,
    pseudonymise_mentions,
)

#: The own account's tables that are deleted (no money in them).
FORGOTTEN = ("mkt_storefronts", "mkt_store_names", "mkt_coupons", "mkt_tiers", "mkt_beats",
             "mkt_webhook_events", "mkt_contract_templates", "mkt_voice_tags",
             "mkt_previews", "mkt_deals", "mkt_cart_items", "mkt_splits",
             "mkt_customers", "mkt_download_links")
#: The own account's tables kept (money records), moved under the pseudonym.
KEPT = ("mkt_sellers", "mkt_orders", "mkt_licences", "mkt_ledger_postings",
        "mkt_ledger_entries", "mkt_ledger_balances")
#: Money records of payouts, split transfers and disputes: kept and moved like ``KEPT``
#: (a seller may have none of them).
KEPT_MONEY = ("mkt_payouts", "mkt_transfers", "mkt_disputes", "mkt_membership_plans",
              "mkt_memberships", "mkt_membership_downloads", "mkt_membership_invoices",
              "mkt_split_reversals", "mkt_transfer_reversals", "mkt_split_holds",
              "mkt_split_hold_cuts")
#: Where a kept row of any store may name a buyer: (table, key, text columns, JSON columns).
MENTIONS = (
    ("mkt_orders", ("account_id", "order_id"), ("buyer_account", "note"), ()),
    ("mkt_licences", ("account_id", "licence_id"), ("buyer_account",), ()),
    ("mkt_transfers", ("account_id", "transfer_id"), ("collaborator", "hold_of"), ()),
    ("mkt_split_holds", ("account_id", "order_id", "collaborator"),
     ("collaborator", "payee"), ()),
    ("mkt_split_hold_cuts", ("account_id", "order_id", "collaborator", "cause"),
     ("collaborator",), ()),
    ("mkt_memberships", ("account_id", "membership_id"), ("member_account",), ()),
)

_ORDER = ("order_id, beat_id, tier, amount, currency, exclusive, status, created_at, "
          "paid_at, refunded_at")
_LICENCE = ("licence_id, order_id, beat_id, tier, title, rights, downloads, "
            "download_limit, status, granted_at")
#: A held split part (``mkt_split_holds``): status is held, releasing or returning
#: (being paid out), released (to the collaborator) or returned (to the seller).
_HELD = ("order_id, beat_id, amount, cut, currency, state AS status, payee AS paid_to, "
         "paid, held_at, settled_at, returns_to_seller")


def _json(row: Any, *columns: str) -> dict[str, Any]:
    found = dict(row)
    return {**found, **{c: json.loads(found[c]) for c in columns if found.get(c)}}


async def export_account(db: Any, account_id: str) -> dict[str, Any]:
    """The marketplace parts of ``account_id``'s export (JSON-able)."""
    async def rows(sql: str, *json_columns: str) -> list[dict[str, Any]]:
        return [_json(row, *json_columns) for row in await db.fetch(sql, account_id)]

    own = "WHERE account_id = ?"
    return {
        "seller": await rows(f"SELECT stripe_account, created_at FROM mkt_sellers {own}"),
        "storefront": await rows(
            "SELECT handle, name, bio, theme, template, domain, domain_verified_at, "
            f"updated_at FROM mkt_storefronts {own}", "theme"),
        "beats": await rows("SELECT beat_id, title, bpm, musical_key, genre, mood, tags, "
                            "files, currency, status, leases_sold, created_at FROM mkt_beats "
                            f"{own} ORDER BY created_at, beat_id", "tags", "files"),
        "tiers": await rows("SELECT beat_id, tier, name, price, currency, files, rights, "
                            "exclusive, download_limit, active FROM mkt_tiers "
                            f"{own} ORDER BY beat_id, tier", "files", "rights"),
        "coupons": await rows("SELECT code, kind, value, currency, beat_id, expires_at, "
                              f"max_uses, uses, created_at FROM mkt_coupons {own} "
                              "ORDER BY created_at, code"),
        "sales": await rows(f"SELECT {_ORDER} FROM mkt_orders {own} "
                            "ORDER BY created_at, order_id"),
        "licences_sold": await rows(f"SELECT {_LICENCE} FROM mkt_licences {own} "
                                    "ORDER BY granted_at, licence_id", "rights"),
        "ledger": await rows(
            "SELECT p.posting_id, p.kind, p.memo, p.posted_at, e.seq, e.ledger_account, "
            "e.currency, e.amount FROM mkt_ledger_postings p JOIN mkt_ledger_entries e ON "
            "e.account_id = p.account_id AND e.posting_id = p.posting_id "
            "WHERE p.account_id = ? ORDER BY p.posted_at, p.posting_id, e.seq"),
        "purchases": await rows(f"SELECT account_id AS seller, {_ORDER} FROM mkt_orders "
                                "WHERE buyer_account = ? ORDER BY created_at, order_id"),
        "licences": await rows(f"SELECT account_id AS seller, {_LICENCE} FROM mkt_licences "
                               "WHERE buyer_account = ? ORDER BY granted_at, licence_id",
                               "rights"),
        "deals": await rows("SELECT deal_id, buy, free, tiers, active, created_at FROM "
                            f"mkt_deals {own} ORDER BY deal_id", "tiers"),
        "payouts": await rows("SELECT payout_id, amount, fee, currency, method, status, note, "
                              f"created_at FROM mkt_payouts {own} ORDER BY created_at"),
        "splits": await rows("SELECT beat_id, collaborator, basis_points FROM mkt_splits "
                             f"{own} ORDER BY beat_id, collaborator"),
        "shares_received": await rows("SELECT account_id AS seller, order_id, amount, "
                                      "reversed, currency FROM mkt_transfers WHERE "
                                      "collaborator = ? ORDER BY order_id"),
        # split money held for a collaborator who had not agreed yet: of their sales,
        # for whom; of others' sales, for them (amount as held, cut by refunds, paid out)
        "held_parts_sold": await rows(f"SELECT {_HELD}, collaborator AS held_for FROM "
                                      f"mkt_split_holds {own} ORDER BY held_at, order_id, "
                                      "collaborator"),
        "held_parts": await rows(f"SELECT account_id AS seller, {_HELD} FROM "
                                 "mkt_split_holds WHERE collaborator = ? ORDER BY held_at, "
                                 "account_id, order_id"),
        "carts": await rows("SELECT account_id AS seller, beat_id, tier, source, added_at "
                            "FROM mkt_cart_items WHERE owner = ? ORDER BY added_at, beat_id"),
        # what sellers keep of them as a buyer (country; name and email if they agreed)
        "as_customer": await rows("SELECT account_id AS seller, order_id, country, name, "
                                  "email, consent, created_at FROM mkt_customers WHERE "
                                  "buyer_account = ? ORDER BY created_at, order_id"),
        "membership_plans": await rows(
            "SELECT plan_id, name, amount, currency, billing_interval, free_downloads, "
            f"free_tier, discount_bp, active, created_at FROM mkt_membership_plans {own} "
            "ORDER BY created_at, plan_id"),
        "members": await rows(
            "SELECT membership_id, plan_id, status, period_end, created_at FROM "
            f"mkt_memberships {own} ORDER BY created_at, membership_id"),
        "memberships": await rows(
            "SELECT account_id AS seller, membership_id, plan_id, status, period_start, "
            "period_end, cancel_at_period_end, perk_used, created_at FROM mkt_memberships "
            "WHERE member_account = ? ORDER BY created_at, membership_id"),
        "contract_template": await rows("SELECT template, last_error, updated_at FROM "
                                        f"mkt_contract_templates {own}"),
        # the PDFs themselves are re-downloadable; the export names them and their sums
        "contracts_sold": await rows("SELECT licence_id, order_id, sha256, files, template, "
                                     f"created_at FROM mkt_contracts {own} "
                                     "ORDER BY created_at, licence_id", "files"),
        "contracts": await rows("SELECT account_id AS seller, licence_id, order_id, sha256, "
                                "files, created_at FROM mkt_contracts WHERE buyer_account = ? "
                                "ORDER BY created_at, licence_id", "files"),
    }


async def _no_payout_running(db: Any, tx: Any, person_id: str) -> None:
    """In ``tx``: :class:`Retry` while a run is paying out split money held of, for or
    to ``person_id`` (their sale, their part; a live ``claim``, aged by the database's
    clock, as every run ages it): it would book the transfer under the id the erasure
    forgets, and the sweep, finding the row under the pseudonym with no transfer of that
    name, could pay it again. The rows are held until ``tx`` ends (PostgreSQL), so no run
    claims one between this check and their pseudonym; a run whose claim was dead finds
    its row moved and stops before paying (:mod:`.split_hold_claims`)."""
    lock = " FOR UPDATE" if getattr(db, "dialect", "") == "postgresql" else ""
    rows = await tx.fetch(
        f"SELECT order_id, {live_claim_sql(tx)} AS live FROM mkt_split_holds WHERE "
        f"account_id = ? OR collaborator = ? OR payee = ?{lock}", person_id, person_id,
        person_id)
    running = [r["order_id"] for r in rows if r["live"]]
    if running:
        raise Retry(f"split money held for the person is being paid out ({len(running)} "
                    f"part(s)); the erasure waits for it", after=min(60.0, CLAIM_TTL_S))


async def erase_account(db: Any, pz: Pseudonymiser) -> dict[str, int]:
    """Forget ``pz``'s person in the marketplace tables (idempotent); rows, by table."""
    person_id = pz.account_id
    changed: dict[str, int] = {}
    async with db.transaction() as tx:
        await _no_payout_running(db, tx, person_id)
        changed["mentions"] = await pseudonymise_mentions(tx, pz, MENTIONS)
        # their carts in other stores (no money in them)
        changed["carts"] = await tx.execute("DELETE FROM mkt_cart_items WHERE owner = ?",
                                            person_id)
        # what sellers kept of them as a customer (country, and name and email if agreed)
        changed["customers"] = await tx.execute(
            "DELETE FROM mkt_customers WHERE buyer_account = ?", person_id)
        for table in FORGOTTEN:
            changed[table] = await tx.execute(f"DELETE FROM {table} WHERE account_id = ?",
                                              person_id)
        # a split naming them in another's store is forgotten (no money in it)
        changed["splits"] = await tx.execute("DELETE FROM mkt_splits WHERE collaborator = ?",
                                             person_id)
        for table in (*KEPT, *KEPT_MONEY):
            changed[table] = await move_account_rows(tx, table, person_id, pz.pseudonym)
        # a contract PDF names both parties in its text: the ones naming the person go
        # (their licences stay valid; the PDF cannot be pseudonymised in place). After
        # the licences moved: a contract job holding a licence's row lock commits first
        # and is deleted here; one coming after finds the licence gone and writes nothing
        changed["mkt_contracts"] = await tx.execute(
            "DELETE FROM mkt_contracts WHERE account_id IN (?, ?) OR buyer_account IN (?, ?)",
            person_id, pz.pseudonym, person_id, pz.pseudonym)
    return changed
