"""The collector interface. Metrics come from psutil on every platform; each platform's
collector fills in what it can read of the inventory and answers "unknown" for the rest.

A section the collector cannot read at all is None, and the agent leaves it out of the
inventory (the server then keeps what it had) rather than reporting an empty list.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import socket
import subprocess  # noqa: S404 (fixed argument lists, never a shell)
import time
from typing import Any

import psutil

from .smart import read_drives

log = logging.getLogger(__name__)

UNKNOWN = "unknown"

# Processes or packages whose presence means an endpoint-protection product is installed.
ENDPOINT_PROTECTION = {
    "clamd": "ClamAV", "clamav-daemon": "ClamAV", "clamav": "ClamAV",
    "falcon-sensor": "CrowdStrike Falcon", "falcond": "CrowdStrike Falcon",
    "sentinelone": "SentinelOne", "sentinel-agent": "SentinelOne", "s1-agent": "SentinelOne",
    "mdatp": "Microsoft Defender", "wdavdaemon": "Microsoft Defender",
    "msmpeng.exe": "Microsoft Defender",
    "sophos-spl": "Sophos", "savd": "Sophos", "sophosscand": "Sophos",
    "esets": "ESET", "eset-endpoint": "ESET", "bdsecuritytools": "Bitdefender",
    "bdagent": "Bitdefender", "ds_agent": "Trend Micro Deep Security",
    "cylancesvc": "Cylance", "xagt": "Trellix/FireEye", "elastic-endpoint": "Elastic Defend",
}


def run(argv: list[str], timeout: float = 30) -> str | None:
    """stdout of a command, or None when it is missing, fails or times out."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,  # noqa: S603
                              env={**os.environ, "LC_ALL": "C"}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("%s failed: %s", argv[0], exc)
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


