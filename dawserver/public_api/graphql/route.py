"""``POST /api/graphql``: the GraphQL endpoint, with persisted queries.

The body is the usual ``{"query", "variables", "operationName", "extensions"}``. The
answer is ``{"data", "errors"}`` with status 200 (GraphQL over HTTP); a request the
transport refuses (no credentials, a key without ``project.read``, a body that is not
JSON) answers problem details like ``/api/v1``. So does a key over its rate limit (429),
which counts each top-level field of a mutation as one request: a mutation of ``n``
fields takes ``n`` from its budget before any of them runs, and none runs if that is
more than is left.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ...declarations import PUBLIC, Media, Model
from ...errors import TooManyRequests
from ...identity import KEY_USE, charge_key
from ...permissions import PROJECT_READ
from ...plugin_api import Request, Route
from .executable import SCHEMA, Charge, context_of
from .persisted import PersistedQueries, PersistedQueryError

GRAPHQL_PATH = "/api/graphql"
SDL_PATH = f"{GRAPHQL_PATH}/schema.graphql"
STATE = "public_api.persisted_queries"
MAX_QUERY = 20_000
NO_QUERY = "send a GraphQL query in 'query' (or a persisted query's hash in 'extensions')"


class GraphQLRequest(Model):
    """A GraphQL request."""

    query: str | None = Field(None, max_length=MAX_QUERY)
    variables: dict[str, Any] | None = None
    operationName: str | None = Field(None, max_length=200)  # noqa: N815 - GraphQL's name
    extensions: dict[str, Any] | None = None


class GraphQLResponse(Model):
    """A GraphQL answer: ``data`` and, if any, ``errors``."""

    data: dict[str, Any] | None = None
    errors: list[dict[str, Any]] | None = None


def _error(message: str, code: str) -> GraphQLResponse:
    return GraphQLResponse(errors=[{"message": message, "extensions": {"code": code}}])


def _charge(request: Request) -> Charge | None:
    """What charges the request's API key for further mutations, as its first request
    was (:func:`dawserver.identity.identify`); None for a request without a key."""
    native = request.native
    use = native.get(KEY_USE)
    if use is None:
        return None

    async def charge(extra: int) -> None:
        # a retry needs room for its own request too, counted when it arrives
        await charge_key(native, use, extra, retry_cost=extra + 1)

    return charge


async def graphql(request: Request) -> GraphQLResponse:
    """Run a GraphQL query over your projects, tracks, clips and assets, or a mutation.

    Depth and cost are limited; persisted queries follow the APQ protocol
    (`extensions.persistedQuery.sha256Hash`). See docs/public-api.md#graphql.
    """
    body: GraphQLRequest = request.body
    persisted = request.context.state.setdefault(STATE, PersistedQueries())
    try:
        query = persisted.resolve(body.query, body.extensions)
    except PersistedQueryError as exc:
        return _error(str(exc), exc.code)
    if not query:
        return _error(NO_QUERY, "BAD_REQUEST")
    result = await SCHEMA.execute(
        query, variable_values=body.variables, operation_name=body.operationName,
        context_value=context_of(request.app, request.principal, request.context,
                                 request.native.remote or "", _charge(request)))
    for error in result.errors or ():
        if isinstance(error.original_error, TooManyRequests):  # a 429 as for the request
            raise error.original_error
    answer = GraphQLResponse(data=result.data)
    if result.errors:
        answer.errors = [error.formatted for error in result.errors]
    return answer


async def schema_sdl(request: Request) -> str:
    """The GraphQL schema (SDL) of `/api/graphql`: every type, query and mutation."""
    return SDL


#: The schema's SDL, printed once.
SDL = SCHEMA.as_str() + "\n"

ROUTES = [Route(method="POST", path=GRAPHQL_PATH, handler=graphql, permission=PROJECT_READ,
                body=GraphQLRequest, response=GraphQLResponse, problem=True,
                max_body=MAX_QUERY * 4),
          Route(method="GET", path=SDL_PATH, handler=schema_sdl, permission=PUBLIC,
                response=Media("text/plain"))]
