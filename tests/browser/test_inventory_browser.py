"""Browser: the import wizard (upload, mapping, preview with a bad row, apply), the
reconciliation page with a conflict decided in place, licences and discovery pages — each
checked with axe-core."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from watchkeeper.inventory import actions, services
from watchkeeper.inventory.models import Device

from .conftest import axe_check, screenshot

pytestmark = pytest.mark.browser


def test_import_wizard(signed_in_page, owner, client_a, tmp_path):
    page = signed_in_page(owner)
    page.goto("/inventory/import/")
    expect(page.get_by_role("heading", level=1, name="Import devices")).to_be_visible()
    axe_check(page, "import upload")
    sheet = tmp_path / "assets.csv"
    sheet.write_text("Asset Name,Serial Number,Purchase Date,Cost\n"
                     'ws-01,SN-01,12/03/2024,"542,50 €"\nws-02,SN-02,not a date,\n'
                     "ws-03,SN-01,2024-01-01,10\n")
    page.get_by_label("Client", exact=True).select_option(label=client_a.name)
    page.get_by_label("File", exact=True).set_input_files(str(sheet))
    page.get_by_role("button", name="Upload").click()
    # the mapping was guessed from the headers
    expect(page.locator("#map-1")).to_have_value("serial")
    axe_check(page, "import mapping")
    page.get_by_role("button", name="Preview").click()
    errors = page.locator("#import-errors")
    expect(errors).to_contain_text("not a date")
    # 12/03/2024 reads two ways and lines 2 and 4 share a serial: both wait for a person
    expect(page.locator("#import-ambiguous")).to_contain_text("12/03/2024")
    expect(page.locator("#import-duplicates")).to_contain_text("serial sn-01")
    screenshot(page, "import-preview")
    axe_check(page, "import preview with decisions")
    page.get_by_label("Reading of 12/03/2024 on line 2").select_option(
        label="2024-03-12 (day/month)")
    page.get_by_label("Which line of serial sn-01 wins").select_option(
        label="line 2 is the device")
    page.get_by_role("button", name="Save decisions and refresh the preview").click()
    values = page.locator("#import-values")
    expect(values).to_contain_text("542.50")
    expect(values).to_contain_text("“542,50 €”")
    expect(values).to_contain_text("2024-03-12")
    axe_check(page, "import preview with every value")
    page.get_by_role("button", name="Import 1 new").click()
    expect(page.locator(".messages")).to_contain_text("1 created")
    device = Device.objects.get(serial="SN-01")
    assert (device.name, str(device.cost), device.cost_currency) == ("ws-01", "542.50", "EUR")


def test_reconciliation_conflict_decided_in_place(signed_in_page, owner, client_a):
    device = services.register_agent_device(client_id=client_a.pk, site_id=None,
                                            hostname="ws-9", agent_ref="ag")
    actions.update_device(actor=owner, device=device, serial="TYPED-SN")
    services.apply_agent_inventory(device_id=device.pk, agent_ref="ag",
                                   observed_at=timezone.now(),
                                   sections={"system": {"serial": "REPORTED-SN"}})
    page = signed_in_page(owner)
    page.goto("/inventory/reconcile/")
    conflicts = page.locator("#rec-conflicts")
    expect(conflicts).to_contain_text("REPORTED-SN")
    axe_check(page, "reconciliation")
    conflicts.get_by_role("button", name="Use proposed").click()
    expect(page.locator("#rec-conflicts")).to_contain_text("None.")
    device.refresh_from_db()
    assert device.serial == "REPORTED-SN"


def test_licences_and_discovery_pages(signed_in_page, owner, client_a):
    actions.create_licence(actor=owner, client=client_a, product="Office", match="office",
                           seats=1)
    page = signed_in_page(owner)
    page.goto("/inventory/licences/")
    expect(page.locator("#licence-table")).to_contain_text("Office")
    axe_check(page, "licences")
    page.goto("/inventory/discovery/")
    expect(page.get_by_role("heading", level=1, name="Network discovery")).to_be_visible()
    axe_check(page, "discovery")
