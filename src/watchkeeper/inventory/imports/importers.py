"""Spreadsheet import: parse CSV/XLSX, guess the column mapping, read every value with the
notation it is written in, check duplicate keys across the whole file, match rows to
existing devices (serial, asset tag, MAC, then hostname), preview every value that will be
written, then apply.

What the importer guarantees (docs/inventory.md, "Import"):
- a value is written only as it reads unambiguously: each date and amount is read with the
  notation detected for that value, a column's unambiguous values decide how its ambiguous
  ones read, and what stays ambiguous waits for a person's decision in the preview (apply is
  refused until it is decided, or the person chooses to leave such values empty);
- an amount keeps its currency (`cost_currency`), and one with more than two decimals is
  refused, not rounded;
- a row with more or fewer fields than the header is reported as such, never shifted;
- rows sharing a serial, MAC or asset tag are found across the whole file first and shown as
  one decision: which row wins (or none); no row wins by its position;
- a bad row is reported with its line and reason and never stops the good rows;
- a value an agent or a scan reported is never overwritten without a person's decision:
  conflicts are listed in the preview, and any left undecided become open FieldConflicts.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from watchkeeper.core import audit, events
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.csvsafe import unescape_cell
from watchkeeper.core.models import Contact, Site

from .. import events as ev
from .. import values as notation
from ..choices import ChangeKind, DeviceKind, ImportStatus, LifecycleStatus, SourceKind
from ..models import (
    Device,
    DeviceChange,
    FieldConflict,
    FieldProvenance,
    ImportRun,
    NetworkAddress,
)
from ..services import as_text, normalise_mac, record_provenance

MAX_ROWS = 20_000
MAX_BYTES = 20 * 1024 * 1024

# Target fields of a mapping, with the header names (lower-case, no punctuation) each one
# is guessed from. The first name of each list is the column name of our own CSV export,
# so an export re-imports with no mapping work. The rest covers the usual exports of
# Snipe-IT, Lansweeper, IT Glue, Hudu, NinjaOne and Intune (earlier names win a tie).
TARGETS: dict[str, tuple[str, ...]] = {
    "name": ("name", "device", "devicename", "asset", "assetname", "computername",
             "displayname", "configurationname"),
    "site": ("site", "office", "branch"),
    "kind": ("kind", "type", "devicetype", "assettype", "category", "configurationtype",
             "assetlayout", "role", "devicerole"),
    "status": ("status", "state", "lifecycle", "configurationstatus", "assetstate"),
    "hostname": ("hostname", "host", "dnsname", "fqdn", "computer", "systemname"),
    "serial": ("serial", "serialnumber", "serialno", "sn", "servicetag", "primaryserial"),
    "asset_tag": ("assettag", "tag", "assetnumber", "inventorynumber", "assetid",
                  "tagnumber"),
    "mac": ("primarymac", "mac", "macaddress", "ethernetmac", "macaddresses", "wifimac",
            "primarymacaddress"),
    "ip": ("primaryip", "ip", "ipaddress", "ipv4", "ipaddresses", "lastip", "ipv4address"),
    "manufacturer": ("manufacturer", "make", "vendor", "brand", "primarymanufacturer",
                     "systemmanufacturer"),
    "model": ("model", "modelname", "product", "primarymodel", "systemmodel", "modelno"),
    "os_name": ("osname", "os", "operatingsystem", "osdescription"),
    "os_version": ("osversion", "version", "build", "operatingsystemversion", "osbuild"),
    "purchase_date": ("purchasedate", "purchased", "dateofpurchase", "bought", "purchasedat",
                      "orderdate"),
    "cost": ("cost", "price", "purchaseprice", "value", "purchasecost", "unitcost"),
    "cost_currency": ("costcurrency", "currency", "purchasecurrency"),
    "warranty_end": ("warrantyend", "warranty", "warrantyexpiry", "warrantyexpires",
                     "warrantyexpiration", "warrantyexpiresat", "warrantyenddate",
                     "warrantydate", "warrantyexpirationdate", "warrantyuntil"),
    "end_of_support": ("endofsupport", "eos", "eol", "endoflife", "eoldate"),
    "assigned_to": ("assignedto", "user", "owner", "assigneduser", "employee",
                    "checkedoutto", "primaryuserupn", "primaryuseremailaddress"),
    "location": ("location", "room", "desk", "defaultlocation"),
    "notes": ("notes", "comment", "comments", "description", "operatingsystemnotes"),
}
EXPORT_COLUMNS = ["name", "client", "site", "kind", "status", "hostname", "serial",
                  "asset_tag", "primary_mac", "primary_ip", "manufacturer", "model",
                  "os_name", "os_version", "purchase_date", "cost", "cost_currency",
                  "warranty_end", "end_of_support", "assigned_to", "location", "notes"]
DATE_FIELDS = ("purchase_date", "warranty_end", "end_of_support")
KEY_FIELDS = ("serial", "mac", "asset_tag")  # duplicate keys within a file
# Device columns an import row writes (mac/ip go to primary_mac/primary_ip).
COLUMN_OF = {"mac": "primary_mac", "ip": "primary_ip", "site": "site_id",
             "assigned_to": "assigned_contact_id"}
MACHINE_SOURCES = (SourceKind.AGENT, SourceKind.NETWORK_SCAN)

KIND_WORDS = {
    "desktop": DeviceKind.WORKSTATION, "pc": DeviceKind.WORKSTATION,
    "windowsdesktop": DeviceKind.WORKSTATION, "windowsworkstation": DeviceKind.WORKSTATION,
    "notebook": DeviceKind.LAPTOP, "virtual": DeviceKind.VM, "virtualmachine": DeviceKind.VM,
    "windowsserver": DeviceKind.SERVER, "linuxserver": DeviceKind.SERVER,
    "switch": DeviceKind.NETWORK, "router": DeviceKind.NETWORK,
    "firewall": DeviceKind.NETWORK, "accesspoint": DeviceKind.NETWORK,
    "ap": DeviceKind.NETWORK, "networkdevice": DeviceKind.NETWORK, "mfp": DeviceKind.PRINTER,
}
STATUS_WORDS = {"instock": LifecycleStatus.IN_STOCK, "stock": LifecycleStatus.IN_STOCK,
                "spare": LifecycleStatus.IN_STOCK, "readytodeploy": LifecycleStatus.IN_STOCK,
                "pending": LifecycleStatus.IN_STOCK, "active": LifecycleStatus.DEPLOYED,
                "inuse": LifecycleStatus.DEPLOYED, "deployed": LifecycleStatus.DEPLOYED,
                "retired": LifecycleStatus.RETIRED, "disposed": LifecycleStatus.RETIRED,
                "archived": LifecycleStatus.RETIRED, "inactive": LifecycleStatus.RETIRED,
                "decommissioned": LifecycleStatus.RETIRED}
_HEADER_CURRENCY = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])|\(([^\w\s()]{1,3})\)")


class ImportError_(ValueError):
    """The file cannot be read at all (as opposed to a bad row)."""


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(header).lower())


def _header_key(header: str) -> str:
    """A header's key without a currency it names ('Cost (EUR)', 'Price €' -> cost, price)."""
    text = re.sub(r"\(([^)]*)\)", lambda m: "" if header_currency(m[0]) else m[0],
                  str(header))
    text = re.sub(r"[€£$¥]", "", text).strip()
    last = re.search(r"(?<![A-Za-z])([A-Z]{3})$", text)
    if last and last[1] in notation.ISO_CODES:
        text = text[:last.start()]
    return _key(text) or _key(header)


