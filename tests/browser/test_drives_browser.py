"""Browser: the Drives block of the device page, with the drives the agent's SMART collector
read from the fake smartctl fleet (a healthy SSD, a failing disk, a worn NVMe drive, a disk
that could not be opened)."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from watchkeeper_agent.collectors.smart import read_drives

from tests.smartctl_fake import make_fake_smartctl
from watchkeeper.inventory import services

from .conftest import axe_check, screenshot

pytestmark = pytest.mark.browser


def test_technician_reads_drive_health_on_the_device_page(signed_in_page, tech_a, client_a,
                                                           tmp_path):
    # Given an agent device whose agent reported the fake fleet's drives
    device = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                            hostname="acme-fs01", agent_ref="a1")
    services.apply_agent_inventory(
        device_id=device.pk, agent_ref="a1", observed_at=timezone.now(),
        sections={"drives": read_drives(make_fake_smartctl(tmp_path).path)})
    page = signed_in_page(tech_a)
    # When the technician opens the device from the list
    page.goto("/devices/")
    page.locator("#device-results").get_by_role("link", name="acme-fs01").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("acme-fs01")
    # Then the Drives block names each drive and its health in words
    drives = page.get_by_role("region", name=re.compile("^Drives"))
    expect(drives).to_be_visible()
    failing = drives.get_by_role("row").filter(has_text="WD-WCC7K4XJ2R3D")
    expect(failing).to_contain_text("✕ Failed")
    expect(failing).to_contain_text("✕ Failing")
    expect(failing).to_contain_text("Raw_Read_Error_Rate at 38 (threshold 51): pre-failure")
    expect(drives.get_by_role("row").filter(has_text="S4EWNF0M812345K")).to_contain_text(
        "103 % used")
    expect(drives.get_by_role("row").filter(has_text="/dev/sdc").first).to_contain_text(
        "Not readable")
    # The failing disk's attributes are open, the healthy disk's can be opened
    flagged = drives.locator("details[open]")
    expect(flagged).to_have_count(1)
    expect(flagged.get_by_role("row").filter(has_text="Raw_Read_Error_Rate")).to_contain_text(
        "Failing")
    axe_check(page, "device summary with drives")
    healthy = drives.locator("details").filter(has_text="SMART attributes of /dev/sda")
    expect(healthy).not_to_have_attribute("open", "")
    healthy.locator("summary").click()
    expect(healthy.get_by_role("row").filter(has_text="Wear_Leveling_Count")).to_be_visible()
    screenshot(page, "device-drives")
    axe_check(page, "device summary with drive attributes opened")
