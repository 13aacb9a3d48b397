"""Writes of device relations. A person adds and removes manual relations; the agent and
discovery report what they observe through `record_observed`, which replaces only that
source's own rows for that device and kind — a manual relation, or another source's, is
never touched (a disagreement stays visible as a conflict, relations/selectors.py)."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.actions import create_object, delete_object
from watchkeeper.core.choices import AuditAction

from ..events import DeviceRelationObserved
from .choices import RelationKind, RelationSource
from .models import DeviceRelation


def add_relation(*, actor, kind: str, parent, device=None, site=None,
                 source: str = RelationSource.MANUAL, detail: str = "") -> DeviceRelation:
    """A relation typed by a person (or an import): `parent` is what `device` — or every
    device of `site` — depends on."""
    if device is None and site is None:
        raise ValidationError({"device": "Name a device or a site."})
    child_client = (device or site).client_id
    if child_client != parent.client_id:
        raise ValidationError({"parent": "A relation links devices of one client."})
    if device is not None and device.pk == parent.pk:
        raise ValidationError({"parent": "A device cannot depend on itself."})
    if kind not in RelationKind.values:
        raise ValidationError({"kind": f"One of {', '.join(RelationKind.values)}."})
    exists = DeviceRelation.objects.filter(kind=kind, parent=parent, device=device,
                                           site=site, source=source).first()
    if exists is not None:
        return exists
    return create_object(actor=actor, model=DeviceRelation, client_id=parent.client_id,
                         kind=kind, parent=parent, device=device, site=site, source=source,
                         detail=detail[:200])


def delete_relation(*, actor, relation: DeviceRelation) -> None:
    delete_object(actor=actor, obj=relation)


def record_observed(*, device, kind: str, source: str, parents: list[tuple[object, str]],
                    at: datetime | None = None) -> dict[str, int]:
    """What `source` (agent, discovery) now sees for `device` and `kind`: a list of
    (parent device, detail). That source's rows for the pair are brought in line — new ones
    added, confirmed ones touched, ones it no longer sees removed — in one transaction with
    an audit row per change and one `DeviceRelationObserved` event when anything changed.
    Rows of other sources, manual ones included, are left as they are."""
    if source == RelationSource.MANUAL:
        raise ValueError("manual relations are written by add_relation")
    at = at or timezone.now()
    wanted = {p.pk: (p, detail[:200]) for p, detail in parents
              if p is not None and p.pk != device.pk and p.client_id == device.client_id}
    added = removed = 0
    with transaction.atomic():
        rows = {r.parent_id: r for r in DeviceRelation.objects.select_for_update().filter(
            device=device, site__isnull=True, kind=kind, source=source)}
        for parent_id, row in rows.items():
            if parent_id not in wanted:
                audit.record(actor=source, action=AuditAction.DELETE, obj=row,
                             changes={"parent": [parent_id, None]})
                row.delete()
                removed += 1
        for parent_id, (parent, detail) in wanted.items():
            row = rows.get(parent_id)
            if row is None:
                row = DeviceRelation.objects.create(
                    client_id=device.client_id, kind=kind, parent=parent, device=device,
                    source=source, detail=detail, seen_at=at)
                audit.record(actor=source, action=AuditAction.CREATE, obj=row,
                             changes={"parent": [None, parent_id], "kind": [None, kind]})
                added += 1
            else:
                DeviceRelation.objects.filter(pk=row.pk).update(seen_at=at, detail=detail)
        if added or removed:
            events.emit(DeviceRelationObserved(device_id=device.pk, kind=kind, source=source,
                                               parents=sorted(wanted)),
                        client=device.client_id)
    return {"added": added, "removed": removed}
