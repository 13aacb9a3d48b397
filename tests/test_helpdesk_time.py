"""Time on tickets: entries through the API, server-side timers that survive a reload and
write an entry when stopped, totals, and who may log or change what."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from freezegun import freeze_time

from watchkeeper.core.models import AuditEntry, Event
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.models import TimeEntry, Timer
from watchkeeper.helpdesk.time import actions as timeentries

pytestmark = pytest.mark.django_db


@pytest.fixture
def remote(owner):
    return timeentries.save_work_type(actor=owner, name="Remote support",
                                      default_rate=Decimal("90"))


@pytest.fixture
def ticket_a(client_a, tech_a):
    return actions.create_ticket(actor=tech_a, subject="Slow PC", client=client_a, notify=False)


@pytest.fixture
def ticket_b(client_b, owner):
    return actions.create_ticket(actor=owner, subject="B's ticket", client=client_b,
                                 notify=False)


def test_technician_logs_time_through_the_api(as_user, tech_a, ticket_a, remote):
    # Given a technician of client A signed in
    api = as_user(tech_a)

    # When they log 45 billable minutes on A's ticket
    response = api.post("/api/v1/time-entries/", {
        "ticket": ticket_a.pk, "work_type": remote.pk, "minutes": 45, "billable": True,
        "note": "Cleaned up startup items", "date": "2025-07-07"}, content_type="application/json")

    # Then the entry is theirs, audited and announced, and the ticket totals include it
    assert response.status_code == 201, response.content
    entry = TimeEntry.objects.get(pk=response.json()["id"])
    assert entry.technician == tech_a and entry.minutes == 45 and entry.date == date(2025, 7, 7)
    assert AuditEntry.objects.filter(object_type="helpdesk.timeentry",
                                     object_id=str(entry.pk), action="create").exists()
    assert Event.objects.filter(kind="time_entry.created", client=ticket_a.client).exists()
    timeentries.log_time(actor=tech_a, ticket=ticket_a, minutes=15, work_type=remote,
                         billable=False)
    assert timeentries.ticket_totals(ticket_a) == {"total": 60, "billable": 45,
                                                   "non_billable": 15}


def test_time_on_another_clients_ticket_is_refused(as_user, tech_a, ticket_b, remote):
    # Given B's ticket, which technician A does not work on
    api = as_user(tech_a)

    # When they try to log time on it, or to read its entries
    response = api.post("/api/v1/time-entries/", {
        "ticket": ticket_b.pk, "work_type": remote.pk, "minutes": 30},
        content_type="application/json")
    listing = api.get(f"/api/v1/time-entries/?ticket={ticket_b.pk}")

    # Then the ticket is unknown to them and nothing is written
    assert response.status_code == 400 and "ticket" in response.json()["errors"]
    assert not TimeEntry.objects.exists()
    assert listing.status_code == 400 or listing.json()["results"] == []
    with pytest.raises(ValidationError):
        timeentries.log_time(actor=tech_a, ticket=ticket_b, minutes=30, work_type=remote)


def test_timer_survives_a_reload_and_stopping_writes_the_entry(as_user, tech_a, ticket_a,
                                                                remote):
    api = as_user(tech_a)
    # Given a timer started at 10:00
    with freeze_time("2025-07-07 10:00:00"):
        started = api.post("/api/v1/timers/", {"ticket": ticket_a.pk, "work_type": remote.pk,
                                               "note": "Remote session"},
                           content_type="application/json")
        # and a double click starts nothing new
        again = api.post("/api/v1/timers/", {"ticket": ticket_a.pk},
                         content_type="application/json")
    assert started.status_code == 201 and again.json()["id"] == started.json()["id"]
    assert Timer.objects.count() == 1

    # When the page is reloaded 20 minutes later, the timer is still there, still counting
    with freeze_time("2025-07-07 10:20:00"):
        timers = api.get("/api/v1/timers/").json()["results"]
    assert [t["elapsed_seconds"] for t in timers] == [1200]

    # When it is stopped at 10:31:10
    with freeze_time("2025-07-07 10:31:10"):
        stopped = api.post(f"/api/v1/timers/{started.json()['id']}/stop/", {},
                           content_type="application/json")

    # Then a 32-minute entry (rounded up) with the timer's note and start is written,
    # and the timer is gone
    assert stopped.status_code == 201, stopped.content
    entry = TimeEntry.objects.get()
    assert entry.minutes == 32 and entry.note == "Remote session"
    assert entry.started_at.isoformat().startswith("2025-07-07T10:00")
    assert not Timer.objects.exists()


def test_timers_are_private_to_their_technician(as_user, tech_a, owner, ticket_a, remote):
    timer = timeentries.start_timer(actor=tech_a, ticket=ticket_a, work_type=remote)
    api = as_user(owner)
    assert api.get("/api/v1/timers/").json()["results"] == []
    assert api.post(f"/api/v1/timers/{timer.pk}/stop/", {},
                    content_type="application/json").status_code == 404


def test_only_the_author_or_billing_managers_change_an_entry(as_user, tech_a, owner, client_a,
                                                             ticket_a, remote):
    # Given an entry of the owner on A's ticket
    entry = timeentries.log_time(actor=owner, ticket=ticket_a, minutes=30, work_type=remote)

    # Then technician A may not change or delete it, but its author may
    api = as_user(tech_a)
    assert api.patch(f"/api/v1/time-entries/{entry.pk}/", {"minutes": 10},
                     content_type="application/json").status_code == 403
    assert api.delete(f"/api/v1/time-entries/{entry.pk}/").status_code == 403
    api = as_user(owner)
    response = api.patch(f"/api/v1/time-entries/{entry.pk}/", {"minutes": 10},
                         content_type="application/json")
    assert response.status_code == 200 and response.json()["minutes"] == 10


def test_stopping_a_timer_rounds_up_to_a_minute_and_caps_a_day(tech_a, ticket_a, remote):
    with freeze_time("2025-07-07 10:00:00") as clock:
        timer = timeentries.start_timer(actor=tech_a, ticket=ticket_a, work_type=remote)
        clock.tick(timedelta(seconds=5))
        assert timeentries.stop_timer(actor=tech_a, timer=timer).minutes == 1
        timer = timeentries.start_timer(actor=tech_a, ticket=ticket_a, work_type=remote)
        clock.tick(timedelta(days=3))
        assert timeentries.stop_timer(actor=tech_a, timer=timer).minutes == 24 * 60


def test_billable_time_needs_a_client(owner, remote):
    triage = actions.create_ticket(actor=owner, subject="Unknown sender", notify=False)
    with pytest.raises(ValidationError):
        timeentries.log_time(actor=owner, ticket=triage, minutes=10, work_type=remote)
    entry = timeentries.log_time(actor=owner, ticket=triage, minutes=10, work_type=remote,
                                 billable=False)
    assert entry.billable is False
