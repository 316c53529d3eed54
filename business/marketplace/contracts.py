"""Licence contracts: the seller's template, and one PDF per licence, kept and re-served.

A licence granted by :mod:`.fulfilment` queues the ``marketplace.contract`` job in the
grant's transaction. The job reads the licence, its order and beat, takes the SHA-256 of
every file the licence delivers (read in a thread), renders the seller's template (or
:data:`~business.marketplace.contract_pdf.DEFAULT_CONTRACT`) to a PDF in the render pool's
worker processes, and stores it under the **seller's** account in ``mkt_contracts`` (once:
a second run finds it). A seller's template that fails on the live data (a missing field,
the sandbox's limits) falls back to the default wording, and its error is kept for the
seller (``last_error``); a template is also tried on sample data when it is saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from business.marketplace.contract_pdf import (
    DEFAULT_CONTRACT,
    contract_date,
    rights_list,
    sample_contract_data,
)
from business.marketplace.delivery import AssetFile
from business.marketplace.errors import (
    CatalogueInvalid,
    DownloadRefused,
    NotForSale,
    NotFoundHere,
)
from business.marketplace.ledger import format_amount
from business.marketplace.models import ACTIVE, Licence
from business.marketplace.render_pool import RenderPool
from business.marketplace.sandbox import MAX_TEMPLATE_CHARS, TemplateRefused
from business.marketplace.store import MarketStore

logger = logging.getLogger(__name__)
#: The job that writes a licence's contract.
CONTRACT_JOB = "marketplace.contract"
PLATFORM = "Max Booster Studio"


class FileMissing(Exception):
    """A delivered file is not readable yet (the job tries again later)."""


class LicenceChanged(Exception):
    """The licence moved (an erasure) while its contract was made: made again later."""


@dataclass(frozen=True)
class Contract:
    """A licence's contract PDF and what it certifies."""

    account_id: str
    licence_id: str
    order_id: str
    buyer_account: str
    pdf: bytes
    sha256: str
    files: list[dict[str, Any]]
    template: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"licence_id": self.licence_id, "order_id": self.order_id,
                "sha256": self.sha256, "bytes": len(self.pdf), "files": self.files,
                "template": self.template, "created_at": self.created_at}


def file_sha256(path: str) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB pieces (stems run to gigabytes)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as source:
        while piece := source.read(1 << 20):
            digest.update(piece)
            size += len(piece)
    return digest.hexdigest(), size


def _contract_from(row: Any) -> Contract:
    return Contract(row["account_id"], row["licence_id"], row["order_id"],
                    row["buyer_account"], bytes(row["pdf"]), row["sha256"],
                    json.loads(row["files"]), row["template"], float(row["created_at"]))


