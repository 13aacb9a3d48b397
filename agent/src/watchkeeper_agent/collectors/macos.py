"""macOS inventory through the same interface: sw_vers, system_profiler, pkgutil, launchctl,
dscl; "unknown" where a fact cannot be read."""

from __future__ import annotations

import json
from typing import Any

from . import updates
from .base import UNKNOWN, Collector, run


class MacCollector(Collector):
    platform_name = "macos"

    def system(self) -> dict[str, Any]:
        info = super().system() or {}
        info["os_name"] = (run(["sw_vers", "-productName"]) or "macOS").strip()
        info["os_version"] = (run(["sw_vers", "-productVersion"]) or UNKNOWN).strip()
        hw = run(["system_profiler", "SPHardwareDataType", "-json"], timeout=60)
        if hw:
            try:
                item = json.loads(hw)["SPHardwareDataType"][0]
            except (ValueError, KeyError, IndexError):
                item = {}
            info.update({"manufacturer": "Apple", "model": item.get("machine_model", UNKNOWN),
                         "serial": item.get("serial_number", UNKNOWN),
                         "cpu_model": item.get("chip_type") or item.get("cpu_type", UNKNOWN)})
        fv = run(["fdesetup", "status"])
        if fv is not None:
            info["disk_encryption"] = "encrypted" if "On" in fv else "not encrypted"
        fw = run(["/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate"])
        if fw is not None:
            info["firewall"] = "active" if "enabled" in fw.lower() else "inactive"
        return info

    def software(self) -> list[dict[str, Any]] | None:
        out = run(["pkgutil", "--pkgs"])
        if out is None:
            return None
        return [{"name": name, "version": "", "source": "pkgutil"}
                for name in sorted(out.split())]

    def users(self) -> list[dict[str, Any]] | None:
        out = run(["dscl", ".", "-list", "/Users", "UniqueID"])
        if out is None:
            return None
        admins_out = run(["dscl", ".", "-read", "/Groups/admin", "GroupMembership"]) or ""
        admins = set(admins_out.split()[1:])
        result = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and (
                    int(parts[1]) >= 500 or parts[1] == "0"):
                result.append({"name": parts[0], "uid": int(parts[1]),
                               "admin": parts[0] in admins or parts[1] == "0"})
        return result

    def updates(self) -> list[dict[str, Any]] | None:
        """macOS softwareupdate (documented, NOT tested here)."""
        return updates.macos_updates(lambda argv: run(argv, timeout=300))
