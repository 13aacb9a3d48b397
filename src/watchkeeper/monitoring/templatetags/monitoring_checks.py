"""`check|check_summary`: a check's settings in words ("warning at 85 % used, critical at
95 % used"), never its JSON."""

from __future__ import annotations

from django import template

from watchkeeper.monitoring.check_forms import summary

register = template.Library()


@register.filter
def check_summary(check) -> str:
    return summary(check.kind, check.config or {})
