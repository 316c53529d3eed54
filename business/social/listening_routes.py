"""HTTP routes of listening and the inbox.

Reading needs ``social.read``; answering and assigning items ``social.compose``; queries
and rules ``social.channels``. Every id is scoped by the request's account: another
account's query, item or rule answers 404.
"""

from __future__ import annotations

from typing import Any

from business.social.listening_schemas import (
    AlertOut,
    Assign,
    InboxQuery,
    ItemOut,
    PollOut,
    QueryIn,
    QueryOut,
    ReplyIn,
    ReplyOut,
    ResponseReport,
    RuleIn,
    RuleOut,
)
from business.social.listening_services import listening, replies
from business.social.permissions import CHANNELS, COMPOSE, READ
from business.social.routes import BASE, _api, _person
from dawserver.plugin_api import Empty, Request, Retry, Route, TooManyRequests

LISTEN = f"{BASE}/listening"
QUERY = f"{LISTEN}/queries/{{query_id}}"
INBOX = f"{BASE}/inbox"
ITEM = f"{INBOX}/items/{{item_id}}"


@_api
async def list_queries(request: Request) -> Any:
    return await listening(request.context).queries(request.account_id)


@_api
async def add_query(request: Request) -> Any:
    """A new stream on one of the account's channels (X or Bluesky)."""
    body: QueryIn = request.body
    return await listening(request.context).add_query(
        request.account_id, body.channel_id, body.kind, body.term,
        sensitivity=body.sensitivity, min_count=body.min_count, cooldown_s=body.cooldown_s,
        notify_email=body.notify_email)


@_api
async def delete_query(request: Request) -> Any:
    await listening(request.context).delete_query(request.account_id,
                                                  request.params["query_id"])
    return {}


@_api
async def poll_query(request: Request) -> Any:
    """Poll a stream now (as its job would); the network's 429 answers 429."""
    try:
        result = await listening(request.context).poll(request.account_id,
                                                       request.params["query_id"])
    except Retry as exc:
        raise TooManyRequests(f"the network asks us to wait: {exc}", headers={
            "Retry-After": str(max(1, round(exc.after)))}) from None
    return {"new": result.new, "pages": result.pages, "spike": result.spike}


@_api
async def list_alerts(request: Request) -> Any:
    return await listening(request.context).alerts(request.account_id)


@_api
async def list_items(request: Request) -> Any:
    query: InboxQuery = request.query
    return await listening(request.context).items(request.account_id,
                                                  assignee=query.assignee,
                                                  open_only=query.open)


@_api
async def assign_item(request: Request) -> Any:
    body: Assign = request.body
    return await listening(request.context).assign(request.account_id,
                                                   request.params["item_id"], body.assignee)


@_api
async def respond_item(request: Request) -> Any:
    """Mark an item answered by the caller (the first answer starts nothing new)."""
    return await listening(request.context).respond(request.account_id,
                                                    request.params["item_id"],
                                                    _person(request))


@_api
async def reply_item(request: Request) -> Any:
    """Answer an item on its network (a reply, or a direct message): queued, sent once.
    Send ``Idempotency-Key`` to make retries safe: the same key and answer queue once."""
    body: ReplyIn = request.body
    return await replies(request.context).send(request.account_id, request.params["item_id"],
                                               _person(request), body.kind, body.text,
                                               key=request.headers.get("Idempotency-Key"))


@_api
async def list_replies(request: Request) -> Any:
    await listening(request.context).item(request.account_id, request.params["item_id"])
    return await replies(request.context).replies(request.account_id,
                                                  request.params["item_id"])


@_api
async def response_report(request: Request) -> Any:
    return await listening(request.context).response_report(request.account_id)


@_api
async def list_rules(request: Request) -> Any:
    return await listening(request.context).rules(request.account_id)


@_api
async def add_rule(request: Request) -> Any:
    """A new assignment rule; a pattern that is no valid regular expression is refused."""
    body: RuleIn = request.body
    return await listening(request.context).add_rule(
        request.account_id, body.kind, body.team, pattern=body.pattern,
        language=body.language, ordinal=body.ordinal)


@_api
async def delete_rule(request: Request) -> Any:
    await listening(request.context).delete_rule(request.account_id,
                                                 request.params["rule_id"])
    return {}


LISTENING_ROUTES = [
    Route(method="GET", path=f"{LISTEN}/queries", handler=list_queries, permission=READ,
          response=list[QueryOut]),
    Route(method="POST", path=f"{LISTEN}/queries", handler=add_query, permission=CHANNELS,
          body=QueryIn, response=QueryOut, status=201),
    Route(method="DELETE", path=QUERY, handler=delete_query, permission=CHANNELS,
          response=Empty),
    Route(method="POST", path=f"{QUERY}/poll", handler=poll_query, permission=CHANNELS,
          body=Empty, response=PollOut),
    Route(method="GET", path=f"{LISTEN}/alerts", handler=list_alerts, permission=READ,
          response=list[AlertOut]),
    Route(method="GET", path=f"{INBOX}/items", handler=list_items, permission=READ,
          query=InboxQuery, response=list[ItemOut]),
    Route(method="POST", path=f"{ITEM}/assign", handler=assign_item, permission=COMPOSE,
          body=Assign, response=ItemOut),
    Route(method="POST", path=f"{ITEM}/respond", handler=respond_item, permission=COMPOSE,
          body=Empty, response=ItemOut),
    Route(method="POST", path=f"{ITEM}/replies", handler=reply_item, permission=COMPOSE,
          body=ReplyIn, response=ReplyOut, status=202),
    Route(method="GET", path=f"{ITEM}/replies", handler=list_replies, permission=READ,
          response=list[ReplyOut]),
    Route(method="GET", path=f"{INBOX}/report", handler=response_report, permission=READ,
          response=ResponseReport),
    Route(method="GET", path=f"{INBOX}/rules", handler=list_rules, permission=READ,
          response=list[RuleOut]),
    Route(method="POST", path=f"{INBOX}/rules", handler=add_rule, permission=CHANNELS,
          body=RuleIn, response=RuleOut, status=201),
    Route(method="DELETE", path=f"{INBOX}/rules/{{rule_id}}", handler=delete_rule,
          permission=CHANNELS, response=Empty),
]