# --- Reading ----------------------------------------------------------------------------

def read_table(filename: str, raw: bytes) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (strings, as long as they are in the file) of the first sheet of an
    XLSX or of a CSV file."""
    if len(raw) > MAX_BYTES:
        raise ImportError_(f"The file is larger than {MAX_BYTES // 2**20} MB.")
    if filename.lower().endswith((".xlsx", ".xlsm")) or raw[:2] == b"PK":
        return _read_xlsx(raw)
    return _read_csv(raw)


_FORMAT_CURRENCY = re.compile(r"\[\$([^\]\-]+)|\"([^\"]+)\"|([€£$¥])")


def _cell(value: Any, number_format: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() \
            else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        text = str(int(value)) if isinstance(value, int) or value.is_integer() \
            else repr(value)
        if "." in text and len(text.rsplit(".", 1)[1]) == 3:
            text += "0"  # a typed number is never '1.234'-ambiguous: say it is decimal
        # A currency in the cell's number format ('#,##0.00 [$€-407]', '"CHF" 0.00').
        for m in _FORMAT_CURRENCY.finditer(number_format or ""):
            token = (m[1] or m[2] or m[3] or "").strip()
            try:
                code = notation.currency_of(token)
            except ValueError:
                continue
            if code:
                return f"{text} {code}"
        return text
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
        for cells in sheet.iter_rows():
            rows.append([_cell(c.value, getattr(c, "number_format", "")) for c in cells])
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
    """Header and body. Rows keep their own length (a mismatch is reported per row); only
    empty cells past the header's width are dropped."""
    while rows and not any(rows[-1]):
        rows.pop()
    if not rows:
        raise ImportError_("The file has no header row.")
    header = list(rows[0])
    while header and not header[-1]:
        header.pop()
    if not header:
        raise ImportError_("The file has no header row.")
    headers = [h or f"column {i + 1}" for i, h in enumerate(header)]
    width = len(headers)
    body = []
    for r in rows[1:]:
        r = list(r)
        while len(r) > width and not r[-1]:
            r.pop()
        body.append(r)
    return headers, body


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """{header: target} for headers whose name is a known synonym; each target used once."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for rank in range(max(len(v) for v in TARGETS.values())):
        for header in headers:
            if header in mapping:
                continue
            key = _header_key(header)
            for target, names in TARGETS.items():
                if target not in used and rank < len(names) and names[rank] == key:
                    mapping[header] = target
                    used.add(target)
                    break
    return mapping


def header_currency(header: str) -> str:
    """A currency named in a column header ('Cost (EUR)', 'Price €'), or ''."""
    for m in _HEADER_CURRENCY.finditer(header):
        try:
            code = notation.currency_of(m[1] or m[2])
        except ValueError:
            continue
        if code:
            return code
    for symbol in ("€", "£", "$", "¥"):
        if symbol in header:
            return notation.SYMBOLS[symbol]
    return ""


# --- Values -----------------------------------------------------------------------------

def parse_date(text: str, order: str = "") -> date:
    return notation.parse_date(text, order)


def _choice(text: str, choices, words: dict) -> str:
    key = _key(text)
    for value, label in choices:
        if key in (_key(value), _key(label)):
            return value
    if key in words:
        return words[key]
    raise ValueError(f"{text!r} is not one of {', '.join(v for v, _ in choices)}")


class Context:
    """What reading a row needs: the client's sites and contacts, the columns' notations
    (their own evidence, or a person's decision) and the person's decisions per value."""

    def __init__(self, *, sites=None, contacts=None, orders=None, marks=None,
                 currency: str = "", resolutions: dict | None = None):
        self.sites = sites or {}
        self.contacts = contacts or {}
        self.orders = orders or {}
        self.marks = marks or {}
        self.currency = currency
        self.resolutions = resolutions or {}


def clean_row(raw: dict[str, str], ctx: Context | None = None,
              line: int = 0) -> tuple[dict[str, Any], list[dict]]:
    """Typed values of one mapped row and the values still waiting for a person's decision
    (ambiguous, undecided: left out of the values); raises ValueError with the reason."""
    ctx = ctx or Context()
    out: dict[str, Any] = {}
    pending: list[dict] = []
    for target, text in raw.items():
        text = (text or "").strip()
        if not text:
            continue
        decided = ctx.resolutions.get(f"value:{line}:{target}")
        try:
            if target in DATE_FIELDS:
                try:
                    out[target] = notation.parse_date(text, ctx.orders.get(target, ""))
                except notation.Ambiguous as exc:
                    options = {k: v.isoformat() for k, v in exc.options.items()}
                    if decided is None:
                        pending.append(_pending(line, target, text, options))
                    elif decided:
                        out[target] = date.fromisoformat(_option(decided, options, text))
            elif target == "cost":
                try:
                    amount = notation.parse_amount(text, ctx.marks.get(target, ""))
                except notation.Ambiguous as exc:
                    options = {k: f"{v.value} {v.currency}".strip()
                               for k, v in exc.options.items()}
                    if decided is None:
                        pending.append(_pending(line, target, text, options))
                        amount = None
                    elif decided:
                        chosen = _option(decided, options, text)
                        amount = exc.options[next(k for k, v in options.items()
                                                  if v == chosen)]
                    else:
                        amount = None
                if amount is not None:
                    out["cost"] = _money(amount.value, text)
                    if amount.currency:
                        out["cost_currency"] = amount.currency
            elif target == "cost_currency":
                code = notation.currency_of(text)
                if out.get("cost_currency") and out["cost_currency"] != code:
                    raise ValueError(f"the amount is in {out['cost_currency']}, the currency "
                                     f"column says {code}")
                out["cost_currency"] = code
            elif target in ("kind", "status"):
                choices, words = ((DeviceKind.choices, KIND_WORDS) if target == "kind"
                                  else (LifecycleStatus.choices, STATUS_WORDS))
                out[target] = _choice(text, choices, words)
            elif target == "mac":
                mac = normalise_mac(text)
                if not mac:
                    raise ValueError(f"{text!r} is not a MAC address")
                out["mac"] = mac
            elif target == "ip":
                try:
                    out["ip"] = str(ipaddress.ip_address(text))
                except ValueError:
                    raise ValueError(f"{text!r} is not an IP address") from None
            elif target == "site":
                if text.lower() not in ctx.sites:
                    raise ValueError(f"no site named {text!r} for this client")
                out["site"] = ctx.sites[text.lower()]
            elif target == "assigned_to":
                if text.lower() not in ctx.contacts:
                    raise ValueError(f"no contact {text!r} for this client")
                out["assigned_to"] = ctx.contacts[text.lower()]
            elif target == "asset_tag":
                out["asset_tag"] = text[:100]
            else:
                out[target] = text[:200] if target != "notes" else text
        except ValueError as exc:
            raise ValueError(f"{target}: {exc}") from None
    # A cost column's currency comes from the cell, else the currency column, else the
    # column header ('Cost (EUR)').
    if "cost" in out and "cost_currency" not in out and ctx.currency:
        out["cost_currency"] = ctx.currency
    if "cost_currency" in raw and "cost" not in out and "cost" not in raw:
        out.pop("cost_currency", None)
    if not (out.get("name") or out.get("hostname") or out.get("serial")
            or out.get("asset_tag")):
        raise ValueError("a row needs a name, hostname, serial or asset tag")
    return out, pending


def _pending(line: int, field: str, raw: str, options: dict[str, str]) -> dict:
    return {"key": f"value:{line}:{field}", "line": line, "field": field, "raw": raw,
            "options": options}


def _option(decided: str, options: dict[str, str], text: str) -> str:
    if decided in options:
        return options[decided]
    if decided in options.values():
        return decided
    raise ValueError(f"{decided!r} is not a reading of {text!r}")


def _money(value: Decimal, text: str) -> Decimal:
    if not value.is_finite() or abs(value) >= Decimal("1e10") or value < 0:
        raise ValueError(f"{text!r} is out of range")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{text!r} has more than two decimals (not rounded)")
    return value.quantize(Decimal("0.01"))


def export_row(device: Device) -> list[str]:
    contact = device.assigned_contact
    return [device.name, device.client.name, device.site.name if device.site else "",
            device.kind, device.status, device.hostname, device.serial, device.asset_tag,
            device.primary_mac, device.primary_ip or "", device.manufacturer, device.model,
            device.os_name, device.os_version, as_text(device.purchase_date),
            as_text(device.cost), device.cost_currency, as_text(device.warranty_end),
            as_text(device.end_of_support), (contact.email or contact.name) if contact else "",
            device.location, device.notes]


# --- Plan (preview) and apply -----------------------------------------------------------

def _column_values(values: dict[str, Any]) -> dict[str, Any]:
    return {COLUMN_OF.get(k, k): v for k, v in values.items()}


def _row_keys(raw: dict[str, str]) -> list[tuple[str, str]]:
    """The duplicate keys of a row, read from its cells (also for a row refused for
    another reason: the whole file is checked)."""
    keys = []
    for field in KEY_FIELDS:
        text = (raw.get(field) or "").strip()
        if not text:
            continue
        value = normalise_mac(text) if field == "mac" else text.lower()
        if value:
            keys.append((field, value))
    return keys


def _duplicate_groups(keyed: list[tuple[int, list[tuple[str, str]]]]) -> list[dict]:
    """Rows joined by any shared key (union-find), as groups of two lines or more."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[tuple[str, str], int] = {}
    shared: dict[int, set[tuple[str, str]]] = {}
    for line, keys in keyed:
        find(line)
        for key in keys:
            if key in first:
                parent[find(line)] = find(first[key])
                shared.setdefault(first[key], set()).add(key)
                shared.setdefault(line, set()).add(key)
            else:
                first[key] = line
    groups: dict[int, list[int]] = {}
    for line, _keys in keyed:
        groups.setdefault(find(line), []).append(line)
    out = []
    for lines in groups.values():
        if len(lines) < 2:
            continue
        lines.sort()
        keys = sorted({k for line in lines for k in shared.get(line, ())})
        out.append({"key": f"dup:{lines[0]}", "lines": lines,
                    "keys": [f"{field} {value}" for field, value in keys]})
    return sorted(out, key=lambda g: g["lines"][0])


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
    tables: dict[str, dict[str, set[int]]] = {"serial": {}, "asset_tag": {}, "mac": {},
                                              "hostname": {}}
    for d in devices.values():
        for by, value in (("serial", d.serial.lower()), ("asset_tag", d.asset_tag.lower()),
                          ("mac", d.primary_mac), ("hostname", d.hostname.lower())):
            if value:
                tables[by].setdefault(value, set()).add(d.pk)
    for dev_id, mac in NetworkAddress.objects.filter(device__client_id=client_id).exclude(
            mac="").values_list("device_id", "mac"):
        tables["mac"].setdefault(mac, set()).add(dev_id)
    # Which source set each device's current value: machine-reported values conflict.
    machine_values: dict[tuple[int, str], tuple[str, str]] = {}
    for dev_id, field, kind, value in FieldProvenance.objects.filter(
            device__client_id=client_id, source_kind__in=MACHINE_SOURCES).values_list(
            "device_id", "field", "source_kind", "value"):
        machine_values[(dev_id, field)] = (kind, value)

    mapping = {h: t for h, t in run.mapping.items() if t in TARGETS and h in run.headers}
    index = {h: i for i, h in enumerate(run.headers)}
    width = len(run.headers)
    resolutions = run.resolutions or {}
    # The notation of each column: a person's decision for it, else what its unambiguous
    # values show, else the person's decision for every date column (date_order).
    columns: dict[str, list[str]] = {
        t: [r[index[h]] for r in run.rows if index[h] < len(r) and len(r) == width]
        for h, t in mapping.items()}
    evidence = {t: notation.column_date_order(columns[t]) for t in DATE_FIELDS
                if t in columns}
    orders = {t: resolutions.get(f"order:{t}") or evidence[t] or run.date_order
              for t in evidence}
    marks = {}
    if "cost" in columns:
        marks["cost"] = resolutions.get("mark:cost") or \
            notation.column_decimal_mark(columns["cost"])
    currency = next((header_currency(h) for h, t in mapping.items() if t == "cost"), "")
    ctx = Context(sites=sites, contacts=contacts, orders=orders, marks=marks,
                  currency=currency, resolutions=resolutions)

    errors, parsed, keyed, ambiguous = [], [], [], []
    for offset, row in enumerate(run.rows):
        line = offset + 2  # the header is line 1
        if not any((v or "").strip() for v in row):
            continue
        if len(row) != width:
            errors.append({"line": line, "reason": (
                f"the row has {len(row)} fields, the header has {width}: not imported "
                "(its values would land in the wrong columns)")})
            continue
        raw = {t: row[index[h]] for h, t in mapping.items()}
        if not any((v or "").strip() for v in raw.values()):
            continue
        keyed.append((line, _row_keys(raw)))
        try:
            values, pending = clean_row(raw, ctx, line)
        except ValueError as exc:
            errors.append({"line": line, "reason": str(exc)})
            continue
        ambiguous.extend(pending)
        parsed.append((line, raw, values))

    # Duplicate keys across the whole file: a decision, never the first or last row.
    refused = {e["line"]: e["reason"] for e in errors}
    held: set[int] = set()
    skipped = []
    duplicates = _duplicate_groups(keyed)
    for group in duplicates:
        group["refused"] = {str(line): refused[line] for line in group["lines"]
                            if line in refused}
        group["options"] = [line for line in group["lines"] if line not in refused]
        choice = resolutions.get(group["key"])
        group["chosen"] = choice
        winner = int(choice) if choice and choice != "skip" and str(choice).isdigit() \
            and int(choice) in group["options"] else None
        if choice is None or (choice != "skip" and winner is None):
            group["chosen"] = None
            held.update(group["lines"])
            continue
        for line in group["lines"]:
            if line != winner and line not in refused:
                held.add(line)
                skipped.append({"line": line, "reason": (
                    f"shares {', '.join(group['keys'])} with line {winner}, which was chosen"
                    if winner else f"shares {', '.join(group['keys'])}; skipped by decision")})

    create, update, conflicts = [], [], []
    claimed: dict[int, int] = {}
    for line, raw, values in parsed:
        if line in held:
            continue
        shown = _shown(raw, values)
        matches, matched_by = set(), ""
        for by, key in (("serial", (values.get("serial") or "").lower()),
                        ("asset_tag", (values.get("asset_tag") or "").lower()),
                        ("mac", values.get("mac")),
                        ("hostname", (values.get("hostname") or "").lower())):
            if key and tables[by].get(key):
                matches, matched_by = tables[by][key], by
                break
        if len(matches) > 1:
            errors.append({"line": line, "reason": f"{matched_by} matches {len(matches)} "
                                                   "devices; fix the duplicates first"})
            continue
        tag = (values.get("asset_tag") or "").lower()
        owners = tables["asset_tag"].get(tag, set()) if tag else set()
        if owners and owners != matches:
            other = devices[next(iter(owners))]
            errors.append({"line": line, "reason": f"asset tag {values['asset_tag']!r} "
                                                   f"belongs to device {other.name!r}"})
            continue
        if not matches:
            # A new device with no name column is named after its hostname, serial or tag.
            values.setdefault("name", values.get("hostname") or values.get("serial")
                              or values.get("asset_tag"))
            create.append({"line": line, "values": _jsonable(values), "raw": shown})
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
                       "raw": shown, "changes": changes})
    errors.sort(key=lambda e: e["line"])
    open_dups = [g for g in duplicates if g["chosen"] is None]
    columns_undecided = sorted({a["field"] for a in ambiguous})
    return {"create": create, "update": update, "errors": errors, "conflicts": conflicts,
            "ambiguous": ambiguous, "duplicates": duplicates, "skipped": skipped,
            "notations": {"dates": {t: {"evidence": evidence[t], "used": orders[t]}
                                    for t in evidence},
                          "cost": {"decimal_mark": marks.get("cost", ""),
                                   "header_currency": currency} if "cost" in columns
                          else {}},
            "ambiguous_columns": columns_undecided,
            "counts": {"create": len(create), "update": len(update), "errors": len(errors),
                       "conflicts": len(conflicts), "skipped": len(skipped),
                       "unchanged": sum(1 for u in update if not u["changes"]),
                       "ambiguous": len(ambiguous), "duplicates_open": len(open_dups),
                       "decisions_open": len(ambiguous) + len(open_dups)}}


