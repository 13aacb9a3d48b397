"""Browser: bulk selection in the alert console as a technician uses it — shift-click and
Shift+Space ranges, the tri-state header box, "select all N matching" over more than one
page, the confirmation stating the count, and the result; axe-core in each state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.monitoring_helpers import make_device
from watchkeeper.monitoring.choices import AlertStatus, State
from watchkeeper.monitoring.models import Alert

from .conftest import axe_check, screenshot

pytestmark = pytest.mark.browser


def make_alerts(client, n, prefix):
    """n alerts of `client` named "<prefix> 000"…, listed in that order (newest first)."""
    device = make_device(client, f"{prefix.lower()}-host")
    start = timezone.now() - timedelta(minutes=10)
    return Alert.objects.bulk_create([
        Alert(key=f"{prefix}{i}", client=client, device=device, check_name=f"{prefix} {i:03d}",
              severity=State.CRITICAL, summary="full", opened_at=start - timedelta(seconds=i))
        for i in range(n)])


def box(page, i):
    return page.get_by_role("checkbox", name=f"Select Disk {i:03d} on disk-host", exact=True)


def test_range_selection_and_select_all_matching(signed_in_page, tech_a, client_a, client_b):
    mine = make_alerts(client_a, 130, "Disk")
    theirs = make_alerts(client_b, 5, "Other")
    page = signed_in_page(tech_a)
    page.goto("/monitoring/alerts/")
    count = page.locator("[data-bulk-count]")
    header = page.get_by_role("checkbox", name="Select every alert on this page")
    expect(page.locator("#alerts-table tbody tr")).to_have_count(100)
    expect(count).to_have_text("None selected")
    axe_check(page, "alert console, nothing selected")

    # Shift+click selects the range from the box clicked last
    box(page, 2).click()
    box(page, 6).click(modifiers=["Shift"])
    expect(count).to_have_text("5 of 100 on this page selected")
    for i in range(2, 7):
        expect(box(page, i)).to_be_checked()
    expect(box(page, 1)).not_to_be_checked()
    expect(box(page, 7)).not_to_be_checked()
    assert header.evaluate("el => el.indeterminate") is True
    # ... and Shift+click on a checked box clears a range the same way
    box(page, 3).click()
    box(page, 5).click(modifiers=["Shift"])
    expect(count).to_have_text("2 of 100 on this page selected")
    axe_check(page, "alert console, a range selected")

    # Keyboard: Space toggles one box, Shift+Space extends from it
    box(page, 10).focus()
    page.keyboard.press("Space")
    box(page, 13).focus()
    page.keyboard.press("Shift+Space")
    expect(count).to_have_text("6 of 100 on this page selected")
    for i in (2, 6, 10, 11, 12, 13):
        expect(box(page, i)).to_be_checked()

    page.get_by_role("button", name="Acknowledge selected").click()
    expect(page.locator(".messages")).to_contain_text("6 of 6 alert(s) acknowledged.")
    picked = {mine[i].pk for i in (2, 6, 10, 11, 12, 13)}
    assert set(Alert.objects.filter(status=AlertStatus.ACKNOWLEDGED)
               .values_list("id", flat=True)) == picked

    # The header box selects the page; then the bar offers every alert matching the filter
    banner = page.locator("[data-bulk-banner]")
    expect(banner).to_be_hidden()
    header.check()
    expect(count).to_have_text("100 of 100 on this page selected")
    assert header.evaluate("el => el.indeterminate") is False
    expect(banner).to_contain_text("All 100 alerts on this page are selected.")
    axe_check(page, "alert console, page selected")
    page.get_by_role("button", name="Select all 130 alerts matching this filter").click()
    expect(count).to_have_text("All 130 matching alerts selected")
    expect(banner).to_contain_text("All 130 alerts matching this filter are selected")
    expect(page.get_by_role("button", name="Clear selection")).to_be_focused()
    axe_check(page, "alert console, all matching selected")

    # Clearing goes back to nothing selected; choosing again and acting asks first
    page.get_by_role("button", name="Clear selection").click()
    expect(count).to_have_text("None selected")
    expect(banner).to_be_hidden()
    header.check()
    page.get_by_role("button", name="Select all 130 alerts matching this filter").click()
    page.get_by_role("button", name="Acknowledge selected").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Acknowledge 124 alerts?")
    preview = page.locator("#bulk-preview")
    expect(preview).to_contain_text("130 alerts match this filter now.")
    expect(preview).to_contain_text("6 will be skipped: already acknowledged.")
    expect(page.locator("#bulk-targets tbody tr")).to_have_count(20)
    axe_check(page, "bulk confirmation")
    screenshot(page, "alert-bulk-confirm")
    page.get_by_role("button", name="Acknowledge 124 alerts").click()

    expect(page.locator(".messages")).to_contain_text(
        "124 of 130 alert(s) acknowledged. Skipped 6: 6 already acknowledged.")
    axe_check(page, "alert console after the bulk action")
    assert Alert.objects.filter(client=client_a, status=AlertStatus.ACKNOWLEDGED).count() \
        == 130
    assert set(Alert.objects.filter(pk__in=[a.pk for a in theirs])
               .values_list("status", flat=True)) == {AlertStatus.OPEN}
    # Page 2 holds the alerts beyond the first page, acknowledged too
    page.get_by_role("link", name="Next page").click()
    expect(page.locator("#alerts-table tbody tr")).to_have_count(30)
    expect(page.locator("#alerts-table tbody")).not_to_contain_text("Active")
    screenshot(page, "alert-console-after-bulk")


def test_unchecking_a_row_drops_select_all_matching(signed_in_page, owner, client_a):
    make_alerts(client_a, 101, "Disk")
    page = signed_in_page(owner)
    page.goto("/monitoring/alerts/")
    page.get_by_role("checkbox", name="Select every alert on this page").check()
    page.get_by_role("button", name="Select all 101 alerts matching this filter").click()
    expect(page.locator("[data-bulk-count]")).to_have_text("All 101 matching alerts selected")

    box(page, 0).uncheck()

    expect(page.locator("[data-bulk-count]")).to_have_text("99 of 100 on this page selected")
    expect(page.locator("input[data-bulk-scope]")).to_have_value("ids")
    expect(page.locator("[data-bulk-banner]")).to_be_hidden()
