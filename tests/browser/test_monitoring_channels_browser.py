"""Browser: notification channels — the empty list, the new-channel form whose "also notify
about the N alerts open now" offer follows the scope fields (htmx), creating a channel with
the catch-up ticked, the channel's page and the edit form; each screen checked by axe."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import State
from watchkeeper.monitoring.models import Notification, NotificationChannel

from .conftest import axe_check, screenshot

pytestmark = pytest.mark.browser


def test_new_channel_offers_and_queues_the_catch_up(signed_in_page, owner, client_a,
                                                    client_b):
    # Given two open alerts of client A (one critical, one warning) and one of client B
    _, check = disk_policy(owner)
    record_results([
        CheckResult(check.pk, make_device(client_a, "a-crit").pk, client_a.pk, State.CRITICAL),
        CheckResult(check.pk, make_device(client_a, "a-warn").pk, client_a.pk, State.WARNING),
        CheckResult(check.pk, make_device(client_b, "b-crit").pk, client_b.pk, State.CRITICAL),
    ])
    page = signed_in_page(owner)
    page.goto("/monitoring/channels/")
    expect(page.get_by_role("heading", level=1, name="Notification channels")).to_be_visible()
    axe_check(page, "channels, none yet")
    page.get_by_role("link", name="New channel").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New notification channel")
    # MSP-wide by default: all three open alerts are offered
    offer = page.locator("#catch-up")
    expect(offer).to_contain_text("Also notify about the 3 alerts open now that match")
    axe_check(page, "new channel form")
    # When the scope narrows to client A, critical only, the count follows
    page.get_by_label("Client", exact=True).select_option(label="Acme Dental")
    expect(offer).to_contain_text("the 2 alerts open now")
    page.get_by_label("Minimum severity").select_option("critical")
    expect(offer).to_contain_text("Also notify about the 1 alert open now that matches")
    # Without "Opened" among the events there is nothing to catch up on
    page.get_by_label("Opened", exact=True).uncheck()
    expect(offer).to_contain_text("nothing to catch up on")
    axe_check(page, "new channel form, nothing to catch up on")
    screenshot(page, "channel-form-nothing-to-catch-up")
    page.get_by_label("Opened", exact=True).check()
    catch_up = page.get_by_label("Also notify about the 1 alert open now that matches")
    catch_up.check()
    page.get_by_label("Name", exact=True).fill("Acme on-call")
    page.get_by_label("Recipients").fill("oncall@acme.test")
    page.get_by_role("button", name="Create channel").click()
    # Then the channel's page says one alert was queued for it, and offers no more
    expect(page.locator(".messages")).to_contain_text("1 open alert queued for it (catch-up)")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme on-call")
    expect(page.locator("#catch-up-card")).to_contain_text("has been sent to it (or queued)")
    expect(page.locator("#channel-notifications")).to_contain_text("alert.catchup")
    axe_check(page, "channel page after a catch-up")
    screenshot(page, "channel-after-catch-up")
    channel = NotificationChannel.objects.get(name="Acme on-call")
    assert list(Notification.objects.filter(channel=channel).values_list(
        "alert__device__name", flat=True)) == ["a-crit"]
    # The edit form: widening to warning offers the one alert not yet told
    page.get_by_role("link", name="Edit").click()
    expect(offer).to_contain_text("nothing to catch up on")
    page.get_by_label("Minimum severity").select_option("warning")
    expect(offer).to_contain_text("Also notify about the 1 alert open now that matches")
    axe_check(page, "channel edit, widened")
    screenshot(page, "channel-edit-catch-up-offer")
    page.get_by_label("Also notify about the 1 alert open now that matches").check()
    page.get_by_role("button", name="Save channel").click()
    expect(page.locator(".messages")).to_contain_text("1 open alert queued for it")
    assert sorted(Notification.objects.filter(channel=channel).values_list(
        "alert__device__name", flat=True)) == ["a-crit", "a-warn"]
    page.goto("/monitoring/channels/")
    expect(page.locator("#channels-table")).to_contain_text("Acme on-call")
    axe_check(page, "channels, one channel")
    assert not page.js_errors, page.js_errors
