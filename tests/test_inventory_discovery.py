"""Network discovery against real peers on loopback: an open and a closed TCP port, and a
real snmpd answering SNMP v2c sysName/sysDescr; found hosts proposed and accepted."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest
from django.urls import reverse

from watchkeeper.inventory.choices import ProposalState, RunStatus, SourceKind
from watchkeeper.inventory.discovery import engine as discovery
from watchkeeper.inventory.models import Device, DiscoveredHost, DiscoveryRun, FieldProvenance

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_probes")]

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def open_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def start_snmpd(tmp_path, extra_conf: str = ""):
    """A real snmpd on a free UDP port of 127.0.0.1 with its own config (plus `extra_conf`
    lines, e.g. `override` of neighbour tables); yields the port, stops it after."""
    if not os.path.exists(SNMPD):
        pytest.skip("snmpd is not installed")
    port = free_port(socket.SOCK_DGRAM)
    conf = tmp_path / "snmpd.conf"
    conf.write_text("rocommunity wk-test-community 127.0.0.1\n"
                    "sysName lab-switch-01\n"
                    "sysDescr Watchkeeper lab switch, firmware 1.2\n" + extra_conf)
    proc = subprocess.Popen(
        [SNMPD, "-f", "-Lo", "-C", "-r", "-c", str(conf), f"udp:127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until it answers (or give up after a few seconds)
    import asyncio

    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if asyncio.run(discovery.snmp_system("127.0.0.1", "wk-test-community", port, 0.5)):
                break
        yield port
    finally:
        # also when the readiness probe raised: a failed setup must not leave snmpd running
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def snmp_agent(tmp_path):
    yield from start_snmpd(tmp_path)


def test_subnet_size_is_bounded():
    assert len(discovery.hosts_of("10.0.0.0/22")) == 1022
    assert discovery.hosts_of("127.0.0.1/32") == ["127.0.0.1"]
    with pytest.raises(ValueError):
        discovery.hosts_of("10.0.0.0/21")
    with pytest.raises(ValueError):
        discovery.hosts_of("not-a-net")
    with pytest.raises(ValueError):
        discovery.parse_ports("22,99999")


def test_discovery_finds_open_port_not_closed_one_and_snmp(owner, client_a, open_port,
                                                          snmp_agent):
    closed = free_port()
    run = discovery.start_discovery(actor=owner, client=client_a, subnet="127.0.0.1/32",
                                    ports=[open_port, closed],
                                    snmp_community="wk-test-community", snmp_port=snmp_agent)
    # the community is stored encrypted
    assert "wk-test-community" not in run.snmp_community_enc
    result = discovery.run_discovery.call(run.pk)
    assert result == {"found": 1}
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    host = DiscoveredHost.objects.get(run=run)
    assert host.address == "127.0.0.1" and host.alive
    assert host.open_ports == [open_port]  # the closed port is not listed
    assert host.snmp_name == "lab-switch-01"
    assert host.snmp_descr == "Watchkeeper lab switch, firmware 1.2"
    assert host.state == ProposalState.PROPOSED
    # running the same job again does nothing (claimed once)
    assert discovery.run_discovery.call(run.pk) == {"skipped": True}


def test_wrong_community_gets_no_snmp_facts(owner, client_a, open_port, snmp_agent):
    run = discovery.start_discovery(actor=owner, client=client_a, subnet="127.0.0.1/32",
                                    ports=[open_port], snmp_community="wrong",
                                    snmp_port=snmp_agent)
    discovery.run_discovery.call(run.pk)
    host = DiscoveredHost.objects.get(run=run)
    assert host.snmp_name == "" and host.open_ports == [open_port]


def test_accepting_a_proposal_creates_a_device_with_scan_provenance(as_user, tech_a,
                                                                    client_a):
    run = DiscoveryRun.objects.create(client=client_a, subnet="192.0.2.0/24",
                                      status=RunStatus.DONE)
    host = DiscoveredHost.objects.create(run=run, address="192.0.2.10", alive=True,
                                         open_ports=[9100], snmp_name="prn-hall")
    web = as_user(tech_a)
    response = web.post(reverse("inventory_discovery_host", args=[host.pk]),
                        {"decision": "accept", "kind": "printer"})
    assert response.status_code == 302
    device = Device.objects.get(name="prn-hall")
    assert (device.kind, device.primary_ip, device.source) == ("printer", "192.0.2.10",
                                                               SourceKind.NETWORK_SCAN)
    prov = FieldProvenance.objects.get(device=device, field="primary_ip")
    assert (prov.source_kind, prov.source_ref) == ("network_scan", f"discovery:{run.pk}")
    host.refresh_from_db()
    assert host.state == ProposalState.ACCEPTED and host.device == device
    # a second accept is refused
    web.post(reverse("inventory_discovery_host", args=[host.pk]), {"decision": "accept"})
    assert Device.objects.filter(name="prn-hall").count() == 1


def test_discovery_pages_and_tenant_isolation(as_user, tech_a, owner, client_a, client_b):
    web = as_user(tech_a)
    response = web.post(reverse("inventory_discovery"), {
        "client": client_a.pk, "subnet": "10.1.0.0/20", "snmp_port": 161})
    assert response.status_code == 200 and "at most" in response.content.decode()
    response = web.post(reverse("inventory_discovery"), {
        "client": client_a.pk, "subnet": "10.1.0.0/24", "ports": "22,443", "snmp_port": 161})
    run = DiscoveryRun.objects.get(client=client_a)
    assert response.status_code == 302 and run.ports == [22, 443]
    theirs = DiscoveryRun.objects.create(client=client_b, subnet="10.2.0.0/24")
    assert web.get(reverse("inventory_discovery_run", args=[theirs.pk])).status_code == 404
    assert web.get(reverse("inventory_discovery_run", args=[run.pk])).status_code == 200


def test_recovery_fails_stuck_runs_and_requeues_lost_ones(owner, client_a):
    from datetime import timedelta

    from django.utils import timezone

    old = timezone.now() - timedelta(hours=2)
    stuck = DiscoveryRun.objects.create(client=client_a, subnet="192.0.2.0/30",
                                        status=RunStatus.RUNNING, started_at=old)
    lost = DiscoveryRun.objects.create(client=client_a, subnet="127.0.0.1/32", ports=[1],
                                       status=RunStatus.QUEUED, created_at=old)
    fresh = DiscoveryRun.objects.create(client=client_a, subnet="192.0.2.4/30",
                                        status=RunStatus.RUNNING, started_at=timezone.now())
    # The task backend is configuration (database queue or RQ): watch what is enqueued.
    from django_tasks.signals import task_enqueued

    enqueued = []

    def _seen(sender, task_result, **kwargs):
        enqueued.append(task_result)

    task_enqueued.connect(_seen)
    try:
        result = discovery.recover_discoveries.call()
    finally:
        task_enqueued.disconnect(_seen)
    assert result == {"failed": 1, "requeued": 1}
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == RunStatus.FAILED and "stopped" in stuck.error
    assert fresh.status == RunStatus.RUNNING
    from watchkeeper.core import scheduler

    queued = [r for r in enqueued if r.task.module_path.endswith("discovery.engine.run_discovery")]
    assert [list(r.args) for r in queued] == [[lost.pk]]
    scheduler.discover()
    assert "inventory.recover_discoveries" in scheduler.registered()
