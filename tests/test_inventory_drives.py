"""Physical drives on the device page and timeline: the "drives" section the agent reads
through smartctl (here: the agent's own collector against the fake smartctl fleet), shown as
a Drives block a technician can read, with the failing attributes flagged."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from watchkeeper_agent.collectors.smart import read_drives

from tests.smartctl_fake import make_fake_smartctl
from watchkeeper.inventory import services
from watchkeeper.inventory.models import DeviceChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(tmp_path):
    return read_drives(make_fake_smartctl(tmp_path).path)


@pytest.fixture
def device(client_a):
    return services.register_agent_device(client_id=client_a.pk, site_id=None,
                                          hostname="fileserver", agent_ref="a1")


def report(device, drives, at=None):
    return services.apply_agent_inventory(device_id=device.pk, agent_ref="a1",
                                          observed_at=at or timezone.now(),
                                          sections={"drives": drives})


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def row_of(html: str, needle: str) -> str:
    """The table row (<tr>…</tr>) that contains `needle`."""
    for row in re.findall(r"<tr>.*?</tr>", html, flags=re.S):
        if needle in row:
            return text(row)
    raise AssertionError(f"no row with {needle!r}")


def test_summary_shows_each_drive_with_health_and_flags_failing_attributes(
        as_user, tech_a, device, fleet):
    # Given the agent reported the four drives of the fake fleet
    assert "drives" in report(device, fleet)
    # When a technician of the client opens the device
    html = as_user(tech_a).get(reverse("device", args=[device.pk])).content.decode()
    # Then the Drives block lists each drive with model, serial, capacity, SMART verdict,
    # temperature, power-on hours, wear and health (icon + word, never colour alone)
    assert 'id="drives-title"' in html
    assert row_of(html, "/dev/sda").split() == (
        "/dev/sda Samsung SSD 860 EVO 500GB SSD S3Z2NB0K712345A 465.8 GB ✓ Passed 31 °C "
        "12,034 h — ✓ Healthy").split()
    hdd = row_of(html, "WD-WCC7K4XJ2R3D")
    assert "WDC WD40EFRX-68N32N0 HDD" in hdd and "3.6 TB" in hdd and "✕ Failed" in hdd
    assert "✕ Failing" in hdd and "41,032 h" in hdd
    assert "Raw_Read_Error_Rate at 38 (threshold 51): pre-failure" in hdd
    assert "Reallocated_Sector_Ct = 1464" in hdd
    nvme = row_of(html, "S4EWNF0M812345K")
    assert "103 % used" in nvme and "20,411 h" in nvme and "44 °C" in nvme
    assert "NVMe critical warning 0x01: available spare below threshold" in nvme
    lost = row_of(html, "/dev/sdc")
    assert "– Unknown" in lost
    assert "Not readable: Smartctl open device: /dev/sdc [SAT] failed: No such device" in lost

    # And the failing disk's attribute table is open with the culprits flagged
    details = re.findall(r"<details class=\"card-body\".*?</details>", html, flags=re.S)
    assert len(details) == 2  # the two ATA drives; NVMe has a health log, not attributes
    healthy, failing = details
    assert "<details class=\"card-body\">" in healthy and "flagged" not in healthy
    assert failing.startswith('<details class="card-body" open>')
    assert "3 flagged" in text(failing)
    assert row_of(failing, "Raw_Read_Error_Rate").split()[-2:] == ["✕", "Failing"]
    assert row_of(failing, "Reallocated_Sector_Ct").split()[-2:] == ["!", "Watch"]
    assert row_of(failing, "Current_Pending_Sector").split()[-2:] == ["!", "Watch"]
    assert row_of(failing, "Spin_Up_Time").split()[-1] == "ok"

    # The lazily loaded summary tab shows the same block
    tab = as_user(tech_a).get(reverse("device_tab", args=[device.pk, "summary"]))
    assert "Raw_Read_Error_Rate" in tab.content.decode()


def test_no_drives_section_no_block_and_an_empty_one_says_why(as_user, owner, device):
    web = as_user(owner)
    assert "drives-title" not in web.get(reverse("device", args=[device.pk])).content.decode()
    report(device, [])
    html = web.get(reverse("device", args=[device.pk])).content.decode()
    assert "drives-title" in html
    assert "The agent found no drives it can read SMART from" in html


def test_another_clients_device_is_not_shown(as_user, tech_a, client_b, fleet):
    theirs = services.register_agent_device(client_id=client_b.pk, site_id=None,
                                            hostname="theirs", agent_ref="b1")
    services.apply_agent_inventory(device_id=theirs.pk, agent_ref="b1",
                                   observed_at=timezone.now(), sections={"drives": fleet})
    web = as_user(tech_a)
    assert web.get(reverse("device", args=[theirs.pk])).status_code == 404
    assert web.get(reverse("device_tab", args=[theirs.pk, "summary"])).status_code == 404


def test_timeline_records_a_swapped_drive_and_a_changed_verdict_not_every_reading(
        device, fleet):
    now = timezone.now()
    report(device, fleet, now)
    assert not DeviceChange.objects.filter(subject__startswith="drive").exists()
    # Temperature and hours move every report: no timeline entry for that
    warmer = [{**d, "temperature_c": 40, "power_on_hours": 12035}
              if d["device"] == "/dev/sda" else d for d in fleet]
    report(device, warmer, now + timedelta(hours=1))
    assert not DeviceChange.objects.filter(subject__startswith="drive").exists()
    # The SSD's verdict turns to failed, and /dev/sdb is a new disk
    changed = [{**d, "smart_status": "failed"} if d["device"] == "/dev/sda"
               else {**d, "serial": "WD-NEW123"} if d["device"] == "/dev/sdb" else d
               for d in warmer]
    report(device, changed, now + timedelta(hours=2))
    entries = {c.subject: c for c in DeviceChange.objects.filter(subject__startswith="drive")}
    assert set(entries) == {"drive /dev/sda SMART", "drive /dev/sdb"}
    assert (entries["drive /dev/sda SMART"].before, entries["drive /dev/sda SMART"].after) == (
        "passed", "failed")
    assert entries["drive /dev/sdb"].kind == "hardware_changed"
    assert entries["drive /dev/sdb"].after == "WDC WD40EFRX-68N32N0 WD-NEW123"


def test_readings_refresh_the_section_without_an_audit_row_or_event(device, fleet):
    from watchkeeper.core.models import AuditEntry, Event
    from watchkeeper.inventory.models import DeviceSection

    now = timezone.now()
    report(device, fleet, now)

    def counts():
        return (AuditEntry.objects.filter(object_id=str(device.pk)).count(),
                Event.objects.filter(kind="device.changed").count())

    before = counts()
    # Temperature, hours and raw counters move on every report: stored, but not a change
    warmer = [{**d, "temperature_c": 47, "power_on_hours": (d.get("power_on_hours") or 0) + 1,
               "attributes": [{**a, "raw": a["raw"] + 7} if a["id"] == 9 else a
                              for a in d.get("attributes") or []]}
              for d in fleet]
    assert report(device, warmer, now + timedelta(hours=1)) == []
    assert counts() == before
    stored = DeviceSection.objects.get(device=device, section="drives").data
    assert {d["temperature_c"] for d in stored} == {47}
    # A new pending sector is a change: audited and announced
    worse = [{**d, "attributes": [{**a, "raw": a["raw"] + 1} if a["id"] == 197 else a
                                  for a in d.get("attributes") or []]}
             for d in warmer]
    assert report(device, worse, now + timedelta(hours=2)) == ["drives"]
    audits, changed = counts()
    assert (audits, changed) == (before[0] + 1, before[1] + 1)
