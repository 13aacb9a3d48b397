"""Linux inventory: /etc/os-release, /sys DMI, dpkg or rpm, systemd (or SysV service),
/etc/passwd and admin groups, nftables/iptables/ufw, LUKS via lsblk, apt or dnf updates."""

from __future__ import annotations

import grp
import json
import os
import platform
import pwd
import re
import socket
from pathlib import Path
from typing import Any

import psutil

from . import updates
from .base import UNKNOWN, Collector, run

ADMIN_GROUPS = ("sudo", "wheel", "admin", "adm")
DMI = Path("/sys/class/dmi/id")


def _read(path: Path | str) -> str | None:
    try:
        value = Path(path).read_text(errors="replace").strip()
    except OSError:
        return None
    return value or None


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    data = {}
    for line in (_read(path) or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            data[key.strip()] = value.strip().strip('"').strip("'")
    return data


def parse_proc_route(path: str) -> dict[str, str] | None:
    """Default routes (destination 0.0.0.0, gateway flag) of /proc/net/route, whose
    addresses are little-endian hex: {"eth0": "192.168.1.1"}. None if unreadable."""
    try:
        lines = Path(path).read_text().splitlines()[1:]
    except OSError:
        return None
    found: dict[str, str] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[1] != "00000000":
            continue
        try:
            flags, gateway = int(fields[3], 16), int(fields[2], 16)
        except ValueError:
            continue
        if flags & 0x2 and gateway:  # RTF_GATEWAY
            found.setdefault(fields[0], socket.inet_ntoa(gateway.to_bytes(4, "little")))
    return found


class LinuxCollector(Collector):
    platform_name = "linux"

    def __init__(self) -> None:
        super().__init__()
        self._packages: list[dict[str, Any]] | None = None

    def system(self) -> dict[str, Any]:
        info = super().system() or {}
        release = os_release()
        cpu_model = UNKNOWN
        for line in (_read("/proc/cpuinfo") or "").splitlines():
            if line.lower().startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        software = self.software() or []
        info.update({
            "os_name": release.get("NAME", "Linux"),
            "os_version": release.get("VERSION_ID") or release.get("VERSION") or UNKNOWN,
            "kernel": platform.release(),
            "manufacturer": _read(DMI / "sys_vendor") or UNKNOWN,
            "model": _read(DMI / "product_name") or UNKNOWN,
            # product_serial is readable by root only; an agent not running as root says so.
            "serial": _read(DMI / "product_serial") or UNKNOWN,
            "cpu_model": cpu_model,
            "cpu_cores": psutil.cpu_count(logical=False) or psutil.cpu_count() or UNKNOWN,
            "firewall": self.firewall(),
            "disk_encryption": self.disk_encryption_summary(),
            "endpoint_protection": self.endpoint_protection({p["name"] for p in software}),
            "reboot_required": self.reboot_required(),
        })
        return info

    # --- packages ---------------------------------------------------------------------------
    def default_gateways(self, route_file: str = "/proc/net/route") -> dict[str, str] | None:
        """IPv4 default routes from the kernel's table: {interface: gateway}."""
        return parse_proc_route(route_file)

    def software(self) -> list[dict[str, Any]] | None:
        if self._packages is not None:
            return self._packages
        out = run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"])
        if out is not None:
            pkgs = [{"name": n, "version": v, "source": "dpkg"}
                    for n, v, status in (line.split("\t") for line in out.splitlines()
                                         if line.count("\t") == 2)
                    if status == "installed"]
        else:
            out = run(["rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"])
            if out is None:
                return None
            pkgs = [{"name": n, "version": v, "source": "rpm"}
                    for n, v in (line.split("\t") for line in out.splitlines()
                                 if line.count("\t") == 1)]
        self._packages = sorted(pkgs, key=lambda p: (p["name"], p["version"]))
        return self._packages

    def updates(self) -> list[dict[str, Any]] | None:
        """apt (real, tested) or dnf (documented, untested here): see updates.py."""
        def slow(argv: list[str]) -> str | None:
            return run(argv, timeout=180)
        found = updates.apt_updates(slow, os_id=os_release().get("ID", ""))
        if found is None and run(["dnf", "--version"]) is not None:
            found = updates.dnf_updates(slow)
        return found

    @staticmethod
    def reboot_required() -> bool | str:
        if os.path.exists("/var/run/reboot-required"):
            return True
        if os.path.exists("/usr/bin/dpkg"):
            return False  # Debian/Ubuntu create the flag file whenever a reboot is needed
        if os.path.exists("/usr/bin/needs-restarting"):
            # needs-restarting -r exits 1 when a reboot is needed, 0 when not.
            return run(["needs-restarting", "-r"]) is None
        return UNKNOWN

    # --- services ---------------------------------------------------------------------------
    def services(self) -> list[dict[str, Any]] | None:
        units = run(["systemctl", "list-units", "--type=service", "--all", "--no-legend",
                     "--plain", "--no-pager"])
        if units is not None:
            files = run(["systemctl", "list-unit-files", "--type=service", "--no-legend",
                         "--no-pager"]) or ""
            enabled = {}
            for line in files.splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    enabled[parts[0]] = parts[1] == "enabled"
            result = []
            for line in units.splitlines():
                parts = line.split(None, 4)
                if len(parts) >= 4 and parts[0].endswith(".service"):
                    name = parts[0].removesuffix(".service")
                    result.append({"name": name, "state": parts[3],
                                   "enabled": enabled.get(parts[0], UNKNOWN)})
            return sorted(result, key=lambda s: s["name"])
        out = run(["service", "--status-all"])
        if out is None:
            return None
        states = {"+": "running", "-": "stopped", "?": UNKNOWN}
        enabled_sysv = self._sysv_enabled()
        result = []
        for line in out.splitlines():
            match = re.match(r"^\s*\[\s*([+?-])\s*\]\s+(\S+)", line)
            if match:
                name = match.group(2)
                result.append({"name": name, "state": states[match.group(1)],
                               "enabled": enabled_sysv.get(name, UNKNOWN)})
        return sorted(result, key=lambda s: s["name"])

    @staticmethod
    def _sysv_enabled() -> dict[str, bool]:
        enabled: dict[str, bool] = {}
        for level in ("2", "3", "5"):
            directory = Path(f"/etc/rc{level}.d")
            if not directory.is_dir():
                continue
            for link in directory.iterdir():
                name = link.name[3:]
                if link.name.startswith("S"):
                    enabled[name] = True
                else:
                    enabled.setdefault(name, False)
        return enabled

    # --- accounts ---------------------------------------------------------------------------
    def users(self) -> list[dict[str, Any]] | None:
        admins: set[str] = set()
        for group in ADMIN_GROUPS:
            try:
                admins.update(grp.getgrnam(group).gr_mem)
            except KeyError:
                continue
        gids = {g: grp.getgrnam(g).gr_gid for g in ADMIN_GROUPS if _group_exists(g)}
        result = []
        for entry in pwd.getpwall():
            # People, not system accounts: root and the regular UID range.
            if entry.pw_uid != 0 and not 1000 <= entry.pw_uid < 60000:
                continue
            admin = (entry.pw_uid == 0 or entry.pw_name in admins
                     or entry.pw_gid in gids.values())
            result.append({"name": entry.pw_name, "uid": entry.pw_uid, "admin": admin})
        return sorted(result, key=lambda u: u["uid"])

    # --- security state ---------------------------------------------------------------------
    @staticmethod
    def firewall() -> str:
        """"active" when a packet filter has rules, "inactive" when it has none."""
        ufw = run(["ufw", "status"])
        if ufw is not None:
            return "active" if "Status: active" in ufw else "inactive"
        nft = run(["nft", "list", "ruleset"])
        if nft is not None:
            return "active" if re.search(r"^\s*(chain|rule)\b", nft, re.M) and (
                " drop" in nft or " reject" in nft or "policy drop" in nft) else "inactive"
        ipt = run(["iptables", "-S"])
        if ipt is not None:
            lines = [ln for ln in ipt.splitlines() if ln.strip()]
            policies_drop = any(ln.startswith("-P") and ln.split()[-1] in ("DROP", "REJECT")
                                for ln in lines)
            rules = [ln for ln in lines if ln.startswith("-A")]
            return "active" if policies_drop or rules else "inactive"
        return UNKNOWN

    def _block_devices(self) -> list[dict[str, Any]] | None:
        out = run(["lsblk", "-J", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINT"])
        if out is None:
            return None
        try:
            return json.loads(out).get("blockdevices") or []
        except ValueError:
            return None

    def _encrypted_mounts(self) -> dict[str, bool] | None:
        """{mountpoint: encrypted} for every mounted block device, from lsblk's tree."""
        devices = self._block_devices()
        if devices is None:
            return None
        result: dict[str, bool] = {}

        def walk(nodes, inside_crypt: bool) -> None:
            for node in nodes:
                crypt = inside_crypt or node.get("type") == "crypt" or (
                    node.get("fstype") == "crypto_LUKS")
                if node.get("mountpoint"):
                    result[node["mountpoint"]] = crypt
                walk(node.get("children") or [], crypt)

        walk(devices, False)
        return result

    def disk_encryption_summary(self) -> str:
        mounts = self._encrypted_mounts()
        if not mounts:
            return UNKNOWN
        states = {mounts[m] for m in mounts if m not in ("[SWAP]",)}
        if states == {True}:
            return "encrypted"
        if states == {False}:
            return "not encrypted"
        return "partial"

    def disks(self) -> list[dict[str, Any]] | None:
        result = super().disks() or []
        mounts = self._encrypted_mounts() or {}
        for disk in result:
            if disk["mountpoint"] in mounts:
                disk["encrypted"] = mounts[disk["mountpoint"]]
        return result

    def facts(self) -> dict[str, Any]:
        facts = super().facts()
        release = os_release()
        facts["os"] = release.get("PRETTY_NAME") or facts["os"]
        facts["fqdn"] = socket.getfqdn()
        return facts


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True
