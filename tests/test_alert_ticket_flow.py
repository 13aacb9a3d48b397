"""Alert and ticket agree, both ways, through events only: the policy decides whether an
alert opens a ticket (acknowledging, snoozing and waking never do), taking the ticket
acknowledges the alert, resolving the ticket while the alert is active says what happens
to the alert, the recovery is noted on the ticket, and nothing loops."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.core import events
from watchkeeper.core.models import Event
from watchkeeper.helpdesk.models import Ticket
from watchkeeper.monitoring import actions as mon
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import AlertStatus, State
from watchkeeper.monitoring.models import Alert

pytestmark = pytest.mark.django_db


def _fail(check, device, state=State.CRITICAL):
    record_results([CheckResult(check.pk, device.pk, device.client_id, state, value=95,
                                message="C: 95% full")])
    events.dispatch_due()
    return Alert.objects.get(check_template=check, device=device, status__in=[
        AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.SNOOZED])


@pytest.fixture
def no_ticket_alert(owner, client_a):
    """A critical alert whose policy asks for no tickets at all."""
    _, check = disk_policy(owner, ticket_severities=[])
    return _fail(check, make_device(client_a, "srv-01"))


def test_acknowledging_an_alert_whose_policy_wants_no_ticket_opens_none(owner,
                                                                        no_ticket_alert):
    assert not Ticket.objects.exists()
    mon.acknowledge_alerts(actor=owner, alerts=[no_ticket_alert])
    events.dispatch_due()
    assert Alert.objects.get().status == AlertStatus.ACKNOWLEDGED
    assert not Ticket.objects.exists()


def test_snoozing_and_waking_an_alert_whose_policy_wants_no_ticket_opens_none(
        owner, no_ticket_alert):
    mon.snooze_alerts(actor=owner, alerts=[no_ticket_alert], minutes=30)
    events.dispatch_due()
    assert not Ticket.objects.exists()
    # When the snooze runs out, the alert is active again, still without a ticket
    assert mon.wake_snoozed_alerts(now=timezone.now() + timedelta(minutes=31)) == 1
    events.dispatch_due()
    assert Alert.objects.get().status == AlertStatus.OPEN
    assert not Ticket.objects.exists()
    assert Event.objects.filter(kind="alert.changed").count() == 2


# --- Both ways ------------------------------------------------------------------------------

def _settle(rounds: int = 10) -> int:
    """Deliver until nothing is due; how many rounds it took (a loop never settles)."""
    for n in range(1, rounds + 1):
        if events.dispatch_due()["due"] == 0:
            return n
    raise AssertionError("the outbox never settled: alert and ticket loop")


@pytest.fixture
def alert_ticket(owner, client_a):
    """A critical alert whose policy opens tickets and escalates after 15 minutes, with the
    ticket it opened."""
    _, check = disk_policy(owner, ticket_severities=["critical"], escalate_after_minutes=15)
    device = make_device(client_a, "srv-02")
    alert = _fail(check, device)
    _settle()
    ticket = Ticket.objects.get(origin_key=f"alert:{alert.pk}")
    return alert, ticket, check, device


def test_taking_the_ticket_acknowledges_the_alert_and_its_escalation_does_not_fire(
        tech_a, alert_ticket):
    from watchkeeper.helpdesk import actions as helpdesk
    from watchkeeper.monitoring.tasks import sweep_escalations

    alert, ticket, _, _ = alert_ticket
    assert alert.escalate_at is not None
    # When a technician takes the alert's ticket
    helpdesk.change_ticket(actor=tech_a, ticket=ticket, assignee=tech_a)
    rounds = _settle()
    # Then the alert is acknowledged by them, its escalation cleared
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == tech_a
    assert alert.escalate_at is None
    # And when the escalation sweep runs past the original time, nothing escalates
    assert sweep_escalations(timezone.now() + timedelta(hours=2)) == 0
    assert not Event.objects.filter(kind="alert.escalated").exists()
    # And the ticket notes the acknowledgement once; the exchange settled without a loop
    assert ticket.entries.filter(body__startswith="Alert acknowledged by").count() == 1
    assert rounds <= 4
    acked = Event.objects.get(kind="alert.changed", payload__change="acknowledged")
    assert acked.payload["by"].endswith(f"(ticket {ticket.reference})")


def test_starting_work_on_the_ticket_acknowledges_the_alert(tech_a, alert_ticket):
    from watchkeeper.helpdesk import actions as helpdesk

    alert, ticket, _, _ = alert_ticket
    helpdesk.change_ticket(actor=tech_a, ticket=ticket, status="in_progress")
    _settle()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED


def test_a_system_change_of_the_ticket_does_not_touch_the_alert(alert_ticket):
    from watchkeeper.helpdesk import actions as helpdesk

    alert, ticket, _, _ = alert_ticket
    helpdesk.change_ticket(actor=None, ticket=ticket, status="in_progress")
    _settle()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_resolving_the_ticket_while_the_alert_is_active_asks_what_to_do(tech_a, alert_ticket):
    from django.core.exceptions import ValidationError

    from watchkeeper.helpdesk import actions as helpdesk

    alert, ticket, _, _ = alert_ticket
    # Without a choice the change is refused, with the question
    with pytest.raises(ValidationError) as asked:
        helpdesk.change_ticket(actor=tech_a, ticket=ticket, status="resolved")
    assert "alert_action" in asked.value.message_dict
    ticket.refresh_from_db()
    assert ticket.status == "new"
    # Choosing "resolve both" resolves the ticket and then the alert, once
    helpdesk.change_ticket(actor=tech_a, ticket=ticket, status="resolved",
                           alert_action="resolve")
    _settle()
    alert.refresh_from_db()
    ticket.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and ticket.status == "resolved"
    note = ticket.entries.get(body__startswith="Alert resolved by")
    assert "already resolved" in note.body
    resolved = Event.objects.get(kind="alert.resolved")
    assert resolved.payload["recovered"] is False


def test_resolving_the_ticket_and_snoozing_or_keeping_the_alert(tech_a, owner, client_a):
    from watchkeeper.helpdesk import actions as helpdesk

    _, check = disk_policy(owner, ticket_severities=["critical"])
    first = _fail(check, make_device(client_a, "srv-03"))
    second = _fail(check, make_device(client_a, "srv-04"))
    _settle()
    one, two = (Ticket.objects.get(origin_key=f"alert:{a.pk}") for a in (first, second))
    helpdesk.add_entry(actor=tech_a, ticket=one, body="Cleared temp files.", public=False,
                       set_status="resolved", alert_action="snooze", snooze_minutes=240)
    helpdesk.change_ticket(actor=tech_a, ticket=two, status="resolved", alert_action="keep")
    _settle()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == AlertStatus.SNOOZED
    assert first.snoozed_until > timezone.now() + timedelta(minutes=230)
    assert second.status == AlertStatus.OPEN
    # A ticket whose alert is no longer active resolves without the question
    three = helpdesk.create_ticket(actor=tech_a, subject="Printer", client=client_a)
    helpdesk.change_ticket(actor=tech_a, ticket=three, status="resolved")


def test_the_recovery_is_noted_on_a_ticket_resolved_before(tech_a, alert_ticket):
    from watchkeeper.helpdesk import actions as helpdesk

    alert, ticket, check, device = alert_ticket
    helpdesk.change_ticket(actor=tech_a, ticket=ticket, status="resolved", alert_action="keep")
    _settle()
    # When the condition recovers later
    record_results([CheckResult(check.pk, device.pk, device.client_id, State.OK, value=40)])
    _settle()
    alert.refresh_from_db()
    ticket.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    note = ticket.entries.get(body__startswith="Recovered")
    assert "already resolved" in note.body and ticket.status == "resolved"


def test_the_api_asks_and_takes_the_choice(as_user, tech_a, alert_ticket):
    alert, ticket, _, _ = alert_ticket
    api = as_user(tech_a)
    asked = api.patch(f"/api/v1/tickets/{ticket.pk}/", {"status": "resolved"},
                      content_type="application/json")
    assert asked.status_code == 400 and "alert_action" in asked.json()["errors"]
    bad = api.patch(f"/api/v1/tickets/{ticket.pk}/", {"status": "resolved",
                                                      "alert_action": "ignore"},
                    content_type="application/json")
    assert bad.status_code == 400
    done = api.patch(f"/api/v1/tickets/{ticket.pk}/", {"status": "resolved",
                                                       "alert_action": "snooze",
                                                       "snooze_minutes": 30},
                     content_type="application/json")
    assert done.status_code == 200, done.json()
    _settle()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.SNOOZED


def test_the_ticket_page_asks_what_to_do_with_the_alert(as_user, tech_a, alert_ticket):
    from django.urls import reverse

    alert, ticket, _, _ = alert_ticket
    web = as_user(tech_a)
    page = web.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert page.count('name="alert_action"') == 6  # three choices in each of two forms
    refused = web.post(reverse("ticket_update", args=[ticket.pk]), {"status": "resolved"},
                       follow=True).content.decode()
    assert "still active" in refused
    web.post(reverse("ticket_update", args=[ticket.pk]),
             {"status": "resolved", "alert_action": "resolve"})
    _settle()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    page = web.get(reverse("ticket", args=[ticket.pk])).content.decode()
    assert 'name="alert_action"' not in page
