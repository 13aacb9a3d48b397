"""Spreadsheet import: parse CSV/XLSX, guess the column mapping, validate rows, match them to
existing devices (serial, then MAC, then hostname), preview what will be created, updated and
what conflicts with machine-reported facts, then apply.

A bad row is reported with its line number and reason and never stops the good rows. A value
an agent or a scan reported is never overwritten by an import without a person's decision:
conflicts are listed in the preview, and any left undecided at apply become open
FieldConflicts on the device.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.csvsafe import unescape_cell
from watchkeeper.core.models import Contact, Site

from . import events as ev
from .choices import ChangeKind, DeviceKind, ImportStatus, LifecycleStatus, SourceKind
from .models import (
    Device,
    DeviceChange,
    FieldConflict,
    FieldProvenance,
    ImportRun,
    NetworkAddress,
)
from .services import as_text, normalise_mac, record_provenance

MAX_ROWS = 20_000
MAX_BYTES = 20 * 1024 * 1024

# Target fields of a mapping, with the header names (lower-case, no punctuation) each one
# is guessed from. The first name of each list is the column name of our own CSV export,
# so an export re-imports with no mapping work.
TARGETS: dict[str, tuple[str, ...]] = {
    "name": ("name", "device", "devicename", "asset", "assetname", "computername"),
    "site": ("site", "office", "branch"),
    "kind": ("kind", "type", "devicetype", "assettype", "category"),
    "status": ("status", "state", "lifecycle"),
    "hostname": ("hostname", "host", "dnsname", "fqdn", "computer"),
    "serial": ("serial", "serialnumber", "serialno", "sn", "servicetag"),
    "mac": ("primarymac", "mac", "macaddress", "ethernetmac"),
    "ip": ("primaryip", "ip", "ipaddress", "ipv4"),
    "manufacturer": ("manufacturer", "make", "vendor", "brand"),
    "model": ("model", "modelname", "product"),
    "os_name": ("osname", "os", "operatingsystem"),
    "os_version": ("osversion", "version", "build"),
    "purchase_date": ("purchasedate", "purchased", "dateofpurchase", "bought"),
    "cost": ("cost", "price", "purchaseprice", "value"),
    "warranty_end": ("warrantyend", "warranty", "warrantyexpiry", "warrantyexpires"),
    "end_of_support": ("endofsupport", "eos", "eol", "endoflife"),
    "assigned_to": ("assignedto", "user", "owner", "assigneduser", "employee"),
    "location": ("location", "room", "desk"),
    "notes": ("notes", "comment", "comments", "description"),
}
EXPORT_COLUMNS = ["name", "client", "site", "kind", "status", "hostname", "serial",
                  "primary_mac", "primary_ip", "manufacturer", "model", "os_name",
                  "os_version", "purchase_date", "cost", "warranty_end", "end_of_support",
                  "assigned_to", "location", "notes"]
DATE_FIELDS = ("purchase_date", "warranty_end", "end_of_support")
# Device columns an import row writes (mac/ip go to primary_mac/primary_ip).
COLUMN_OF = {"mac": "primary_mac", "ip": "primary_ip", "site": "site_id",
             "assigned_to": "assigned_contact_id"}
MACHINE_SOURCES = (SourceKind.AGENT, SourceKind.NETWORK_SCAN)

KIND_WORDS = {
    "desktop": DeviceKind.WORKSTATION, "pc": DeviceKind.WORKSTATION,
    "notebook": DeviceKind.LAPTOP, "virtual": DeviceKind.VM, "virtualmachine": DeviceKind.VM,
    "switch": DeviceKind.NETWORK, "router": DeviceKind.NETWORK,
    "firewall": DeviceKind.NETWORK, "accesspoint": DeviceKind.NETWORK,
    "ap": DeviceKind.NETWORK, "networkdevice": DeviceKind.NETWORK, "mfp": DeviceKind.PRINTER,
}
STATUS_WORDS = {"instock": LifecycleStatus.IN_STOCK, "stock": LifecycleStatus.IN_STOCK,
                "spare": LifecycleStatus.IN_STOCK, "active": LifecycleStatus.DEPLOYED,
                "inuse": LifecycleStatus.DEPLOYED, "deployed": LifecycleStatus.DEPLOYED,
                "retired": LifecycleStatus.RETIRED, "disposed": LifecycleStatus.RETIRED,
                "decommissioned": LifecycleStatus.RETIRED}
MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


class ImportError_(ValueError):
    """The file cannot be read at all (as opposed to a bad row)."""


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(header).lower())


# --- Reading ----------------------------------------------------------------------------

def read_table(filename: str, raw: bytes) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (strings) of the first sheet of an XLSX or of a CSV file."""
    if len(raw) > MAX_BYTES:
        raise ImportError_(f"The file is larger than {MAX_BYTES // 2**20} MB.")
    if filename.lower().endswith((".xlsx", ".xlsm")) or raw[:2] == b"PK":
        return _read_xlsx(raw)
    return _read_csv(raw)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() \
            else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_xlsx(raw: bytes) -> tuple[list[str], list[list[str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken archive
        raise ImportError_(f"Not a readable XLSX file ({type(exc).__name__}).") from exc
    try:
        sheet = book.worksheets[0]
        rows = []
        for values in sheet.iter_rows(values_only=True):
            rows.append([_cell(v) for v in values])
            if len(rows) > MAX_ROWS + 1:
                raise ImportError_(f"More than {MAX_ROWS} rows; split the file.")
    finally:
        book.close()
    return _split(rows)


def _read_csv(raw: bytes) -> tuple[list[str], list[list[str]]]:
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = []
    for values in csv.reader(io.StringIO(text), dialect):
        rows.append([unescape_cell(v.strip()) for v in values])
        if len(rows) > MAX_ROWS + 1:
            raise ImportError_(f"More than {MAX_ROWS} rows; split the file.")
    return _split(rows)


def _split(rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    while rows and not any(rows[-1]):
        rows.pop()
    if not rows or not any(rows[0]):
        raise ImportError_("The file has no header row.")
    headers = [h or f"column {i + 1}" for i, h in enumerate(rows[0])]
    width = len(headers)
    body = [(r + [""] * width)[:width] for r in rows[1:]]
    return headers, body


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """{header: target} for headers whose name is a known synonym; each target used once."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for rank in range(max(len(v) for v in TARGETS.values())):
        for header in headers:
            if header in mapping:
                continue
            key = _key(header)
            for target, names in TARGETS.items():
                if target not in used and rank < len(names) and names[rank] == key:
                    mapping[header] = target
                    used.add(target)
                    break
    return mapping


# --- Values -----------------------------------------------------------------------------

def parse_date(text: str, order: str = "dmy") -> date:
    """ISO, d/m/y or m/d/y (by `order`), '12 Mar 2024', 'Mar 12, 2024', Excel serials."""
    text = text.strip()
    if re.fullmatch(r"\d{4,5}(\.\d+)?", text):
        serial = float(text)
        if 20000 <= serial <= 80000:  # 1954 .. 2119: an Excel day count, not a year
            return date(1899, 12, 30) + timedelta(days=int(serial))
        raise ValueError(f"{text!r} is not a date")
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?", text)
    if m:
        return date(int(m[1]), int(m[2]), int(m[3]))
    m = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})", text)
    if m:
        a, b, year = int(m[1]), int(m[2]), int(m[3])
        year = year + 2000 if year < 100 else year
        day, month = (a, b) if order == "dmy" else (b, a)
        return date(year, month, day)
    m = re.fullmatch(r"(\d{1,2})[ \-]([A-Za-z]{3,9})\.?[ \-,]+(\d{4})", text)
    if m and m[2][:3].lower() in MONTHS:
        return date(int(m[3]), MONTHS[m[2][:3].lower()], int(m[1]))
    m = re.fullmatch(r"([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})", text)
    if m and m[1][:3].lower() in MONTHS:
        return date(int(m[3]), MONTHS[m[1][:3].lower()], int(m[2]))
    raise ValueError(f"{text!r} is not a date")


def _choice(text: str, choices, words: dict) -> str:
    key = _key(text)
    for value, label in choices:
        if key in (_key(value), _key(label)):
            return value
    if key in words:
        return words[key]
    raise ValueError(f"{text!r} is not one of {', '.join(v for v, _ in choices)}")


def clean_row(raw: dict[str, str], order: str, sites: dict[str, int],
              contacts: dict[str, int]) -> dict[str, Any]:
    """Typed values of one mapped row; raises ValueError with the reason."""
    out: dict[str, Any] = {}
    for target, text in raw.items():
        text = (text or "").strip()
        if not text:
            continue
        if target in DATE_FIELDS:
            try:
                out[target] = parse_date(text, order)
            except ValueError as exc:
                raise ValueError(f"{target}: {exc}") from None
        elif target == "cost":
            try:
                # Drop currency signs and codes ("€ 1,299.00", "1299 EUR"), keep the number.
                bare = re.sub(r"^[A-Za-z]{3}\s*|\s*[A-Za-z]{3}$", "", text)
                bare = "".join(ch for ch in bare if unicodedata.category(ch) != "Sc"
                               and ch not in ", \u00a0")
                cost = Decimal(bare or "x").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            except InvalidOperation:
                raise ValueError(f"cost: {text!r} is not a number") from None
            if not cost.is_finite() or abs(cost) >= Decimal("1e10") or cost < 0:
                raise ValueError(f"cost: {text!r} is out of range")
            out["cost"] = cost
        elif target in ("kind", "status"):
            choices, words = ((DeviceKind.choices, KIND_WORDS) if target == "kind"
                              else (LifecycleStatus.choices, STATUS_WORDS))
            try:
                out[target] = _choice(text, choices, words)
            except ValueError as exc:
                raise ValueError(f"{target}: {exc}") from None
        elif target == "mac":
            mac = normalise_mac(text)
            if not mac:
                raise ValueError(f"mac: {text!r} is not a MAC address")
            out["mac"] = mac
        elif target == "ip":
            try:
                out["ip"] = str(ipaddress.ip_address(text))
            except ValueError:
                raise ValueError(f"ip: {text!r} is not an IP address") from None
        elif target == "site":
            if text.lower() not in sites:
                raise ValueError(f"site: no site named {text!r} for this client")
            out["site"] = sites[text.lower()]
        elif target == "assigned_to":
            if text.lower() not in contacts:
                raise ValueError(f"assigned_to: no contact {text!r} for this client")
            out["assigned_to"] = contacts[text.lower()]
        else:
            out[target] = text[:200] if target != "notes" else text
    if not (out.get("name") or out.get("hostname") or out.get("serial")):
        raise ValueError("a row needs a name, hostname or serial")
    return out


def export_row(device: Device) -> list[str]:
    contact = device.assigned_contact
    return [device.name, device.client.name, device.site.name if device.site else "",
            device.kind, device.status, device.hostname, device.serial, device.primary_mac,
            device.primary_ip or "", device.manufacturer, device.model, device.os_name,
            device.os_version, as_text(device.purchase_date), as_text(device.cost),
            as_text(device.warranty_end), as_text(device.end_of_support),
            (contact.email or contact.name) if contact else "", device.location, device.notes]


# --- Plan (preview) and apply -----------------------------------------------------------

def _column_values(values: dict[str, Any]) -> dict[str, Any]:
    return {COLUMN_OF.get(k, k): v for k, v in values.items()}


def build_plan(run: ImportRun) -> dict[str, Any]:
    """What applying `run` would do; pure reads. Stored as the run's report by `preview`."""
    client_id = run.client_id
    sites = {name.lower(): pk for pk, name in Site.objects.filter(client_id=client_id)
             .values_list("id", "name")}
    contacts: dict[str, int] = {}
    for pk, name, email in Contact.objects.filter(client_id=client_id).values_list(
            "id", "name", "email"):
        contacts.setdefault(name.lower(), pk)
        if email:
            contacts.setdefault(email.lower(), pk)
    devices = {d.pk: d for d in Device.objects.filter(client_id=client_id)}
    by_serial: dict[str, set[int]] = {}
    by_mac: dict[str, set[int]] = {}
    by_host: dict[str, set[int]] = {}
    for d in devices.values():
        if d.serial:
            by_serial.setdefault(d.serial.lower(), set()).add(d.pk)
        if d.primary_mac:
            by_mac.setdefault(d.primary_mac, set()).add(d.pk)
        if d.hostname:
            by_host.setdefault(d.hostname.lower(), set()).add(d.pk)
    for dev_id, mac in NetworkAddress.objects.filter(device__client_id=client_id).exclude(
            mac="").values_list("device_id", "mac"):
        by_mac.setdefault(mac, set()).add(dev_id)
    # Which source set each device's current value: machine-reported values conflict.
    machine_values: dict[tuple[int, str], tuple[str, str]] = {}
    for dev_id, field, kind, value in FieldProvenance.objects.filter(
            device__client_id=client_id, source_kind__in=MACHINE_SOURCES).values_list(
            "device_id", "field", "source_kind", "value"):
        machine_values[(dev_id, field)] = (kind, value)

    mapping = {h: t for h, t in run.mapping.items() if t in TARGETS}
    index = {h: i for i, h in enumerate(run.headers)}
    create, update, errors, conflicts = [], [], [], []
    claimed: dict[int, int] = {}
    seen_serials: dict[str, int] = {}
    for offset, row in enumerate(run.rows):
        line = offset + 2  # the header is line 1
        raw = {t: row[index[h]] for h, t in mapping.items() if h in index}
        if not any((v or "").strip() for v in raw.values()):
            continue
        try:
            values = clean_row(raw, run.date_order, sites, contacts)
        except ValueError as exc:
            errors.append({"line": line, "reason": str(exc)})
            continue
        serial = (values.get("serial") or "").lower()
        if serial and serial in seen_serials:
            errors.append({"line": line,
                           "reason": f"same serial as line {seen_serials[serial]}"})
            continue
        matches, matched_by = set(), ""
        for by, table, key in (("serial", by_serial, serial),
                               ("mac", by_mac, values.get("mac")),
                               ("hostname", by_host, (values.get("hostname") or "").lower())):
            if key and table.get(key):
                matches, matched_by = table[key], by
                break
        if len(matches) > 1:
            errors.append({"line": line, "reason": f"{matched_by} matches {len(matches)} "
                                                   "devices; fix the duplicates first"})
            continue
        if serial:
            seen_serials[serial] = line
        if not matches:
            # A new device with no name column is named after its hostname or serial.
            values.setdefault("name", values.get("hostname") or values.get("serial"))
            create.append({"line": line, "values": _jsonable(values)})
            continue
        dev_id = next(iter(matches))
        if dev_id in claimed:
            errors.append({"line": line,
                           "reason": f"matches the same device as line {claimed[dev_id]}"})
            continue
        claimed[dev_id] = line
        device = devices[dev_id]
        changes, row_conflicts = {}, []
        for target, value in values.items():
            column = COLUMN_OF.get(target, target)
            current = as_text(getattr(device, column))
            if current == as_text(value):
                continue
            machine = machine_values.get((dev_id, column))
            if current and machine and machine[1] == current:
                row_conflicts.append({"line": line, "device": dev_id, "name": device.name,
                                      "field": column, "current": current,
                                      "current_source": machine[0],
                                      "proposed": as_text(value)})
            else:
                changes[column] = [current, as_text(value)]
        conflicts.extend(row_conflicts)
        update.append({"line": line, "device": dev_id, "name": device.name,
                       "matched_by": matched_by, "values": _jsonable(values),
                       "changes": changes})
    return {"create": create, "update": update, "errors": errors, "conflicts": conflicts,
            "counts": {"create": len(create), "update": len(update), "errors": len(errors),
                       "conflicts": len(conflicts),
                       "unchanged": sum(1 for u in update if not u["changes"])}}


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: as_text(v) for k, v in values.items()}


def _typed(values: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in values.items():
        column = COLUMN_OF.get(key, key)
        if key in DATE_FIELDS:
            out[column] = date.fromisoformat(text)
        elif key == "cost":
            out[column] = Decimal(text)
        elif key in ("site", "assigned_to"):
            out[column] = int(text)
        else:
            out[column] = text
    return out


# --- Actions ----------------------------------------------------------------------------

def upload(*, actor, client, filename: str, raw: bytes) -> ImportRun:
    headers, rows = read_table(filename, raw)
    with transaction.atomic():
        run = ImportRun.objects.create(client=client, filename=filename[:255], headers=headers,
                                       rows=rows, mapping=guess_mapping(headers),
                                       created_by=actor if getattr(actor, "pk", None)
                                       else None)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=run,
                     changes={"filename": [None, run.filename], "rows": [None, len(rows)]})
        events.emit(ev.DeviceImportUploaded(id=run.pk, rows=len(rows)), client=client)
    return run


def set_mapping(*, actor, run: ImportRun, mapping: dict[str, str],
                date_order: str = "dmy") -> ImportRun:
    """Store the mapping and the preview it produces."""
    if run.status == ImportStatus.APPLIED:
        raise ValidationError("This import has already been applied.")
    clean = {h: t for h, t in mapping.items() if h in run.headers and t in TARGETS}
    targets = list(clean.values())
    dupes = {t for t in targets if targets.count(t) > 1}
    if dupes:
        raise ValidationError(f"Each field can be mapped once: {', '.join(sorted(dupes))}.")
    if date_order not in ("dmy", "mdy"):
        raise ValidationError("Date order must be dmy or mdy.")
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run.pk)
        before = {"mapping": run.mapping, "date_order": run.date_order}
        run.mapping, run.date_order = clean, date_order
        run.report = build_plan(run)
        run.status = ImportStatus.MAPPED
        run.save(update_fields=["mapping", "date_order", "report", "status"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=run,
                     changes={"mapping": [before["mapping"], clean],
                              "date_order": [before["date_order"], date_order]})
        events.emit(ev.DeviceImportMapped(id=run.pk, counts=run.report["counts"]),
                    client=run.client_id)
    return run


def apply(*, actor, run: ImportRun, decisions: dict[str, str] | None = None) -> ImportRun:
    """Apply the mapped import. `decisions` maps "<device id>:<field>" to "take" or "keep"
    for listed conflicts; an undecided conflict becomes an open FieldConflict."""
    decisions = decisions or {}
    at = timezone.now()
    ref = f"import:{run.pk}"
    who = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run.pk)
        if run.status != ImportStatus.MAPPED:
            raise ValidationError("Map the columns and review the preview first.")
        plan = build_plan(run)  # the inventory may have moved since the preview
        created_ids = _apply_creates(run, plan["create"], ref, who, at)
        conflict_map = {(c["device"], c["field"]): c for c in plan["conflicts"]}
        updated_ids, open_conflicts, taken = [], [], 0
        updated: dict[int, list[str]] = {}
        devices = Device.objects.select_for_update().in_bulk(
            sorted(u["device"] for u in plan["update"]))
        for item in plan["update"]:
            device = devices[item["device"]]
            values = _typed(item["values"])
            apply_now, provenance = {}, {}
            for column, value in values.items():
                provenance[column] = value
                conflict = conflict_map.get((device.pk, column))
                if conflict is None:
                    if as_text(getattr(device, column)) != as_text(value):
                        apply_now[column] = value
                    continue
                choice = decisions.get(f"{device.pk}:{column}")
                if choice == "take":
                    apply_now[column] = value
                    taken += 1
                elif choice != "keep":
                    open_conflicts.append(FieldConflict(
                        device=device, field=column, current_value=conflict["current"],
                        current_source=conflict["current_source"],
                        proposed_value=conflict["proposed"],
                        proposed_source=SourceKind.IMPORT, proposed_ref=ref))
            if apply_now:
                _write(device, apply_now, ref, at)
                updated_ids.append(device.pk)
                updated[device.pk] = sorted(apply_now)
            record_provenance(device, provenance, source_kind=SourceKind.IMPORT,
                              source_ref=ref, observed_at=at, who=who)
        FieldConflict.objects.bulk_create(open_conflicts)
        report = {**plan, "applied": {"created": created_ids, "updated": updated_ids,
                                      "conflicts_taken": taken,
                                      "conflicts_open": len(open_conflicts)}}
        report["counts"]["created"] = len(created_ids)
        report["counts"]["updated"] = len(updated_ids)
        run.report, run.status, run.applied_at = report, ImportStatus.APPLIED, at
        run.save(update_fields=["report", "status", "applied_at"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=run,
                     changes={"status": [ImportStatus.MAPPED, ImportStatus.APPLIED],
                              "created": [None, len(created_ids)],
                              "updated": [None, len(updated_ids)],
                              "errors": [None, len(plan["errors"])]})
        for device in Device.objects.filter(pk__in=created_ids).only("id", "name"):
            events.emit(ev.DeviceCreated.of(device, source=SourceKind.IMPORT, source_ref=ref),
                        client=run.client_id)
        for pk, columns in updated.items():
            events.emit(ev.DeviceChanged(id=pk, changed=columns, source=SourceKind.IMPORT,
                                         source_ref=ref), client=run.client_id)
        events.emit(ev.DeviceImportApplied(id=run.pk, counts=report["counts"]),
                    client=run.client_id)
    return run


def _apply_creates(run: ImportRun, items: list[dict], ref: str, who, at) -> list[int]:
    new = []
    for item in items:
        values = _typed(item["values"])
        new.append(Device(client_id=run.client_id, source=SourceKind.IMPORT, created_at=at,
                          updated_at=at, **values))
    Device.objects.bulk_create(new, batch_size=500)
    provenance, changes = [], []
    for device, item in zip(new, items, strict=True):
        for column, value in _typed(item["values"]).items():
            provenance.append(FieldProvenance(device=device, field=column,
                                              source_kind=SourceKind.IMPORT, source_ref=ref,
                                              value=as_text(value), observed_at=at, who=who))
        changes.append(DeviceChange(device=device, kind=ChangeKind.CREATED, subject="device",
                                    after=device.name, source_kind=SourceKind.IMPORT,
                                    source_ref=ref, at=at))
    FieldProvenance.objects.bulk_create(provenance, batch_size=1000)
    DeviceChange.objects.bulk_create(changes, batch_size=1000)
    return [d.pk for d in new]


def _write(device: Device, values: dict[str, Any], ref: str, at) -> None:
    changes = []
    for column, value in values.items():
        changes.append(DeviceChange(device=device, kind=ChangeKind.FIELD_CHANGED,
                                    subject=column, before=as_text(getattr(device, column)),
                                    after=as_text(value), source_kind=SourceKind.IMPORT,
                                    source_ref=ref, at=at))
        setattr(device, column, value)
    device.updated_at = at
    device.save(update_fields=[*values, "updated_at"])
    DeviceChange.objects.bulk_create(changes)

