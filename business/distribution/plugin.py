"""The distribution plug-in: hook implementations that wire the module into the server.

Settings (``config.plugins["distribution"]``): ``stores`` (connector settings by
store name), ``sender_dpid``/``sender_name`` (our DDEX party), ``pipeline``
(:class:`~business.distribution.delivery.PipelineSettings` fields), ``outbox``
(:class:`~business.distribution.outbox.OutboxSettings` fields: retrying events
such as release day) and ``presave_check_s`` (how often the release-day check runs).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from business.distribution.catalog import DEFAULT_SENDER, Catalog
from business.distribution.ddex import Party
from business.distribution.delivery import DeliveryPipeline, PipelineSettings, backoff_delay
from business.distribution.ledger import Royalties
from business.distribution.outbox import Outbox, OutboxSettings
from business.distribution.presave import PreSaves
from database import Migration, load_migrations

PLUGIN_NAME = "distribution"
hookimpl = pluggy.HookimplMarker("maxbooster")
logger = logging.getLogger(__name__)

_KEY = "distribution"

#: The module's tables (``dist_*``, each keyed by ``account_id`` first), as ``.sql`` files
#: in ``migrations/`` beside this module, applied by the server's one migration runner.
MIGRATIONS = load_migrations(PLUGIN_NAME, Path(__file__).with_name("migrations"))


@dataclass
class Services:
    """The distribution module's objects, shared by its routes and jobs."""

    catalog: Catalog
    royalties: Royalties
    pipeline: DeliveryPipeline
    presaves: PreSaves


def services(context: Any) -> Services:
    """The started module of a plug-in context."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the distribution plug-in has not started yet")
    return found


def build_services(context: Any) -> Services:
    """Create the module's objects from the context's database and settings."""
    settings = context.settings_for(PLUGIN_NAME)
    db = context.database()
    connectors = [c for batch in context.manager.hook.distribution_stores(context=context)
                  for c in batch]
    sender = Party(settings.get("sender_dpid", DEFAULT_SENDER.dpid),
                   settings.get("sender_name", DEFAULT_SENDER.name))
    catalog = Catalog(db, {c.name: c.party for c in connectors}, sender)
    pipeline = DeliveryPipeline(db, connectors, catalog.package,
                                settings=PipelineSettings(**settings.get("pipeline", {})))
    outbox = Outbox(db, OutboxSettings(**settings.get("outbox", {})))
    return Services(catalog, Royalties(db), pipeline, PreSaves(db, outbox))


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": "1.0",
            "description": "Releases, compliance gate, DDEX delivery, royalties, pre-saves"}


@hookimpl
def migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def permissions() -> list[tuple[str, str]]:
    from business.distribution.routes import PERMISSIONS

    return PERMISSIONS


@hookimpl
def routes(context: Any) -> list[tuple]:
    from business.distribution.routes import ROUTES

    return ROUTES


@hookimpl
async def startup(context: Any) -> None:
    context.state[_KEY] = build_services(context)


#: Longest wait of the release-day check after it failed several times in a row.
RELEASE_DAY_BACKOFF_CAP_S = 600.0


async def _deliveries(context: Any) -> None:
    await services(context).pipeline.run()


async def _release_days(context: Any) -> None:
    """Fire due release-day events every ``presave_check_s``; survive errors with backoff."""
    period = float(context.settings_for(PLUGIN_NAME).get("presave_check_s", 60))
    cap = max(period, RELEASE_DAY_BACKOFF_CAP_S)
    rng = random.Random()
    errors = 0
    while True:
        try:
            await services(context).presaves.fire_due(context.announce)
        except Exception:
            errors += 1
            delay = backoff_delay(errors, period, cap, rng)
            logger.exception("release-day check failed (%d in a row); trying again in %.2f s",
                             errors, delay)
        else:
            errors, delay = 0, period
        await asyncio.sleep(delay)


@hookimpl
def background_jobs(context: Any) -> list[tuple[str, Any]]:
    return [("distribution.deliveries", _deliveries),
            ("distribution.release_days", _release_days)]


@hookimpl
async def project_rendered(context: Any, account_id: str, project_id: str, path: str,
                           metadata: dict[str, Any]) -> None:
    await services(context).catalog.record_render(account_id, project_id, path, metadata)
