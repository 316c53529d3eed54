"""The distribution module's running objects, shared by its routes, its job and its worker.

Built once the database, the job queue and the event bus are open (the plug-in's
``startup`` hook) from the plug-in's settings and the store connectors other
plug-ins contribute through the ``distribution_stores`` hook. Deliveries run as the
declared job ``distribution.deliver`` (:func:`deliver`) on the server's job worker;
the release-day check is a plug-in worker (:func:`run_release_days`) whose events
go through the server's event bus.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from business.distribution.catalog import DEFAULT_SENDER, Catalog
from business.distribution.ddex import Party
from business.distribution.delivery import DeliveryPipeline, PipelineSettings
from business.distribution.ledger import Royalties
from business.distribution.presave import PreSaves
from business.distribution.schemas import DeliveryRun
from dawserver.plugin_api import (
    JobContext,
    JobRecord,
    PluginContext,
    backoff_delay,
    in_sandbox,
    mark_sandbox,
)

PLUGIN_NAME = "distribution"
logger = logging.getLogger(__name__)

_KEY = "distribution"
#: Longest wait of the release-day check after it failed several times in a row.
RELEASE_DAY_BACKOFF_CAP_S = 600.0
#: Settings of earlier versions that nothing reads any more.
RETIRED_SETTINGS = ("outbox",)


@dataclass
class Services:
    """The distribution module's objects, shared by its routes, job and worker."""

    catalog: Catalog
    royalties: Royalties
    pipeline: DeliveryPipeline
    presaves: PreSaves

    async def start_presave(self, account_id: str, release_id: str, title: str | None,
                            artist: str | None, release_date: str | None,
                            services: list[str] | None) -> dict[str, Any]:
        """A pre-save campaign for the account's release (not found: 404), what is left
        out (None or empty) taken from the release: its title, primary artists and
        release date (:meth:`PreSaves.create`)."""
        release = await self.catalog.get_release(account_id, release_id)
        return await self.presaves.create(
            account_id, release.release_id, title or release.title,
            artist or " & ".join(release.primary_artists()),
            release_date or release.release_date, services)


def services(context: PluginContext) -> Services:
    """The started module of a plug-in context."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the distribution plug-in has not started yet")
    return found


def build_services(context: PluginContext) -> Services:
    """Create the module's objects from the context's database, job queue and settings."""
    settings = context.settings_for(PLUGIN_NAME)
    for name in RETIRED_SETTINGS:
        if name in settings:
            logger.warning("distribution setting %r is no longer used: release-day events "
                           "go through the server's event bus; remove it", name)
    db = context.database()

    async def sandboxed(account_id: str, release_id: str) -> bool:
        return await in_sandbox(context, PLUGIN_NAME, account_id, release_id)

    async def mark(tx: Any, account_id: str, object_id: str) -> None:
        await mark_sandbox(context, PLUGIN_NAME, account_id, object_id, tx=tx)

    connectors = [c for batch in context.manager.hook.distribution_stores(context=context)
                  for c in batch]
    sender = Party(settings.get("sender_dpid", DEFAULT_SENDER.dpid),
                   settings.get("sender_name", DEFAULT_SENDER.name))
    catalog = Catalog(db, {c.name: c.party for c in connectors}, sender,
                      media_root=context.data_dir)  # releases name only their files
    pipeline = DeliveryPipeline(db, context.background.queue, connectors, catalog.package,
                                settings=PipelineSettings.from_config(
                                    settings.get("pipeline", {})),
                                publish=context.publish, sandboxed=sandboxed, mark=mark)
    presaves = PreSaves(db, context.publish, sandboxed=sandboxed, mark=mark)
    return Services(catalog, Royalties(db), pipeline, presaves)


def start_services(context: PluginContext) -> Services:
    """Build the module's objects and keep them in the context."""
    context.state[_KEY] = build_services(context)
    return context.state[_KEY]


async def deliver(context: PluginContext, payload: DeliveryRun, job: JobContext) -> Any:
    """The ``distribution.deliver`` job: one attempt at one delivery record."""
    return await services(context).pipeline.handle(job)


async def delivery_died(context: PluginContext, payload: Any, run: JobRecord) -> None:
    """A ``distribution.deliver`` job died, however: its record ends ``dead``, announced."""
    await services(context).pipeline.on_dead(run)


async def run_release_days(context: PluginContext) -> None:
    """Fire due release-day events every ``presave_check_s``; survive errors with backoff."""
    period = float(context.settings_for(PLUGIN_NAME).get("presave_check_s", 60))
    cap = max(period, RELEASE_DAY_BACKOFF_CAP_S)
    errors = 0
    while True:
        try:
            await services(context).presaves.fire_due()
        except Exception:
            errors += 1
            delay = backoff_delay(errors, period, cap)
            logger.exception("release-day check failed (%d in a row); trying again in %.2f s",
                             errors, delay)
        else:
            errors, delay = 0, period
        await asyncio.sleep(delay)
