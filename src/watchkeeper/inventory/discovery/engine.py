"""Network discovery of a subnet: ICMP ping sweep, TCP connect scan of common ports, and SNMP
v2c sysName/sysDescr, all with asyncio and a bound on what is in flight.

The probes are core/probes', shared with the monitoring poller. Ping uses one ICMP socket
for the whole sweep (replies matched by identifier and sequence): an unprivileged datagram
socket where the kernel allows it (net.ipv4.ping_group_range), else a raw socket when the
process may open one; when neither is possible the sweep says so and relies on TCP answers
(a refused connection proves a host is up just as well).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from watchkeeper.core import audit, crypto, events, netguard
from watchkeeper.core.choices import AuditAction
from watchkeeper.core.probes import icmp, snmp, tcp

from .. import events as ev

log = logging.getLogger(__name__)

MAX_HOSTS = 1024  # a /22
COMMON_PORTS = (22, 23, 80, 135, 139, 443, 445, 515, 631, 3389, 5900, 8080, 9100)
SNMP_PURPOSE = "discovery-snmp"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
# Neighbour tables: LLDP-MIB's remote system names and management addresses (the address
# is in the index: timeMark.localPort.remIndex.addrSubtype.addrLen.addr), CISCO-CDP-MIB's
# cache device ids.
LLDP_REM_SYS_NAME = "1.0.8802.1.1.2.1.4.1.1.9"
LLDP_REM_MAN_ADDR = "1.0.8802.1.1.2.1.4.2.1.3"
CDP_CACHE_DEVICE_ID = "1.3.6.1.4.1.9.9.23.1.2.1.1.6"


@dataclass
class HostResult:
    address: str
    ping: bool = False
    open_ports: list[int] = field(default_factory=list)
    tcp_answered: bool = False
    snmp_name: str = ""
    snmp_descr: str = ""
    # ("name" | "address", value) of each neighbour its LLDP/CDP tables list
    neighbours: list[tuple[str, str]] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.ping or self.tcp_answered or bool(self.snmp_name or self.snmp_descr)


def hosts_of(subnet: str) -> list[str]:
    """The host addresses of `subnet`; refuses anything larger than MAX_HOSTS."""
    try:
        net = ipaddress.ip_network(subnet.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"{subnet!r} is not a subnet") from exc
    if net.num_addresses > MAX_HOSTS + 2:
        raise ValueError(f"{net} has {net.num_addresses} addresses; at most {MAX_HOSTS} "
                         "(a /22) per run")
    hosts = [str(h) for h in net.hosts()] or [str(net.network_address)]
    return hosts


def parse_ports(text: str) -> list[int]:
    if not text.strip():
        return list(COMMON_PORTS)
    ports = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise ValueError(f"{part!r} is not a TCP port")
        ports.append(int(part))
    if len(ports) > 100:
        raise ValueError("at most 100 ports per run")
    return sorted(set(ports))


# --- Probes (core/probes: the same ICMP, TCP and SNMP code as the monitoring poller) -------

async def tcp_probe(address: str, port: int, timeout: float) -> str:
    """"open", "closed" (refused: the host is up) or "silent"."""
    seen = await tcp.connect(address, port, timeout)
    return "open" if seen.open else "closed" if seen.refused else "silent"


async def snmp_system(address: str, community: str, port: int = 161,
                      timeout: float = 1.0) -> tuple[str, str] | None:
    """(sysName, sysDescr) via SNMP v2c, or None when nothing answers."""
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

    netguard.check(address)
    engine = SnmpEngine()
    target = {"host": address, "port": port, "version": "2c", "community": community,
              "timeout": timeout, "retries": 0}
    try:
        name, descr = await snmp.get(target, engine, [SYS_NAME, SYS_DESCR], missing_ok=True)
    except Exception as exc:  # SnmpFailure, and pysnmp's own errors for unusable targets
        log.debug("snmp %s:%s failed: %s", address, port, exc)
        return None
    finally:
        engine.close_dispatcher()
    return ("" if name is None else str(name)), ("" if descr is None else str(descr))


async def snmp_neighbours(address: str, community: str, port: int = 161,
                         timeout: float = 1.0) -> list[tuple[str, str]]:
    """The neighbours a device lists in its LLDP and CDP tables, as ("name", sysName) and
    ("address", IPv4) pairs; [] when it has no such tables or does not answer."""
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

    engine = SnmpEngine()
    target = {"host": address, "port": port, "version": "2c", "community": community,
              "timeout": timeout, "retries": 0}
    found: list[tuple[str, str]] = []
    try:
        for base in (LLDP_REM_SYS_NAME, CDP_CACHE_DEVICE_ID):
            async for _oid, value in snmp.walk(target, engine, base):
                if str(value).strip():
                    found.append(("name", str(value).strip()))
        async for oid, _value in snmp.walk(target, engine, LLDP_REM_MAN_ADDR):
            parts = oid[len(LLDP_REM_MAN_ADDR) + 1:].split(".")
            if len(parts) == 9 and parts[3] == "1" and parts[4] == "4":  # IPv4, 4 octets
                found.append(("address", ".".join(parts[5:9])))
    except Exception as exc:  # SnmpFailure, and pysnmp's own errors for unusable targets
        log.debug("snmp neighbours of %s:%s failed: %s", address, port, exc)
    finally:
        engine.close_dispatcher()
    return list(dict.fromkeys(found))


async def scan(addresses: list[str], ports: list[int], *, community: str = "",
               snmp_port: int = 161, concurrency: int = 128,
               timeout: float = 1.0) -> tuple[list[HostResult], bool]:
    """Scan the addresses; returns the results and whether ICMP was available."""
    # Only addresses inside the client's allowed probe networks (core/netguard.py); every
    # connection below is checked again where it is made.
    addresses = [a for a in addresses if netguard.permitted(a)]
    results = {a: HostResult(a) for a in addresses}
    pinged = await icmp.sweep(addresses, timeout)
    for addr in pinged or ():
        results[addr].ping = True
    gate = asyncio.Semaphore(concurrency)

    async def probe(addr: str, port: int) -> None:
        async with gate:
            state = await tcp_probe(addr, port, timeout)
        if state != "silent":
            results[addr].tcp_answered = True
        if state == "open":
            results[addr].open_ports.append(port)

    async def snmp(addr: str) -> None:
        async with gate:
            found = await snmp_system(addr, community, snmp_port, timeout)
        if found:
            results[addr].snmp_name, results[addr].snmp_descr = found
            async with gate:
                results[addr].neighbours = await snmp_neighbours(addr, community, snmp_port,
                                                                 timeout)

    jobs = [probe(a, p) for a in addresses for p in ports]
    if community:
        jobs += [snmp(a) for a in addresses]
    await asyncio.gather(*jobs)
    for r in results.values():
        r.open_ports.sort()
    return [r for r in results.values() if r.alive], pinged is not None


# --- The job ----------------------------------------------------------------------------

def _record_neighbours(run, found: list[HostResult]) -> int:
    """LLDP/CDP neighbours as "uplink" relations with source discovery: a link between a
    network device and another device makes the network device the other's uplink. A link
    between two network devices (or two other devices) says nothing about direction and is
    not recorded. Both ends must be devices of the run's client. Returns relations set."""
    from django.db.models import Q

    from ..choices import DeviceKind
    from ..models import Device
    from ..relations import actions as relation_actions
    from ..relations.choices import RelationKind, RelationSource

    devices = Device.objects.filter(client_id=run.client_id)

    def by_address(ip: str):
        return devices.filter(Q(primary_ip=ip) | Q(addresses__address=ip)).order_by("id").first()

    def by_name(name: str):
        short = name.split(".")[0]
        return devices.filter(Q(name__iexact=name) | Q(hostname__iexact=name)
                              | Q(name__iexact=short) | Q(hostname__iexact=short)
                              ).order_by("id").first()

    uplinks: dict[int, tuple] = {}
    for host in found:
        reporter = by_address(host.address) if host.neighbours else None
        if reporter is None:
            continue
        for how, value in host.neighbours:
            other = by_address(value) if how == "address" else by_name(value)
            if other is None or other.pk == reporter.pk:
                continue
            if (reporter.kind == DeviceKind.NETWORK) == (other.kind == DeviceKind.NETWORK):
                continue
            parent, child = (reporter, other) if reporter.kind == DeviceKind.NETWORK \
                else (other, reporter)
            detail = f"LLDP/CDP neighbour seen by {reporter.name} ({host.address})"
            entry = uplinks.setdefault(child.pk, (child, {}))
            entry[1].setdefault(parent.pk, (parent, detail))
    for child, parents in uplinks.values():
        relation_actions.record_observed(device=child, kind=RelationKind.UPLINK,
                                         source=RelationSource.DISCOVERY,
                                         parents=list(parents.values()))
    return len(uplinks)


