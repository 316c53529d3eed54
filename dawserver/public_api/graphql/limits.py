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
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
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
        fragments = {f.name.value: f for f in self.context.document.definitions
                     if getattr(f, "kind", "") == "fragment_definition"}
        cost = self._cost(node.selection_set, fragments, set(), 0)
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
