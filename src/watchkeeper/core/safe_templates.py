"""The template sandbox: user-written Django templates (notification subjects and bodies of
the helpdesk and of monitoring's alert channels) made safe to check and render.

One sandbox engine (no loaders, no tag libraries, no autoescape; an unknown variable is
empty) parses a template (`parse`), then `problems()` walks its nodes: only the tags in
ALLOWED_NODES, only the filters in FILTERS, numeric filter arguments within their caps,
short literal arguments, no loop inside a loop. `check()` is both, as messages.
`render()` renders a checked source — a stored one the sandbox refuses now is replaced by
the caller's fallback — with a budget on the characters produced, counted as each piece is
produced (a loop cannot build a huge string before the cap is checked), and answers at
most `limit` characters. Which variables a template may read is the caller's business
(`variables()` lists them); the context is plain values and dicts, never model instances.
"""

from __future__ import annotations

import logging

from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import FilterExpression, Node, TextNode, Variable, VariableNode
from django.template.defaulttags import (
    AutoEscapeControlNode,
    CommentNode,
    FirstOfNode,
    ForNode,
    IfNode,
    SpacelessNode,
)

log = logging.getLogger(__name__)

# Filters a notification template may use; none of them can make a large output out of a
# small input (center/ljust/rjust/make_list/... are left out on purpose).
FILTERS = frozenset({
    "capfirst", "cut", "date", "default", "default_if_none", "first", "floatformat",
    "join", "last", "length", "linebreaksbr", "lower", "pluralize", "striptags", "time",
    "timesince", "title", "truncatechars", "truncatewords", "upper", "urlencode", "yesno",
})
# Filters with a numeric argument: the largest absolute value accepted.
NUMERIC_ARGS = {"truncatechars": 10_000, "truncatewords": 2_000, "floatformat": 20}
MAX_LITERAL_ARG = 100  # characters of a quoted filter argument (join separators, formats)
MAX_LOOP_DEPTH = 1
DEFAULT_LIMIT = 100_000  # characters a rendered template may produce
# The tags a template may use.
ALLOWED_NODES = (TextNode, VariableNode, IfNode, ForNode, CommentNode, AutoEscapeControlNode,
                 SpacelessNode, FirstOfNode)
_engine = Engine(debug=False, loaders=[], libraries={}, autoescape=False,
                 string_if_invalid="")


class RenderTooLarge(Exception):
    """The template produced more than its budget while rendering."""


def expressions(obj, depth: int = 0):
    """Every FilterExpression reachable from a node's attributes (if/for conditions too)."""
    if depth > 6 or obj is None:
        return
    if isinstance(obj, FilterExpression):
        yield obj
        return
    if isinstance(obj, Node) and depth > 0:
        return  # child nodes are visited by the node walk
    if isinstance(obj, list | tuple):
        for item in obj:
            yield from expressions(item, depth + 1)
        return
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        for key, value in vars(obj).items():
            if key in ("token", "origin", "nodelist"):
                continue
            yield from expressions(value, depth + 1)


def children(node) -> list:
    """The node lists directly inside `node` (if branches included)."""
    lists = [getattr(node, attr, None) for attr in getattr(node, "child_nodelists", ())]
    if isinstance(node, IfNode):
        lists += [child for _cond, child in node.conditions_nodelists]
    return [nodes for nodes in lists if nodes]


def walk(nodelist, loop_depth: int = 0):
    """(node, number of enclosing for loops) for every node, depth first."""
    for node in nodelist:
        yield node, loop_depth
        inner = loop_depth + 1 if isinstance(node, ForNode) else loop_depth
        seen = set()
        for child in children(node):
            if id(child) not in seen:
                seen.add(id(child))
                yield from walk(child, inner)