def _shown(raw: dict[str, str], values: dict[str, Any]) -> dict[str, str]:
    """The raw cell of each written value that reads differently from it."""
    shown = {}
    for target, value in values.items():
        cell = (raw.get(target) or "").strip()
        if target == "cost_currency" and "cost_currency" not in raw:
            cell = (raw.get("cost") or "").strip()
        if cell and cell != as_text(value):
            shown[target] = cell
    return shown


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


RESOLUTION_KEY = re.compile(r"(order:(purchase_date|warranty_end|end_of_support)|mark:cost|"
                            r"value:\d+:\w+|dup:\d+)")


def _clean_resolutions(resolutions: dict | None) -> dict[str, str]:
    clean = {}
    for key, value in (resolutions or {}).items():
        key, value = str(key), "" if value is None else str(value)
        if not RESOLUTION_KEY.fullmatch(key):
            raise ValidationError(f"Unknown decision {key!r}.")
        if key.startswith("order:") and value not in ("dmy", "mdy", ""):
            raise ValidationError(f"{key}: dmy or mdy.")
        if key.startswith("mark:") and value not in (",", ".", ""):
            raise ValidationError(f"{key}: ',' or '.'.")
        if key.startswith("dup:") and not (value == "skip" or value.isdigit() or not value):
            raise ValidationError(f"{key}: a line number or skip.")
        if value or key.startswith("value:"):
            clean[key] = value
    return clean


