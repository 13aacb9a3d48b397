"""The patching app's service API for other apps.

The agents app calls `apply_agent_updates` from the check-in, inside the check-in's
transaction (the ingest's savepoint), with the `updates` section the agent sent and/or the
device's new reboot flag. A direct service call, not an event, because the check-in is where
a malformed section is refused and quarantined with its reason and where the section's hash
is acknowledged to the agent: a handler running later could neither refuse the payload nor
stop the hash from being acknowledged, so a bad report would be lost instead of resent.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import transaction

from watchkeeper.core import audit, events
from watchkeeper.core.choices import AuditAction

from .choices import Classification, UpdateSource
from .events import PatchStateChanged
from .models import DevicePatchState, DeviceUpdate

FIELDS = ("installed_version", "version", "classification", "source", "origin", "archive",
          "site", "severity", "references", "size", "reboot", "release_date")
LIMITS = {"installed_version": 200, "version": 200, "origin": 200, "archive": 200,
          "site": 255, "severity": 40}


def _text(value: Any, limit: int) -> str:
    if value is None or value == "unknown" and limit == 200:
        return ""
    return str(value).strip()[:limit]


def clean_update(item: dict[str, Any]) -> dict[str, Any]:
    """One reported update as stored; ValueError (the check-in is refused and quarantined)
    when a value is outside what the columns mean."""
    name = _text(item.get("name"), 255)
    if not name:
        raise ValueError("updates: an update without a name")
    classification = item.get("classification", Classification.OTHER)
    if classification not in Classification.values:
        raise ValueError(f"updates[{name}]: classification {classification!r} is not one of "
                         f"{', '.join(Classification.values)}")
    source = item.get("source", UpdateSource.OS)
    if source not in UpdateSource.values:
        raise ValueError(f"updates[{name}]: source {source!r} is not one of "
                         f"{', '.join(UpdateSource.values)}")
    size = item.get("size")
    released = None
    if item.get("release_date") not in (None, "", "unknown"):
        try:
            released = date.fromisoformat(str(item["release_date"])[:10])
        except ValueError:
            raise ValueError(f"updates[{name}]: release_date is not an ISO date") from None
    refs = item.get("references") or []
    return {
        "name": name, "arch": _text(item.get("arch"), 50),
        **{f: _text(item.get(f), n) for f, n in LIMITS.items()},
        "severity": _text(item.get("severity") or "unknown", 40).lower() or "unknown",
        "classification": classification, "source": source,
        "references": [str(r)[:100] for r in refs if str(r)][:100]
        if isinstance(refs, list) else [],
        "size": size if isinstance(size, int) and not isinstance(size, bool) and size >= 0
        else None,
        "reboot": item.get("reboot") is True, "release_date": released,
    }


def apply_agent_updates(*, device_id: int, client_id: int, agent_ref: str,
                        observed_at: datetime, items: list[dict[str, Any]] | None = None,
                        reboot_pending: bool | None = None) -> bool:
    """Replace the device's available updates with the reported `items` (when given) and/or
    set its reboot flag; keep its patch state; audit and emit `patch_state.changed` when the
    state changed. Returns whether it changed."""
    incoming = None
    if items is not None:
        incoming = {}
        for item in items:
            row = clean_update(item)
            incoming[(row["name"], row["arch"])] = row
    with transaction.atomic():
        state, _ = DevicePatchState.objects.select_for_update().get_or_create(
            device_id=device_id, defaults={"client_id": client_id})
        before = (state.available, state.security, state.reboot_pending, state.client_id)
        appeared: list[str] = []
        resolved: list[str] = []
        if incoming is not None:
            appeared, resolved = _replace(device_id, client_id, incoming, observed_at)
            security = DeviceUpdate.objects.filter(
                device_id=device_id, classification=Classification.SECURITY)
            state.available = len(incoming)
            state.security = security.count()
            state.oldest_security_at = min(
                security.values_list("first_seen_at", flat=True), default=None)
            state.reported_at = observed_at
        if reboot_pending is not None:
            state.reboot_pending = bool(reboot_pending)
        state.client_id = client_id
        after = (state.available, state.security, state.reboot_pending, state.client_id)
        changed = before != after or bool(appeared or resolved)
        if changed:
            state.changed_at = observed_at
        state.save()
        if changed:
            audit.record(actor=f"agent:{agent_ref}", action=AuditAction.UPDATE, obj=state,
                         client_id=client_id, changes={
                             "available": [before[0], state.available],
                             "security": [before[1], state.security],
                             "reboot_pending": [before[2], state.reboot_pending],
                             "appeared": [None, sorted(appeared)[:50]],
                             "resolved": [None, sorted(resolved)[:50]]})
            events.emit(PatchStateChanged.of(state, appeared=appeared, resolved=resolved),
                        client=client_id)
    return changed


def _replace(device_id, client_id, incoming, observed_at) -> tuple[list[str], list[str]]:
    existing = {(r.name, r.arch): r for r in DeviceUpdate.objects.filter(device_id=device_id)}
    new, kept = [], []
    for key, values in incoming.items():
        row = existing.get(key)
        if row is None:
            new.append(DeviceUpdate(device_id=device_id, client_id=client_id,
                                    first_seen_at=observed_at, last_seen_at=observed_at,
                                    **values))
            continue
        for field in FIELDS:
            setattr(row, field, values[field])
        row.client_id = client_id
        row.last_seen_at = observed_at
        kept.append(row)
    gone = [r for key, r in existing.items() if key not in incoming]
    DeviceUpdate.objects.filter(pk__in=[r.pk for r in gone]).delete()
    DeviceUpdate.objects.bulk_create(new, batch_size=500)
    DeviceUpdate.objects.bulk_update(kept, [*FIELDS, "client_id", "last_seen_at"],
                                     batch_size=500)
    return [r.name for r in new], [r.name for r in gone]
