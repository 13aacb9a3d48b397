"""Template helpers of the UI shell: the client scope chip and small filters."""

from __future__ import annotations

from django import template
from django.apps import apps
from django.utils import timezone
from django.utils.timesince import timesince

from ..selectors import can_add_clients as _can_add_clients
from ..selectors import scope_client as _scope_client

register = template.Library()


@register.simple_tag(takes_context=True)
def scope_client(context):
    """The client the signed-in user narrowed lists to, or None (see selectors)."""
    request = context.get("request")
    if request is None:
        return None
    return _scope_client(request)


@register.filter
def startswith(value, prefix) -> bool:
    return str(value or "").startswith(str(prefix))


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def object_label(object_type: str) -> str:
    """'core.client' -> 'client', 'monitoring.notificationchannel' -> 'notification channel'
    for activity lines: the model's verbose name when it is an installed model."""
    label = str(object_type or "")
    try:
        return str(apps.get_model(label)._meta.verbose_name)
    except (LookupError, ValueError):
        return label.rpartition(".")[2].replace("_", " ")


@register.filter
def can_add_clients(user) -> bool:
    return _can_add_clients(user)


@register.filter
def ago(value) -> str:
    """'5 minutes ago', or 'just now' under a minute (timesince would say '0 minutes').
    Times in the future (clock skew between processes) also read 'just now'."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def money(value) -> str:
    """An amount with the MSP's currency: "€1,234.50" / "1,234.50 CHF" (WATCHKEEPER_CURRENCY,
    an ISO code; the symbol of the common ones)."""
    from decimal import Decimal, InvalidOperation

    from django.conf import settings

    try:
        amount = Decimal(str(value if value not in (None, "") else 0))
    except InvalidOperation:
        return str(value)
    code = getattr(settings, "CURRENCY", "USD")
    symbol = {"USD": "$", "EUR": "€", "GBP": "£", "AUD": "A$", "CAD": "C$"}.get(code)
    text = f"{amount:,.2f}"
    if text.startswith("-"):
        return f"-{symbol}{text[1:]}" if symbol else f"{text} {code}"
    return f"{symbol}{text}" if symbol else f"{text} {code}"
