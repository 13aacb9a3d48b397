"""Whole-payload validation of agent requests, before anything is written.

Every shape is spelled out: types, lengths, counts. A payload that breaks any rule is refused
as a whole with the list of reasons (paths like `inventory.sections.software[3].name`), so a
malformed or hostile payload can only ever earn a 4xx.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..protocol import INVENTORY_SECTIONS

HEX64 = re.compile(r"^[0-9a-f]{64}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_STR = 4096
MAX_ITEMS = 50_000
MAX_METRICS = 1000
MAX_RESULTS = 200
MAX_OUTPUT = 1024 * 1024

# Field types per list section. "str?" may also be absent; values may always be "unknown".
STR, INT, BOOL, STRLIST = "str", "int", "bool", "strlist"


# --- "drives": physical drives with SMART health (agent collectors/smart.py) ---------------
def _int_between(lo: int, hi: int):
    def check(value: Any, path: str, errors: list[str]) -> None:
        if value != "unknown" and not (_is_int(value) and lo <= value <= hi):
            errors.append(f"{path}: expected an integer from {lo} to {hi}")
    return check


def _one_of(*choices: str):
    def check(value: Any, path: str, errors: list[str]) -> None:
        if value not in choices:
            errors.append(f"{path}: expected one of {', '.join(repr(c) for c in choices)}")
    return check


BYTE = _int_between(0, 255)
COUNT = _int_between(0, 2**63 - 1)
MAX_SMART_ATTRIBUTES = 255
SMART_ATTRIBUTE_FIELDS = {
    "id": _int_between(1, 255), "name": STR, "value": BYTE, "worst": BYTE, "thresh": BYTE,
    "when_failed": _one_of("", "now", "past"), "prefailure": BOOL, "raw": COUNT,
}


def _smart_attributes(value: Any, path: str, errors: list[str]) -> None:
    """ata_smart_attributes.table as the agent reduces it: a list of attribute objects."""
    if not isinstance(value, list) or len(value) > MAX_SMART_ATTRIBUTES:
        errors.append(f"{path}: expected a list of at most {MAX_SMART_ATTRIBUTES} "
                      "attribute objects")
        return
    for i, item in enumerate(value):
        _fields(item, SMART_ATTRIBUTE_FIELDS, f"{path}[{i}]", errors, ("id", "value", "thresh"))
        if len(errors) > 50:
            return


DRIVE_FIELDS = {
    "device": STR, "type": STR, "protocol": STR, "model": STR, "serial": STR,
    "firmware": STR, "capacity_bytes": COUNT, "media": _one_of("ssd", "hdd", "unknown"),
    "rotation_rate": _int_between(0, 1_000_000), "exit_status": BYTE,
    "smart_status": _one_of("passed", "failed", "unknown"), "error": STR,
    "temperature_c": _int_between(-100, 300), "power_on_hours": COUNT,
    "attributes": _smart_attributes,
    # NVMe SMART / Health Information log (page 02h)
    "critical_warning": BYTE, "available_spare": BYTE, "available_spare_threshold": BYTE,
    "percentage_used": BYTE, "media_errors": COUNT,
}
SECTION_FIELDS: dict[str, dict[str, Any]] = {
    "disks": {"device": STR, "mountpoint": STR, "fstype": STR, "total_bytes": INT,
              "encrypted": BOOL},
    "interfaces": {"name": STR, "mac": STR, "ipv4": STRLIST, "ipv6": STRLIST, "gateway": STR},
    "software": {"name": STR, "version": STR, "source": STR},
    "services": {"name": STR, "state": STR, "enabled": BOOL},
    "users": {"name": STR, "uid": INT, "admin": BOOL},
    "logged_in": {"name": STR, "terminal": STR, "since": STR},
    "ports": {"proto": STR, "address": STR, "port": INT, "process": STR},
    "updates": {"name": STR, "version": STR, "installed_version": STR, "arch": STR,
                "classification": _one_of("security", "bugfix", "feature", "other"),
                "source": _one_of("os", "third_party", "application"), "origin": STR,
                "label": STR, "archive": STR, "site": STR, "severity": STR,
                "references": STRLIST, "size": COUNT, "reboot": BOOL, "release_date": STR},
    "drives": DRIVE_FIELDS,
}
SYSTEM_FIELDS = {
    "os_name": STR, "os_version": STR, "kernel": STR, "hostname": STR, "domain": STR,
    "manufacturer": STR, "model": STR, "serial": STR, "cpu_model": STR, "cpu_cores": INT,
    "ram_bytes": INT, "firewall": STR, "disk_encryption": STR, "endpoint_protection": STR,
    "reboot_required": BOOL, "pending_update_count": INT,
}
REQUIRED = {"software": ("name",), "services": ("name",), "users": ("name",),
            "ports": ("port",), "updates": ("name",), "interfaces": ("name",),
            "disks": ("mountpoint",), "logged_in": ("name",),
            "drives": ("device", "smart_status")}


class Invalid(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors[:5]))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(kind: str, value: Any) -> bool:
    if value == "unknown":
        return True
    if kind == STR:
        return isinstance(value, str) and len(value) <= MAX_STR
    if kind == INT:
        return _is_int(value)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == STRLIST:
        return isinstance(value, list) and len(value) <= 256 and all(
            isinstance(v, str) and len(v) <= 100 for v in value)
    return False


def _fields(obj: Any, spec: dict[str, str], path: str, errors: list[str],
            required: tuple = ()) -> None:
    if not isinstance(obj, dict):
        errors.append(f"{path}: must be an object")
        return
    for name in required:
        if name not in obj:
            errors.append(f"{path}.{name}: required")
    for name, value in obj.items():
        kind = spec.get(name)
        if kind is None:
            continue  # unknown keys are ignored, not stored
        if callable(kind):  # a field with bounds or nested objects checks itself
            kind(value, f"{path}.{name}", errors)
        elif not _check(kind, value):
            errors.append(f"{path}.{name}: expected {kind}")


def validate_section(name: str, data: Any, errors: list[str]) -> None:
    path = f"inventory.sections.{name}"
    if name == "system":
        _fields(data, SYSTEM_FIELDS, path, errors)
        return
    if not isinstance(data, list):
        errors.append(f"{path}: must be a list")
        return
    if len(data) > MAX_ITEMS:
        errors.append(f"{path}: more than {MAX_ITEMS} items")
        return
    for i, item in enumerate(data):
        _fields(item, SECTION_FIELDS[name], f"{path}[{i}]", errors, REQUIRED.get(name, ()))
        if len(errors) > 50:
            return


def validate_checkin(body: Any) -> dict[str, Any]:
    """The check-in batch, validated whole; raises Invalid with every reason found."""
    errors: list[str] = []
    if not isinstance(body, dict):
        raise Invalid(["body: must be a JSON object"])
    seq = body.get("seq")
    if not _is_int(seq) or seq < 1:
        errors.append("seq: required positive integer")
    if "agent_version" in body and not (isinstance(body["agent_version"], str)
                                        and len(body["agent_version"]) <= 40):
        errors.append("agent_version: string of at most 40 characters")
    dropped = body.get("dropped", {})
    if not isinstance(dropped, dict) or len(dropped) > 10 or not all(
            isinstance(k, str) and len(k) <= 20 and _is_int(v) and v >= 0
            for k, v in dropped.items()):
        errors.append("dropped: object of {kind: non-negative integer}")
    metrics = body.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            errors.append("metrics: must be an object")
        else:
            if not _is_number(metrics.get("ts")) or not 0 < metrics["ts"] < 2**33:
                errors.append("metrics.ts: required unix timestamp")
            values = metrics.get("values")
            if not isinstance(values, dict) or len(values) > MAX_METRICS:
                errors.append(f"metrics.values: object of at most {MAX_METRICS} numbers")
            else:
                for name, value in values.items():
                    if not (isinstance(name, str) and 0 < len(name) <= 200):
                        errors.append("metrics.values: names are 1–200 characters")
                        break
                    if not _is_number(value):
                        errors.append(f"metrics.values.{name[:60]}: must be a finite number")
                        break
    inventory = body.get("inventory")
    if inventory is not None:
        if not isinstance(inventory, dict):
            errors.append("inventory: must be an object")
        else:
            hashes = inventory.get("hashes", {})
            if not isinstance(hashes, dict) or not all(
                    k in INVENTORY_SECTIONS and isinstance(v, str) and HEX64.match(v)
                    for k, v in hashes.items()):
                errors.append("inventory.hashes: object of {section: sha256 hex}")
            sections = inventory.get("sections", {})
            if not isinstance(sections, dict):
                errors.append("inventory.sections: must be an object")
            else:
                for name, data in sections.items():
                    if name in INVENTORY_SECTIONS:
                        validate_section(name, data, errors)
    results = body.get("results")
    if results is not None:
        if not isinstance(results, list) or len(results) > MAX_RESULTS:
            errors.append(f"results: list of at most {MAX_RESULTS}")
        else:
            for i, item in enumerate(results):
                path = f"results[{i}]"
                if not isinstance(item, dict):
                    errors.append(f"{path}: must be an object")
                    continue
                if not (isinstance(item.get("id"), str) and UUID_RE.match(item["id"])):
                    errors.append(f"{path}.id: command uuid required")
                if item.get("status") not in ("ok", "timeout", "refused", "interrupted"):
                    errors.append(f"{path}.status: ok, timeout, refused or interrupted")
                code = item.get("exit_code")
                if code is not None and not _is_int(code):
                    errors.append(f"{path}.exit_code: integer or null")
                for field in ("stdout", "stderr"):
                    if not isinstance(item.get(field, ""), str) or len(
                            item.get(field, "")) > MAX_OUTPUT:
                        errors.append(f"{path}.{field}: string up to {MAX_OUTPUT} chars")
                if not isinstance(item.get("reason", ""), str):
                    errors.append(f"{path}.reason: string")
                duration = item.get("duration_ms", 0)
                if not _is_int(duration) or not 0 <= duration < 2**31:
                    errors.append(f"{path}.duration_ms: non-negative integer")
                if not isinstance(item.get("truncated", False), bool):
                    errors.append(f"{path}.truncated: boolean")
    if errors:
        raise Invalid(errors)
    return body


def validate_enroll(body: Any) -> dict[str, Any]:
    errors = []
    if not isinstance(body, dict):
        raise Invalid(["body: must be a JSON object"])
    if not (isinstance(body.get("token"), str) and 0 < len(body["token"]) <= 200):
        errors.append("token: required string")
    if not (isinstance(body.get("public_key"), str) and len(body["public_key"]) == 44):
        errors.append("public_key: base64 of a raw 32-byte Ed25519 key")
    facts = body.get("facts", {})
    if not isinstance(facts, dict) or len(facts) > 50 or not all(
            isinstance(k, str) and len(k) <= 50 and isinstance(v, str | int | float | bool)
            and (not isinstance(v, str) or len(v) <= 500) for k, v in facts.items()):
        errors.append("facts: flat object of short strings and numbers")
    if not isinstance(body.get("agent_version", ""), str) or len(
            body.get("agent_version", "")) > 40:
        errors.append("agent_version: string of at most 40 characters")
    if errors:
        raise Invalid(errors)
    return body
