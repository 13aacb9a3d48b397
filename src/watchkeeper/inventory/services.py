"""The inventory's public service API for other apps (chiefly `watchkeeper.agents`).

The agents app calls `register_agent_device` when it approves an agent and
`apply_agent_inventory` with the sections whose hash changed. Both are one transaction with
their audit row and `device.*` event; both write in bulk (no per-row exists()+save()).

Who wins a field: a value a person typed (manual) or imported is never overwritten silently
by an agent or a network scan. When such a source disagrees with it, a `FieldConflict` is
kept for a person to decide (see `actions.resolve_conflict`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.canonical import canonical_hash
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.models import Site

from . import events as ev
from .choices import ChangeKind, ConflictStatus, SourceKind
from .models import (
    Device,
    DeviceChange,
    DeviceSection,
    FieldConflict,
    FieldProvenance,
    NetworkAddress,
    SoftwareInstall,
)

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
SECTIONS = ("system", "disks", "interfaces", "software", "services", "users", "logged_in",
            "ports", "updates", "drives")
LIST_SECTIONS = frozenset(SECTIONS) - {"system"}
# "system" keys that live on the Device row, and the column each one fills.
SYSTEM_COLUMNS = {
    "hostname": "hostname", "serial": "serial", "manufacturer": "manufacturer",
    "model": "model", "os_name": "os_name", "os_version": "os_version",
}
SYSTEM_KEYS = ("os_name", "os_version", "kernel", "hostname", "domain", "manufacturer",
               "model", "serial", "cpu_model", "cpu_cores", "ram_bytes", "firewall",
               "disk_encryption", "endpoint_protection", "reboot_required",
               "pending_update_count")
HARDWARE_KEYS = frozenset({"manufacturer", "model", "serial", "cpu_model", "cpu_cores",
                           "ram_bytes"})
# Device columns a person or an import may set, with their provenance tracked.
TRACKED_FIELDS = ("name", "kind", "status", "hostname", "serial", "manufacturer", "model",
                  "os_name", "os_version", "primary_ip", "primary_mac", "purchase_date",
                  "cost", "warranty_end", "end_of_support", "assigned_contact_id",
                  "location", "site_id", "notes")
AUTHORITATIVE = frozenset({SourceKind.MANUAL, SourceKind.IMPORT})


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def normalise_mac(value: Any) -> str:
    text = "".join(ch for ch in str(value or "").lower() if ch in "0123456789abcdef")
    if len(text) != 12 or text == "0" * 12:
        return ""
    return ":".join(text[i:i + 2] for i in range(0, 12, 2))


def _valid_ip(value: Any) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value).split("/")[0].split("%")[0]))
    except ValueError:
        return None


# --- Provenance and field writes shared by every source --------------------------------

def record_provenance(device: Device, values: dict[str, Any], *, source_kind: str,
                      source_ref: str, observed_at: datetime, who=None) -> None:
    """Upsert the latest value per (device, field, source): one statement for all fields."""
    rows = [FieldProvenance(device=device, field=f, source_kind=source_kind,
                            source_ref=source_ref[:120], value=as_text(v)[:5000],
                            observed_at=observed_at, who=who)
            for f, v in values.items()]
    if rows:
        FieldProvenance.objects.bulk_create(
            rows, update_conflicts=True,
            unique_fields=["device", "field", "source_kind", "source_ref"],
            update_fields=["value", "observed_at", "who"],
        )


def _clip(field: str, value: Any) -> Any:
    """A machine-reported value fitted to its column: text, at most the column's length."""
    if field == "primary_ip":
        return _valid_ip(value)
    max_length = Device._meta.get_field(field).max_length
    if max_length:
        return as_text(value).strip()[:max_length]
    return value


def _owning_sources(device: Device, fields: Iterable[str]) -> dict[str, str]:
    """For each field, the authoritative source (manual/import) that set the device's current
    value, if any: its provenance value equals what the device holds now."""
    owners: dict[str, str] = {}
    rows = FieldProvenance.objects.filter(
        device=device, field__in=list(fields), source_kind__in=list(AUTHORITATIVE),
    ).order_by("observed_at").values_list("field", "source_kind", "value")
    for field, kind, value in rows:
        if value and value == as_text(getattr(device, field, None)):
            owners[field] = kind
    return owners


