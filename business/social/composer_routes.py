"""HTTP routes of the composer's live check and of best-time suggestions.

Both are scoped by the request's account: another account's channel answers 404.
"""

from __future__ import annotations

from typing import Any

from business.social.besttimes import BestTimes
from business.social.composer import check
from business.social.composer_schemas import BestTimes as BestTimesOut
from business.social.composer_schemas import BestTimesQuery, CheckIn, CheckOut
from business.social.permissions import COMPOSE, READ
from business.social.routes import BASE, CHANNEL, MAX_POST_BYTES, _api, composed
from business.social.services import services
from dawserver.plugin_api import Request, Route


@_api
async def check_post(request: Request) -> Any:
    """Check a post as composed, per channel: preview, length and problems (stores
    nothing)."""
    return await check(services(request.context).store, request.account_id,
                       await composed(request))


@_api
async def best_times(request: Request) -> Any:
    """The channel's best times to post, from its post history or general defaults."""
    module = services(request.context)
    query: BestTimesQuery = request.query
    return await BestTimes(module.store, clock=module.channels.clock).suggest(
        request.account_id, request.params["channel_id"], query.count)


COMPOSER_ROUTES = [
    Route(method="POST", path=f"{BASE}/compose/check", handler=check_post, permission=COMPOSE,
          body=CheckIn, response=CheckOut, max_body=MAX_POST_BYTES),
    Route(method="GET", path=f"{CHANNEL}/best-times", handler=best_times, permission=READ,
          query=BestTimesQuery, response=BestTimesOut),
]
