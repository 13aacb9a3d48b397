"""Browser: a technician times work on a ticket (the timer keeps running across a reload)
and sees the SLA clock; an owner computes, reviews and approves a billing run. axe-core on
each screen and state."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import axe_check
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.billing import contracts
from watchkeeper.helpdesk.billing.choices import ContractKind, RunStatus
from watchkeeper.helpdesk.models import BillingRun, TimeEntry
from watchkeeper.helpdesk.sla import actions as sla
from watchkeeper.helpdesk.time import actions as timeentries
from watchkeeper.inventory import actions as inventory

pytestmark = pytest.mark.browser


def test_timer_and_sla_panel_on_the_ticket_page(signed_in_page, tech_a, owner, client_a):
    # Given a ticket under a policy, and a work type
    sla.save_policy(actor=owner, name="Standard",
                    targets={"p3": {"first_response": 60, "resolution": 480}})
    ticket = actions.create_ticket(actor=tech_a, subject="Laptop slow", client=client_a,
                                   notify=False)
    sla.recompute_ticket(ticket.pk)
    timeentries.save_work_type(actor=owner, name="Remote support", default_rate=Decimal("90"))
    page = signed_in_page(tech_a)

    # When the technician opens the ticket
    page.goto(f"/tickets/{ticket.pk}/")

    # Then the SLA panel shows both clocks running
    panel = page.locator("#sla-panel")
    expect(panel.get_by_text("First response")).to_be_visible()
    expect(panel.locator('[data-sla-state="running"]')).to_have_count(2)
    axe_check(page, "ticket page with SLA and time panels")

    # When they start a timer and reload the page
    page.get_by_role("button", name="Start timer").click()
    page.wait_for_load_state()
    page.reload()

    # Then the timer is still running, ticking in the page
    ticking = page.locator("[data-timer-started]")
    expect(page.get_by_role("button", name="Stop and log")).to_be_visible()
    expect(ticking).not_to_have_text("…")
    axe_check(page, "ticket page with a running timer")

    # When they stop it with a note
    page.get_by_label("Note", exact=True).first.fill("Cleaned startup items")
    page.get_by_role("button", name="Stop and log").click()
    page.wait_for_load_state()

    # Then one minute (rounded up) is logged and listed
    expect(page.locator("#time-panel")).to_contain_text("Cleaned startup items")
    entry = TimeEntry.objects.get()
    assert entry.minutes == 1 and entry.technician == tech_a


def test_owner_computes_reviews_and_approves_a_billing_run(signed_in_page, owner, client_a):
    # Given two deployed devices under a per-device contract
    for name in ("PC-1", "PC-2"):
        inventory.create_device(actor=owner, client=client_a, name=name, kind="workstation")
    contracts.create_contract(actor=owner, client=client_a, name="Managed desktops",
                              kind=ContractKind.PER_DEVICE, starts_on=date(2025, 1, 1),
                              unit_price=Decimal("30"))
    page = signed_in_page(owner)

    # When the owner computes last month's run from the Billing page
    page.goto("/billing/runs/")
    axe_check(page, "billing runs, empty")
    page.get_by_role("button", name="Compute a run").click()
    page.wait_for_load_state()

    # Then the run shows the line, and its evidence lists the devices
    expect(page.get_by_text("Managed desktops: 2 managed devices")).to_be_visible()
    page.get_by_text("2 devices").click()
    expect(page.get_by_role("link", name="PC-1")).to_be_visible()
    axe_check(page, "billing run, draft, evidence open")

    # When approved
    page.get_by_role("button", name="Approve and lock").click()
    page.wait_for_load_state()

    # Then it is locked
    expect(page.get_by_text("can no longer change")).to_be_visible()
    expect(page.get_by_role("button", name="Approve and lock")).to_have_count(0)
    assert BillingRun.objects.get().status == RunStatus.APPROVED
    axe_check(page, "billing run, approved")

    # And the other billing and SLA screens pass axe too
    for url in ("/billing/contracts/", "/billing/contracts/new", "/billing/work-types/",
                "/tickets/sla/breaches/", "/tickets/sla/breaches/?view=due",
                "/tickets/sla/policies/",
                "/tickets/sla/policies/edit"):
        page.goto(url)
        axe_check(page, url)