def apply_observed_fields(device: Device, values: dict[str, Any], *, source_kind: str,
                          source_ref: str, observed_at: datetime,
                          history_kinds: dict[str, str] | None = None) -> list[str]:
    """Apply values a machine observed (agent, network scan) to device columns.

    Empty and "unknown" values never erase a known one. A value owned by a person or an
    import that disagrees becomes an open FieldConflict instead of being overwritten.
    Returns the changed column names; the caller saves the device.
    """
    history_kinds = history_kinds or {}
    clipped = {f: _clip(f, v) for f, v in values.items() if v is not None}
    wanted = {f: v for f, v in clipped.items() if v not in (None, "", UNKNOWN)}
    owners = _owning_sources(device, wanted)
    changed, changes, conflicts = [], [], []
    for field, new in wanted.items():
        old = getattr(device, field)
        if as_text(old) == as_text(new):
            continue
        if field in owners:
            conflicts.append((field, old, owners[field], new))
            continue
        setattr(device, field, new)
        changed.append(field)
        changes.append(DeviceChange(
            device=device, kind=history_kinds.get(field, ChangeKind.FIELD_CHANGED),
            subject=field, before=as_text(old), after=as_text(new), source_kind=source_kind,
            source_ref=source_ref, at=observed_at))
    if conflicts:
        _open_conflicts(device, conflicts, source_kind, source_ref)
    DeviceChange.objects.bulk_create(changes)
    return changed


def _open_conflicts(device: Device, conflicts: list[tuple], source_kind: str,
                    source_ref: str) -> None:
    """One open conflict per (field, proposed value); a value a person already decided to
    keep against is not raised again."""
    fields = [c[0] for c in conflicts]
    seen = set(FieldConflict.objects.filter(device=device, field__in=fields).filter(
        status__in=[ConflictStatus.OPEN, ConflictStatus.KEPT]
    ).values_list("field", "proposed_value"))
    new_rows = []
    for field, old, owner, new in conflicts:
        if (field, as_text(new)) in seen:
            continue
        new_rows.append(FieldConflict(
            device=device, field=field, current_value=as_text(old), current_source=owner,
            proposed_value=as_text(new), proposed_source=source_kind,
            proposed_ref=source_ref[:120]))
    # An older open conflict on the same field is superseded by the newer proposal.
    if new_rows:
        FieldConflict.objects.filter(
            device=device, field__in=[r.field for r in new_rows], status=ConflictStatus.OPEN,
            proposed_source=source_kind,
        ).delete()
        FieldConflict.objects.bulk_create(new_rows)


# --- Agent contract ---------------------------------------------------------------------

def register_agent_device(*, client_id: int, site_id: int | None, hostname: str,
                          agent_ref: str) -> Device:
    """Create the device of a newly approved agent. Always a new row: a hostname that matches
    an existing device never hands that device (or its history) to a new agent."""
    hostname = (hostname or "").strip()[:255]
    if site_id is not None and not Site.objects.filter(pk=site_id, client_id=client_id).exists():
        raise ValueError("site does not belong to the client")
    at = timezone.now()
    actor = f"agent:{agent_ref}"
    with transaction.atomic():
        device = Device.objects.create(
            client_id=client_id, site_id=site_id, name=hostname or f"agent-{agent_ref[:12]}",
            hostname=hostname, source=SourceKind.AGENT, agent_ref=agent_ref[:64],
            last_seen_at=at, created_at=at, updated_at=at,
        )
        record_provenance(device, {"name": device.name, "hostname": hostname},
                          source_kind=SourceKind.AGENT, source_ref=agent_ref, observed_at=at)
        DeviceChange.objects.create(device=device, kind=ChangeKind.CREATED,
                                    subject="device", after=device.name,
                                    source_kind=SourceKind.AGENT, source_ref=agent_ref, at=at)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=device,
                     changes={"name": [None, device.name], "source": [None, "agent"],
                              "agent_ref": [None, agent_ref]})
        events.emit(ev.DeviceCreated.of(device, source=SourceKind.AGENT,
                                            source_ref=agent_ref), client=client_id)
    return device


