"""The listening side of the social module, built at startup beside the dispatch services.

Settings (``config.plugins["social"]["listening"]``): ``poll_s`` (300), how often each
query is polled.
"""

from __future__ import annotations

from typing import Any

from business.social.listening import LISTEN, Listening, queue_settings
from business.social.services import PLUGIN_NAME, _every, _publish, services
from dawserver.plugin_api import JobContext, PluginContext

_KEY = "social.listening"


def start_listening(context: PluginContext) -> Listening:
    """Build the listening object (after :func:`~.services.start_services`)."""
    raw = dict(context.settings_for(PLUGIN_NAME).get("listening") or {})
    unknown = set(raw) - {"poll_s"}
    if unknown:
        raise ValueError(f"unknown social.listening settings {sorted(unknown)}: "
                         "the one setting is poll_s")
    module = services(context)
    context.background.queue.configure(LISTEN, queue_settings())
    context.state[_KEY] = Listening(module.store.db, module.channels,
                                    context.background.queue, _publish(context),
                                    context.send_mail, poll_s=float(raw.get("poll_s", 300)))
    return context.state[_KEY]


def listening(context: PluginContext) -> Listening:
    """The started listening object."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the social plug-in has not started yet")
    return found


async def listen(context: PluginContext, payload: Any, job: JobContext) -> Any:
    """The ``social.listen`` job: poll one query."""
    result = await listening(context).poll(job.job.account_id, job.payload["query_id"])
    return {"new": result.new, "pages": result.pages, "spike": result.spike}


async def run_listening_scheduler(context: PluginContext) -> None:
    """Queue a poll of every query, every ``poll_s``."""
    module = listening(context)
    await _every(module.poll_s, "listening round", module.round)
