"""The results side of the social module: built at startup beside the dispatch services.

Settings: ``config.plugins["social"]["results"]`` (:class:`~.results.ResultsSettings`).
Without ``pacing_storage`` the metric reads' burst limits go through the server's
``redis_url`` when it has one. With ``short_links`` true, dispatch publishes each
post's link as a UTM short link (:mod:`.links`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from business.social.attribution import Attribution
from business.social.links import SALT_PURPOSE, Links
from business.social.models import Channel, Post, PostTarget
from business.social.report import Report
from business.social.results import COLLECT, Collector, ResultsSettings
from business.social.services import PLUGIN_NAME, _every, services
from dawserver.plugin_api import JobContext, PluginContext

logger = logging.getLogger(__name__)
_KEY = "social.results"


@dataclass
class Results:
    """Collector, short links, attribution and the report, sharing one database."""

    collector: Collector
    links: Links
    attribution: Attribution
    report: Report


def results_settings(context: PluginContext) -> ResultsSettings:
    """The ``results`` settings; burst limits through the server's Redis when it has one."""
    raw = dict(context.settings_for(PLUGIN_NAME).get("results") or {})
    redis_url = getattr(context.config, "redis_url", None) if context.config else None
    if "pacing_storage" not in raw and isinstance(redis_url, str) and redis_url:
        raw["pacing_storage"] = redis_url
    return ResultsSettings.from_config(raw)


def start_results(context: PluginContext) -> Results:
    """Build the results objects (after :func:`~.services.start_services`)."""
    module = services(context)
    settings = results_settings(context)
    db = module.store.db
    collector = Collector(db, module.channels, context.background.queue, settings)
    context.background.queue.configure(COLLECT, settings.queue_settings())
    links = Links(db, context.derive_key(SALT_PURPOSE), module.dispatcher.base_url,
                  window_s=settings.click_window_s,
                  misses_per_minute=settings.link_misses_per_minute)
    if settings.short_links:
        module.dispatcher.shorten = shortener(links)
    context.state[_KEY] = Results(collector, links, Attribution(db, links), Report(db))
    return context.state[_KEY]


def shortener(links: Links) -> Any:
    """Dispatch's ``shorten``: a post's link becomes the channel's short link."""
    async def shorten(post: Post, target: PostTarget, channel: Channel, link: str) -> str:
        return await links.shorten(post.account_id, post.post_id, target.channel_id,
                                   channel.network, link, post.campaign)
    return shorten


def results(context: PluginContext) -> Results:
    """The started results objects."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the social plug-in has not started yet")
    return found


async def collect_metrics(context: PluginContext, payload: Any, job: JobContext) -> Any:
    """The ``social.collect_metrics`` job: read one channel's due posts."""
    return await results(context).collector.handle(job)


async def run_results_scheduler(context: PluginContext) -> None:
    """Purge old results and queue metric reads, every ``results.check_s``."""
    collector = results(context).collector
    await _every(collector.settings.check_s, "results round", collector.round)


async def observe_event(context: PluginContext, name: str, payload: dict[str, Any]) -> None:
    """Attribute a pre-save or a sale to the post that brought it."""
    await results(context).attribution.observe(name, payload)
