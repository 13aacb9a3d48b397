"""SLA clocks on business hours: pause while waiting on the client and resume, warnings and
breaches announced once even by two sweeps racing, escalation, late first responses,
breach reasons, and which policy applies."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from freezegun import freeze_time

from tests.factories import make_user
from watchkeeper.core import events
from watchkeeper.core.choices import Role
from watchkeeper.core.models import AuditEntry, Event
from watchkeeper.helpdesk import actions
from watchkeeper.helpdesk.choices import Status
from watchkeeper.helpdesk.models import Contract, Holiday, SlaClock, TicketEntry
from watchkeeper.helpdesk.sla import actions as sla
from watchkeeper.helpdesk.sla.choices import ClockState, Metric

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
NINE_TO_FIVE = {str(d): [["09:00", "17:00"]] for d in range(1, 6)}
TARGETS = {"p3": {"first_response": 60, "resolution": 480},
           "p1": {"first_response": 15, "resolution": 120}}


def london(*args) -> datetime:
    return datetime(*args, tzinfo=LONDON)


@pytest.fixture
def office(client_a):
    client_a.timezone = "Europe/London"
    client_a.business_hours = NINE_TO_FIVE
    client_a.save()
    return client_a


@pytest.fixture
def policy(owner):
    return sla.save_policy(actor=owner, name="Standard", targets=TARGETS)


def clock(ticket, metric=Metric.RESOLUTION) -> SlaClock:
    return SlaClock.objects.get(ticket=ticket, metric=metric)


def deliver():
    """Run the outbox as a worker would (the SLA handler recomputes the clocks)."""
    events.dispatch_due()


def kinds(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind))


def test_clock_pauses_while_waiting_on_client_and_resumes(office, policy, tech_a):
    # Given a P3 ticket opened Monday 09:00 London (8 business hours to resolve)
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="Printer jammed", client=office)
        deliver()
    assert clock(ticket).due_at == london(2025, 7, 7, 17, 0)

    # When at 10:00 it waits on the client until the client answers Tuesday 11:00
    with freeze_time(london(2025, 7, 7, 10, 0)):
        actions.change_ticket(actor=tech_a, ticket=ticket, status=Status.WAITING_CLIENT)
        deliver()
    paused = clock(ticket)
    with freeze_time(london(2025, 7, 8, 11, 0)):
        requester = make_user("pat@acme.test", Role.CLIENT_USER, client=office)
        actions.add_entry(actor=requester, ticket=ticket, body="Here is the info",
                          public=True)
        deliver()
    resumed = clock(ticket)

    # Then while paused the clock had no due time and one business hour used
    assert paused.state == ClockState.PAUSED and paused.due_at is None
    assert paused.elapsed_seconds == 3600
    # and on resuming the 7 hours left run from Tuesday 11:00: 6 that day, 1 on Wednesday
    assert resumed.state == ClockState.RUNNING
    assert resumed.due_at == london(2025, 7, 9, 10, 0)
    # and the warning (75 % = 6 h used) falls on Tuesday 16:00
    assert resumed.warning_at == london(2025, 7, 8, 16, 0)


def test_first_response_stops_the_clock_and_a_late_one_is_a_breach(office, policy, tech_a):
    # Given a P3 ticket Monday 09:00 (first response within 1 business hour)
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="VPN down", client=office)
        deliver()

    # When the first public reply comes at 10:30
    with freeze_time(london(2025, 7, 7, 10, 30)):
        actions.add_entry(actor=tech_a, ticket=ticket, body="Looking now", public=True)
        deliver()
        deliver()

    # Then the first-response clock stopped, late: breached at 10:00, announced once
    first = clock(ticket, Metric.FIRST_RESPONSE)
    assert first.state == ClockState.MET
    assert first.met_at == london(2025, 7, 7, 10, 30)
    assert first.breached_at == london(2025, 7, 7, 10, 0)
    breached = kinds("sla.breached")
    assert len(breached) == 1 and breached[0].payload["late"] is True
    assert breached[0].payload["metric"] == "first_response"
    # and the resolution clock still runs
    assert clock(ticket).state == ClockState.RUNNING and clock(ticket).breached_at is None


def test_warning_and_breach_are_announced_once_when_two_sweeps_race(office, owner, tech_a):
    # Given a policy that escalates to the owner, and a P3 ticket Monday 09:00
    sla.save_policy(actor=owner, name="Escalating", targets=TARGETS, escalate_to=owner)
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="Email slow", client=office,
                                       assignee=tech_a)
        actions.add_entry(actor=tech_a, ticket=ticket, body="On it", public=True)
        deliver()

    # When two sweeps both find the due warning at 15:30 before either claims it
    now = london(2025, 7, 7, 15, 30)
    first_sweep, second_sweep = sla.due_warnings(now), sla.due_warnings(now)
    assert first_sweep == second_sweep == [clock(ticket).pk]
    won = [sla.claim_warning(i, now) for i in first_sweep + second_sweep]

    # Then exactly one claim wins and one sla.warning is emitted
    assert won == [True, False]
    assert len(kinds("sla.warning")) == 1
    assert kinds("sla.warning")[0].payload["ticket_id"] == ticket.pk

    # When both sweeps run again after the 17:00 deadline
    with freeze_time(london(2025, 7, 7, 17, 30)):
        later = london(2025, 7, 7, 17, 30)
        found = sla.due_breaches(later), sla.due_breaches(later)
        claims = [sla.claim_breach(i, later) for i in found[0] + found[1]]
        results = [sla.sweep(later), sla.sweep(later)]
        deliver()

    # Then both saw the same breach, one announced it, and the warning was not repeated
    assert found[0] == found[1] == [clock(ticket).pk]
    assert claims == [True, False]
    assert results == [{"warned": 0, "breached": 0}, {"warned": 0, "breached": 0}]
    assert len(kinds("sla.breached")) == 1 and len(kinds("sla.warning")) == 1
    resolution = clock(ticket)
    assert resolution.breached_at == london(2025, 7, 7, 17, 0)
    # and the ticket was escalated to the policy's owner, with a note on the timeline
    ticket.refresh_from_db()
    assert ticket.assignee == owner and resolution.escalated_to == owner
    assert TicketEntry.objects.filter(ticket=ticket, body__contains="escalated").exists()


def test_sweep_needs_no_recompute_and_ignores_paused_and_met_clocks(office, policy, tech_a):
    # Given three P3 tickets Monday 09:00: one left alone, one waiting on the client from
    # 09:30, one resolved at 09:45
    with freeze_time(london(2025, 7, 7, 9, 0)):
        alone = actions.create_ticket(actor=tech_a, subject="A", client=office)
        waiting = actions.create_ticket(actor=tech_a, subject="B", client=office)
        done = actions.create_ticket(actor=tech_a, subject="C", client=office)
    with freeze_time(london(2025, 7, 7, 9, 30)):
        actions.change_ticket(actor=tech_a, ticket=waiting, status=Status.WAITING_CLIENT)
    with freeze_time(london(2025, 7, 7, 9, 45)):
        actions.change_ticket(actor=tech_a, ticket=done, status=Status.RESOLVED)
        deliver()

    # When the sweep runs on Tuesday
    with freeze_time(london(2025, 7, 8, 12, 0)):
        result = sla.sweep()

    # Then only the ticket left alone breached (first response and resolution)
    assert result == {"warned": 0, "breached": 2}
    assert {e.payload["ticket_id"] for e in kinds("sla.breached")} == {alone.pk}
    assert clock(waiting).state == ClockState.PAUSED
    assert clock(done).state == ClockState.MET and clock(done).breached_at is None


def test_recompute_is_idempotent(office, policy, tech_a):
    # Given a ticket whose clocks were computed
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="Idem", client=office)
        deliver()
        audits = AuditEntry.objects.filter(object_type="helpdesk.slaclock").count()

        # When the same event is handled again
        sla.recompute_ticket(ticket.pk)
        sla.recompute_ticket(ticket.pk)

    # Then nothing changes and no further audit rows appear
    assert AuditEntry.objects.filter(object_type="helpdesk.slaclock").count() == audits == 2
    assert SlaClock.objects.filter(ticket=ticket).count() == 2


def test_holidays_of_the_client_stop_the_clock(office, policy, tech_a, owner):
    # Given Tuesday 2025-07-08 is a holiday of the client
    Holiday.objects.create(client=office, date=date(2025, 7, 8), name="Founders' day")

    # When a P3 ticket opens Monday 16:00
    with freeze_time(london(2025, 7, 7, 16, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="Late one", client=office)
        deliver()

    # Then one hour runs Monday and the other seven on Wednesday
    assert clock(ticket).due_at == london(2025, 7, 9, 16, 0)


def test_policy_precedence_contract_client_default_and_versions(office, owner, tech_a):
    # Given a default policy, a client policy and a contract policy for the client
    sla.save_policy(actor=owner, name="Default", targets={"p3": {"resolution": 600}})
    client_policy = sla.save_policy(actor=owner, name="Acme", client=office,
                                    targets={"p3": {"resolution": 300}})
    contract = Contract.objects.create(client=office, name="Gold", kind="time_materials",
                                       starts_on=date(2025, 1, 1))
    gold = sla.save_policy(actor=owner, name="Gold SLA", contract=contract,
                           targets={"p3": {"resolution": 120}})

    # When a ticket opens
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="Which", client=office)
        deliver()

    # Then the contract's policy applies
    assert clock(ticket).policy == gold
    assert clock(ticket).due_at == london(2025, 7, 7, 11, 0)
    assert client_policy.scope == f"client:{office.pk}"

    # When the contract policy gets a new version
    newer = sla.save_policy(actor=owner, name="Gold SLA", contract=contract,
                            targets={"p3": {"resolution": 60}})

    # Then the old version is no longer current, the running clock keeps its version,
    # and a new ticket gets the new one
    gold.refresh_from_db()
    assert not gold.is_current and newer.version == 2
    with freeze_time(london(2025, 7, 7, 9, 30)):
        sla.recompute_ticket(ticket.pk)
        second = actions.create_ticket(actor=tech_a, subject="Newer", client=office)
        deliver()
    assert clock(ticket).policy == gold
    assert clock(second).policy == newer


def test_breach_reason_is_recorded_only_for_a_breach(office, policy, tech_a):
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="Why", client=office)
        deliver()
    running = clock(ticket)
    with pytest.raises(ValidationError):
        sla.record_breach_reason(actor=tech_a, clock=running, reason="Too busy")

    with freeze_time(london(2025, 7, 8, 9, 0)):
        sla.sweep()
    breached = sla.record_breach_reason(actor=tech_a, clock=clock(ticket),
                                        reason="Waiting for a part from the vendor")
    assert breached.breach_reason == "Waiting for a part from the vendor"
    assert breached.breach_reason_by == tech_a
    assert AuditEntry.objects.filter(object_type="helpdesk.slaclock",
                                     changes__has_key="breach_reason").exists()


def test_policy_targets_are_validated(owner):
    for bad in ({}, {"p9": {"resolution": 10}}, {"p1": {"resolution": 0}},
                {"p1": {"reply": 5}}, {"p1": {"resolution": "soon"}}):
        with pytest.raises(ValidationError):
            sla.save_policy(actor=owner, name="Bad", targets=bad)


def test_sla_api_breaches_and_reason_and_isolation(as_user, office, policy, tech_a, owner,
                                                   client_b):
    # Given a breached ticket of client A and a running one of client B
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="API", client=office)
        other = actions.create_ticket(actor=owner, subject="Other", client=client_b)
        deliver()
    with freeze_time(london(2025, 7, 9, 9, 0)):
        sla.sweep()
    api = as_user(tech_a)

    # When technician A lists breached clocks and explains one
    listing = api.get("/api/v1/sla-clocks/?breached=true")
    target = clock(ticket).pk
    reason = api.post(f"/api/v1/sla-clocks/{target}/breach-reason/",
                      {"reason": "Vendor outage"}, content_type="application/json")

    # Then they see only A's clocks, and the reason is stored
    assert {c["ticket"] for c in listing.json()["results"]} == {ticket.pk}
    assert reason.status_code == 200 and reason.json()["breach_reason"] == "Vendor outage"
    foreign = clock(other).pk
    assert api.get(f"/api/v1/sla-clocks/{foreign}/").status_code == 404
    assert api.post(f"/api/v1/sla-clocks/{foreign}/breach-reason/", {"reason": "x"},
                    content_type="application/json").status_code == 404
    # and policies are managed by tickets.admin only
    assert api.post("/api/v1/sla-policies/", {"name": "Mine", "targets": TARGETS},
                    content_type="application/json").status_code == 403
    created = as_user(owner).post("/api/v1/sla-policies/", {
        "name": "Acme", "client": office.pk, "targets": {"p1": {"resolution": 60}}},
        content_type="application/json")
    assert created.status_code == 201 and created.json()["scope"] == f"client:{office.pk}"


def test_open_tickets_follow_a_new_policy_holiday_or_hours_at_once(office, owner, tech_a):
    from watchkeeper.core import actions as core_actions

    # Given an open ticket created Monday 09:00 when no policy existed
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="Before", client=office)
        deliver()
    assert not SlaClock.objects.filter(ticket=ticket).exists()

    # When a client policy is saved (16 business hours to resolve)
    with freeze_time(london(2025, 7, 7, 9, 30)):
        sla.save_policy(actor=owner, name="Acme", client=office,
                        targets={"p3": {"resolution": 960}})
        deliver()
    # Then the ticket gets its clock at once: due Tuesday 17:00
    assert clock(ticket).due_at == london(2025, 7, 8, 17, 0)

    # When Tuesday becomes a holiday of the client
    with freeze_time(london(2025, 7, 7, 9, 40)):
        core_actions.create_object(actor=owner, model=Holiday, client=office,
                                   date=date(2025, 7, 8), name="Closed")
        deliver()
    # Then the due time moves to Wednesday 17:00
    assert clock(ticket).due_at == london(2025, 7, 9, 17, 0)

    # When the client's hours become 09:00-13:00
    with freeze_time(london(2025, 7, 7, 9, 50)):
        core_actions.update_object(actor=owner, obj=office, business_hours={
            str(d): [["09:00", "13:00"]] for d in range(1, 6)})
        deliver()
    # Then 4 h Monday, holiday Tuesday, 4 h each Wednesday to Friday: due Friday 13:00
    assert clock(ticket).due_at == london(2025, 7, 11, 13, 0)


def test_clock_list_query_count_does_not_grow_with_rows(as_user, office, policy, owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = as_user(owner)

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = api.get("/api/v1/sla-clocks/")
        assert response.status_code == 200
        return len(ctx.captured_queries)

    # Given 2 tickets (4 clocks), then 8 tickets (16 clocks)
    with freeze_time(london(2025, 7, 7, 9, 0)):
        for i in range(2):
            actions.create_ticket(actor=owner, subject=f"Q{i}", client=office)
        deliver()
    with freeze_time(london(2025, 7, 7, 10, 0)):
        few = queries_for_list()
    with freeze_time(london(2025, 7, 7, 9, 0)):
        for i in range(6):
            actions.create_ticket(actor=owner, subject=f"R{i}", client=office)
        deliver()
    with freeze_time(london(2025, 7, 7, 10, 0)):
        many = queries_for_list()

    # Then listing them costs the same number of queries
    assert many == few


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_in_parallel_threads_announce_each_breach_once(office, policy, tech_a):
    """Real concurrency: two threads, each with its own database connection, sweep the
    same due clocks at the same moment. Needs a database with row locking between
    connections (PostgreSQL); SQLite's in-memory test database serialises them anyway."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("parallel connections need PostgreSQL (WATCHKEEPER_DATABASE_URL)")
    with freeze_time(london(2025, 7, 7, 9, 0)):
        tickets = [actions.create_ticket(actor=tech_a, subject=f"T{i}", client=office)
                   for i in range(5)]
        deliver()
    now = london(2025, 7, 8, 12, 0)
    barrier, results = threading.Barrier(2), []

    def sweeper():
        try:
            barrier.wait()
            results.append(sla.sweep(now))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then together they announced each of the 10 breaches (2 per ticket) exactly once
    assert sum(r["breached"] for r in results) == 10
    assert len(kinds("sla.breached")) == 10
    assert {e.payload["ticket_id"] for e in kinds("sla.breached")} == {t.pk for t in tickets}


def test_the_scheduler_runs_the_sweep_only_when_something_is_due(office, policy, tech_a):
    from watchkeeper.core import scheduler
    from watchkeeper.helpdesk.sla import tasks as tasks_sla

    # Given the helpdesk's periodic jobs discovered
    scheduler.discover()
    job = scheduler.registered()["helpdesk.sla_sweep"]
    assert job.task is tasks_sla.sla_sweep

    # When nothing is due, its check says so; once the deadline passed, it says there is work
    with freeze_time(london(2025, 7, 7, 9, 0)):
        ticket = actions.create_ticket(actor=tech_a, subject="Sched", client=office)
        deliver()
        assert job.when() is False
    with freeze_time(london(2025, 7, 7, 10, 30)):
        assert job.when() is True
        # and the task itself announces the breach of the first-response target
        assert tasks_sla.sla_sweep.call() == {"warned": 0, "breached": 1}
        assert job.when() is False
    assert kinds("sla.breached")[0].payload["ticket_id"] == ticket.pk
