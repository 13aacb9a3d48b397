"""Client notification templates: validated against the variables they use when saved, and
rendered in a sandbox.

The sandbox is the platform's one (core/safe_templates.py: no loaders, no tag libraries, a
short allowlist of tags and filters, output capped); the context is plain dicts built here
(never a model instance), so a template can read exactly the variables in VARIABLES and
nothing else.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.template import TemplateSyntaxError
from django.template.base import Variable

from watchkeeper.core import safe_templates

# name -> allowed keys (None: a plain value).
VARIABLES: dict[str, frozenset[str] | None] = {
    "ticket": frozenset({"reference", "subject", "status", "priority", "type", "url",
                         "created_at"}),
    "client": frozenset({"name"}),
    "requester": frozenset({"name", "email"}),
    "message": frozenset({"body", "author"}),
    "technician": frozenset({"name"}),
    "survey_url": None,
    "msp_name": None,
}
RENDER_LIMIT = 100_000  # characters of a rendered subject or body

DEFAULTS = {
    "created": ("[{{ ticket.reference }}] {{ ticket.subject }}",
                "Hello {{ requester.name|default:requester.email }},\n\n"
                "We have received your request and opened ticket {{ ticket.reference }}.\n"
                "Reply to this email to add information.\n\n{{ msp_name }} service desk\n"),
    "replied": ("Re: [{{ ticket.reference }}] {{ ticket.subject }}",
                "{{ message.body }}\n\n-- \n{{ message.author }}, {{ msp_name }}\n"
                "Reply to this email to answer.\n"),
    "resolved": ("[{{ ticket.reference }}] resolved: {{ ticket.subject }}",
                 "Hello {{ requester.name|default:requester.email }},\n\n"
                 "Ticket {{ ticket.reference }} is resolved. Reply to this email if the "
                 "problem is still there.\n{% if survey_url %}\nHow did we do? "
                 "{{ survey_url }}\n{% endif %}\n{{ msp_name }} service desk\n"),
}


def _check_variable(var: Variable, loopvars: set[str], errors: list[str],
                    custom_keys: frozenset[str]) -> str | None:
    if var.lookups is None:
        return None  # a literal
    name = var.lookups[0]
    if name in loopvars or name == "forloop":
        return name
    if name == "custom":  # custom ticket fields: custom.<key> of a current definition
        if len(var.lookups) != 2 or var.lookups[1] not in custom_keys:
            errors.append(f"{'.'.join(var.lookups)!r} is not a current custom field")
        return name
    if name not in VARIABLES:
        errors.append(f"unknown variable {name!r}")
        return name
    keys = VARIABLES[name]
    rest = var.lookups[1:]
    if keys is None and rest:
        errors.append(f"{name!r} has no attribute {rest[0]!r}")
    elif keys is not None and not rest:
        errors.append(f"use one of {name}.{{{', '.join(sorted(keys))}}}, not {name!r} itself")
    elif keys is not None and rest[0] not in keys:
        errors.append(f"{name!r} has no attribute {rest[0]!r}")
    elif len(rest) > 1:
        errors.append(f"{'.'.join(var.lookups)!r} goes too deep")
    return name


def validate(*sources: str, custom_keys: frozenset[str] = frozenset()) -> list[str]:
    """The variables the templates use; ValidationError listing every problem otherwise."""
    errors: list[str] = []
    used: set[str] = set()
    for source in sources:
        try:
            template = safe_templates.parse(source)
        except TemplateSyntaxError as exc:
            raise ValidationError(f"Template syntax error: {exc}") from exc
        # Tags, filters, numeric arguments, loops: the checks shared with monitoring.
        errors.extend(safe_templates.problems(template))
        for var, loopvars in safe_templates.variables(template):
            name = _check_variable(var, loopvars, errors, custom_keys)
            if name and (name in VARIABLES or name == "custom"):
                used.add(name)
    if errors:
        raise ValidationError(sorted(set(errors)))
    return sorted(used)


def render(source: str, context: dict, fallback: str = "") -> str:
    """Render with only the allowlisted names of `context` (plain values and dicts), the
    output capped at RENDER_LIMIT characters. A template saved before its tags and filters
    were checked, and unsafe now, is not rendered: `fallback` is, if given."""
    clean = {k: v for k, v in context.items() if k in VARIABLES or k == "custom"}
    for key, value in clean.items():
        if key == "custom":
            clean[key] = {str(k): ("" if v is None else str(v)) for k, v in
                          (value or {}).items()}
        elif isinstance(value, dict):
            allowed = VARIABLES[key] or frozenset()
            clean[key] = {k: ("" if v is None else str(v)) for k, v in value.items()
                          if k in allowed}
        else:
            clean[key] = "" if value is None else str(value)
    return safe_templates.render(source, clean, limit=RENDER_LIMIT, fallback=fallback)
