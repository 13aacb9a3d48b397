"""Global search providers: other modules add what they own to the one search box.

Core cannot import the apps built on it, so each app registers a provider in its
AppConfig.ready(): `register("devices", "Devices", func)` where `func(user, text, limit)`
returns dicts with type, id, name, client, client_name, detail and url (the UI page). The
provider must read through core.tenancy.scoped() so search never crosses tenants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Provider = Callable[[Any, str, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class SearchProvider:
    key: str
    label: str
    func: Provider


_providers: dict[str, SearchProvider] = {}


def register(key: str, label: str, func: Provider) -> None:
    _providers[key] = SearchProvider(key, label, func)


def providers() -> list[SearchProvider]:
    return list(_providers.values())


def run_providers(user, text: str, limit: int) -> list[tuple[SearchProvider, list[dict]]]:
    """[(provider, results)] for every registered provider, in registration order."""
    return [(p, p.func(user, text, limit)) for p in _providers.values()]
