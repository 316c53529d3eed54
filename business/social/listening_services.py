"""The listening side of the social module, built at startup beside the dispatch services.

Settings (``config.plugins["social"]["listening"]``): ``poll_s`` (300), how often each
query is polled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from business.social.listening import LISTEN, Listening, queue_settings
from business.social.replies import REPLY, Replies
from business.social.replies import queue_settings as reply_queue_settings
from business.social.services import PLUGIN_NAME, _every, _publish, services
from dawserver.plugin_api import JobContext, PluginContext

_KEY = "social.listening"
_REPLIES = "social.replies"


def _people(context: PluginContext) -> Callable[[str], Awaitable[list[str]]]:
    """The account's people's addresses, asked of the server when needed (none without
    accounts: then no spike mail can be asked for)."""
    async def people(account_id: str) -> list[str]:
        found = context.people_emails
        return [] if found is None else await found(account_id)
    return people


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
                                    context.send_mail, people=_people(context),
                                    role_in=context.role_in,
                                    poll_s=float(raw.get("poll_s", 300)))
    context.background.queue.configure(REPLY, reply_queue_settings())
    context.state[_REPLIES] = Replies(module.store.db, module.channels,
                                      context.background.queue)
    return context.state[_KEY]


def listening(context: PluginContext) -> Listening:
    """The started listening object."""
    found = context.state.get(_KEY)
    if found is None:
        raise RuntimeError("the social plug-in has not started yet")
    return found


def replies(context: PluginContext) -> Replies:
    """The started inbox answers."""
    found = context.state.get(_REPLIES)
    if found is None:
        raise RuntimeError("the social plug-in has not started yet")
    return found


async def send_reply(context: PluginContext, payload: Any, job: JobContext) -> Any:
    """The ``social.reply`` job: send one answer (never twice)."""
    max_attempts = reply_queue_settings().max_attempts
    return await replies(context).handle(job.job.account_id, job.payload["reply_id"],
                                         last_attempt=job.attempt >= max_attempts)


async def listen(context: PluginContext, payload: Any, job: JobContext) -> Any:
    """The ``social.listen`` job: poll one query."""
    result = await listening(context).poll(job.job.account_id, job.payload["query_id"])
    return {"new": result.new, "pages": result.pages, "spike": result.spike}


async def run_listening_scheduler(context: PluginContext) -> None:
    """Queue a poll of every query, every ``poll_s``."""
    module = listening(context)
    await _every(module.poll_s, "listening round", module.round)
