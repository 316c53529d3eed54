"""The webhooks' place in the server: permission, delivery job, bus subscription, state.

The core declares these through its plug-in hooks (:mod:`dawserver.core_plugin`): the
``webhooks.deliver`` job, the ``webhooks.manage`` permission, and at startup a
subscription of the event bus (``core:webhooks``) to every event, which
:meth:`WebhookDeliverer.fan_out` turns into deliveries.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...declarations import Job, Permission
from ...plugin_api import Role
from ..state import api_state
from .delivery import QUEUE, QUEUE_SETTINGS, WebhookDeliverer
from .sealing import KEY_PURPOSE
from .settings import WebhookSettings

STATE = "public_api.webhooks"
#: The event bus subscriber that fans events out to webhooks.
SUBSCRIBER = "core:webhooks"

WEBHOOKS_MANAGE = Permission(
    "webhooks.manage", "create, change and delete an account's developer webhooks and "
    "read their delivery log", Role.OWNER)


class DeliveryJob(BaseModel):
    """A ``webhooks.deliver`` job: which delivery of which subscription."""

    subscription_id: str
    delivery_id: str


def deliverer(context: Any) -> WebhookDeliverer:
    """The server's deliverer (made on first use, once the job queue is open)."""
    found = context.state.get(STATE)
    if found is None:
        config = context.config
        base = getattr(config, "base_url", "") if config is not None else ""
        found = context.state[STATE] = WebhookDeliverer(
            context.database(), context.background.queue, WebhookSettings.from_config(config),
            sealing_key=context.derive_key(KEY_PURPOSE), owners=context.owner_emails,
            links_base=base, sandbox=api_state(context).sandbox)
    return found


async def _deliver(context: Any, payload: DeliveryJob, job: Any) -> Any:
    return await deliverer(context).handle(job)


JOB = Job(QUEUE, DeliveryJob, _deliver, "one attempt at one webhook delivery",
          QUEUE_SETTINGS)


def subscribe(context: Any) -> None:
    """Hear every event of the bus and fan it out to the webhooks (the core's startup)."""
    context.background.bus.subscribe(SUBSCRIBER, deliverer(context).fan_out)


def catalogue(context: Any) -> dict[str, str]:
    """The event types a webhook may subscribe to, and what each announces."""
    return {name: declared.item.description for name, declared in sorted(
        context.events.items())}