@task()
def run_discovery(run_id: int) -> dict:
    """Run one DiscoveryRun; idempotent: a run already started is left alone."""
    from ..choices import ProposalState, RunStatus
    from ..models import Device, DiscoveredHost, DiscoveryRun, NetworkAddress

    claimed = DiscoveryRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now())
    if not claimed:
        return {"skipped": True}
    run = DiscoveryRun.objects.get(pk=run_id)
    try:
        addresses = hosts_of(run.subnet)
        community = (crypto.decrypt(run.snmp_community_enc, SNMP_PURPOSE)
                     if run.snmp_community_enc else "")
        networks = netguard.networks_for(run.client_id)
        allowed = [a for a in addresses if netguard.permitted(
            a, netguard.parse_networks(networks))]
        if not allowed:
            raise netguard.ProbeRefused(
                f"{run.subnet} is outside the networks allowed for this client's probes "
                f"({', '.join(networks) or 'none'}); nothing was probed.")
        with netguard.allow(networks):
            found, icmp = asyncio.run(scan(allowed, run.ports or list(COMMON_PORTS),
                                           community=community, snmp_port=run.snmp_port))
    except Exception as exc:  # a failed run is recorded for the person who started it
        log.exception("discovery run %s failed", run_id)
        with transaction.atomic():
            DiscoveryRun.objects.filter(pk=run_id).update(
                status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
                finished_at=timezone.now())
            events.emit(ev.DiscoveryFailed(id=run_id), client=run.client_id)
        return {"error": str(exc)}
    known = set(Device.objects.filter(client_id=run.client_id,
                                      primary_ip__in=[h.address for h in found])
                .values_list("primary_ip", flat=True))
    known |= set(NetworkAddress.objects.filter(device__client_id=run.client_id,
                                               address__in=[h.address for h in found])
                 .values_list("address", flat=True))
    with transaction.atomic():
        DiscoveredHost.objects.bulk_create([
            DiscoveredHost(run=run, address=h.address, alive=True, open_ports=h.open_ports,
                           snmp_name=h.snmp_name[:255], snmp_descr=h.snmp_descr,
                           state=ProposalState.KNOWN if h.address in known
                           else ProposalState.PROPOSED)
            for h in found], ignore_conflicts=True)
        _record_neighbours(run, found)
        note = "" if icmp else "ICMP not available to this process; hosts found by TCP/SNMP."
        DiscoveryRun.objects.filter(pk=run_id).update(
            status=RunStatus.DONE, finished_at=timezone.now(), error=note)
        audit.record(actor="discovery", action=AuditAction.UPDATE, obj=run,
                     changes={"status": [RunStatus.RUNNING, RunStatus.DONE],
                              "found": [None, len(found)]})
        events.emit(ev.DiscoveryFinished(
            id=run_id, found=len(found), new=sum(1 for h in found if h.address not in known)),
            client=run.client_id)
    return {"found": len(found)}


