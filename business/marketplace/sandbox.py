"""Sellers' storefront templates, rendered in Jinja2's immutable sandbox with budgets.

A template sees only the plain data it is given (dicts, lists, strings, numbers): no
globals (``range``, ``cycler``, ``lipsum``, ``namespace``, ``dict`` are removed), only the
filters in :data:`ALLOWED_FILTERS` (none that builds a huge string from a small input:
``center``, ``indent``, ``wordwrap``, ``format``, ``replace`` are out; nor ``safe``: all
output is escaped), ``*`` and ``**`` checked by size, no ``set``, ``with``, macros or
``call`` blocks, loops only over the store's data, nested at most
:data:`MAX_LOOP_DEPTH` deep and never ``recursive``, and at render time a budget of
attribute reads and calls, a deadline and a cap on the page's size. Anything else a
template tries (``''.__class__.__mro__``, ``cycler.__init__.__globals__`` ...) ends in
:class:`TemplateRefused`, whose message says what to change.
"""

from __future__ import annotations

import time
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: The most characters a seller's template may have.
MAX_TEMPLATE_CHARS = 64 * 1024
#: The most characters a rendered page may have.
MAX_OUTPUT_CHARS = 2 * 1024 * 1024
#: The most nested ``{% for %}`` loops (each over the store's data only: see
#: :func:`_check_statements`; two levels of 24 beats × a beat's 20 tags, or its title's
#: 200 characters, stay small even with an empty body, which spends no budget).
MAX_LOOP_DEPTH = 2
#: Attribute reads, item reads and calls one render may make.
MAX_OPERATIONS = 200_000
#: CPU seconds one render may take.
RENDER_SECONDS = 0.5
#: The longest string or list ``*`` may make.
MAX_PRODUCT = 10_000

ALLOWED_FILTERS = frozenset({
    "abs", "batch", "capitalize", "count", "d", "default", "dictsort", "e", "escape",
    "first", "float", "groupby", "int", "join", "last", "length", "list", "lower", "map",
    "max", "min", "reject", "rejectattr", "reverse", "round", "select", "selectattr",
    "slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate",
    "unique", "upper", "urlencode", "wordcount",
})


class TemplateRefused(Exception):
    """A storefront template that may not be saved or failed to render (the message says
    why, with the line where there is one)."""


class _Budget:
    def __init__(self) -> None:
        self.operations = 0
        # CPU time of this thread: waiting for the GIL or a loaded machine does not count
        self.deadline = time.thread_time() + RENDER_SECONDS

    def spend(self) -> None:
        self.operations += 1
        if self.operations > MAX_OPERATIONS:
            raise TemplateRefused(f"the template does more than {MAX_OPERATIONS} reads and "
                                  "calls in one page: simplify its loops")
        if self.operations % 256 == 0 and time.thread_time() > self.deadline:
            raise TemplateRefused(f"the template took more than {RENDER_SECONDS} s of CPU to "
                                  "render: simplify its loops")


class StoreEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox (immutable: no ``list.pop`` on our data): no globals, few filters,
    checked ``*`` and ``**``, counted reads."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, *, autoescape: bool = True) -> None:
        super().__init__(autoescape=autoescape, undefined=jinja2.StrictUndefined,
                         auto_reload=False, cache_size=64)
        self.globals.clear()
        self.filters = {name: f for name, f in self.filters.items() if name in ALLOWED_FILTERS}
        self.tests = dict(self.tests)
        self.budget: _Budget | None = None

    def _spend(self) -> None:
        if self.budget is not None:
            self.budget.spend()

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if not isinstance(right, int | float) or abs(right) > 64 or (
                    isinstance(left, int | float) and abs(left) > 10**6):
                raise TemplateRefused("'**' is limited to small numbers in a template")
            return left ** right
        if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            seq, times = (left, right) if isinstance(left, str | list | tuple) else (right, left)
            if not isinstance(times, int) or len(seq) * max(times, 0) > MAX_PRODUCT:
                raise TemplateRefused(f"'*' may make at most {MAX_PRODUCT} items or "
                                      "characters in a template")
        return left * right

    def getattr(self, obj: Any, attribute: str) -> Any:
        self._spend()
        if isinstance(obj, jinja2.Undefined):
            obj._fail_with_undefined_error()  # "'cycler' is undefined", not a sandbox detail
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self._spend()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self._spend()
        return super().call(__context, __obj, *args, **kwargs)


