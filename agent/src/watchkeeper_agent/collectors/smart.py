"""Physical drives and their SMART health, read through smartctl (smartmontools 7 or later,
whose `-j` gives JSON). Platform-neutral: smartctl names drives the same way on Linux,
Windows (/dev/sda, /dev/nvme0) and macOS (disk0), so every collector uses this.

smartctl's exit status is a bitmask (smartctl(8), "RETURN VALUES"): bits 0-1 mean the
command line did not parse or the device could not be opened, so there is no SMART data
and the drive is reported with status "unknown" and the reason. Bits 2-7 (a SMART command
failed, DISK FAILING, attributes at or below threshold now or in the past, errors in the
error or self-test logs) still come with the full JSON, which is read as usual; the status
itself is kept as `exit_status` so the server can show what smartctl said.

Reading SMART needs root (smartctl opens the raw device); the Linux agent runs as root.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess  # noqa: S404 (fixed argument lists, never a shell)
from typing import Any

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
MAX_DRIVES = 64
MAX_ATTRIBUTES = 255
SCAN_TIMEOUT = 60.0
DEVICE_TIMEOUT = 30.0

EXIT_BITS = {
    0: "command line did not parse",
    1: "device could not be opened",
    2: "a SMART or other command to the disk failed",
    3: "SMART status check returned DISK FAILING",
    4: "pre-fail attributes at or below threshold",
    5: "attributes at or below threshold in the past",
    6: "the device error log contains errors",
    7: "the self-test log contains errors",
}
NO_DATA = 0b11  # bits 0-1: nothing was read


class _Result:
    __slots__ = ("doc", "error", "status")

    def __init__(self, status: int | None, doc: dict[str, Any] | None, error: str = ""):
        self.status, self.doc, self.error = status, doc, error


def _smartctl(argv: list[str], timeout: float) -> _Result:
    """Run smartctl; its JSON (even with a non-zero exit status) or the reason there is none."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,  # noqa: S603
                              env={**os.environ, "LC_ALL": "C"}, check=False)
    except subprocess.TimeoutExpired:
        return _Result(None, None, f"smartctl timed out after {timeout:g} s")
    except OSError as exc:
        return _Result(None, None, f"smartctl could not be run: {exc}")
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        # Before 7.0 smartctl has no -j: it prints its usage text and exits 1.
        return _Result(proc.returncode, None,
                       f"smartctl gave no JSON (exit status {proc.returncode}); "
                       "smartmontools 7 or later is needed")
    return _Result(proc.returncode, doc)


def _text(value: Any, limit: int = 200) -> str:
    if value is None or value == "":
        return UNKNOWN
    return str(value).strip()[:limit] or UNKNOWN


def _int(value: Any, lo: int = 0, hi: int = 2**63 - 1) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return UNKNOWN
    return value


def _messages(doc: dict[str, Any]) -> str:
    """smartctl's own error messages (smartctl.messages[]), joined."""
    found = [str(m.get("string", "")).strip() for m in
             (doc.get("smartctl") or {}).get("messages") or []
             if isinstance(m, dict) and m.get("severity") in ("error", "warning")]
    return "; ".join(m for m in found if m)[:500]


def describe_exit_status(status: int) -> list[str]:
    return [text for bit, text in EXIT_BITS.items() if status & (1 << bit)]


def _base(name: str, dtype: str | None, protocol: str | None) -> dict[str, Any]:
    return {"device": _text(name), "type": _text(dtype), "protocol": _text(protocol)}


def _unknown(name: str, dtype: str | None, protocol: str | None, reason: str,
             status: int | None = None) -> dict[str, Any]:
    drive = {**_base(name, dtype, protocol), "model": UNKNOWN, "serial": UNKNOWN,
             "smart_status": UNKNOWN, "error": reason[:500]}
    if status is not None:
        drive["exit_status"] = status & 0xFF
    return drive


def _attributes(doc: dict[str, Any]) -> list[dict[str, Any]] | None:
    table = (doc.get("ata_smart_attributes") or {}).get("table")
    if not isinstance(table, list):
        return None
    result = []
    for row in table[:MAX_ATTRIBUTES]:
        if not isinstance(row, dict) or _int(row.get("id"), 1, 255) == UNKNOWN:
            continue
        flags = row.get("flags") if isinstance(row.get("flags"), dict) else {}
        raw = row.get("raw") if isinstance(row.get("raw"), dict) else {}
        when_failed = row.get("when_failed", "")
        result.append({
            "id": row["id"], "name": _text(row.get("name"), 100),
            "value": _int(row.get("value"), 0, 255), "worst": _int(row.get("worst"), 0, 255),
            "thresh": _int(row.get("thresh"), 0, 255),
            "when_failed": when_failed if when_failed in ("", "now", "past") else "",
            "prefailure": bool(flags.get("prefailure")),
            "raw": _int(raw.get("value")),
        })
    return result