def detach_agent(*, device_id: int, agent_ref: str) -> None:
    """Forget the agent of a device (agent revoked or deleted); the device record stays."""
    with transaction.atomic():
        updated = Device.objects.filter(pk=device_id, agent_ref=agent_ref).update(
            agent_ref="", updated_at=timezone.now())
        if updated:
            device = Device.objects.get(pk=device_id)
            audit.record(actor=f"agent:{agent_ref}", action=AuditAction.UPDATE, obj=device,
                         changes={"agent_ref": [agent_ref, ""]})
            events.emit(ev.DeviceChanged(id=device.pk, changed=["agent_ref"],
                                         source=SourceKind.AGENT,
                                         source_ref=agent_ref), client=device.client_id)


def touch_last_seen(device_ids: Iterable[int], at: datetime, *,
                    older_than: timedelta | None = None) -> int:
    """Mark devices seen (one UPDATE for the batch); for check-ins without inventory.

    With `older_than`, only devices whose own last_seen_at is older than that (or unset)
    are written: a fleet checking in every minute rewrites each device row at most once
    per `older_than`, and the time stays within it of the real last sign of life."""
    ids = sorted(set(device_ids))
    if not ids:
        return 0
    rows = Device.objects.filter(pk__in=ids)
    if older_than is not None:
        rows = rows.filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=at - older_than))
    return rows.update(last_seen_at=at)


def apply_agent_inventory(*, device_id: int, sections: dict[str, object], agent_ref: str,
                          observed_at: datetime) -> list[str]:
    """Apply an inventory delta from an agent: each given section replaces the stored one.

    Returns the changed device fields and section names. Unknown sections are ignored.
    """
    known = {}
    for name, data in (sections or {}).items():
        if name not in SECTIONS:
            log.info("agent %s sent unknown inventory section %r; ignored", agent_ref, name)
            continue
        expected = dict if name == "system" else list
        if not isinstance(data, expected):
            raise ValueError(f"section {name!r} must be a {expected.__name__}")
        if expected is list:
            data = [item for item in data if isinstance(item, dict)]
        known[name] = data
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device_id)
        before_row = audit.snapshot(device)
        stored = {s.section: s for s in DeviceSection.objects.filter(device=device)}
        changed: list[str] = []
        upserts = []
        for name, data in known.items():
            digest = canonical_hash(data)  # as the agent hashes it
            old = stored.get(name)
            if old is not None and old.hash == digest:
                continue
            handler = _SECTION_HANDLERS.get(name)
            if handler is not None:
                changed.extend(handler(device, data, old.data if old else None, agent_ref,
                                       observed_at))
            essence = _SECTION_ESSENCE.get(name)
            if old is None or essence is None or essence(old.data) != essence(data):
                changed.append(name)
            # else: only readings moved (temperature, hours): stored, not a change
            upserts.append(DeviceSection(device=device, section=name, hash=digest, data=data,
                                         source_ref=f"agent:{agent_ref}"[:100],
                                         observed_at=observed_at))
        if upserts:
            DeviceSection.objects.bulk_create(
                upserts, update_conflicts=True, unique_fields=["device", "section"],
                update_fields=["hash", "data", "source_ref", "observed_at"])
            record_provenance(device, {f"section:{u.section}": u.hash for u in upserts},
                              source_kind=SourceKind.AGENT, source_ref=agent_ref,
                              observed_at=observed_at)
        device.inventory_at = observed_at
        if device.last_seen_at is None or device.last_seen_at < observed_at:
            device.last_seen_at = observed_at
        if changed:
            device.updated_at = timezone.now()
        device.save()
        if changed:
            col_changes = audit.diff(before_row, audit.snapshot(device))
            for noise in ("inventory_at", "last_seen_at", "updated_at"):
                col_changes.pop(noise, None)
            audit.record(actor=f"agent:{agent_ref}", action=AuditAction.UPDATE, obj=device,
                         changes={**col_changes, "sections": [None, sorted(
                             s for s in changed if s in SECTIONS)]})
            events.emit(ev.DeviceChanged(id=device.pk, changed=sorted(set(changed)),
                                         source=SourceKind.AGENT, source_ref=agent_ref),
                        client=device.client_id)
    return sorted(set(changed))