def start_discovery(*, actor, client, subnet: str, ports: list[int] | None = None,
                    site=None, snmp_community: str = "", snmp_port: int = 161):
    """Record a run and enqueue it (after commit)."""
    from ..models import DiscoveryRun

    hosts = hosts_of(subnet)  # validate the size before anything is stored
    networks = netguard.parse_networks(netguard.networks_for(getattr(client, "pk", client)))
    if not any(netguard.permitted(h, networks) for h in hosts):
        raise ValueError("This subnet is outside the networks allowed for this client's "
                         "probes (the client's probe networks); an admin can allow it.")
    with transaction.atomic():
        run = DiscoveryRun.objects.create(
            client=client, site=site, subnet=str(ipaddress.ip_network(subnet.strip(),
                                                                       strict=False)),
            ports=ports or list(COMMON_PORTS), snmp_port=snmp_port,
            snmp_community_enc=crypto.encrypt(snmp_community, SNMP_PURPOSE)
            if snmp_community else "",
            requested_by=actor if getattr(actor, "is_authenticated", False) else None)
        audit.record(actor=actor, action=AuditAction.CREATE, obj=run,
                     changes={"subnet": [None, run.subnet], "ports": [None, run.ports]})
        events.emit(ev.DiscoveryStarted(id=run.pk), client=client)
        transaction.on_commit(lambda: run_discovery.enqueue(run.pk))
    return run