def _filter_problems(expr: FilterExpression) -> list[str]:
    errors = []
    for func, args in expr.filters:
        name = getattr(func, "_filter_name", None) or getattr(func, "__name__", "?")
        if name not in FILTERS:
            errors.append(f"filter {name!r} is not allowed")
            continue
        for is_lookup, arg in args:
            if is_lookup and isinstance(arg, Variable) and arg.lookups is None:
                is_lookup, arg = False, arg.literal  # an unquoted number
            if name in NUMERIC_ARGS:
                if is_lookup:
                    errors.append(f"filter {name!r} takes a number, not a variable")
                    continue
                text = str(arg).strip().rstrip("gu")  # floatformat's g/u suffixes
                try:
                    number = int(text)
                except ValueError:
                    errors.append(f"filter {name!r} takes a whole number")
                    continue
                if abs(number) > NUMERIC_ARGS[name]:
                    errors.append(f"filter {name!r}: at most {NUMERIC_ARGS[name]}")
            elif not is_lookup and len(str(arg)) > MAX_LITERAL_ARG:
                errors.append(f"filter {name!r}: argument longer than {MAX_LITERAL_ARG} "
                              f"characters")
    return errors


def parse(source: str) -> Template:
    """The template of `source` in the sandbox engine; raises TemplateSyntaxError."""
    return _engine.from_string(source)


def problems(template: Template) -> list[str]:
    """What makes `template` unsafe: tags outside ALLOWED_NODES, filters outside FILTERS,
    numeric arguments over their caps, long literal arguments, nested loops."""
    errors: list[str] = []
    for node, loop_depth in walk(template.nodelist):
        if not isinstance(node, ALLOWED_NODES):
            errors.append(f"tag {type(node).__name__.removesuffix('Node').lower()!r} "
                          f"is not allowed")
            continue
        if isinstance(node, ForNode) and loop_depth >= MAX_LOOP_DEPTH:
            errors.append("a loop inside a loop is not allowed")
        for expr in expressions(node):
            errors.extend(_filter_problems(expr))
    return sorted(set(errors))


def variables(template: Template):
    """(Variable, loop variables in scope) for every variable a template reads."""
    loopvars: set[str] = set()
    for node, _depth in walk(template.nodelist):
        if isinstance(node, ForNode):
            loopvars.update(node.loopvars)
        for expr in expressions(node):
            for var in [expr.var] + [arg for _f, args in expr.filters for _l, arg in args]:
                if isinstance(var, Variable):
                    yield var, loopvars


def _counted(render_annotated, budget: list[int]):
    def render(context):
        out = render_annotated(context)
        budget[0] -= len(out)
        if budget[0] < 0:
            raise RenderTooLarge
        return out

    return render


def check(source: str) -> list[str]:
    """Why `source` may not be used as a template (empty: it may)."""
    try:
        template = parse(source)
    except TemplateSyntaxError as exc:
        return [f"syntax error: {exc}"]
    return problems(template)


def render(source: str, context: dict, *, limit: int = DEFAULT_LIMIT,
           fallback: str = "") -> str:
    """Render `source` with `context`, at most `limit` characters. A source the sandbox
    refuses (a row saved before its tags and filters were checked) is not rendered:
    `fallback` is, and "" when that is refused too."""
    if check(source):
        log.warning("unsafe template not rendered, its fallback is; edit the template")
        source = fallback
        if check(source):
            return ""
    return _render(parse(source), context, limit)


def _render(template: Template, context: dict, limit: int) -> str:
    """Render `template` (already checked by problems()) with `context`; the output is
    counted piece by piece and cut at `limit` characters."""
    budget = [limit]
    for node, _depth in walk(template.nodelist):
        if not children(node):  # leaves produce the text: text, variables, firstof
            node.render_annotated = _counted(node.render_annotated, budget)
    try:
        return template.render(Context(context, autoescape=False))
    except RenderTooLarge:
        # Render again with each leaf cut to what is left; the result is at most `limit`.
        return _render_truncated(template, context, limit)


def _render_truncated(template: Template, context: dict, limit: int) -> str:
    left = [limit]

    def cut(render_annotated):
        def render(ctx):
            if left[0] <= 0:
                return ""
            out = render_annotated(ctx)[:left[0]]
            left[0] -= len(out)
            return out

        return render

    for node, _depth in walk(template.nodelist):
        if not children(node):
            original = type(node).render_annotated.__get__(node)
            node.render_annotated = cut(original)
    return template.render(Context(context, autoescape=False))
