"""Routes of milestones, thresholds and alert preferences (``/api/analytics/...``).

Every query is scoped by ``request.account_id``: another account's ids answer 404.
"""

from __future__ import annotations

from typing import Any

from business.analytics.alerts import Preferences
from business.analytics.catalog import EntityNotFound
from business.analytics.milestone_book import MilestoneNotFound
from business.analytics.milestone_schemas import (
    MilestoneOut,
    MilestoneQuery,
    PreferencesIn,
    PreferencesOut,
    ThresholdIn,
    ThresholdOut,
)
from business.analytics.permissions import MILESTONES, READ
from business.analytics.services import services
from dawserver.plugin_api import NotFound, Reply, Request, Route, Unprocessable, map_errors

_api = map_errors(((MilestoneNotFound, EntityNotFound), NotFound), (ValueError, Unprocessable))


def _person(request: Request) -> str:
    return request.user or request.account_id


@_api
async def list_milestones(request: Request) -> Any:
    """The account's milestones, newest day first (the page's alerts)."""
    query: MilestoneQuery = request.query
    return await services(request.context).milestones.list(
        request.account_id, kind=query.kind or None, entity_id=query.entity or None,
        since=query.since, limit=query.limit)


@_api
async def get_milestone(request: Request) -> Any:
    """One milestone."""
    return await services(request.context).milestones.get(request.account_id,
                                                          request.params["milestone_id"])


@_api
async def list_thresholds(request: Request) -> Any:
    """The account's own thresholds (round numbers are always checked too)."""
    return await services(request.context).milestones.thresholds(request.account_id)


@_api
async def add_threshold(request: Request) -> Any:
    """Add a threshold; from the next stored batch on, series are checked against it."""
    body: ThresholdIn = request.body
    module = services(request.context)
    if body.entity_id:
        await module.catalog.get(request.account_id, body.entity_id)  # 404 if not ours
    found = await module.milestones.add_threshold(request.account_id, body.metric, body.value,
                                                  body.entity_id, _person(request))
    return Reply(found, status=201)


@_api
async def remove_threshold(request: Request) -> Any:
    """Remove a threshold (milestones already found stay)."""
    return await services(request.context).milestones.remove_threshold(
        request.account_id, request.params["threshold_id"])


@_api
async def get_preferences(request: Request) -> Any:
    """The signed-in person's alert preferences on this account."""
    prefs = await services(request.context).alerts.preferences(request.account_id,
                                                               _person(request))
    return prefs.public()


@_api
async def save_preferences(request: Request) -> Any:
    """Save the signed-in person's alert preferences on this account."""
    body: PreferencesIn = request.body
    prefs = await services(request.context).alerts.save_preferences(
        request.account_id, _person(request),
        Preferences(body.email, tuple(dict.fromkeys(body.kinds)), body.cooldown_s))
    return prefs.public()


A = "/api/analytics"
MILESTONE_ROUTES = [
    Route(method="GET", path=f"{A}/milestones", handler=list_milestones, permission=READ,
          query=MilestoneQuery, response=list[MilestoneOut]),
    Route(method="GET", path=f"{A}/milestones/{{milestone_id}}", handler=get_milestone,
          permission=READ, response=MilestoneOut),
    Route(method="GET", path=f"{A}/thresholds", handler=list_thresholds, permission=READ,
          response=list[ThresholdOut]),
    Route(method="POST", path=f"{A}/thresholds", handler=add_threshold, permission=MILESTONES,
          body=ThresholdIn, response=ThresholdOut, status=201),
    Route(method="DELETE", path=f"{A}/thresholds/{{threshold_id}}", handler=remove_threshold,
          permission=MILESTONES, response=ThresholdOut),
    Route(method="GET", path=f"{A}/alerts/preferences", handler=get_preferences,
          permission=READ, response=PreferencesOut),
    Route(method="PUT", path=f"{A}/alerts/preferences", handler=save_preferences,
          permission=READ, body=PreferencesIn, response=PreferencesOut),
]
