"""Pages of SLAs, time and billing: the ticket side panel (SLA clock, time, timer that
survives a reload), the breaches list with reasons, policies, contracts, and a billing run
reviewed, approved and exported through the pages."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from watchkeeper.core import events
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.billing import contracts
from watchkeeper.helpdesk.billing.choices import ContractKind, RunStatus
from watchkeeper.helpdesk.models import BillingRun, SlaClock, SlaPolicy, TimeEntry, Timer
from watchkeeper.helpdesk.sla import actions as sla
from watchkeeper.helpdesk.time import actions as timeentries
from watchkeeper.inventory import actions as inventory

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def remote(owner):
    return timeentries.save_work_type(actor=owner, name="Remote support",
                                      default_rate=Decimal("90"))


@pytest.fixture
def ticket_a(client_a, tech_a, owner):
    client_a.timezone = "Europe/London"
    client_a.save()
    sla.save_policy(actor=owner, name="Standard",
                    targets={"p3": {"first_response": 60, "resolution": 480}})
    with freeze_time(datetime(2025, 7, 7, 9, 0, tzinfo=LONDON)):
        ticket = actions.create_ticket(actor=tech_a, subject="Printer", client=client_a,
                                       notify=False)
        events.dispatch_due()
    return ticket


def test_ticket_page_shows_the_sla_clock_and_time(as_user, tech_a, ticket_a, remote):
    # Given a ticket with SLA clocks and 45 minutes logged
    timeentries.log_time(actor=tech_a, ticket=ticket_a, minutes=45, work_type=remote)

    # When the technician opens it on Monday 10:00
    with freeze_time(datetime(2025, 7, 7, 10, 0, tzinfo=LONDON)):
        page = as_user(tech_a).get(f"/tickets/{ticket_a.pk}/").content.decode()

    # Then the side panel shows both clocks, due times and business time left, and the time
    assert 'id="sla-panel"' in page
    assert 'data-sla-metric="resolution" data-sla-state="running"' in page
    assert "2025-07-07 16:00" in page  # resolution due, shown in UTC (17:00 London)
    assert "7 h 00 min business time left" in page
    assert "45 min logged" in page and "Start timer" in page


def test_timer_started_on_the_page_survives_a_reload_and_logs_time(as_user, tech_a, ticket_a,
                                                                    remote):
    web = as_user(tech_a)
    # When the technician starts a timer at 10:00
    with freeze_time("2025-07-07 10:00:00"):
        web.post(f"/tickets/{ticket_a.pk}/timer", {"work_type": remote.pk})

    # Then a reload (even from another session) shows it running since 10:00
    with freeze_time("2025-07-07 10:05:00"):
        page = as_user(tech_a).get(f"/tickets/{ticket_a.pk}/").content.decode()
    timer = Timer.objects.get()
    assert 'data-timer-started="2025-07-07T10:00:00+00:00"' in page
    assert "Stop and log" in page

    # When it is stopped at 10:40 with a note
    with freeze_time("2025-07-07 10:40:00"):
        response = web.post(f"/tickets/timers/{timer.pk}/stop",
                            {"work_type": remote.pk, "note": "Replaced toner",
                             "billable": "on"})

    # Then 40 billable minutes are logged and the timer is gone
    assert response.status_code == 302
    entry = TimeEntry.objects.get()
    assert (entry.minutes, entry.note, entry.billable) == (40, "Replaced toner", True)
    assert not Timer.objects.exists()


def test_logging_time_on_the_page_accepts_hours_and_minutes(as_user, tech_a, ticket_a, remote):
    web = as_user(tech_a)
    web.post(f"/tickets/{ticket_a.pk}/time", {"minutes": "1:15", "work_type": remote.pk,
                                               "date": "2025-07-07", "billable": "on"})
    web.post(f"/tickets/{ticket_a.pk}/time", {"minutes": "0.5h", "work_type": remote.pk})
    bad = web.post(f"/tickets/{ticket_a.pk}/time", {"minutes": "soon", "work_type": remote.pk},
                   follow=True)
    assert sorted(TimeEntry.objects.values_list("minutes", "billable")) == [(30, False),
                                                                           (75, True)]
    assert "hours:minutes" in bad.content.decode()


def test_breaches_page_lists_breaches_and_takes_a_reason(as_user, tech_a, ticket_a):
    # Given the ticket breached both targets
    with freeze_time(datetime(2025, 7, 8, 12, 0, tzinfo=LONDON)):
        sla.sweep()
    clock = SlaClock.objects.get(ticket=ticket_a, metric="resolution")
    web = as_user(tech_a)

    # When the technician opens the breaches list and explains one
    page = web.get("/tickets/sla/breaches/").content.decode()
    web.post(f"/tickets/sla/clocks/{clock.pk}/reason", {"reason": "Part on order"})

    # Then the breach is listed, and the reason is kept with it
    assert ticket_a.reference in page and 'id="breach-table"' in page
    clock.refresh_from_db()
    assert clock.breach_reason == "Part on order" and clock.breach_reason_by == tech_a
    assert "Part on order" in web.get("/tickets/sla/breaches/").content.decode()


def test_policy_form_writes_a_new_version(as_user, owner, client_a):
    web = as_user(owner)
    web.post("/tickets/sla/policies/edit", {"scope": f"client:{client_a.pk}", "name": "Acme",
                                             "p1-first_response": "15", "p1-resolution": "240",
                                             "warning_percent": "80"})
    web.post("/tickets/sla/policies/edit", {"scope": f"client:{client_a.pk}", "name": "Acme",
                                             "p1-first_response": "10", "warning_percent": "80"})
    versions = list(SlaPolicy.objects.filter(scope=f"client:{client_a.pk}")
                    .values_list("version", "is_current", "targets"))
    assert versions == [(2, True, {"p1": {"first_response": 10}}),
                        (1, False, {"p1": {"first_response": 15, "resolution": 240}})]
    assert "Acme" in web.get("/tickets/sla/policies/").content.decode()


@freeze_time("2025-08-03 10:00:00")
def test_billing_run_reviewed_approved_and_exported_on_the_pages(as_user, owner, client_a):
    # Given two deployed devices under a per-device contract
    for name in ("PC-1", "PC-2"):
        inventory.create_device(actor=owner, client=client_a, name=name, kind="workstation")
    contract = contracts.create_contract(actor=owner, client=client_a, name="Managed",
                                         kind=ContractKind.PER_DEVICE,
                                         starts_on=date(2025, 1, 1), unit_price=Decimal("30"))
    web = as_user(owner)

    # When the owner computes July and opens the run
    created = web.post("/billing/runs/new", {"period": "2025-07"})
    run = BillingRun.objects.get()
    page = web.get(f"/billing/runs/{run.pk}/").content.decode()

    # Then the line and its evidence (each device) are shown, with the approve button
    assert created["Location"] == f"/billing/runs/{run.pk}/"
    assert "Managed: 2 managed devices" in page and "PC-1" in page and "PC-2" in page
    assert "Approve and lock" in page

    # When approved
    web.post(f"/billing/runs/{run.pk}/approve")
    run.refresh_from_db()
    page = web.get(f"/billing/runs/{run.pk}/").content.decode()

    # Then it is locked: no recompute or approve any more, and a recompute post is refused
    assert run.status == RunStatus.APPROVED
    assert "Approve and lock" not in page and "can no longer change" in page
    web.post(f"/billing/runs/{run.pk}/recompute")
    run.refresh_from_db()
    assert run.status == RunStatus.APPROVED and run.total == Decimal("60.00")

    # and the exports download
    csv_body = web.get(f"/billing/runs/{run.pk}/export.csv")
    assert csv_body["Content-Disposition"].startswith("attachment")
    assert "Managed" in csv_body.content.decode()
    assert web.get(f"/billing/runs/{run.pk}/export.xml").status_code == 404
    # and the contract page is there too
    assert "Managed" in web.get(f"/billing/contracts/{contract.pk}/").content.decode()


def test_billing_pages_are_for_billing_roles_only(as_user, tech_a, portal_b):
    for user in (tech_a, portal_b):
        web = as_user(user)
        for url in ("/billing/runs/", "/billing/contracts/", "/billing/work-types/"):
            assert web.get(url).status_code == 403, (user, url)
        assert web.post("/billing/runs/new", {"period": "2025-07"}).status_code == 403
    assert not BillingRun.objects.exists()


def test_contract_form_creates_and_edits_a_contract(as_user, owner, client_a):
    web = as_user(owner)
    # Given the empty form
    assert web.get("/billing/contracts/new").status_code == 200

    # When a prepaid block is created, then a bad edit is posted
    created = web.post("/billing/contracts/new", {
        "client": client_a.pk, "name": "Block 20h", "kind": "prepaid", "starts_on":
        "2025-01-01", "hours": "20", "overage_rate": "95", "unit_price": "0",
        "is_active": "on"})
    contract = client_a.contracts.get()
    bad = web.post(f"/billing/contracts/{contract.pk}/", {
        "name": "Block 20h", "kind": "prepaid", "starts_on": "2025-01-01", "hours": "0",
        "is_active": "on"})

    # Then the contract exists with its block, and the bad edit is refused with the form
    # keeping what was typed
    assert created.status_code == 302 and contract.hours == Decimal("20.00")
    assert bad.status_code == 200 and "Give the hours" in bad.content.decode()
    contract.refresh_from_db()
    assert contract.hours == Decimal("20.00")
    assert "Prepaid hours" in web.get(f"/billing/contracts/{contract.pk}/").content.decode()


def test_due_soon_lists_running_clocks_soonest_first(as_user, tech_a, ticket_a, client_a):
    # Given a second ticket opened later (its clocks fall due later)
    with freeze_time(datetime(2025, 7, 7, 11, 0, tzinfo=LONDON)):
        later = actions.create_ticket(actor=tech_a, subject="Later one", client=client_a,
                                      notify=False)
        events.dispatch_due()

    # When the technician opens the due-soon view on Monday 11:30 (before any sweep ran)
    with freeze_time(datetime(2025, 7, 7, 11, 30, tzinfo=LONDON)):
        page = as_user(tech_a).get("/tickets/sla/breaches/?view=due").content.decode()

    # Then both tickets' clocks are listed, the earlier ticket's first response on top,
    # already 1.5 business hours over, the later one's with half an hour left
    body = page[page.index('id="due-table"'):]
    assert body.index(ticket_a.reference) < body.index(later.reference)
    assert "-1 h 30 min" in body and "<td>30 min</td>" in body