#: Statements a storefront template may not use: each can build a value the template then
#: loops over or doubles without reading the store's data (which is what the budget
#: counts), or call itself.
FORBIDDEN_STATEMENTS: dict[type[nodes.Node], str] = {
    nodes.Assign: "{% set %}", nodes.AssignBlock: "{% set %}", nodes.With: "{% with %}",
    nodes.Macro: "macros", nodes.CallBlock: "{% call %}", nodes.FilterBlock: "{% filter %}",
}
#: Filters a loop's sequence may pass through (each keeps it a sequence of the data's
#: items, never longer than the data).
ITER_FILTERS = frozenset({"sort", "reverse", "batch", "slice", "select", "reject",
                          "selectattr", "rejectattr", "map", "unique", "dictsort", "groupby"})


def _check_statements(tree: nodes.Template) -> None:
    """Refuse the statements of :data:`FORBIDDEN_STATEMENTS`, and loops over anything but
    the store's data (a name, its attributes or items, through :data:`ITER_FILTERS`)."""
    for node in tree.find_all(tuple(FORBIDDEN_STATEMENTS)):
        raise TemplateRefused(f"line {node.lineno}: {FORBIDDEN_STATEMENTS[type(node)]} "
                              "is not allowed in a storefront template")
    for loop in tree.find_all(nodes.For):
        source = loop.iter
        while isinstance(source, nodes.Filter) and source.name in ITER_FILTERS:
            source = source.node
        while isinstance(source, nodes.Getattr | nodes.Getitem):
            source = source.node
        if not isinstance(source, nodes.Name) or source.name == "loop":
            raise TemplateRefused(f"line {loop.lineno}: a loop may only go over the store's "
                                  "data (beats, a beat's tiers or tags ...), not over a value "
                                  "the template builds")


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    deepest = depth
    for child in node.iter_child_nodes():
        inner = depth + 1 if isinstance(child, nodes.For) else depth
        if isinstance(child, nodes.For) and child.recursive:
            raise TemplateRefused(f"line {child.lineno}: recursive loops are not allowed "
                                  "in a storefront template")
        deepest = max(deepest, _loop_depth(child, inner))
    return deepest


class Sandbox:
    """Compiles (and caches) and renders storefront templates in :class:`StoreEnvironment`
    (``autoescape=False``: plain text, such as a licence contract's, with the same limits)."""

    def __init__(self, *, autoescape: bool = True) -> None:
        self.env = StoreEnvironment(autoescape=autoescape)
        self._compiled: dict[str, jinja2.Template] = {}

    def check(self, source: str) -> jinja2.Template:
        """The compiled template, or :class:`TemplateRefused` saying what to fix."""
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateRefused(f"the template has {len(source)} characters; at most "
                                  f"{MAX_TEMPLATE_CHARS} are allowed")
        try:
            tree = self.env.parse(source)
            for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import,
                                       nodes.FromImport)):
                raise TemplateRefused(f"line {node.lineno}: a storefront template is one "
                                      "file: extends, include and import are not allowed")
            _check_statements(tree)
            if _loop_depth(tree) > MAX_LOOP_DEPTH:
                raise TemplateRefused(f"loops are nested more than {MAX_LOOP_DEPTH} deep: "
                                      "flatten them")
            return self.env.from_string(tree)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateRefused(f"line {exc.lineno}: {exc.message}") from None
        except RecursionError:
            raise TemplateRefused("the template's expressions are nested too deep: split "
                                  "them up") from None

    def template(self, source: str) -> jinja2.Template:
        found = self._compiled.get(source)
        if found is None:
            found = self.check(source)
            if len(self._compiled) > 256:
                self._compiled.clear()
            self._compiled[source] = found
        return found

    def render(self, source: str, data: dict[str, Any]) -> str:
        """``source`` rendered with ``data``; :class:`TemplateRefused` on any failure."""
        template = self.template(source)
        self.env.budget = _Budget()
        size, parts = 0, []
        try:
            for part in template.generate(data):
                size += len(part)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateRefused(f"the page is over {MAX_OUTPUT_CHARS} characters")
                parts.append(part)
        except TemplateRefused:
            raise
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateRefused(f"the template reached outside its data: {exc}") from None
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError,
                AttributeError, RecursionError, MemoryError, OverflowError) as exc:
            raise TemplateRefused(f"the template failed: {type(exc).__name__}: "
                                  f"{exc}") from None
        finally:
            self.env.budget = None
        return "".join(parts)
