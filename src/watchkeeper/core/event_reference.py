"""The generated event reference (docs/events.md): every declared kind with its meaning,
schema version, fields and types, and the handlers subscribed to it. Written by
`watchkeeper events_reference --write docs/events.md`; tests/test_event_catalogue.py fails
when the file is out of date."""

from __future__ import annotations

import fnmatch
from itertools import groupby

from . import catalogue, events

INTRO = """\
# Event reference

Generated from the event catalogue (`core.catalogue`, each app's `events.py`) by
`watchkeeper events_reference --write docs/events.md`; do not edit by hand (a test fails
when this file and the code disagree).

Every event is stored in the outbox with its kind, the client it belongs to, its payload and
the schema **version** of its kind, and is delivered to the handlers below and to every
webhook endpoint that asks for its kind. A webhook body is

```json
{"id": "<event uuid>", "kind": "alert.opened", "version": 1, "client": 4,
 "created_at": "2026-12-07T17:02:11.504+00:00", "payload": {"...": "..."}}
```

## Compatibility promise to webhook receivers

- Within one `version` of a kind, every field listed here is present in every payload, with
  the type listed (`| null`: the value may be null). A field keeps its name, type and meaning.
- New fields may be added to a kind without a new version: ignore keys you do not know.
- A field removed, renamed or retyped, or a changed meaning, is a new `version` of the kind,
  listed here and in the release notes; check `version` and treat an unknown one as such.
- New kinds may appear at any time; an endpoint with no kind list receives them all.
- Delivery is at least once: deduplicate on `X-Watchkeeper-Delivery` (the event id).
"""


def _handlers_of(kind: str) -> list[str]:
    return sorted(s.name for s in events._handlers.values()
                  if fnmatch.fnmatchcase(kind, s.pattern))


def render() -> str:
    lines = [INTRO]
    defs = sorted((d for d in catalogue.definitions()
                   if d.__module__.startswith("watchkeeper.")), key=lambda d: (d.APP, d.KIND))
    lines.append(f"## Kinds ({len(defs)})\n")
    for app, group in groupby(defs, key=lambda d: d.APP):
        group = list(group)
        lines.append(f"### {app}\n")
        for d in group:
            lines.append(f"#### `{d.KIND}` (version {d.VERSION})\n")
            lines.append(f"{d.MEANING}\n")
            if d.DIRECTED:
                lines.append("Directed: delivered to one named recipient only; webhooks "
                             "and channels cannot subscribe to it.\n")
            fields = d.field_types()
            if fields:
                lines.append("| field | type |")
                lines.append("|---|---|")
                for name, tp in fields.items():
                    shown = catalogue.type_name(tp).replace("|", "\\|")
                    lines.append(f"| `{name}` | `{shown}` |")
                lines.append("")
            else:
                lines.append("No fields.\n")
            handlers = _handlers_of(d.KIND)
            if handlers:
                lines.append("Handled by: " + ", ".join(f"`{h}`" for h in handlers) + "\n")
    return "\n".join(lines).rstrip() + "\n"