def _apply_system(device, data, old, agent_ref, at) -> list[str]:
    values = {k: data.get(k, UNKNOWN) for k in SYSTEM_KEYS if k in data}
    record_provenance(device, values, source_kind=SourceKind.AGENT, source_ref=agent_ref,
                      observed_at=at)
    columns = {col: values.get(key) for key, col in SYSTEM_COLUMNS.items()}
    kinds = {f: ChangeKind.HARDWARE_CHANGED for f in ("manufacturer", "model", "serial")}
    changed = apply_observed_fields(device, columns, source_kind=SourceKind.AGENT,
                                    source_ref=agent_ref, observed_at=at, history_kinds=kinds)
    reboot = values.get("reboot_required")
    if isinstance(reboot, bool) and reboot != device.reboot_required:
        device.reboot_required = reboot
        changed.append("reboot_required")
    pending = values.get("pending_update_count")
    if isinstance(pending, int) and not isinstance(pending, bool) and (
            0 <= pending <= 1_000_000) and pending != device.pending_updates:
        device.pending_updates = pending
        changed.append("pending_updates")
    # Facts kept only in the section: their changes still go on the timeline.
    if old:
        extra = []
        for key in ("cpu_model", "cpu_cores", "ram_bytes", "kernel", "domain", "firewall",
                    "disk_encryption", "endpoint_protection"):
            if key in values and as_text(old.get(key)) != as_text(values[key]):
                extra.append(DeviceChange(
                    device=device, subject=key, before=as_text(old.get(key)),
                    after=as_text(values[key]), source_kind=SourceKind.AGENT,
                    source_ref=agent_ref, at=at,
                    kind=ChangeKind.HARDWARE_CHANGED if key in HARDWARE_KEYS
                    else ChangeKind.FIELD_CHANGED))
        DeviceChange.objects.bulk_create(extra)
        changed.extend(c.subject for c in extra)
    return changed


def _apply_disks(device, data, old, agent_ref, at) -> list[str]:
    if old is None:
        return []

    def key(d):
        return as_text(d.get("device")) or as_text(d.get("mountpoint"))

    before = {key(d): as_text(d.get("total_bytes")) for d in old if isinstance(d, dict)}
    after = {key(d): as_text(d.get("total_bytes")) for d in data}
    rows = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            rows.append(DeviceChange(
                device=device, kind=ChangeKind.HARDWARE_CHANGED, subject=f"disk {name}",
                before=before.get(name, ""), after=after.get(name, ""),
                source_kind=SourceKind.AGENT, source_ref=agent_ref, at=at))
    DeviceChange.objects.bulk_create(rows)
    return []


def _apply_drives(device, data, old, agent_ref, at) -> list[str]:
    """Physical drives (SMART, from smartctl): a drive swapped on a port and a change of
    SMART verdict go on the timeline; temperature and hours change every report, so not."""
    if old is None:
        return []

    def facts(rows) -> dict[str, tuple[str, str]]:
        return {as_text(d.get("device")): (
            " ".join(as_text(d.get(k)) for k in ("model", "serial")
                     if d.get(k) not in (None, "", UNKNOWN)),
            as_text(d.get("smart_status"))) for d in rows if isinstance(d, dict)}

    before, after = facts(old), facts(data)
    rows = []
    for name in sorted(set(before) | set(after)):
        (was, was_status), (now, now_status) = before.get(name, ("", "")), after.get(
            name, ("", ""))
        if was != now:
            rows.append(DeviceChange(
                device=device, kind=ChangeKind.HARDWARE_CHANGED, subject=f"drive {name}"[:255],
                before=was, after=now, source_kind=SourceKind.AGENT, source_ref=agent_ref,
                at=at))
        elif was_status != now_status:
            rows.append(DeviceChange(
                device=device, kind=ChangeKind.FIELD_CHANGED,
                subject=f"drive {name} SMART"[:255], before=was_status, after=now_status,
                source_kind=SourceKind.AGENT, source_ref=agent_ref, at=at))
    DeviceChange.objects.bulk_create(rows)
    return []


