"""Checks other modules add to a contact's email address.

Core cannot import the apps built on it, so an app that gives contact addresses a meaning
(the helpdesk matches inbound mail to clients by contact address and by mail domain)
registers a check in its AppConfig.ready(): `register(func)` where
`func(user, client, email)` returns an error message, or None when the address is fine.
The contact API serializer and the contact form call `check_email` before saving.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EmailCheck = Callable[[Any, Any, str], "str | None"]

_checks: list[EmailCheck] = []


def register(func: EmailCheck) -> None:
    if func not in _checks:
        _checks.append(func)


def check_email(user, client, email: str) -> list[str]:
    """Error messages for `email` as an address of a contact of `client` saved by `user`."""
    email = (email or "").strip()
    if not email or client is None:
        return []
    return [msg for msg in (check(user, client, email) for check in _checks) if msg]
