"""Ids validated at the edge: one path converter and one filter field for every integer id.

Database ids are 64-bit signed integers. A path segment or query value outside 1..2**63-1
can never name a row, and handing it to the database raises (SQLite: "Python int too large
to convert to SQLite INTEGER"; PostgreSQL: out of range for bigint) — a 500. The `<id:pk>`
converter refuses such a segment, so the route does not match and the answer is the same
404 a non-existent id gets; `IdField` (query strings, forms) refuses it as a 400 that says
what the bounds are, whatever rows exist.
"""

from __future__ import annotations

from django import forms
from django.urls import register_converter

ID_MIN = 1
ID_MAX = 2**63 - 1


class IdConverter:
    """`<id:pk>`: a decimal database id, 1..2**63-1 (no sign, no leading "+")."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not ID_MIN <= number <= ID_MAX:
            raise ValueError("id out of range")  # the route does not match: a 404
        return number

    def to_url(self, value) -> str:
        return str(int(value))


def parse_id(value) -> int | None:
    """An id from untrusted input (str or int), or None when it cannot name a row."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            return None
        number = int(text)
    return number if ID_MIN <= number <= ID_MAX else None


class IdField(forms.IntegerField):
    """A form field for an id given by number: whole, 1..2**63-1. Never looks the row up,
    so the error cannot tell an existing id (of another client) from a missing one."""

    default_error_messages = {
        "invalid": f"Enter an id: a whole number from {ID_MIN} to {ID_MAX}.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", ID_MIN)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)
        for key in ("min_value", "max_value"):
            self.error_messages[key] = self.error_messages["invalid"]

    def to_python(self, value):
        if value in self.empty_values:
            return None
        number = parse_id(value)
        if number is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class BoundedIntegerField(forms.IntegerField):
    """A whole number within 64-bit bounds (query-string counts and numbers that are no id)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", -(2**63))
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str) and len(value.strip()) > 20:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


def register() -> None:
    register_converter(IdConverter, "id")


def filter_by_id(queryset, field: str, raw):
    """`queryset` narrowed to rows whose `field` is the id in `raw` (a query-string value);
    a value that cannot be an id matches nothing, exactly like an id that does not exist
    (never `field IS NULL`, which `filter(field=None)` would mean)."""
    number = parse_id(raw)
    return queryset.filter(**{field: number}) if number is not None else queryset.none()