SECTOR_ATTRIBUTES = (5, 197, 198)  # reallocated, pending, offline-uncorrectable sectors


def _drives_essence(rows: Any) -> list[tuple]:
    """What about the drives is a change worth an audit row and a `device.changed` event:
    identity, verdict, failing attributes, sector counts, NVMe health — not the temperature,
    power-on hours or raw counters that move on every report (those are readings: the
    section is still stored, so the page and the smart check see the latest)."""
    out = []
    for d in rows if isinstance(rows, list) else []:
        if not isinstance(d, dict):
            continue
        attrs = []
        for a in d.get("attributes") or []:
            if not isinstance(a, dict):
                continue
            value, thresh = a.get("value"), a.get("thresh")
            below = (bool(a.get("prefailure")) and isinstance(value, int)
                     and isinstance(thresh, int) and 0 < thresh and value <= thresh)
            attrs.append((a.get("id"), a.get("when_failed") or "", below,
                          a.get("raw") if a.get("id") in SECTOR_ATTRIBUTES else None))
        out.append((as_text(d.get("device")), as_text(d.get("model")),
                    as_text(d.get("serial")), as_text(d.get("capacity_bytes")),
                    as_text(d.get("smart_status")), as_text(d.get("error")),
                    sorted(attrs, key=repr),
                    *(as_text(d.get(k)) for k in ("critical_warning", "available_spare",
                                                  "available_spare_threshold",
                                                  "percentage_used", "media_errors"))))
    return sorted(out, key=repr)


def _apply_interfaces(device, data, old, agent_ref, at) -> list[str]:
    rows = []
    for iface in data:
        name = as_text(iface.get("name"))[:100]
        mac = normalise_mac(iface.get("mac"))
        ips = [ip for ip in (_valid_ip(a) for a in [*(iface.get("ipv4") or []),
                                                   *(iface.get("ipv6") or [])]
                             if isinstance(a, str)) if ip]
        if not ips and mac:
            rows.append(NetworkAddress(device=device, interface=name, mac=mac, address=None))
        rows.extend(NetworkAddress(device=device, interface=name, mac=mac, address=ip)
                    for ip in ips)
    before_ips = set(NetworkAddress.objects.filter(device=device, address__isnull=False)
                     .values_list("address", flat=True))
    NetworkAddress.objects.filter(device=device).delete()
    NetworkAddress.objects.bulk_create(rows)
    after_ips = {r.address for r in rows if r.address}
    changed = []
    if old is not None and before_ips != after_ips:
        DeviceChange.objects.create(
            device=device, kind=ChangeKind.IP_CHANGED, subject="addresses",
            before=", ".join(sorted(before_ips)), after=", ".join(sorted(after_ips)),
            source_kind=SourceKind.AGENT, source_ref=agent_ref, at=at)
    primary = _primary_address(rows)
    values = {"primary_ip": primary[0], "primary_mac": primary[1]}
    changed += apply_observed_fields(device, values, source_kind=SourceKind.AGENT,
                                     source_ref=agent_ref, observed_at=at,
                                     history_kinds={"primary_ip": ChangeKind.IP_CHANGED})
    record_provenance(device, values, source_kind=SourceKind.AGENT, source_ref=agent_ref,
                      observed_at=at)
    if any(isinstance(i, dict) and "gateway" in i for i in data):
        _observe_gateways(device, data, at)
    return changed


def _observe_gateways(device, data, at) -> None:
    """The agent's default gateways as the device's "gateway" relations (source agent):
    each gateway address that is a known device of the same client becomes its parent.
    Only sent by agents that read their routes; what a person set is never touched."""
    from .relations import actions as relation_actions
    from .relations.choices import RelationKind, RelationSource

    gateways = sorted({ip for ip in (_valid_ip(i.get("gateway")) for i in data
                                     if isinstance(i, dict)) if ip})
    parents = []
    for ip in gateways:
        parent = (Device.objects.filter(client_id=device.client_id, addresses__address=ip)
                  .exclude(pk=device.pk).order_by("id").first())
        if parent is not None:
            parents.append((parent, f"default gateway {ip}"))
    relation_actions.record_observed(device=device, kind=RelationKind.GATEWAY,
                                     source=RelationSource.AGENT, parents=parents, at=at)