class Contracts:
    """Sellers' contract templates and licences' contract PDFs."""

    def __init__(self, store: MarketStore, renderer: RenderPool,
                 asset_file: AssetFile | None) -> None:
        self.store = store
        self.db = store.db
        self.renderer = renderer
        self.asset_file = asset_file

    # -- the seller's template ---------------------------------------------------------------

    async def template(self, account_id: str) -> dict[str, Any]:
        """The seller's template (None: the default's wording), its last live failure and
        the default's text."""
        row = await self.db.fetchrow("SELECT template, last_error, updated_at FROM "
                                     "mkt_contract_templates WHERE account_id = ?", account_id)
        return {"template": row["template"] if row else None,
                "last_error": row["last_error"] if row else "",
                "updated_at": float(row["updated_at"]) if row else None,
                "default_template": DEFAULT_CONTRACT}

    async def save_template(self, account_id: str, source: str | None) -> dict[str, Any]:
        """Set the seller's template after trying it on sample data in a worker
        (:class:`CatalogueInvalid` saying what to fix); None goes back to the default."""
        if source is None or not source.strip():
            await self.db.execute("DELETE FROM mkt_contract_templates WHERE account_id = ?",
                                  account_id)
            return await self.template(account_id)
        if len(source) > MAX_TEMPLATE_CHARS:
            raise CatalogueInvalid(f"the contract template has {len(source)} characters; at "
                                   f"most {MAX_TEMPLATE_CHARS} are allowed",
                                   [{"path": "template", "message": "too long"}])
        try:
            await self.renderer.check_contract(source, {**sample_contract_data(),
                                                        "created": time.time()})
        except TemplateRefused as exc:
            raise CatalogueInvalid(f"the contract template cannot be used: {exc}",
                                   [{"path": "template", "message": str(exc)}]) from None
        now = time.time()
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE mkt_contract_templates SET template = ?, last_error = '', "
                "updated_at = ? WHERE account_id = ?", source, now, account_id)
            if not changed:
                await tx.execute("INSERT INTO mkt_contract_templates (account_id, template, "
                                 "last_error, updated_at) VALUES (?, ?, '', ?) ON CONFLICT "
                                 "DO NOTHING", account_id, source, now)
        return await self.template(account_id)

    # -- writing a licence's contract --------------------------------------------------------

    async def _files(self, licence: Licence) -> list[dict[str, Any]]:
        found = []
        for item in licence.files:
            path = (await self.asset_file(licence.account_id, item.asset_id)
                    if self.asset_file else None)
            if not path or not Path(path).is_file():
                raise FileMissing(f"file {item.file_id} ({item.kind}) of licence "
                                  f"{licence.licence_id} is not readable here")
            digest, size = await asyncio.to_thread(file_sha256, path)
            found.append({"file_id": item.file_id, "kind": item.kind,
                          "name": item.name or f"{licence.title} ({item.kind})",
                          "bytes": size, "sha256": digest})
        return found

    async def _name(self, account_id: str) -> str:
        """What a contract calls an account: its storefront's name, else its id."""
        name = await self.db.fetchval("SELECT name FROM mkt_storefronts WHERE account_id = ?",
                                      account_id)
        return str(name) if name else account_id

    async def data(self, licence: Licence, files: list[dict[str, Any]]) -> dict[str, Any]:
        """What a contract template sees for ``licence`` (plain dicts and lists)."""
        order = await self.store.order(licence.account_id, licence.order_id)
        beat = await self.store.beat(licence.account_id, licence.beat_id)
        tier = beat.tier(licence.tier) if beat else None
        return {
            "platform": PLATFORM,
            "created": licence.granted_at,
            "licence": {"id": licence.licence_id, "order_id": licence.order_id,
                        "tier": licence.tier, "tier_name": tier.name if tier else licence.tier,
                        "exclusive": licence.exclusive,
                        "date": contract_date(licence.granted_at),
                        "granted_at": licence.granted_at,
                        "price": format_amount(order.amount, order.currency) if order else ""},
            "licensor": {"name": await self._name(licence.account_id),
                         "account": licence.account_id},
            "licensee": {"name": await self._name(licence.buyer_account),
                         "account": licence.buyer_account},
            "beat": {"id": licence.beat_id, "title": licence.title,
                     "bpm": beat.bpm if beat else "", "key": beat.key if beat else "",
                     "genre": beat.genre if beat else "", "mood": beat.mood if beat else ""},
            "rights": rights_list(licence.rights),
            "files": files,
        }

    async def write(self, account_id: str, licence_id: str) -> Contract:
        """The licence's contract, made now if it is not kept yet (the job's work)."""
        kept = await self.of_seller(account_id, licence_id, missing_ok=True)
        if kept is not None:
            return kept
        licence = await self.store.licence(licence_id)
        if licence is None or licence.account_id != account_id:
            raise NotFoundHere(f"no licence {licence_id!r} of {account_id!r}")
        files = await self._files(licence)
        data = await self.data(licence, files)
        custom = (await self.template(account_id))["template"]
        used = "default"
        pdf: bytes | None = None
        if custom:
            try:
                pdf = await self.renderer.contract(custom, data)
                used = "seller"
            except TemplateRefused as exc:
                logger.info("contract template of %s failed on licence %s: %s", account_id,
                            licence_id, exc)
                await self.db.execute("UPDATE mkt_contract_templates SET last_error = ? "
                                      "WHERE account_id = ?",
                                      f"licence {licence_id}: {exc}"[:2000], account_id)
        if pdf is None:
            pdf = await self.renderer.contract(DEFAULT_CONTRACT, data)
        digest = hashlib.sha256(pdf).hexdigest()
        now = time.time()
        async with self.db.transaction() as tx:
            # the licence's row locked (a no-op UPDATE, portable): an erasure moving it
            # or renaming its buyer meanwhile either waits for this contract and deletes
            # it after, or has changed the row already and nothing is written (a later
            # attempt writes the contract of the pseudonymised licence, if still ours)
            if not await tx.execute("UPDATE mkt_licences SET downloads = downloads WHERE "
                                    "account_id = ? AND licence_id = ? AND "
                                    "buyer_account = ?", account_id, licence_id,
                                    licence.buyer_account):
                raise LicenceChanged(f"licence {licence_id!r} changed hands while its "
                                     "contract was written")
            await tx.execute(
                "INSERT INTO mkt_contracts (account_id, licence_id, order_id, buyer_account, "
                "pdf, sha256, files, template, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING", account_id, licence_id, licence.order_id,
                licence.buyer_account, pdf, digest, json.dumps(files), used, now)
        found = await self.of_seller(account_id, licence_id)
        assert found is not None
        return found

    # -- reading -----------------------------------------------------------------------------

    async def of_seller(self, account_id: str, licence_id: str, *,
                        missing_ok: bool = False) -> Contract | None:
        """A contract of a licence the seller sold."""
        row = await self.db.fetchrow("SELECT * FROM mkt_contracts WHERE account_id = ? AND "
                                     "licence_id = ?", account_id, licence_id)
        if row is None and not missing_ok:
            raise NotFoundHere(f"no contract for licence {licence_id!r} in this account")
        return None if row is None else _contract_from(row)

    async def of_sale(self, account_id: str, order_id: str) -> Contract:
        """The contract of one of the seller's paid orders."""
        row = await self.db.fetchrow("SELECT * FROM mkt_contracts WHERE account_id = ? AND "
                                     "order_id = ?", account_id, order_id)
        if row is None:
            if await self.store.order(account_id, order_id) is None:
                raise NotFoundHere(f"no order {order_id!r} in this account")
            raise NotForSale(f"order {order_id!r} has no contract yet: it is written "
                             "seconds after the payment; try again shortly")
        return _contract_from(row)

    async def of_buyer(self, buyer: str, licence_id: str) -> Contract:
        """The contract of one of the buyer's licences (another's answers 404), only while
        the licence is active: a refunded, revoked or disputed one's is refused as its
        files are (:class:`DownloadRefused`); the seller keeps theirs (:meth:`of_sale`)."""
        licence = await self.store.licence(licence_id)
        if licence is None or licence.buyer_account != buyer:
            raise NotFoundHere(f"no licence {licence_id!r} of yours")
        if licence.status != ACTIVE:
            raise DownloadRefused(f"this licence is {licence.status}, so its contract can no "
                                  "longer be downloaded")
        row = await self.db.fetchrow("SELECT * FROM mkt_contracts WHERE account_id = ? AND "
                                     "licence_id = ?", licence.account_id, licence_id)
        if row is None:
            raise NotForSale(f"the contract of licence {licence_id!r} is being written: "
                             "try again in a few seconds")
        return _contract_from(row)

    async def ready(self, licences: list[Licence]) -> set[str]:
        """Which of ``licences`` have their contract written."""
        found: set[str] = set()
        for licence in licences:
            if await self.db.fetchval("SELECT 1 FROM mkt_contracts WHERE account_id = ? AND "
                                      "licence_id = ?", licence.account_id,
                                      licence.licence_id):
                found.add(licence.licence_id)
        return found
