"""Browser: a technician's first day on the living demo (issue 11). The demo is loaded and its
simulated fleet checks in through the agent API of the live server; then, as the demo
technician: the home page shows their tickets, the alerts of their clients and the fleet;
a policy is created, a check added through the form, the policy assigned with the picker,
the check edited and deleted; an alert becomes a ticket. Each screen is axe-checked.

With WATCHKEEPER_GUIDE_SHOTS=1 the screenshots of docs/user-guide.md are written to
docs/user-guide/ (`./wk guide-shots` does that)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import PASSWORD
from watchkeeper.monitoring.models import Check, Policy

from .conftest import axe_check, screenshot

pytestmark = pytest.mark.browser

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide"
DEVICES = 12


def shot(page, name: str) -> None:
    """A screenshot for looking at, and for the user guide when asked to."""
    screenshot(page, name)
    if os.environ.get("WATCHKEEPER_GUIDE_SHOTS") == "1":
        GUIDE.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(GUIDE / f"{name}.png"), full_page=False)


def _ready_for_sign_in(user) -> None:
    """The demo user's one-time password replaced and MFA enrolled, as after their first
    sign-in (that flow has its own tests)."""
    import pyotp

    from watchkeeper.core import crypto

    user.set_password(PASSWORD)
    user.must_change_password = False
    user.totp_secret_enc = crypto.encrypt(pyotp.random_base32(), "totp")
    user.mfa_enabled_at = timezone.now()
    user.save()


@pytest.fixture
def living_demo(live_server, transactional_db):
    from watchkeeper.agents.actions import mark_offline
    from watchkeeper.agents.models import Agent
    from watchkeeper.agents.simulator import demo_fleet
    from watchkeeper.core import demo, events
    from watchkeeper.core.models import User
    from watchkeeper.inventory.models import Device
    from watchkeeper.monitoring.alerts import record_results
    from watchkeeper.monitoring.evaluate import run_evaluation
    from watchkeeper.monitoring.history.predictive import predictive_results

    call_command("signer", "--init")
    demo.load(out=lambda _line: None)
    # Two rounds of the fleet (a restart continues as the same agents), each evaluated
    fleet = None
    for _ in range(2):
        fleet = demo_fleet.run(live_server.url, DEVICES, once=True, history_hours=2,
                               out=lambda _line: None)
        run_evaluation(now=timezone.now() + timedelta(seconds=1))
    record_results(predictive_results(list(Device.objects.values_list("id", flat=True)),
                                      timezone.now()))
    silent = [a.agent_id for a in fleet.agents if a.profile.goes_offline]
    for agent in Agent.objects.filter(uid__in=silent):
        mark_offline(agent_id=agent.pk, now=timezone.now() + timedelta(minutes=10))
    events.dispatch_due()
    sam = User.objects.get(email="sam.tech@demo-msp.example")
    _ready_for_sign_in(sam)
    return sam


def test_a_technicians_first_day(signed_in_page, living_demo):
    page = signed_in_page(living_demo)
    # Home: my tickets by SLA due, the alerts of my clients, offline devices
    page.goto("/")
    expect(page.locator("#my-tickets")).to_contain_text("Imaging PC in surgery 2")
    expect(page.locator("#active-alerts li").first).to_be_visible()
    expect(page.locator("#active-alerts")).to_contain_text("SMART health")
    axe_check(page, "technician home")
    shot(page, "01-home-technician")
    # The fleet
    page.goto("/devices/")
    expect(page.locator("table tbody tr").first).to_be_visible()
    expect(page.locator("table tbody")).to_contain_text("HVD-")
    shot(page, "02-devices")

    # A policy with a check, through the form
    page.goto("/monitoring/policies/")
    page.get_by_label("Name", exact=True).fill("Imaging PCs")
    page.get_by_label("Client", exact=True).select_option(label="Harbour View Dental")
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Imaging PCs")
    form = page.get_by_role("form", name="Add a check")
    form.get_by_label("Name", exact=True).fill("Imaging disk")
    form.get_by_label("What to check").select_option("disk")
    disk = form.locator("fieldset[data-check-kind=disk]")
    expect(page.locator("fieldset[data-check-kind=cpu]")).to_be_hidden()
    disk.get_by_label("Mount point or drive").fill("C:")
    disk.get_by_label("Warning at (% used)").fill("80")
    disk.get_by_label("Critical at (% used)").fill("90")
    axe_check(page, "policy page with the check form")
    shot(page, "03-policy-add-check")
    form.get_by_role("button", name="Add check").click()
    expect(page.locator("#checks-table")).to_contain_text("critical at 90 % used")
    # Assigned with the picker, previewed first
    assign = page.get_by_role("form", name="Assign")
    assign.get_by_label("Assign to").select_option(label="Harbour View Dental")
    assign.get_by_role("button", name="Preview (what-if)").click()
    expect(page.locator("#assign-preview")).to_contain_text("would reach")
    shot(page, "04-policy-assign-preview")
    assign.get_by_label("Assign to").select_option(label="Harbour View Dental")
    assign.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator("#assignments")).to_contain_text("Client Harbour View Dental")
    policy = Policy.objects.get(name="Imaging PCs")
    assert policy.assignments.count() == 1
    # Edited, then deleted
    page.get_by_role("link", name="Imaging disk").click()
    disk = page.locator("fieldset[data-check-kind=disk]")
    disk.get_by_label("Critical at (% used)").fill("92")
    page.get_by_role("button", name="Save check").click()
    expect(page.locator(".subtitle")).to_contain_text("critical at 92 % used")
    axe_check(page, "check page")
    shot(page, "05-check-edit")
    page.get_by_role("link", name="Delete check").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.locator(".messages")).to_contain_text("Check Imaging disk deleted.")
    assert not Check.objects.filter(policy=policy).exists()

    # An alert becomes a ticket (one whose policy opens none by itself)
    page.goto("/")
    page.locator("#active-alerts li a", has_text="Reboot pending").first.click()
    expect(page.locator("#check-history, #alert-ticket").first).to_be_visible()
    axe_check(page, "alert page")
    shot(page, "06-alert")
    page.get_by_role("button", name="Create ticket").click()
    expect(page).to_have_url(re.compile(r"/tickets/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    axe_check(page, "ticket from an alert")
    shot(page, "07-ticket-from-alert")
