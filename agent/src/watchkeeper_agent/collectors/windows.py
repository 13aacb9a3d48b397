"""Windows inventory through the same interface. Facts come from PowerShell CIM queries
where PowerShell is present; anything that cannot be read is "unknown" (or the section is
left out), never a guess."""

from __future__ import annotations

import json
import platform
from typing import Any

from . import updates
from .base import UNKNOWN, Collector, run


def _powershell(script: str) -> Any:
    out = run(["powershell", "-NoProfile", "-NonInteractive", "-Command",
               f"{script} | ConvertTo-Json -Depth 3 -Compress"], timeout=60)
    if not out:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class WindowsCollector(Collector):
    platform_name = "windows"

    def system(self) -> dict[str, Any]:
        info = super().system() or {}
        cs = _powershell("Get-CimInstance Win32_ComputerSystem | "
                         "Select-Object Manufacturer,Model,Domain") or {}
        bios = _powershell("Get-CimInstance Win32_BIOS | Select-Object SerialNumber") or {}
        os_info = _powershell("Get-CimInstance Win32_OperatingSystem | "
                              "Select-Object Caption,Version") or {}
        info.update({
            "os_name": os_info.get("Caption") or "Windows",
            "os_version": os_info.get("Version") or platform.version() or UNKNOWN,
            "manufacturer": cs.get("Manufacturer") or UNKNOWN,
            "model": cs.get("Model") or UNKNOWN,
            "domain": cs.get("Domain") or UNKNOWN,
            "serial": bios.get("SerialNumber") or UNKNOWN,
        })
        return info

    def software(self) -> list[dict[str, Any]] | None:
        data = _powershell(
            "Get-ItemProperty HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*,"
            "HKLM:\\Software\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\* "
            "-ErrorAction SilentlyContinue | Where-Object DisplayName | "
            "Select-Object DisplayName,DisplayVersion")
        if data is None:
            return None
        return sorted(({"name": d.get("DisplayName"), "version": d.get("DisplayVersion") or "",
                        "source": "registry"} for d in _as_list(data)),
                      key=lambda p: (p["name"], p["version"]))

    def services(self) -> list[dict[str, Any]] | None:
        data = _powershell("Get-Service | Select-Object Name,"
                           "@{n='Status';e={$_.Status.ToString()}},"
                           "@{n='StartType';e={$_.StartType.ToString()}}")
        if data is None:
            return None
        return [{"name": d.get("Name"), "state": str(d.get("Status", UNKNOWN)).lower(),
                 "enabled": d.get("StartType") == "Automatic"} for d in _as_list(data)]

    def users(self) -> list[dict[str, Any]] | None:
        users = _powershell("Get-LocalUser | Select-Object Name,SID")
        if users is None:
            return None
        admins = _powershell("Get-LocalGroupMember -SID S-1-5-32-544 | Select-Object Name")
        admin_names = {str(a.get("Name", "")).split("\\")[-1].lower() for a in _as_list(admins)}
        return [{"name": u.get("Name"), "uid": UNKNOWN,
                 "admin": str(u.get("Name", "")).lower() in admin_names}
                for u in _as_list(users)]

    def updates(self) -> list[dict[str, Any]] | None:
        """Windows Update, winget and Chocolatey (documented, NOT tested here)."""
        found = [updates.windows_updates(run), updates.winget_updates(run),
                 updates.choco_updates(run)]
        if all(f is None for f in found):
            return None
        return [item for f in found if f for item in f]