def set_mapping(*, actor, run: ImportRun, mapping: dict[str, str], date_order: str = "",
                resolutions: dict | None = None) -> ImportRun:
    """Store the mapping (and any decisions) and the preview it produces."""
    if run.status == ImportStatus.APPLIED:
        raise ValidationError("This import has already been applied.")
    clean = {h: t for h, t in mapping.items() if h in run.headers and t in TARGETS}
    targets = list(clean.values())
    dupes = {t for t in targets if targets.count(t) > 1}
    if dupes:
        raise ValidationError(f"Each field can be mapped once: {', '.join(sorted(dupes))}.")
    if date_order not in ("dmy", "mdy", ""):
        raise ValidationError("Date order must be dmy, mdy or empty (undecided).")
    decided = _clean_resolutions(resolutions) if resolutions is not None else None
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run.pk)
        before = {"mapping": run.mapping, "date_order": run.date_order}
        run.mapping, run.date_order = clean, date_order
        if decided is not None:
            run.resolutions = decided
        run.report = build_plan(run)
        run.status = ImportStatus.MAPPED
        run.save(update_fields=["mapping", "date_order", "resolutions", "report", "status"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=run,
                     changes={"mapping": [before["mapping"], clean],
                              "date_order": [before["date_order"], date_order]})
        events.emit(ev.DeviceImportMapped(id=run.pk, counts=run.report["counts"]),
                    client=run.client_id)
    return run


def decide(*, actor, run: ImportRun, resolutions: dict) -> ImportRun:
    """Record a person's decisions from the preview (ambiguous values, a column's notation,
    which of several rows sharing a key wins) and refresh the preview."""
    if run.status != ImportStatus.MAPPED:
        raise ValidationError("Map the columns first.")
    decided = _clean_resolutions(resolutions)
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run.pk)
        before = dict(run.resolutions or {})
        run.resolutions = {**before, **decided}
        run.report = build_plan(run)
        run.save(update_fields=["resolutions", "report"])
        audit.record(actor=actor, action=AuditAction.UPDATE, obj=run,
                     changes={"resolutions": [before, run.resolutions]})
        events.emit(ev.DeviceImportMapped(id=run.pk, counts=run.report["counts"]),
                    client=run.client_id)
    return run


