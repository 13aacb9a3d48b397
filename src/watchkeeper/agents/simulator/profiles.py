"""Simulated devices: a deterministic fleet spread over clients, each with hardware, an
operating system, drives, software, services, pending updates and metrics that follow a
working day in the client's time zone.

`fleet(clients, n, seed)` returns the same profiles for the same arguments (a restarted
demo keeps its devices). Some devices are made to fail, as a real fleet does: a drive with
reallocated sectors or a failed SMART self-assessment, a nearly full disk, a stopped
automatic service, updates waiting for a reboot, a busy server, and laptops that go offline
after their first check-in.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

GIB = 2**30


@dataclass(frozen=True)
class ClientInfo:
    """What the generator needs of a client: its id (to place devices), a short prefix for
    host names, its time zone (the working day of its metrics), its site ids."""

    id: int
    name: str
    timezone: str = "UTC"
    site_ids: tuple[int, ...] = ()


@dataclass
class Profile:
    hostname: str
    client_id: int
    site_id: int | None
    role: str                  # server, workstation, laptop
    platform: str              # windows, linux, macos
    timezone: str
    system: dict[str, Any]
    disks: list[dict[str, Any]]
    drives: list[dict[str, Any]]
    software: list[dict[str, Any]]
    services: list[dict[str, Any]]
    updates: list[dict[str, Any]]
    interfaces: list[dict[str, Any]]
    users: list[dict[str, Any]]
    # Metric shape: base load, amplitude over the working day, disk fill per mount (0-1)
    cpu_base: float = 5.0
    cpu_peak: float = 35.0
    mem_base: float = 40.0
    disk_fill: dict[str, float] = field(default_factory=dict)
    disk_growth_per_day: float = 0.002
    # Failure modes (for the docs and tests; the data above already shows them)
    faults: tuple[str, ...] = ()
    goes_offline: bool = False
    seed: int = 0

    def metrics(self, at: float) -> dict[str, float]:
        """The metric values this device reports at unix time `at`: CPU and memory follow
        the client's working day (9-18 local, weekdays), with noise; disks grow slowly."""
        local = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(self.timezone))
        hour = local.hour + local.minute / 60
        working = local.weekday() < 5 and 8 <= hour < 18.5
        # A smooth bump over the working day; servers also have a nightly backup at 2.
        day = math.sin(math.pi * (hour - 8) / 10.5) if working else 0.0
        night = 1.0 if self.role == "server" and 2 <= hour < 3 else 0.0
        rnd = random.Random(f"{self.seed}:{int(at // 60)}")
        cpu = self.cpu_base + self.cpu_peak * max(day, 0.0) + 45 * night + rnd.gauss(0, 3)
        if "busy" in self.faults:
            cpu = 93 + rnd.random() * 6
        mem = self.mem_base + 20 * max(day, 0.0) + rnd.gauss(0, 2)
        values = {"cpu.percent": _clamp(cpu), "mem.percent": _clamp(mem),
                  "mem.used_bytes": float(self.system["ram_bytes"] * _clamp(mem) / 100),
                  "swap.percent": _clamp(rnd.gauss(4, 2)),
                  "load.1": max(0.0, cpu / 100 * self.system["cpu_cores"] + rnd.gauss(0, .2)),
                  "proc.count": float(140 + int(60 * max(day, 0)) + rnd.randint(0, 20)),
                  "uptime.seconds": float(at % (86400 * 9) + 3600),
                  "net.rx_bps": max(0.0, 2e4 + 4e5 * max(day, 0) + rnd.gauss(0, 5e3)),
                  "net.tx_bps": max(0.0, 1e4 + 1e5 * max(day, 0) + rnd.gauss(0, 2e3))}
        days = (at - 1_700_000_000) / 86400
        for disk in self.disks:
            mount, total = disk["mountpoint"], disk["total_bytes"]
            fill = min(0.995, self.disk_fill[mount] + self.disk_growth_per_day * (days % 30))
            values[f"disk.used_percent:{mount}"] = round(fill * 100, 2)
            values[f"disk.used_bytes:{mount}"] = float(int(total * fill))
            values[f"disk.free_bytes:{mount}"] = float(int(total * (1 - fill)))
        return values

    def inventory(self) -> dict[str, Any]:
        system = dict(self.system)
        system["pending_update_count"] = len(self.updates)
        return {"system": system, "disks": self.disks, "drives": self.drives,
                "software": self.software, "services": self.services,
                "updates": self.updates, "interfaces": self.interfaces, "users": self.users,
                "logged_in": [{"name": self.users[0]["name"], "terminal": "console",
                               "since": "2026-01-05T08:02:00Z"}] if self.role != "server"
                else []}

    def facts(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "platform": self.platform,
                "os": f"{self.system['os_name']} {self.system['os_version']}",
                "machine": "x86_64" if self.platform != "macos" else "arm64"}


