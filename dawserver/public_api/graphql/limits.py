"""Query depth and cost limits: a deep or wide query is refused before it runs.

Depth is strawberry's ``QueryDepthLimiter`` (:data:`MAX_DEPTH`: the deepest plain path,
``projects → edges → node → transcriptsConnection → edges → node → wordsConnection →
edges → node → text``, is 9 (top-level fields are 0); an asset's ``project`` leads back
up, so a query could otherwise nest without end). Cost is ours (:class:`CostLimit`): each
field costs 1, times the number of items of every list above it: a connection
(``projects``, ``transcriptsConnection``, ``wordsConnection``,
``transcriptionJobsConnection``) multiplies what is inside it by its ``first`` (200 when
it is a variable or below 1: the largest page; its default, :data:`CONNECTIONS`, when
left out; its ``edges`` are those items), v1's deprecated whole lists (``transcripts``, ``words``,
``transcriptionJobs``) by :data:`UNPAGED`, the other lists (``tracks``, ``clips``,
``assets``) by :data:`LIST_SIZE`.
Fragments are counted where they are spread.

A mutation operation runs at most :data:`MAX_MUTATIONS` top-level mutation fields
(:class:`MutationLimit`): each one is a write (``startTranscription`` queues a job), so
each one is charged to the key's rate limit as one REST write would be
(:func:`mutation_count`, charged by ``executable.MutationCharge``); the usage meter
counts the request once.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
    get_operation_ast,
)

MAX_DEPTH = 9
MAX_COST = 20_000
#: The assumed length of a list field without a ``first`` argument.
LIST_SIZE = 20
#: The largest page a connection gives (``first`` is capped there).
MAX_PAGE = 200
#: The page of each connection when ``first`` is left out (the resolvers' defaults).
CONNECTIONS = {"projects": 50, "transcriptsConnection": 50, "wordsConnection": 50,
               "transcriptionJobsConnection": 50}
#: The assumed length of v1's deprecated whole lists, which answer every item however
#: many there are: never less than the largest page, so that they cost at least what the
#: same items cost paged. A project's transcripts count :data:`MAX_PAGE`; a transcript's
#: words 1,000, about seven minutes of speech at 150 words a minute (a song's vocal take
#: or a short talk; a longer transcript is still answered whole); a project's
#: transcription jobs :data:`MAX_PAGE` (a project keeps every job it ever ran).
UNPAGED = {"transcripts": MAX_PAGE, "words": 1_000, "transcriptionJobs": MAX_PAGE}
#: The assumed length of each list field (one without a ``first`` argument).
LISTS = {"tracks": LIST_SIZE, "clips": LIST_SIZE, "assets": LIST_SIZE, **CONNECTIONS,
         **UNPAGED}
TOO_COSTLY = ("this query would cost {cost} (the limit is {limit}): each field costs 1 "
              "times the items of the lists above it; ask for fewer projects (first:) or "
              "fewer nested lists, or split the query")
#: The most top-level fields (aliases included) one mutation operation may run.
MAX_MUTATIONS = 10
TOO_MANY_MUTATIONS = ("this operation runs {count} mutations (the limit is {limit}); send "
                      "at most {limit} top-level mutation fields per request, or split it "
                      "into several requests")


def _multiplier(node: FieldNode) -> int:
    name = node.name.value
    for argument in node.arguments or ():
        if argument.name.value == "first":
            value = argument.value
            if not isinstance(value, IntValueNode):
                return MAX_PAGE
            # below 1 the resolver refuses it, but only after this check: counted as
            # the largest page, so a negative page never takes cost off its siblings
            first = int(value.value)
            return min(first, MAX_PAGE) if first >= 1 else MAX_PAGE
    return LISTS.get(name, 1)


class CostLimit(ValidationRule):
    """Refuse an operation whose cost is over :data:`MAX_COST`."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        cost = self._cost(node.selection_set, _fragments(self.context.document), set(), 0)
        if cost > MAX_COST:
            self.report_error(GraphQLError(TOO_COSTLY.format(cost=cost, limit=MAX_COST),
                                           node, extensions={"code": "QUERY_TOO_COSTLY",
                                                             "cost": cost,
                                                             "limit": MAX_COST}))

    def _cost(self, selections: SelectionSetNode | None, fragments: dict[str, Any],
              spreading: set[str], depth: int) -> int:
        if selections is None or depth > 50:
            return 0
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                inner = self._cost(selection.selection_set, fragments, spreading, depth + 1)
                total += 1 + _multiplier(selection) * inner
            elif isinstance(selection, InlineFragmentNode):
                total += self._cost(selection.selection_set, fragments, spreading, depth + 1)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in spreading:  # (a cycle is graphql's error)
                    total += self._cost(fragments[name].selection_set, fragments,
                                        spreading | {name}, depth + 1)
        return total


def _fragments(document: Any) -> dict[str, Any]:
    """The document's fragment definitions by name."""
    return {f.name.value: f for f in document.definitions
            if getattr(f, "kind", "") == "fragment_definition"}


def top_level_fields(selections: SelectionSetNode, fragments: dict[str, Any],
                     spreading: frozenset[str] = frozenset()) -> int:
    """How many fields an operation selects at its top level (through fragments and
    inline fragments; ``__typename`` and other introspection fields not counted)."""
    count = 0
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            count += not selection.name.value.startswith("__")
        elif isinstance(selection, InlineFragmentNode):
            count += top_level_fields(selection.selection_set, fragments, spreading)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in spreading:  # (a cycle is graphql's error)
                count += top_level_fields(fragments[name].selection_set, fragments,
                                          spreading | {name})
    return count


class MutationLimit(ValidationRule):
    """Refuse a mutation operation of more than :data:`MAX_MUTATIONS` top-level fields."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        if node.operation != OperationType.MUTATION:
            return
        count = top_level_fields(node.selection_set, _fragments(self.context.document))
        if count > MAX_MUTATIONS:
            self.report_error(GraphQLError(
                TOO_MANY_MUTATIONS.format(count=count, limit=MAX_MUTATIONS), node,
                extensions={"code": "TOO_MANY_MUTATIONS", "count": count,
                            "limit": MAX_MUTATIONS}))


def mutation_count(document: DocumentNode, operation_name: str | None) -> int:
    """How many top-level mutation fields the operation ``operation_name`` of
    ``document`` runs (0: it is no mutation, or there is no such operation)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.MUTATION:
        return 0
    return top_level_fields(operation.selection_set, _fragments(document))
