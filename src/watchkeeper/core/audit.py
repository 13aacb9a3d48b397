"""The audit log: every write records who, when, from which address, and what changed."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable
from typing import Any

from django.db import models

from .context import current_ip
from .models import AuditEntry

SECRET_FIELDS = {"password", "totp_secret_enc", "secret_enc", "token_hash", "code_hash"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    return value


# model -> function(obj, data) -> data masking secrets held inside a field (e.g. a JSON
# config with an SNMP community); registered by the app that owns the model.
_MASKERS: dict[type[models.Model], Callable[[models.Model, dict], dict]] = {}


def register_masker(model: type[models.Model],
                    masker: Callable[[models.Model, dict], dict]) -> None:
    _MASKERS[model] = masker


def snapshot(obj: models.Model) -> dict[str, Any]:
    """Concrete field values of `obj`, secrets masked, ready for JSON."""
    data = {}
    for field in obj._meta.concrete_fields:
        value = getattr(obj, field.attname)
        data[field.attname] = "••••" if field.attname in SECRET_FIELDS and value else _plain(value)
    masker = _MASKERS.get(type(obj))
    return masker(obj, data) if masker else data


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields that changed."""
    keys = set(before) | set(after)
    return {k: [before.get(k), after.get(k)] for k in sorted(keys) if before.get(k) != after.get(k)}


def client_id_of(obj: models.Model | None) -> int | None:
    if obj is None:
        return None
    path = getattr(type(obj), "tenant_path", None)
    if path == "id":
        return obj.pk
    if path and "__" not in path:
        return getattr(obj, f"{path}_id", None)
    if path:
        target = obj
        for part in path.split("__"):
            target = getattr(target, part, None)
            if target is None:
                return None
        return target.pk if isinstance(target, models.Model) else target
    return None


def record(*, actor, action: str, obj: models.Model | None = None, object_type: str = "",
           object_id: str = "", object_repr: str = "", changes: dict | None = None,
           client_id: int | None = None, ip: str | None = None) -> AuditEntry:
    """Insert one audit row. Call inside the transaction of the write it describes."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:254]
        if client_id is None:
            client_id = client_id_of(obj)
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEntry.objects.create(
        actor=actor if is_user else None,
        actor_label=(actor.email if is_user else str(actor or "system"))[:254],
        ip=ip or current_ip.get(),
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:254],
        client_id=client_id,
        changes=changes or {},
    )


def record_many(*, actor, action: str, entries, ip: str | None = None,
                batch_size: int = 500) -> int:
    """Insert one audit row per `(obj, changes)` in `entries`, a few statements in all: the
    audit of a set-based write (one UPDATE of many rows). Each row is the one `record()`
    would write for that object. Call inside the transaction of the write."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    label = (actor.email if is_user else str(actor or "system"))[:254]
    ip = ip or current_ip.get()
    rows = [AuditEntry(actor=actor if is_user else None, actor_label=label, ip=ip,
                       action=action, object_type=obj._meta.label_lower,
                       object_id=str(obj.pk), object_repr=str(obj)[:254],
                       client_id=client_id_of(obj), changes=changes or {})
            for obj, changes in entries]
    AuditEntry.objects.bulk_create(rows, batch_size=batch_size)
    return len(rows)