def _clamp(v: float) -> float:
    return round(min(100.0, max(0.0, v)), 2)


# --- Catalogues ---------------------------------------------------------------------------

HARDWARE = {
    "server": [("Dell Inc.", "PowerEdge R650", "Intel(R) Xeon(R) Silver 4314", 32, 128),
               ("HPE", "ProLiant DL360 Gen10 Plus", "Intel(R) Xeon(R) Gold 5318Y", 48, 256),
               ("Lenovo", "ThinkSystem SR630 V2", "Intel(R) Xeon(R) Silver 4310", 24, 64)],
    "workstation": [("Dell Inc.", "OptiPlex 7010", "13th Gen Intel(R) Core(TM) i5-13500", 14,
                     16),
                    ("HP", "EliteDesk 800 G9", "12th Gen Intel(R) Core(TM) i7-12700", 20, 32),
                    ("Lenovo", "ThinkCentre M70q Gen 4", "13th Gen Intel(R) Core(TM) i5-13400T",
                     10, 16)],
    "laptop": [("Lenovo", "ThinkPad T14 Gen 4", "13th Gen Intel(R) Core(TM) i7-1365U", 12, 16),
               ("HP", "EliteBook 840 G10", "13th Gen Intel(R) Core(TM) i5-1345U", 12, 16),
               ("Dell Inc.", "Latitude 5440", "13th Gen Intel(R) Core(TM) i5-1335U", 12, 16),
               ("Apple Inc.", "MacBook Pro 14-inch (M3)", "Apple M3 Pro", 12, 18)],
}
SOFTWARE = {
    "windows": [("Microsoft 365 Apps for business", "16.0.17328.20162"),
                ("Google Chrome", "120.0.6099.130"), ("Mozilla Firefox", "121.0"),
                ("7-Zip", "23.01"), ("Adobe Acrobat Reader", "23.008.20421"),
                ("Microsoft Teams", "23335.232.2637.4844"), ("Zoom Workplace", "5.17.1"),
                ("Microsoft Defender Antivirus", "4.18.23110.3"), ("Notepad++", "8.6"),
                ("VLC media player", "3.0.20")],
    "windows-server": [("Microsoft SQL Server 2019", "15.0.4345.5"),
                       ("Veeam Agent for Microsoft Windows", "6.0.2.1090"),
                       ("Microsoft Defender Antivirus", "4.18.23110.3"),
                       ("PowerShell 7-x64", "7.4.0"), ("Microsoft Edge", "120.0.2210.91")],
    "linux": [("openssh-server", "1:8.9p1-3ubuntu0.6"), ("nginx", "1.18.0-6ubuntu14.4"),
              ("postgresql-14", "14.10-0ubuntu0.22.04.1"), ("restic", "0.12.1-2"),
              ("unattended-upgrades", "2.8ubuntu1"), ("python3", "3.10.6-1~22.04")],
    "macos": [("Google Chrome", "120.0.6099.129"), ("Microsoft Outlook", "16.80"),
              ("Slack", "4.36.140"), ("1Password 8", "8.10.23"), ("Zoom", "5.17.1")],
}
SERVICES = {
    "windows": [("Spooler", True), ("wuauserv", False), ("WinDefend", True),
                ("Dhcp", True), ("Dnscache", True), ("EventLog", True), ("W32Time", True),
                ("BITS", False), ("gupdate", True)],
    "windows-server": [("MSSQLSERVER", True), ("SQLSERVERAGENT", True),
                       ("VeeamEndpointBackupSvc", True), ("W32Time", True),
                       ("WinDefend", True), ("EventLog", True), ("LanmanServer", True)],
    "linux": [("sshd", True), ("nginx", True), ("postgresql", True), ("cron", True),
              ("systemd-journald", True), ("unattended-upgrades", True)],
    "macos": [],
}
UPDATES = {
    "windows": [("2024-01 Cumulative Update for Windows 11 Version 23H2 (KB5034123)", ""),
                ("Security Intelligence Update for Microsoft Defender (KB2267602)",
                 "1.403.1011.0"),
                ("2024-01 .NET Framework 3.5 and 4.8.1 Update (KB5033920)", "")],
    "linux": [("linux-image-generic", "5.15.0.91.88"), ("openssl", "3.0.2-0ubuntu1.13"),
              ("libc6", "2.35-0ubuntu3.6")],
    "macos": [("macOS Sonoma 14.2.1", "14.2.1")],
}


