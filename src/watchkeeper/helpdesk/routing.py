"""Routing rules: conditions on a new ticket's facts -> queue, assignee, priority, tags.

Rules are evaluated in position order; each matching rule applies its settings (a later rule
overrides an earlier one on the same field, tags accumulate) until a matching rule has
`stop`. The same evaluation runs a draft rule against past tickets for the preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

FIELDS = {
    "subject": "Subject",
    "description": "Description",
    "requester_email": "Requester email",
    "sender_domain": "Sender domain",
    "client": "Client id",
    "type": "Type",
    "source": "Source",
    "priority": "Priority",
    "impact": "Impact",
    "urgency": "Urgency",
    "tags": "Tags",
}
OPS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "in": "is one of",
}


def facts(ticket) -> dict[str, Any]:
    """What conditions can look at, from a Ticket (saved or not)."""
    email = (ticket.requester_email or "").lower()
    return {
        "subject": ticket.subject or "",
        "description": ticket.description or "",
        "requester_email": email,
        "sender_domain": email.rpartition("@")[2],
        "client": ticket.client_id,
        "type": ticket.type,
        "source": ticket.source,
        "priority": ticket.priority,
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "tags": list(ticket.tags or []),
        # Custom fields are addressable as "cf.<key>".
        **{f"cf.{k}": v for k, v in (ticket.custom_fields or {}).items()},
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value).casefold()


def condition_matches(cond: dict, data: dict[str, Any]) -> bool:
    actual = data.get(cond["field"])
    op, expected = cond["op"], cond.get("value")
    if isinstance(actual, list):  # tags: any element satisfies the condition
        if op in ("not_equals", "not_contains"):
            return all(condition_matches({**cond, "field": "_"}, {"_": a}) for a in actual)
        return any(condition_matches({**cond, "field": "_"}, {"_": a}) for a in actual)
    a = _text(actual)
    if op == "in":
        values = expected if isinstance(expected, list) else str(expected).split(",")
        return a in {_text(v).strip() for v in values}
    e = _text(expected)
    return {
        "equals": a == e,
        "not_equals": a != e,
        "contains": e in a,
        "not_contains": e not in a,
        "starts_with": a.startswith(e),
        "ends_with": a.endswith(e),
    }[op]


def rule_matches(rule, data: dict[str, Any]) -> bool:
    conds = rule.conditions or []
    if not conds:
        return False  # a rule with no condition would route everything: never by accident
    results = (condition_matches(c, data) for c in conds)
    return all(results) if rule.match_all else any(results)


def validate_conditions(conditions: Any) -> list[dict]:
    if not isinstance(conditions, list) or not conditions:
        raise ValidationError({"conditions": "Give at least one condition."})
    clean = []
    for i, cond in enumerate(conditions):
        if not isinstance(cond, dict):
            raise ValidationError({"conditions": f"Condition {i + 1} is not an object."})
        fname, op = cond.get("field"), cond.get("op")
        if fname not in FIELDS and not (isinstance(fname, str) and fname.startswith("cf.")):
            raise ValidationError({"conditions": f"Condition {i + 1}: unknown field {fname!r}."})
        if op not in OPS:
            raise ValidationError({"conditions": f"Condition {i + 1}: unknown operator {op!r}."})
        value = cond.get("value", "")
        if op == "in" and not isinstance(value, list | str):
            raise ValidationError({"conditions": f"Condition {i + 1}: give a list of values."})
        clean.append({"field": fname, "op": op, "value": value})
    return clean


@dataclass
class Outcome:
    queue_id: int | None = None
    assignee_id: int | None = None
    priority: str = ""
    tags: list[str] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)


def evaluate(rules, data: dict[str, Any]) -> Outcome:
    out = Outcome()
    for rule in rules:
        if not rule.is_active or not rule_matches(rule, data):
            continue
        out.matched.append(rule.pk)
        if rule.set_queue_id:
            out.queue_id = rule.set_queue_id
        if rule.set_assignee_id:
            out.assignee_id = rule.set_assignee_id
        if rule.set_priority:
            out.priority = rule.set_priority
        for tag in rule.add_tags or []:
            if tag not in out.tags:
                out.tags.append(tag)
        if rule.stop:
            break
    return out


def preview(rule, tickets) -> list[dict[str, Any]]:
    """Which of `tickets` the (possibly unsaved) `rule` would match, and what it would set."""
    rows = []
    for ticket in tickets:
        hit = rule_matches(rule, facts(ticket))
        rows.append({"ticket": ticket, "id": ticket.pk, "reference": ticket.reference,
                     "subject": ticket.subject, "matches": hit})
    return rows
