"""The webhook resources of ``/api/v1``: subscriptions, deliveries, attempts, the catalogue."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from ...declarations import Model, Query

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class NewWebhook(Model):
    """A new subscription: where to post and which events."""

    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="An https:// URL on a public address.")
    events: list[EventName] = Field(min_length=1, max_length=100,
                                    description="Event types (see /api/v1/webhook-events).")
    description: Description = ""


class WebhookChange(Model):
    """What to change; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: list[EventName] | None = Field(None, min_length=1, max_length=100)
    description: Description | None = None
    enabled: bool | None = Field(None, description="true re-enables (a fresh start), "
                                                   "false pauses deliveries.")


class Webhook(Model):
    """A subscription; its secret is shown only once, when it is created."""

    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    test: bool = Field(description="true: a test-mode webhook (made with a test-mode key; "
                                   "it hears sandbox events only), false: a live one.")
    disabled_reason: str = Field(description="Why it was disabled (empty when enabled).")
    consecutive_failures: int
    failing_since: str | None = Field(description="RFC 3339: first failure of the current "
                                                  "run of failures (null: none).")
    created_at: str = Field(description="RFC 3339, UTC")
    updated_at: str = Field(description="RFC 3339, UTC")


class NewWebhookSecret(Webhook):
    """A subscription just created, with its signing secret (shown this once)."""

    secret: str = Field(description="whsec_...: verify each delivery's Webhook-Signature "
                                    "with it; it is never shown again.")


class WebhookPage(Model):
    """A page of subscriptions, oldest first."""

    data: list[Webhook]
    next_cursor: str | None


class WebhookAttempt(Model):
    """One attempt at a delivery."""

    attempt: int
    at: str = Field(description="RFC 3339, UTC")
    status: int | None = Field(description="The endpoint's status (null: no answer).")
    latency_ms: float
    response: str = Field(description="The first KiB of the endpoint's answer.")
    error: str = Field(description="What went wrong (empty: delivered).")


class WebhookDelivery(Model):
    """One event for one subscription; ``id`` is its ``Webhook-Id``."""

    id: str
    event_id: str
    type: str
    state: str = Field(description="pending, delivered or failed")
    attempts: int
    created_at: str = Field(description="RFC 3339, UTC")
    next_attempt_at: str | None
    last_status: int | None


class WebhookDeliveryDetail(WebhookDelivery):
    """A delivery with the body it sends and its attempts."""

    body: str
    attempt_log: list[WebhookAttempt]


class WebhookDeliveryPage(Model):
    """A page of deliveries, newest first."""

    data: list[WebhookDelivery]
    next_cursor: str | None


class EventType(Model):
    """An event a webhook may subscribe to."""

    name: str
    description: str


class EventCatalogue(Model):
    """Every event type a webhook may subscribe to."""

    data: list[EventType]


class Page(Query):
    """A page: how many, after which cursor."""

    limit: int = Field(50, ge=1, le=200, description="Items per page, 1 to 200.")
    cursor: str | None = Field(None, max_length=500, pattern=r"^[A-Za-z0-9_.-]+$",
                               description="The `next_cursor` of the previous page.")


class WebhookFilter(Page):
    """Webhooks, filtered by mode."""

    test: bool | None = Field(None, description="true: test-mode webhooks only, false: "
                                                "live ones only (a key sees its own mode's).")


class DeliveryFilter(Page):
    """Deliveries, filtered by state."""

    state: str | None = Field(None, pattern="^(pending|delivered|failed)$")