NVME_FIELDS = {"critical_warning": 255, "available_spare": 255,
               "available_spare_threshold": 255, "percentage_used": 255,
               "media_errors": 2**63 - 1}


def parse_device(name: str, dtype: str | None, protocol: str | None,
                 result: _Result) -> dict[str, Any]:
    """One drive from `smartctl -i -H -A -j` (its JSON and exit status)."""
    if result.doc is None or result.status is None:
        return _unknown(name, dtype, protocol, result.error, result.status)
    doc, status = result.doc, result.status
    device = doc.get("device") if isinstance(doc.get("device"), dict) else {}
    dtype = device.get("type") or dtype
    protocol = device.get("protocol") or protocol
    if status & NO_DATA:
        reason = _messages(doc) or "; ".join(describe_exit_status(status & NO_DATA))
        return _unknown(name, dtype, protocol, reason, status)
    capacity = (doc.get("user_capacity") or {}).get("bytes")
    if capacity is None:
        capacity = doc.get("nvme_total_capacity")
    rotation = _int(doc.get("rotation_rate"))
    is_nvme = str(protocol).lower() == "nvme"
    drive: dict[str, Any] = {
        **_base(name, dtype, protocol),
        "model": _text(doc.get("model_name")), "serial": _text(doc.get("serial_number")),
        "firmware": _text(doc.get("firmware_version")),
        "capacity_bytes": _int(capacity),
        "media": "ssd" if is_nvme or rotation == 0 else "hdd" if isinstance(rotation, int)
        else UNKNOWN,
        "exit_status": status & 0xFF,
    }
    if isinstance(rotation, int):
        drive["rotation_rate"] = rotation
    passed = (doc.get("smart_status") or {}).get("passed")
    drive["smart_status"] = ("passed" if passed is True else "failed" if passed is False
                             else UNKNOWN)
    if drive["smart_status"] == UNKNOWN:
        support = doc.get("smart_support") or {}
        drive["error"] = (_messages(doc) or (
            "SMART is not available on this device" if support.get("available") is False
            else "SMART is disabled on this device" if support.get("enabled") is False
            else "smartctl reported no SMART status"))[:500]
    drive["temperature_c"] = _int((doc.get("temperature") or {}).get("current"), -100, 300)
    drive["power_on_hours"] = _int((doc.get("power_on_time") or {}).get("hours"))
    attributes = _attributes(doc)
    if attributes is not None:
        drive["attributes"] = attributes
    health = doc.get("nvme_smart_health_information_log")
    if isinstance(health, dict):
        for field, hi in NVME_FIELDS.items():
            drive[field] = _int(health.get(field), 0, hi)
    return drive


def read_drives(smartctl: str | None = None, *, scan_timeout: float = SCAN_TIMEOUT,
                device_timeout: float = DEVICE_TIMEOUT) -> list[dict[str, Any]] | None:
    """Every drive smartctl finds, or None when smartctl is missing or unusable (the
    section is then left out, as for any collector that cannot read at all)."""
    exe = smartctl or shutil.which("smartctl")
    if exe is None:
        return None
    # --scan-open opens each device to find its real type (a USB bridge is "sat", not
    # "scsi"); a smartctl that refuses it (exit bit 0) still has the plain --scan.
    scan = _smartctl([exe, "--scan-open", "-j"], scan_timeout)
    if scan.doc is None or (scan.status or 0) & 1:
        scan = _smartctl([exe, "--scan", "-j"], scan_timeout)
    if scan.doc is None or (scan.status or 0) & 1:
        log.info("smartctl scan gave nothing usable: %s", scan.error or scan.status)
        return None
    entries = [d for d in scan.doc.get("devices") or [] if isinstance(d, dict) and d.get("name")]
    drives: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for entry in entries[:MAX_DRIVES]:
        name, dtype, protocol = str(entry["name"]), entry.get("type"), entry.get("protocol")
        if entry.get("open_error"):
            drives.append(_unknown(name, dtype, protocol, str(entry["open_error"])))
            continue
        argv = [exe, "-i", "-H", "-A", "-j", *(["-d", str(dtype)] if dtype else []), name]
        drive = parse_device(name, dtype, protocol, _smartctl(argv, device_timeout))
        # One physical drive can be reachable twice (a RAID member and its block device).
        key = (drive.get("model", UNKNOWN), drive.get("serial", UNKNOWN))
        if UNKNOWN not in key:
            if key in seen:
                continue
            seen.add(key)
        drives.append(drive)
    return drives
