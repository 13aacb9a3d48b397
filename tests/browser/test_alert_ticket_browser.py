"""Browser: resolving a ticket whose monitoring alert is still active asks what happens to
the alert, and the answer reaches the alert (through the outbox)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import axe_check

pytestmark = pytest.mark.browser


def test_resolving_an_alert_ticket_asks_and_resolves_the_alert(signed_in_page, owner,
                                                               client_a):
    from tests.monitoring_helpers import disk_policy, make_device
    from watchkeeper.core import events
    from watchkeeper.helpdesk.models import Ticket
    from watchkeeper.monitoring.alerts import CheckResult, record_results
    from watchkeeper.monitoring.choices import AlertStatus, State
    from watchkeeper.monitoring.models import Alert

    # Given a critical alert that opened a ticket
    _, check = disk_policy(owner, ticket_severities=["critical"])
    device = make_device(client_a, "srv-db1")
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.CRITICAL, value=97,
                                message="D: 97% full")])
    events.dispatch_due()
    alert = Alert.objects.get()
    ticket = Ticket.objects.get(origin_key=f"alert:{alert.pk}")

    page = signed_in_page(owner)
    page.goto(f"/tickets/{ticket.pk}/")
    composer = page.locator("#composer")
    expect(composer.get_by_role("group", name="If this resolves or closes the ticket"))\
        .to_be_visible()
    axe_check(page, "alert ticket with the alert choice")

    # When it is resolved without saying what happens to the alert, the page asks
    composer.locator("#reply-body").fill("Purged old backups on D:.")
    composer.locator("#reply-status").select_option(label="Resolved")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_contain_text("still active")

    # And when "is resolved too" is chosen, the ticket and then the alert are resolved
    composer = page.locator("#composer")
    composer.locator("#reply-body").fill("Purged old backups on D:.")
    composer.locator("#reply-status").select_option(label="Resolved")
    composer.get_by_label("is resolved too").check()
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#timeline")).to_contain_text("Purged old backups on D:.")
    while events.dispatch_due()["due"]:  # ticket.changed -> the alert -> its note
        pass
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    page.reload()
    expect(page.locator("#timeline")).to_contain_text("Alert resolved by")
    assert page.locator("input[name=alert_action]").count() == 0