def _platform(role: str, rnd: random.Random) -> str:
    if role == "server":
        return "windows" if rnd.random() < 0.6 else "linux"
    if role == "laptop":
        return "macos" if rnd.random() < 0.15 else "windows"
    return "windows"


def _os(platform: str, role: str) -> tuple[str, str, str]:
    if platform == "windows":
        return (("Windows Server 2022 Standard", "10.0.20348", "10.0.20348")
                if role == "server" else ("Windows 11 Pro", "10.0.22631", "10.0.22631"))
    if platform == "linux":
        return ("Ubuntu 22.04.3 LTS", "22.04", "5.15.0-91-generic")
    return ("macOS", "14.2", "23.2.0")


def prefix_of(name: str) -> str:
    letters = "".join(w[0] for w in re.findall(r"[A-Za-z]+", name) if w[0].isupper())
    return (letters or name[:3]).upper()[:4]


def fleet(clients: list[ClientInfo], n: int, seed: str = "watchkeeper-demo") -> list[Profile]:
    """`n` device profiles spread over `clients` (larger clients first get more)."""
    if not clients or n <= 0:
        return []
    profiles = []
    counters: dict[tuple[int, str], int] = {}
    for i in range(n):
        client = clients[i % len(clients)]
        rnd = random.Random(f"{seed}:{i}")
        pick = rnd.random()
        role = "server" if pick < 0.12 else "laptop" if pick < 0.5 else "workstation"
        platform = _platform(role, rnd)
        key = (client.id, role)
        counters[key] = counters.get(key, 0) + 1
        tag = {"server": "SRV", "workstation": "WS", "laptop": "LT"}[role]
        hostname = f"{prefix_of(client.name)}-{tag}{counters[key]:02d}"
        profiles.append(_profile(i, hostname, client, role, platform, rnd, seed))
    return profiles


