"""Browser: the alert console (filter, select, bulk acknowledge), the policy editor with a
what-if result, client health, the maintenance calendar and a device's checks — each
checked with axe-core."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import AlertStatus, State
from watchkeeper.monitoring.models import Alert

from .conftest import axe_check, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def alerting(owner, client_a):
    policy, check = disk_policy(owner)
    devices = [make_device(client_a, f"srv-{i}") for i in range(3)]
    record_results([CheckResult(check.pk, d.pk, client_a.pk,
                                State.CRITICAL if i else State.WARNING, message=f"/ {90 + i}%")
                    for i, d in enumerate(devices)])
    return policy, devices


def test_console_filter_and_bulk_acknowledge(signed_in_page, owner, alerting):
    _, devices = alerting
    page = signed_in_page(owner)
    page.goto("/monitoring/alerts/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Alerts")
    axe_check(page, "alert console")
    page.get_by_label("Severity", exact=True).select_option("critical")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#alerts-table tbody tr")).to_have_count(2)
    axe_check(page, "alert console filtered")
    page.get_by_label("Select Disk space on srv-1").check()
    page.get_by_role("button", name="Acknowledge selected").click()
    expect(page.locator(".messages")).to_contain_text("1 of 1 alert(s) acknowledged")
    assert Alert.objects.get(device=devices[1]).status == AlertStatus.ACKNOWLEDGED
    screenshot(page, "alert-console")


def test_policy_what_if_health_calendar_and_device_checks(signed_in_page, owner, alerting):
    policy, devices = alerting
    page = signed_in_page(owner)
    page.goto(f"/monitoring/policies/{policy.pk}/")
    page.get_by_role("button", name="Run what-if").click()
    expect(page.locator("#what-if-result")).to_contain_text("device(s) in the last 7 day(s)")
    axe_check(page, "policy with what-if")
    page.goto("/monitoring/health/")
    expect(page.locator("#health-table")).to_contain_text("Acme Dental")
    axe_check(page, "client health")
    page.goto("/monitoring/maintenance/")
    expect(page.locator("#maintenance-calendar")).to_be_visible()
    axe_check(page, "maintenance calendar")
    page.goto(f"/monitoring/devices/{devices[0].pk}/checks/")
    expect(page.locator("#effective-checks")).to_contain_text("Servers (global)")
    axe_check(page, "device checks")
