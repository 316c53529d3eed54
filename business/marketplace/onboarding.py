"""The seller's onboarding page: their connected account's state, server-rendered.

``GET /api/marketplace/seller/onboarding`` reads the connected account from Stripe and
shows whether it can take charges and payouts, each capability's status, and the
requirements still due (``currently_due``, ``past_due``, the deadline, the reason the
account is disabled), with a fresh account link to finish them: Stripe's links are
single-use and expire within minutes, so none is stored. Stripe sends a browser whose
link had expired to ``.../seller/onboarding/refresh``, which answers 303 to a new one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jinja2

from business.marketplace.permissions import SELL
from business.marketplace.services import services
from business.marketplace.storefront_pages import PAGE_HEADERS
from business.marketplace.stripe_gateway import idempotency_key
from dawserver.plugin_api import Conflict, Media, Reply, Request, Route

HTML = "text/html"
PATH = "/api/marketplace/seller/onboarding"


def label(requirement: str) -> str:
    """``"individual.dob.day"`` -> ``"Individual: dob day"``; ``"external_account"`` ->
    ``"External account"``."""
    head, _, rest = requirement.partition(".")
    words = head.replace("_", " ").capitalize()
    return f"{words}: {rest.replace('.', ' ').replace('_', ' ')}" if rest else words


@dataclass(frozen=True)
class AccountState:
    """What the page shows of a connected account (from Stripe's account object)."""

    account: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    capabilities: list[tuple[str, str]] = field(default_factory=list)
    currently_due: list[str] = field(default_factory=list)
    past_due: list[str] = field(default_factory=list)
    eventually_due: list[str] = field(default_factory=list)
    deadline: int | None = None
    disabled_reason: str | None = None

    @property
    def ready(self) -> bool:
        return self.charges_enabled and self.payouts_enabled and not self.currently_due

    @classmethod
    def of(cls, account: dict[str, Any]) -> AccountState:
        req = account.get("requirements") or {}
        return cls(str(account["id"]), bool(account.get("charges_enabled")),
                   bool(account.get("payouts_enabled")),
                   bool(account.get("details_submitted")),
                   sorted((str(k), str(v)) for k, v in
                          (account.get("capabilities") or {}).items()),
                   list(req.get("currently_due") or []), list(req.get("past_due") or []),
                   list(req.get("eventually_due") or []), req.get("current_deadline"),
                   req.get("disabled_reason"))


_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Getting paid</title></head><body><main>
<h1>Getting paid</h1>
<p>Stripe account {{ s.account }}:
{% if s.ready %}<strong>ready</strong>: you can sell and be paid out.
{% else %}<strong>not ready yet</strong>.{% endif %}</p>
<ul>
<li>Card payments: {{ "on" if s.charges_enabled else "off" }}</li>
<li>Payouts: {{ "on" if s.payouts_enabled else "off" }}</li>
<li>Details submitted: {{ "yes" if s.details_submitted else "no" }}</li>
</ul>
<h2>Capabilities</h2>
{% if s.capabilities %}<table><thead><tr><th scope="col">Capability</th>\
<th scope="col">Status</th></tr></thead><tbody>
{% for name, status in s.capabilities %}<tr><th scope="row">{{ name }}</th>\
<td>{{ status }}</td></tr>
{% endfor %}</tbody></table>{% else %}<p>None requested.</p>{% endif %}
<h2>What Stripe still needs</h2>
{% if s.disabled_reason %}<p role="alert">Disabled: {{ s.disabled_reason }}</p>{% endif %}
{% if s.past_due %}<p role="alert">Past due:</p><ul>{% for r in s.past_due %}\
<li>{{ label(r) }}</li>{% endfor %}</ul>{% endif %}
{% if s.currently_due %}<p>Due{% if deadline %} by {{ deadline }}{% endif %}:</p><ul>\
{% for r in s.currently_due %}<li>{{ label(r) }}</li>{% endfor %}</ul>
{% else %}<p>Nothing is due now.</p>{% endif %}
{% if s.eventually_due %}<p>Later: {{ s.eventually_due | map("string") | join(", ") }}</p>\
{% endif %}
{% if link %}<p><a href="{{ link }}">{{ "Continue" if s.details_submitted else "Start" }} \
onboarding on Stripe</a> (the link works once, for a few minutes: reload this page for a \
new one)</p>{% endif %}
</main></body></html>
""")


def render(state: AccountState, link: str | None) -> str:
    """The page for ``state`` (``link``: where to finish onboarding, if anything is due)."""
    deadline = (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(state.deadline))
                if state.deadline else "")
    return _PAGE.render(s=state, link=link, label=label, deadline=deadline)


def _base(request: Request) -> str:
    base = str(getattr(request.context.config, "base_url", "") or "")
    return base.rstrip("/") or "http://localhost"


async def _link(request: Request, account: str) -> str:
    module = services(request.context)
    assert module.gateway is not None
    here = f"{_base(request)}{PATH}"
    made = await module.gateway.create_account_link(
        idempotency_key=idempotency_key("onboarding-page", account, time.time_ns()),
        account=account, refresh_url=f"{here}/refresh", return_url=here)
    return str(made.url)


async def _account(request: Request) -> str:
    module = services(request.context)
    if module.gateway is None:
        raise Conflict("payments are not configured on this server: set "
                       "plugins.marketplace.stripe.api_key")
    account = await module.store.stripe_account(request.account_id)
    if account is None:
        raise Conflict("connect a Stripe account first: POST /api/marketplace/seller/stripe")
    return account


async def onboarding_page(request: Request) -> Any:
    """The connected account's capabilities and requirements, and a fresh link."""
    account = await _account(request)
    gateway = services(request.context).gateway
    assert gateway is not None  # _account refused a server without one
    found = await gateway.retrieve_account(account)
    state = AccountState.of(found.to_dict())
    link = None if state.ready else await _link(request, account)
    return Reply(render(state, link), media_type=HTML, headers=dict(PAGE_HEADERS))


async def refresh_link(request: Request) -> Any:
    """Where Stripe sends a browser whose link expired: 303 to a new link."""
    account = await _account(request)
    return Reply("", status=303, media_type=HTML,
                 headers={"Location": await _link(request, account),
                          "Cache-Control": "no-store"})


ROUTES = [
    Route(method="GET", path=PATH, handler=onboarding_page, permission=SELL,
          response=Media(HTML)),
    Route(method="GET", path=f"{PATH}/refresh", handler=refresh_link, permission=SELL,
          response=Media(HTML), status=303),
]
