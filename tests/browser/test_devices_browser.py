"""Browser: device list (empty state, htmx filter swap), device page with lazily loaded tabs,
and what a technician of client A may see."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from watchkeeper.inventory.actions import create_device

from .conftest import axe_check, screenshot

pytestmark = pytest.mark.browser


def test_device_list_filter_and_device_tabs(signed_in_page, owner, client_a, client_b):
    page = signed_in_page(owner)
    # Given no devices, the list says so
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Devices").click()
    expect(page.get_by_role("heading", level=1, name="Devices")).to_be_visible()
    axe_check(page, "device list, empty")

    # Given devices of two clients
    create_device(actor=owner, client=client_a, name="ACME-FS01", hostname="acme-fs01",
                  serial="SN-A-1", primary_ip="10.1.0.10", os_name="Windows Server")
    create_device(actor=owner, client=client_b, name="BOR-WS17", hostname="bor-ws17",
                  serial="SN-B-17", primary_ip="10.2.0.17", os_name="Ubuntu")
    page.reload()
    results = page.locator("#device-results")
    expect(results).to_contain_text("ACME-FS01")
    expect(results).to_contain_text("BOR-WS17")
    screenshot(page, "device-list")
    axe_check(page, "device list")

    # When searching by IP, the results are swapped in by htmx
    page.locator("#f-q").press_sequentially("10.2.0.17")
    expect(results).not_to_contain_text("ACME-FS01")
    expect(results).to_contain_text("BOR-WS17")
    axe_check(page, "device list after htmx filter")

    # When a device is opened, its page has tabs that load lazily
    results.get_by_role("link", name="BOR-WS17").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("BOR-WS17")
    axe_check(page, "device summary")
    page.get_by_role("navigation", name="Device").get_by_role(
        "link", name=re.compile("^History")).click()
    expect(page).to_have_url(re.compile(r"tab=history"))
    expect(page.locator("#tab-panel")).not_to_contain_text("Loading…")
    axe_check(page, "device history tab (htmx)")


def test_technician_sees_only_assigned_clients_devices(signed_in_page, owner, tech_a,
                                                        client_a, client_b):
    create_device(actor=owner, client=client_a, name="ACME-FS01")
    other = create_device(actor=owner, client=client_b, name="BOR-WS17")
    page = signed_in_page(tech_a)
    page.goto("/devices/")
    expect(page.locator("#device-results")).to_contain_text("ACME-FS01")
    expect(page.locator("#device-results")).not_to_contain_text("BOR-WS17")
    # and B's device page does not exist for them
    response = page.goto(f"/devices/{other.pk}/")
    assert response.status == 404