def _primary_address(rows: list[NetworkAddress]) -> tuple[str | None, str]:
    """The first non-loopback, non-link-local IPv4 (then IPv6) and its MAC."""
    def rank(r):
        ip = ipaddress.ip_address(r.address)
        return (ip.version, ip.is_private is False)
    usable = [r for r in rows if r.address and not ipaddress.ip_address(r.address).is_loopback
              and not ipaddress.ip_address(r.address).is_link_local]
    if not usable:
        mac = next((r.mac for r in rows if r.mac), "")
        return None, mac
    best = sorted(usable, key=rank)[0]
    return best.address, best.mac


def _apply_software(device, data, old, agent_ref, at) -> list[str]:
    incoming: dict[tuple[str, str], str] = {}
    for item in data:
        name = as_text(item.get("name")).strip()[:255]
        if name:
            incoming[(name, as_text(item.get("source"))[:50])] = as_text(
                item.get("version"))[:200]
    existing = {(r.name, r.source): r for r in SoftwareInstall.objects.filter(device=device)}
    first_report = not existing and old is None
    new_rows, upgraded, removed_ids, history = [], [], [], []
    for key, version in incoming.items():
        row = existing.get(key)
        if row is None:
            new_rows.append(SoftwareInstall(device=device, name=key[0], source=key[1],
                                            version=version, first_seen_at=at))
            if not first_report:
                history.append((ChangeKind.SOFTWARE_INSTALLED, key[0], "", version))
        elif row.version != version:
            history.append((ChangeKind.SOFTWARE_UPGRADED, key[0], row.version, version))
            row.version = version
            upgraded.append(row)
    for key, row in existing.items():
        if key not in incoming:
            removed_ids.append(row.pk)
            history.append((ChangeKind.SOFTWARE_REMOVED, key[0], row.version, ""))
    SoftwareInstall.objects.filter(pk__in=removed_ids).delete()
    SoftwareInstall.objects.bulk_create(new_rows, batch_size=500)
    SoftwareInstall.objects.bulk_update(upgraded, ["version"], batch_size=500)
    rows = [DeviceChange(device=device, kind=k, subject=s[:255], before=b, after=a,
                         source_kind=SourceKind.AGENT, source_ref=agent_ref, at=at)
            for k, s, b, a in history]
    if first_report:
        rows.append(DeviceChange(device=device, kind=ChangeKind.FIELD_CHANGED,
                                 subject="software", after=f"{len(new_rows)} packages reported",
                                 source_kind=SourceKind.AGENT, source_ref=agent_ref, at=at))
    DeviceChange.objects.bulk_create(rows, batch_size=500)
    return []


def _apply_updates(device, data, old, agent_ref, at) -> list[str]:
    if device.pending_updates != min(len(data), 1_000_000):
        device.pending_updates = min(len(data), 1_000_000)
        return ["pending_updates"]
    return []


# Sections whose reports also carry readings: a change counts only when this differs.
_SECTION_ESSENCE = {"drives": _drives_essence}

_SECTION_HANDLERS = {
    "system": _apply_system,
    "disks": _apply_disks,
    "drives": _apply_drives,
    "interfaces": _apply_interfaces,
    "software": _apply_software,
    "updates": _apply_updates,
}


# --- Reads for other apps ---------------------------------------------------------------

def device_status_summary(device_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Narrow facts per device for other apps' lists (one query)."""
    rows = Device.objects.filter(pk__in=list(device_ids)).values(
        "id", "name", "client_id", "site_id", "kind", "status", "last_seen_at",
        "reboot_required", "pending_updates", "agent_ref")
    return {r["id"]: r for r in rows}


def known_section_hashes(device_id: int) -> dict[str, str]:
    """The hashes the server holds per section: what the agent diffs its inventory against."""
    return dict(DeviceSection.objects.filter(device_id=device_id)
                .values_list("section", "hash"))
