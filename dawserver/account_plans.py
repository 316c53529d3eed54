"""HTTP: a server administrator puts an account on a plan (``free`` or ``paid``).

``GET`` and ``PUT /admin/accounts/{account_id}/plan`` (permission ``server.accounts``,
server administrators). The plan sets what each of the account's API keys may send
(:data:`accounts.ratelimit.PLANS`); a change holds from the keys' next request and is
written to the account's security log (``plan.changed``). ``dawserver accounts plan``
does the same from the command line.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from accounts.ratelimit import PLANS

from .account_moves import SERVER_ACCOUNTS
from .keys import ACCOUNTS, RATE_LIMITER
from .plugin_api import Model, Request, Route

PATH = "/admin/accounts/{account_id}/plan"


class PlanIn(Model):
    """The plan to put the account on."""

    plan: str = Field(min_length=1, max_length=32)

    @field_validator("plan")
    @classmethod
    def _known(cls, plan: str) -> str:
        if plan not in PLANS:
            raise ValueError(f"unknown plan; use one of {sorted(PLANS)}")
        return plan


class AccountPlan(Model):
    """An account's plan and what its keys may send."""

    account_id: str
    plan: str
    requests_per_second: int


def _answer(request: Request, account_id: str, plan: str) -> AccountPlan:
    limit = request.app[RATE_LIMITER].plans[plan]
    return AccountPlan(account_id=account_id, plan=plan,
                       requests_per_second=int(limit.amount / limit.get_expiry()))


async def get_plan(request: Request) -> AccountPlan:
    """The account's plan."""
    account = await request.app[ACCOUNTS].store.require_account(request.params["account_id"])
    return _answer(request, account.account_id, account.plan)


async def set_plan(request: Request) -> AccountPlan:
    """Put the account on another plan (logged in its security log)."""
    account = await request.app[ACCOUNTS].set_plan(
        request.params["account_id"], request.body.plan, actor_id=request.principal.user)
    return _answer(request, account.account_id, account.plan)


ROUTES = [
    Route(method="GET", path=PATH, handler=get_plan, permission=SERVER_ACCOUNTS,
          response=AccountPlan),
    Route(method="PUT", path=PATH, handler=set_plan, permission=SERVER_ACCOUNTS,
          body=PlanIn, response=AccountPlan),
]