def accept_host(*, actor, host, kind: str = "other", name: str = ""):
    """Turn a proposed host into a device with provenance network_scan."""
    from ..actions import create_device
    from ..choices import ProposalState, SourceKind
    from ..models import DiscoveredHost

    with transaction.atomic():
        host = DiscoveredHost.objects.select_for_update().select_related("run").get(
            pk=host.pk)
        if host.state != ProposalState.PROPOSED:
            raise ValueError("This host is not a pending proposal.")
        device = create_device(
            actor=actor, client=host.run.client, site=host.run.site,
            source_kind=SourceKind.NETWORK_SCAN, source_ref=f"discovery:{host.run_id}",
            name=(name or host.snmp_name or host.address)[:200], kind=kind,
            hostname=host.snmp_name[:255], primary_ip=host.address,
            notes=host.snmp_descr[:2000])
        host.state, host.device = ProposalState.ACCEPTED, device
        host.save(update_fields=["state", "device"])
    return device


def ignore_host(*, actor, host) -> None:
    from ..choices import ProposalState
    from ..models import DiscoveredHost

    with transaction.atomic():
        updated = DiscoveredHost.objects.filter(pk=host.pk, state=ProposalState.PROPOSED
                                                ).update(state=ProposalState.IGNORED)
        if updated:
            audit.record(actor=actor, action=AuditAction.UPDATE, obj=host,
                         object_repr=host.address, client_id=host.run.client_id,
                         changes={"state": [ProposalState.PROPOSED, ProposalState.IGNORED]})
            events.emit(ev.DiscoveryHostIgnored(id=host.pk), client=host.run.client_id)


# A /22 with 13 ports is ~13,000 probes at 128 in flight and 1 s timeout: under 2 minutes.
# A run still "running" after this long lost its worker.
STUCK_AFTER_SECONDS = 30 * 60
# A run still queued after this long missed its enqueue (e.g. the queue was down at commit).
REQUEUE_AFTER_SECONDS = 5 * 60


@task()
def recover_discoveries() -> dict:
    """Periodic: fail runs whose worker died, and enqueue runs whose enqueue was lost."""
    from datetime import timedelta

    from ..choices import RunStatus
    from ..models import DiscoveryRun

    now = timezone.now()
    failed = 0
    stuck = DiscoveryRun.objects.filter(
        status=RunStatus.RUNNING, started_at__lt=now - timedelta(seconds=STUCK_AFTER_SECONDS)
    ).order_by("pk").values_list("pk", "client_id")
    for pk, client_id in stuck:
        with transaction.atomic():
            claimed = DiscoveryRun.objects.filter(pk=pk, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED, finished_at=now,
                error="The worker running this discovery stopped; start it again.")
            if claimed:
                failed += 1
                events.emit(ev.DiscoveryFailed(id=pk), client=client_id)
    requeued = 0
    for pk in DiscoveryRun.objects.filter(
            status=RunStatus.QUEUED,
            created_at__lt=now - timedelta(seconds=REQUEUE_AFTER_SECONDS)
    ).order_by("pk").values_list("pk", flat=True)[:100]:
        run_discovery.enqueue(pk)  # idempotent: the run is claimed by one worker only
        requeued += 1
    return {"failed": failed, "requeued": requeued}