def apply(*, actor, run: ImportRun, decisions: dict[str, str] | None = None,
          resolutions: dict | None = None, skip_undecided: bool = False) -> ImportRun:
    """Apply the mapped import. `decisions` maps "<device id>:<field>" to "take" or "keep"
    for listed conflicts; an undecided conflict becomes an open FieldConflict.
    `resolutions` are recorded first (as `decide`). Ambiguous values and duplicate rows still
    undecided refuse the apply, unless `skip_undecided`: those values are left empty and
    those rows are not imported."""
    decisions = decisions or {}
    decided = _clean_resolutions(resolutions) if resolutions else {}
    at = timezone.now()
    ref = f"import:{run.pk}"
    who = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run.pk)
        if run.status != ImportStatus.MAPPED:
            raise ValidationError("Map the columns and review the preview first.")
        if decided:
            run.resolutions = {**(run.resolutions or {}), **decided}
            run.save(update_fields=["resolutions"])
        plan = build_plan(run)  # the inventory may have moved since the preview
        if plan["counts"]["decisions_open"] and not skip_undecided:
            raise ValidationError(
                f"{plan['counts']['ambiguous']} ambiguous value(s) and "
                f"{plan['counts']['duplicates_open']} group(s) of rows sharing a serial, MAC "
                "or asset tag wait for a decision in the preview (or choose to leave them "
                "out).")
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
                              "left_undecided": [None, plan["counts"]["decisions_open"]],
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

