"""Named hooks: one app provides a function (or a selectors module) under a name, another
app — or core — looks it up by that name, so the caller never imports the provider. This
keeps imports one-way: core imports no app, and a lower app (inventory) shows what a higher
one (agents, monitoring) knows about a device without an import cycle.

Providers register in their `AppConfig.ready()`; a caller gets None / [] when no installed
app provides the name, and must then do without (a page section left out, for instance).

| Name | Provided by | Called by |
|---|---|---|
| `core.first_start` | monitoring (default policies) | `watchkeeper up` on a new install |
| `<app>.selectors` | helpdesk, monitoring, agents (their `selectors`) | home pages, device pages |
| `core.portal_work` | helpdesk (open requests, device health) | the client portal's home |
| `core.demo_fleet` | agents (the simulated fleet module) | `watchkeeper demo --server` |
| `demo.after_fleet_start` | monitoring (heartbeat pings), helpdesk (billing run) | the fleet |
| `demo.fleet_round` | monitoring (heartbeat pings) | the fleet, each round |
| `inventory.drive_assessment` | monitoring (`assess_drive` of history/predictive) | drives tab |
"""

from __future__ import annotations

from typing import Any

_providers: dict[str, list[Any]] = {}


def provide(name: str, provider: Any) -> None:
    """Register `provider` under `name` (idempotent: a second ready() adds nothing)."""
    found = _providers.setdefault(name, [])
    if provider not in found:
        found.append(provider)


def first(name: str) -> Any | None:
    """The first provider of `name`, or None when no installed app provides it."""
    found = _providers.get(name)
    return found[0] if found else None


def every(name: str) -> list[Any]:
    """Every provider of `name`, in registration (INSTALLED_APPS) order."""
    return list(_providers.get(name, ()))
