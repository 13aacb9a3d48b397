"""Browser: patching pages — the MSP-wide updates list filtered to security updates, the
compliance page, a client's compliance with its devices, a device's updates (axe on each)."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from watchkeeper.core.models import Site
from watchkeeper.inventory.services import register_agent_device
from watchkeeper.patching.services import apply_agent_updates

from .conftest import axe_check

pytestmark = pytest.mark.browser


def _device(client_obj, host, updates, reboot):
    site = Site.objects.get_or_create(client=client_obj, name="HQ")[0]
    device = register_agent_device(client_id=client_obj.pk, site_id=site.pk, hostname=host,
                                   agent_ref=f"ref-{host}")
    now = timezone.now()
    device.last_seen_at = now
    device.save(update_fields=["last_seen_at"])
    apply_agent_updates(device_id=device.pk, client_id=client_obj.pk, agent_ref=host,
                        observed_at=now, items=updates, reboot_pending=reboot)
    return device


def test_updates_and_compliance_pages(signed_in_page, owner, client_a, client_b):
    sec = {"classification": "security", "installed_version": "1.0", "version": "2.0",
           "origin": "Debian", "archive": "bookworm-security", "size": 2048}
    pc = _device(client_a, "acme-pc-1", [{"name": "openssl", **sec},
                                         {"name": "vim", "classification": "bugfix"}], True)
    _device(client_b, "bore-srv-1", [{"name": "curl", **sec}], False)
    page = signed_in_page(owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patching").click()
    expect(page.get_by_role("heading", level=1, name="Available updates")).to_be_visible()
    expect(page.locator("#updates-table tbody tr")).to_have_count(3)
    axe_check(page, "updates list")

    page.get_by_label("Classification", exact=True).select_option("security")
    page.get_by_label("Client", exact=True).select_option(str(client_a.pk))
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#updates-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("openssl")
    axe_check(page, "updates list filtered")

    page.get_by_role("link", name="Compliance").click()
    expect(page.get_by_role("heading", level=1, name="Patch compliance")).to_be_visible()
    acme = page.locator("#compliance-table tbody tr", has_text="Acme Dental")
    expect(acme.locator("td").nth(1)).to_have_text("1")  # missing security updates
    expect(page.locator("#compliance-table tfoot td").nth(1)).to_have_text("2")
    axe_check(page, "compliance")

    acme.get_by_role("link", name="Acme Dental").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Dental")
    device_row = page.locator("#client-devices tbody tr", has_text="acme-pc-1")
    expect(device_row).to_contain_text("Reporting")
    axe_check(page, "client compliance")

    device_row.get_by_role("link", name="acme-pc-1").click()
    expect(page.get_by_role("heading", level=1, name="Updates of acme-pc-1")).to_be_visible()
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link",
                                                                  name="acme-pc-1").click()
    page.get_by_role("link", name="Updates", exact=True).click()
    expect(page.locator("#patch-state")).to_contain_text("Reboot pending")
    expect(page.locator("#device-updates tbody tr")).to_have_count(2)
    assert page.url.endswith(f"/patching/devices/{pc.pk}/")
    axe_check(page, "device updates")
