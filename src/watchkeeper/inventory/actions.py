"""Writes of the inventory app by people (and the import/discovery jobs they start).

Each action is one transaction with its audit row and event. A value a person sets is
recorded with provenance "manual" (or "import"/"network_scan"), so an agent that later
disagrees opens a conflict instead of overwriting it (see services.apply_observed_fields).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from watchkeeper.core import audit, crypto, events
from watchkeeper.core.actions import create_object, delete_object, update_object  # noqa: F401
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.models import Client

from . import events as ev
from .choices import ChangeKind, ConflictStatus, SourceKind
from .models import Device, DeviceChange, FieldConflict, SavedView, SoftwareLicence
from .services import TRACKED_FIELDS, as_text, record_provenance

LICENCE_PURPOSE = "licence-key"


def _actor_ref(actor) -> str:
    return getattr(actor, "email", None) or str(actor or "system")


def write_device_fields(device: Device, values: dict[str, Any], *, source_kind: str,
                        source_ref: str, who=None, at: datetime | None = None) -> dict:
    """Set columns authoritatively (a person or an accepted import/scan decided them),
    with provenance and a timeline row per changed field. Returns {field: [old, new]}.
    The caller is inside a transaction and saves nothing else."""
    at = at or timezone.now()
    before = {f: getattr(device, f) for f in values}
    for field, value in values.items():
        setattr(device, field, value)
    device.full_clean()
    diff = {f: [as_text(before[f]), as_text(values[f])] for f in values
            if as_text(before[f]) != as_text(values[f])}
    if diff:
        device.updated_at = at
        device.save()
        DeviceChange.objects.bulk_create([
            DeviceChange(device=device, kind=ChangeKind.FIELD_CHANGED, subject=f, before=b,
                         after=a, source_kind=source_kind, source_ref=source_ref[:120], at=at)
            for f, (b, a) in diff.items()])
    tracked = {f: v for f, v in values.items() if f in TRACKED_FIELDS and v not in (None, "")}
    record_provenance(device, tracked, source_kind=source_kind, source_ref=source_ref,
                      observed_at=at, who=who)
    return diff


def create_device(*, actor, client: Client, source_kind: str = SourceKind.MANUAL,
                  source_ref: str = "", **fields: Any) -> Device:
    """A device entered by a person (or accepted from an import or a scan)."""
    at = timezone.now()
    source_ref = source_ref or _actor_ref(actor)
    who = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        # Not core's create_object: Device has a field called "model".
        device = Device(client=client, source=source_kind, created_at=at, updated_at=at,
                        **fields)
        device.full_clean()
        device.save()
        audit.record(actor=actor, action=AuditAction.CREATE, obj=device,
                     changes={k: [None, v] for k, v in audit.snapshot(device).items()
                              if v not in (None, "")})
        events.emit(ev.DeviceCreated.of(device, source=source_kind, source_ref=source_ref),
                    client=client.pk)
        values = {f: getattr(device, f) for f in TRACKED_FIELDS}
        record_provenance(device, {f: v for f, v in values.items() if v not in (None, "")},
                          source_kind=source_kind, source_ref=source_ref, observed_at=at,
                          who=who)
        DeviceChange.objects.create(device=device, kind=ChangeKind.CREATED, subject="device",
                                    after=device.name, source_kind=source_kind,
                                    source_ref=source_ref[:120], at=at)
    return device


def update_device(*, actor, device: Device, source_kind: str = SourceKind.MANUAL,
                  source_ref: str = "", **fields: Any) -> Device:
    who = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        before = audit.snapshot(device)
        diff = write_device_fields(device, fields, source_kind=source_kind,
                                   source_ref=source_ref or _actor_ref(actor), who=who)
        if diff:
            audit.record(actor=actor, action=AuditAction.UPDATE, obj=device,
                         changes=audit.diff(before, audit.snapshot(device)))
            events.emit(ev.DeviceChanged(id=device.pk, changed=sorted(diff),
                                         source=source_kind,
                                         source_ref=source_ref or _actor_ref(actor)),
                        client=device.client_id)
    return device


def delete_device(*, actor, device: Device) -> None:
    if device.agent_ref:
        raise ValidationError("This device has an agent; remove the agent first.")
    delete_object(actor=actor, obj=device)


def resolve_conflict(*, actor, conflict: FieldConflict, choice: str) -> FieldConflict:
    """`keep` the device's current value, or `take` the proposed one. Either way the
    decision is recorded: the same proposal is not raised again after `keep`, and after
    `take` the value is the person's decision (provenance manual)."""
    if choice not in ("keep", "take"):
        raise ValidationError("choice must be 'keep' or 'take'")
    with transaction.atomic():
        conflict = FieldConflict.objects.select_for_update().select_related("device").get(
            pk=conflict.pk)
        if conflict.status != ConflictStatus.OPEN:
            raise ValidationError("This conflict is already resolved.")
        device = conflict.device
        if choice == "take":
            field = conflict.field
            value: Any = conflict.proposed_value
            if field == "primary_ip" and not value:
                value = None
            write_device_fields(device, {field: value}, source_kind=SourceKind.MANUAL,
                                source_ref=_actor_ref(actor),
                                who=actor if getattr(actor, "is_authenticated", False)
                                else None)
        conflict.status = ConflictStatus.TAKEN if choice == "take" else ConflictStatus.KEPT
        conflict.resolved_at = timezone.now()
        conflict.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
        conflict.save(update_fields=["status", "resolved_at", "resolved_by"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=device,
                     object_repr=f"{device} · conflict on {conflict.field}",
                     changes={"conflict": [conflict.pk, choice],
                              conflict.field: [conflict.current_value,
                                               conflict.proposed_value if choice == "take"
                                               else conflict.current_value]})
        events.emit(ev.DeviceConflictResolved.of(conflict, choice=choice),
                    client=device.client_id)
    return conflict


# --- Licences ---------------------------------------------------------------------------

def create_licence(*, actor, client: Client, product: str, match: str = "", seats: int = 1,
                   key: str = "", **fields: Any) -> SoftwareLicence:
    return create_object(actor=actor, model=SoftwareLicence, client=client, product=product,
                         match=match or product, seats=seats,
                         key_enc=crypto.encrypt(key, LICENCE_PURPOSE) if key else "",
                         **fields)


def update_licence(*, actor, licence: SoftwareLicence, key: str | None = None,
                   **fields: Any) -> SoftwareLicence:
    if key is not None:
        fields["key_enc"] = crypto.encrypt(key, LICENCE_PURPOSE) if key else ""
    return update_object(actor=actor, obj=licence, **fields)


def delete_licence(*, actor, licence: SoftwareLicence) -> None:
    delete_object(actor=actor, obj=licence)


def reveal_licence_key(*, actor, licence: SoftwareLicence) -> str:
    """The plain key, with an audit row: a reveal that cannot be audited does not happen."""
    if not licence.key_enc:
        return ""
    with transaction.atomic():
        audit.record(actor=actor, action=AuditAction.REVEAL, obj=licence,
                     changes={"field": [None, "key"]})
    return crypto.decrypt(licence.key_enc, LICENCE_PURPOSE)


# --- Saved views ------------------------------------------------------------------------

def save_view(*, actor, name: str, query: str, shared: bool = False) -> SavedView:
    with transaction.atomic():
        view = SavedView.objects.create(owner=actor, name=name[:100], query=query[:2000],
                                        shared=shared)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=view,
                     changes={"name": [None, view.name], "query": [None, view.query],
                              "shared": [None, shared]})
        events.emit(ev.DeviceViewCreated(id=view.pk))
    return view


def delete_view(*, actor, view: SavedView) -> None:
    if view.owner_id != actor.pk:
        raise ValidationError("Only the owner can delete a saved view.")
    delete_object(actor=actor, obj=view, emit=False)
