"""The inventory service contract used by the agents app: register a device for an agent,
apply inventory deltas with provenance, history and conflicts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from watchkeeper.core.canonical import canonical_hash
from watchkeeper.core.models import AuditEntry, Event, Site
from watchkeeper.inventory import services
from watchkeeper.inventory.choices import ChangeKind, ConflictStatus, SourceKind
from watchkeeper.inventory.models import (
    Device,
    DeviceChange,
    DeviceSection,
    FieldConflict,
    FieldProvenance,
    NetworkAddress,
    SoftwareInstall,
)

pytestmark = pytest.mark.django_db


def system(**over):
    data = {"os_name": "Debian GNU/Linux", "os_version": "12", "kernel": "6.1.0",
            "hostname": "pc-01", "domain": "unknown", "manufacturer": "Dell Inc.",
            "model": "OptiPlex 7090", "serial": "SN-1", "cpu_model": "i5", "cpu_cores": 4,
            "ram_bytes": 8 * 2**30, "firewall": "enabled", "disk_encryption": "unknown",
            "endpoint_protection": "unknown", "reboot_required": False,
            "pending_update_count": 3}
    data.update(over)
    return data


def software(*pairs):
    return [{"name": n, "version": v, "source": "dpkg"} for n, v in pairs]


@pytest.fixture
def device(client_a):
    site = Site.objects.create(client=client_a, name="HQ")
    return services.register_agent_device(client_id=client_a.pk, site_id=site.pk,
                                          hostname="pc-01", agent_ref="agent-1")


def test_register_creates_a_new_device_with_provenance_audit_and_event(client_a):
    # given an existing device named like the new machine
    old = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="pc-01", agent_ref="old-agent")
    # when a new agent with the same hostname is registered
    new = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                         hostname="pc-01", agent_ref="new-agent")
    # then it gets its own record, never the old one
    assert new.pk != old.pk
    assert new.agent_ref == "new-agent" and new.source == SourceKind.AGENT
    assert FieldProvenance.objects.filter(device=new, field="hostname",
                                          source_ref="new-agent").exists()
    assert Event.objects.filter(kind="device.created", payload__id=new.pk).exists()
    assert AuditEntry.objects.filter(object_type="inventory.device",
                                     object_id=str(new.pk)).exists()


def test_register_refuses_a_site_of_another_client(client_a, client_b):
    site_b = Site.objects.create(client=client_b, name="B HQ")
    with pytest.raises(ValueError):
        services.register_agent_device(client_id=client_a.pk, site_id=site_b.pk,
                                       hostname="x", agent_ref="a")


def test_first_inventory_fills_columns_sections_and_query_tables(device):
    at = timezone.now()
    changed = services.apply_agent_inventory(
        device_id=device.pk, agent_ref="agent-1", observed_at=at,
        sections={
            "system": system(),
            "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "ipv4": ["127.0.0.1"],
                            "ipv6": ["::1"]},
                           {"name": "eth0", "mac": "AA-BB-CC-DD-EE-01",
                            "ipv4": ["10.0.0.5"], "ipv6": []}],
            "software": software(("bash", "5.2"), ("curl", "7.88")),
            "services": [{"name": "ssh", "state": "running", "enabled": True}],
            "bogus": {"x": 1},
        })
    device.refresh_from_db()
    assert {"system", "interfaces", "software", "services", "serial"} <= set(changed)
    assert "bogus" not in changed
    assert device.serial == "SN-1" and device.os_version == "12"
    assert device.pending_updates == 3 and device.reboot_required is False
    assert device.primary_ip == "10.0.0.5" and device.primary_mac == "aa:bb:cc:dd:ee:01"
    assert device.inventory_at == at
    assert set(SoftwareInstall.objects.filter(device=device)
               .values_list("name", "version")) == {("bash", "5.2"), ("curl", "7.88")}
    assert NetworkAddress.objects.filter(device=device, address="10.0.0.5",
                                         mac="aa:bb:cc:dd:ee:01").exists()
    prov = FieldProvenance.objects.get(device=device, field="serial")
    assert (prov.source_kind, prov.source_ref, prov.value) == ("agent", "agent-1", "SN-1")
    assert prov.observed_at == at
    assert DeviceSection.objects.filter(device=device).count() == 4
    assert Event.objects.filter(kind="device.changed", payload__id=device.pk).exists()


def test_delta_records_software_installed_removed_upgraded_and_ip_changed(device):
    at = timezone.now()
    services.apply_agent_inventory(
        device_id=device.pk, agent_ref="agent-1", observed_at=at,
        sections={"software": software(("bash", "5.2"), ("curl", "7.88")),
                  "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:01",
                                  "ipv4": ["10.0.0.5"], "ipv6": []}]})
    # when the next delta upgrades curl, removes bash, installs git and changes the IP
    later = at + timedelta(minutes=5)
    changed = services.apply_agent_inventory(
        device_id=device.pk, agent_ref="agent-1", observed_at=later,
        sections={"software": software(("curl", "8.0"), ("git", "2.39")),
                  "interfaces": [{"name": "eth0", "mac": "aa:bb:cc:dd:ee:01",
                                  "ipv4": ["10.0.0.9"], "ipv6": []}]})
    assert "software" in changed and "primary_ip" in changed
    history = set(DeviceChange.objects.filter(device=device, at=later)
                  .values_list("kind", "subject", "before", "after"))
    assert (ChangeKind.SOFTWARE_UPGRADED, "curl", "7.88", "8.0") in history
    assert (ChangeKind.SOFTWARE_REMOVED, "bash", "5.2", "") in history
    assert (ChangeKind.SOFTWARE_INSTALLED, "git", "", "2.39") in history
    assert (ChangeKind.IP_CHANGED, "addresses", "10.0.0.5", "10.0.0.9") in history
    assert set(SoftwareInstall.objects.filter(device=device)
               .values_list("name", "version")) == {("curl", "8.0"), ("git", "2.39")}


def test_unchanged_section_hash_is_a_no_op(device):
    at = timezone.now()
    services.apply_agent_inventory(device_id=device.pk, agent_ref="agent-1", observed_at=at,
                                   sections={"software": software(("bash", "5.2"))})
    events_before = Event.objects.filter(kind="device.changed").count()
    changed = services.apply_agent_inventory(
        device_id=device.pk, agent_ref="agent-1", observed_at=at + timedelta(minutes=1),
        sections={"software": software(("bash", "5.2"))})
    assert changed == []
    assert Event.objects.filter(kind="device.changed").count() == events_before
    assert services.known_section_hashes(device.pk)["software"] == canonical_hash(
        software(("bash", "5.2")))


def test_hardware_change_goes_on_the_timeline(device):
    at = timezone.now()
    services.apply_agent_inventory(device_id=device.pk, agent_ref="agent-1", observed_at=at,
                                   sections={"system": system()})
    services.apply_agent_inventory(device_id=device.pk, agent_ref="agent-1",
                                   observed_at=at + timedelta(hours=1),
                                   sections={"system": system(ram_bytes=16 * 2**30)})
    row = DeviceChange.objects.get(device=device, subject="ram_bytes")
    assert row.kind == ChangeKind.HARDWARE_CHANGED
    assert (row.before, row.after) == (str(8 * 2**30), str(16 * 2**30))


def test_manual_value_is_kept_and_the_disagreement_becomes_a_conflict(device, owner):
    # given a serial typed by a person
    at = timezone.now()
    Device.objects.filter(pk=device.pk).update(serial="MANUAL-SN")
    device.refresh_from_db()
    services.record_provenance(device, {"serial": "MANUAL-SN"}, source_kind=SourceKind.MANUAL,
                               source_ref=owner.email, observed_at=at, who=owner)
    # when the agent reports another serial
    services.apply_agent_inventory(device_id=device.pk, agent_ref="agent-1", observed_at=at,
                                   sections={"system": system(serial="AGENT-SN")})
    # then the person's value stays and a conflict waits for a decision
    device.refresh_from_db()
    assert device.serial == "MANUAL-SN"
    conflict = FieldConflict.objects.get(device=device, field="serial")
    assert conflict.status == ConflictStatus.OPEN
    assert (conflict.current_value, conflict.current_source) == ("MANUAL-SN", "manual")
    assert (conflict.proposed_value, conflict.proposed_source) == ("AGENT-SN", "agent")
    # and both sources' values are on record
    assert set(FieldProvenance.objects.filter(device=device, field="serial")
               .values_list("source_kind", "value")) == {("manual", "MANUAL-SN"),
                                                         ("agent", "AGENT-SN")}
    # and the same proposal again does not open a second conflict
    services.apply_agent_inventory(device_id=device.pk, agent_ref="agent-1",
                                   observed_at=at + timedelta(minutes=1),
                                   sections={"system": system(serial="AGENT-SN", kernel="6.2")})
    assert FieldConflict.objects.filter(device=device, field="serial").count() == 1


def test_unknown_never_erases_a_known_value(device):
    at = timezone.now()
    services.apply_agent_inventory(device_id=device.pk, agent_ref="agent-1", observed_at=at,
                                   sections={"system": system()})
    services.apply_agent_inventory(device_id=device.pk, agent_ref="agent-1",
                                   observed_at=at + timedelta(minutes=1),
                                   sections={"system": system(serial="unknown", model="")})
    device.refresh_from_db()
    assert device.serial == "SN-1" and device.model == "OptiPlex 7090"


def test_wrong_section_shape_is_refused(device):
    with pytest.raises(ValueError):
        services.apply_agent_inventory(device_id=device.pk, agent_ref="agent-1",
                                       observed_at=timezone.now(),
                                       sections={"software": {"name": "x"}})


def test_software_delta_is_set_based(device):
    # given a device with 500 packages
    at = timezone.now()
    services.apply_agent_inventory(
        device_id=device.pk, agent_ref="agent-1", observed_at=at,
        sections={"software": software(*[(f"pkg{i}", "1") for i in range(500)])})
    # when 100 are upgraded, the query count does not grow with the package count
    with CaptureQueriesContext(connection) as ctx:
        services.apply_agent_inventory(
            device_id=device.pk, agent_ref="agent-1", observed_at=at + timedelta(minutes=1),
            sections={"software": software(*[(f"pkg{i}", "2" if i < 100 else "1")
                                             for i in range(500)])})
    assert len(ctx.captured_queries) < 30
    assert SoftwareInstall.objects.filter(device=device, version="2").count() == 100