class Collector:
    """Platform-neutral parts; subclasses override the inventory readers."""

    platform_name = "generic"

    def __init__(self) -> None:
        self._net_prev: tuple[float, int, int] | None = None
        psutil.cpu_percent(interval=None)  # prime the counter for the next call

    # --- metrics --------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        values: dict[str, float] = {}
        values["cpu.percent"] = float(psutil.cpu_percent(interval=None))
        vm = psutil.virtual_memory()
        values["mem.percent"] = float(vm.percent)
        values["mem.used_bytes"] = float(vm.total - vm.available)
        try:
            values["swap.percent"] = float(psutil.swap_memory().percent)
        except (OSError, RuntimeError):
            pass
        try:
            load1, load5, load15 = psutil.getloadavg()
            values.update({"load.1": load1, "load.5": load5, "load.15": load15})
        except (OSError, AttributeError):
            pass
        for part in self._partitions():
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue
            values[f"disk.used_bytes:{part.mountpoint}"] = float(usage.used)
            values[f"disk.free_bytes:{part.mountpoint}"] = float(usage.free)
            values[f"disk.used_percent:{part.mountpoint}"] = float(usage.percent)
        counters = psutil.net_io_counters()
        now = time.monotonic()
        if self._net_prev is not None and now > self._net_prev[0]:
            elapsed = now - self._net_prev[0]
            values["net.rx_bps"] = max(counters.bytes_recv - self._net_prev[1], 0) / elapsed
            values["net.tx_bps"] = max(counters.bytes_sent - self._net_prev[2], 0) / elapsed
        self._net_prev = (now, counters.bytes_recv, counters.bytes_sent)
        values["uptime.seconds"] = float(time.time() - psutil.boot_time())
        values["proc.count"] = float(len(psutil.pids()))
        return values

    @staticmethod
    def _partitions():
        seen = set()
        for part in psutil.disk_partitions(all=False):
            if part.mountpoint in seen or part.fstype in ("squashfs", "tmpfs", "overlay"):
                continue
            if part.mountpoint.startswith(("/snap/", "/var/lib/docker/")):
                continue
            seen.add(part.mountpoint)
            yield part

    # --- enrollment facts -----------------------------------------------------------------
    def facts(self) -> dict[str, Any]:
        return {"hostname": socket.gethostname(), "platform": self.platform_name,
                "os": platform.platform(), "machine": platform.machine()}

    # --- inventory ------------------------------------------------------------------------
    def inventory(self) -> dict[str, Any]:
        """Every section that could be read, each a plain JSON value."""
        sections: dict[str, Any] = {}
        readers = {
            "system": self.system, "disks": self.disks, "interfaces": self.interfaces,
            "software": self.software, "services": self.services, "users": self.users,
            "logged_in": self.logged_in, "ports": self.ports, "updates": self.updates,
            "drives": self.drives,
        }
        for name, reader in readers.items():
            try:
                value = reader()
            except Exception:  # one unreadable section must not cost the others
                log.exception("collecting %s failed", name)
                value = None
            if value is not None:
                sections[name] = value
        if "system" in sections and isinstance(sections.get("updates"), list):
            sections["system"]["pending_update_count"] = len(sections["updates"])
        return sections

    def system(self) -> dict[str, Any] | None:
        hostname = socket.gethostname()
        fqdn = socket.getfqdn()
        return {
            "os_name": platform.system() or UNKNOWN, "os_version": platform.version() or UNKNOWN,
            "kernel": platform.release() or UNKNOWN, "hostname": hostname,
            "domain": fqdn.split(".", 1)[1] if "." in fqdn else UNKNOWN,
            "manufacturer": UNKNOWN, "model": UNKNOWN, "serial": UNKNOWN,
            "cpu_model": platform.processor() or UNKNOWN,
            "cpu_cores": psutil.cpu_count(logical=True) or UNKNOWN,
            "ram_bytes": psutil.virtual_memory().total,
            "firewall": UNKNOWN, "disk_encryption": UNKNOWN,
            "endpoint_protection": self.endpoint_protection(),
            "reboot_required": UNKNOWN, "pending_update_count": UNKNOWN,
        }

    def disks(self) -> list[dict[str, Any]] | None:
        result = []
        for part in self._partitions():
            try:
                total = psutil.disk_usage(part.mountpoint).total
            except OSError:
                continue
            result.append({"device": part.device, "mountpoint": part.mountpoint,
                           "fstype": part.fstype, "total_bytes": total, "encrypted": UNKNOWN})
        return result

    def drives(self) -> list[dict[str, Any]] | None:
        """Physical drives with SMART health, through smartctl where it is installed (the
        same on every platform); None without smartctl. Read once per inventory cycle."""
        return read_drives()

    def default_gateways(self) -> dict[str, str] | None:
        """{interface: IPv4 default gateway}, or None where the platform's routes are not
        read (the server then leaves the device's observed gateway relation as it is)."""
        return None

    def interfaces(self) -> list[dict[str, Any]] | None:
        result = []
        gateways = self.default_gateways()
        for name, addrs in sorted(psutil.net_if_addrs().items()):
            entry: dict[str, Any] = {"name": name, "mac": "", "ipv4": [], "ipv6": []}
            if gateways is not None:
                entry["gateway"] = gateways.get(name, "")
            for addr in addrs:
                if addr.family == socket.AF_INET:
                    entry["ipv4"].append(addr.address)
                elif addr.family == socket.AF_INET6:
                    entry["ipv6"].append(addr.address.split("%", 1)[0])
                elif addr.family == psutil.AF_LINK:
                    entry["mac"] = addr.address.lower().replace("-", ":")
            result.append(entry)
        return result

    def software(self) -> list[dict[str, Any]] | None:
        return None

    def services(self) -> list[dict[str, Any]] | None:
        return None

    def users(self) -> list[dict[str, Any]] | None:
        return None

    def logged_in(self) -> list[dict[str, Any]] | None:
        return [{"name": u.name, "terminal": u.terminal or "",
                 "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(u.started))}
                for u in psutil.users()]

    def ports(self) -> list[dict[str, Any]] | None:
        try:
            conns = psutil.net_connections(kind="inet")
        except (psutil.AccessDenied, OSError):
            return None
        names: dict[int, str] = {}
        found = set()
        for conn in conns:
            listening = conn.status == psutil.CONN_LISTEN or (
                conn.type == socket.SOCK_DGRAM and not conn.raddr)
            if not listening or not conn.laddr:
                continue
            process = ""
            if conn.pid:
                if conn.pid not in names:
                    try:
                        names[conn.pid] = psutil.Process(conn.pid).name()
                    except (psutil.Error, OSError):
                        names[conn.pid] = ""
                process = names[conn.pid]
            proto = "tcp" if conn.type == socket.SOCK_STREAM else "udp"
            found.add((proto, conn.laddr.ip, conn.laddr.port, process))
        return [{"proto": p, "address": a, "port": port, "process": proc}
                for p, a, port, proc in sorted(found)]

    def updates(self) -> list[dict[str, Any]] | None:
        return None

    def endpoint_protection(self, packages: set[str] | None = None) -> str:
        """Products found among running processes (and installed packages, when given):
        "none", a comma-separated list, or "unknown"."""
        found = {ENDPOINT_PROTECTION[p] for p in packages or () if p in ENDPOINT_PROTECTION}
        try:
            for proc in psutil.process_iter(["name"]):
                name = (proc.info.get("name") or "").lower()
                if name in ENDPOINT_PROTECTION:
                    found.add(ENDPOINT_PROTECTION[name])
        except (psutil.Error, OSError):
            return UNKNOWN
        return ", ".join(sorted(found)) or "none"