def _profile(i: int, hostname: str, client: ClientInfo, role: str, platform: str,
             rnd: random.Random, seed: str) -> Profile:
    maker, model, cpu, cores, ram_gib = rnd.choice(
        [h for h in HARDWARE[role] if (platform == "macos") == h[0].startswith("Apple")]
        or HARDWARE[role])
    os_name, os_version, kernel = _os(platform, role)
    serial = hashlib.sha256(f"{seed}:{i}:serial".encode()).hexdigest()[:10].upper()
    mount = "C:" if platform == "windows" else "/"
    size_gib = {"server": 960, "workstation": 512, "laptop": 512}[role]
    disks = [{"device": "\\\\.\\PHYSICALDRIVE0" if platform == "windows" else "/dev/nvme0n1p2",
              "mountpoint": mount, "fstype": "NTFS" if platform == "windows" else
              ("apfs" if platform == "macos" else "ext4"), "total_bytes": size_gib * GIB,
              "encrypted": role == "laptop"}]
    fill = {mount: 0.25 + rnd.random() * 0.45}
    if role == "server":
        data = "D:" if platform == "windows" else "/srv"
        disks.append({"device": "\\\\.\\PHYSICALDRIVE1" if platform == "windows" else "/dev/sdb1",
                      "mountpoint": data, "fstype": "NTFS" if platform == "windows" else "xfs",
                      "total_bytes": 4000 * GIB, "encrypted": False})
        fill[data] = 0.4 + rnd.random() * 0.35
    faults: list[str] = []
    # Deterministic failure mix by position, so every demo shows each kind of problem.
    if i % 29 == 3:
        faults.append("failing-drive")
    if i % 23 == 5:
        faults.append("disk-full")
        fill[mount] = 0.955
    if i % 31 == 7:
        faults.append("stopped-service")
    if i % 7 == 0:
        faults.append("pending-updates")
    if role == "server" and i % 11 == 0:
        faults.append("busy")
    goes_offline = role == "laptop" and i % 9 == 4
    if goes_offline:
        faults.append("offline")
    drives = [_drive(platform, role, serial, size_gib, "failing-drive" in faults, rnd)]
    sw_key = "windows-server" if platform == "windows" and role == "server" else platform
    software = [{"name": n, "version": v, "source": "registry" if platform == "windows"
                 else "dpkg" if platform == "linux" else "applications"}
                for n, v in SOFTWARE[sw_key]]
    services = [{"name": n, "state": "running" if auto or rnd.random() < .5 else "stopped",
                 "enabled": auto} for n, auto in SERVICES[sw_key]]
    if "stopped-service" in faults and services:
        victim = services[0]
        victim["state"] = "stopped" if platform == "windows" else "dead"
    updates = ([{"name": n, "version": v} for n, v in UPDATES[platform]]
               if "pending-updates" in faults else [])
    octet = 10 + (i % 200)
    interfaces = [{"name": "Ethernet" if platform == "windows" else "eth0",
                   "mac": ":".join(f"{b:02x}" for b in hashlib.sha256(
                       f"{seed}:{i}:mac".encode()).digest()[:6]),
                   "ipv4": [f"10.{client.id % 250}.{octet // 250}.{octet}"], "ipv6": []}]
    user = hostname.split("-")[0].lower() + f"user{i % 50}"
    system = {"os_name": os_name, "os_version": os_version, "kernel": kernel,
              "hostname": hostname, "domain": f"{prefix_of(client.name).lower()}.local",
              "manufacturer": maker, "model": model, "serial": serial, "cpu_model": cpu,
              "cpu_cores": cores, "ram_bytes": ram_gib * GIB,
              "firewall": "enabled", "disk_encryption": "enabled" if role == "laptop"
              else "none", "endpoint_protection": "Microsoft Defender"
              if platform == "windows" else "none",
              "reboot_required": bool(updates),
              "pending_update_count": len(updates)}
    return Profile(
        hostname=hostname, client_id=client.id,
        site_id=client.site_ids[i % len(client.site_ids)] if client.site_ids else None,
        role=role, platform=platform, timezone=client.timezone, system=system, disks=disks,
        drives=drives, software=software, services=services, updates=updates,
        interfaces=interfaces, users=[{"name": user, "uid": 1000 + i % 50,
                                       "admin": role == "server"}],
        cpu_base=8 if role == "server" else 3, cpu_peak=25 if role == "server" else 40,
        mem_base=55 if role == "server" else 35, disk_fill=fill,
        disk_growth_per_day=0.004 if role == "server" else 0.001, faults=tuple(faults),
        goes_offline=goes_offline, seed=int(hashlib.sha256(
            f"{seed}:{i}".encode()).hexdigest()[:8], 16))


def _drive(platform: str, role: str, serial: str, size_gib: int, failing: bool,
           rnd: random.Random) -> dict[str, Any]:
    hours = rnd.randint(2_000, 38_000)
    if role == "server":
        drive = {"device": "/dev/sda", "type": "sat", "protocol": "ATA",
                 "model": "Seagate Exos 7E10 4TB", "serial": f"ZL{serial[:6]}",
                 "firmware": "SN02", "capacity_bytes": size_gib * GIB, "media": "hdd",
                 "rotation_rate": 7200, "exit_status": 0, "smart_status": "passed",
                 "temperature_c": rnd.randint(30, 41), "power_on_hours": hours,
                 "attributes": [
                     {"id": 5, "name": "Reallocated_Sector_Ct", "value": 100, "worst": 100,
                      "thresh": 10, "when_failed": "", "prefailure": True, "raw": 0},
                     {"id": 197, "name": "Current_Pending_Sector", "value": 100,
                      "worst": 100, "thresh": 0, "when_failed": "", "prefailure": False,
                      "raw": 0}]}
        if failing:
            drive["attributes"][0].update(value=3, worst=3, when_failed="now", raw=1848)
            drive["attributes"][1].update(raw=64)
            drive["smart_status"] = "failed"
        return drive
    drive = {"device": "/dev/nvme0", "type": "nvme", "protocol": "NVMe",
             "model": rnd.choice(["Samsung SSD 980 PRO 512GB", "SK hynix PC801 512GB",
                                  "KIOXIA KXG80ZNV512G"]),
             "serial": f"S{serial}", "firmware": "5B2QGXA7", "capacity_bytes": size_gib * GIB,
             "media": "ssd", "exit_status": 0, "smart_status": "passed",
             "temperature_c": rnd.randint(32, 48), "power_on_hours": hours,
             "critical_warning": 0, "available_spare": 100, "available_spare_threshold": 10,
             "percentage_used": rnd.randint(1, 12), "media_errors": 0}
    if failing:
        drive.update(critical_warning=1, available_spare=4, percentage_used=97,
                     media_errors=212, smart_status="failed")
    return drive
