"""Script templates: `{{ name }}` placeholders filled from an explicit allowlist.

There is no expression language at all: a placeholder is a bare identifier looked up in a
dict, so a template cannot reach attributes, call methods or read settings. Anything that
looks like a placeholder but is not an allowed bare name is an error, not left in place,
so a typo never ships a literal "{{ ... }}" to an endpoint. Script parameters are *not*
rendered into the body: they travel as separate argv entries.

Deliberately not the template sandbox (core/safe_templates.py): a script is shell,
PowerShell or Python, whose own `{%`, `{#` and `%}` must reach the endpoint exactly as the
reviewer approved them, which a Django template engine would parse or refuse.
"""

from __future__ import annotations

import re

ALLOWED_VARIABLES = {
    "agent_id": "The agent's id",
    "device_name": "The device's name in the inventory",
    "hostname": "The hostname reported by the agent",
    "client_name": "The client's name",
    "site_name": "The site's name (empty if none)",
}

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_NAME = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*$")


class TemplateError(ValueError):
    pass


def placeholders(body: str) -> list[str]:
    """Names the template uses; raises TemplateError for anything not allowed."""
    names, bad = [], []
    for match in _PLACEHOLDER.finditer(body):
        name = _NAME.match(match.group(1))
        if name is None or name.group(1) not in ALLOWED_VARIABLES:
            bad.append(match.group(0))
        else:
            names.append(name.group(1))
    if bad:
        raise TemplateError(
            f"unknown template placeholders: {', '.join(sorted(set(bad)))}; allowed: "
            + ", ".join("{{ " + n + " }}" for n in ALLOWED_VARIABLES))
    return names


def render(body: str, variables: dict[str, str]) -> str:
    placeholders(body)
    values = {k: str(variables.get(k, "")) for k in ALLOWED_VARIABLES}
    return _PLACEHOLDER.sub(lambda m: values[_NAME.match(m.group(1)).group(1)], body)
