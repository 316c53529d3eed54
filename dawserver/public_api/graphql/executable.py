"""The executable GraphQL schema: ``Query`` and ``Mutation`` with the limits and error
masking, and the ``info.context`` of one request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from ...declarations import Principal
from ...errors import ApiError
from .limits import MAX_DEPTH, CostLimit, MutationLimit, mutation_count
from .loaders import Loaders
from .mutations import Mutation
from .schema import Query

log = logging.getLogger(__name__)

def _mask(error: GraphQLError) -> bool:
    """Mask unexpected server errors; ours and graphql's own are meant for the client."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | ApiError)


class _Schema(strawberry.Schema):
    """The schema; a client's mistakes go to the debug log, the server's own as errors."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None
                       ) -> None:
        for error in errors:
            if _mask(error):
                log.error("GraphQL resolver failed", exc_info=error.original_error)
            else:
                log.debug("GraphQL error for the client: %s", error.message)


#: Charges a request's key ``n`` more requests on its rate limit, all or none (429 when
#: they would go over it).
Charge = Callable[[int], Awaitable[None]]


class MutationCharge(SchemaExtension):
    """Charge every top-level field of a mutation operation to the key's rate limit,
    before any of them runs: the request itself was counted once, each further field
    counts one more, so ``n`` writes cost what ``n`` REST writes cost whichever
    mutations they are.  The further fields are charged in one hit: a refusal runs none
    of them and charges none of them."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        charge: Charge | None = execution.context.get("charge")
        document = execution.graphql_document
        if charge is not None and document is not None:
            count = mutation_count(document, execution.operation_name)
            if count > 1:
                await charge(count - 1)
        yield


#: Parsed and validated documents kept by query text (the limits depend on the text only).
CACHED_DOCUMENTS = 1000

#: The limits' rules, made once: the validation cache is keyed by the rule classes, and
#: ``QueryDepthLimiter`` makes a new class each time it is built.
LIMIT_RULES = [*QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules, CostLimit,
               MutationLimit]

SCHEMA = _Schema(query=Query, mutation=Mutation, extensions=[
    lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
    lambda: AddValidationRules(LIMIT_RULES),
    lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
    MutationCharge,
    lambda: MaskErrors(should_mask_error=_mask)])


def context_of(app: Any, principal: Principal, plugin_context: Any, remote: str = "",
               charge: Charge | None = None) -> dict[str, Any]:
    """The ``info.context`` of one request (``remote``: the client's address; ``charge``:
    what charges its API key for a mutation's further fields, None: no key)."""
    return {"app": app, "principal": principal, "context": plugin_context,
            "loaders": Loaders(app, principal), "remote": remote, "charge": charge}
