"""Monitoring alerts become tickets through the outbox: one ticket per alert however often
an event is delivered, repeats and recovery as notes on it, recovery resolving it when the
policy says so."""

from __future__ import annotations

import pytest
from django.db import transaction

from watchkeeper.core import events
from watchkeeper.core.models import Event
from watchkeeper.helpdesk.choices import EntryKind, Source, Status
from watchkeeper.helpdesk.handlers import on_alert_changed, on_alert_opened, on_alert_resolved
from watchkeeper.helpdesk.models import OutgoingMail, Ticket, TicketEntry
from watchkeeper.inventory import actions as inventory_actions
from watchkeeper.monitoring.events import AlertChanged, AlertOpened, AlertResolved

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(client_a):
    return inventory_actions.create_device(actor=None, client=client_a, name="ACME-DC01")


KINDS = {"alert.opened": AlertOpened, "alert.changed": AlertChanged,
         "alert.resolved": AlertResolved}
HANDLERS = {"alert.opened": on_alert_opened, "alert.changed": on_alert_changed,
            "alert.resolved": on_alert_resolved}


def alert_event(kind, device, alert_id=41, **extra) -> Event:
    """Emit a declared alert event (as monitoring would) with these values."""
    fields = {"alert_id": alert_id, "device_id": device.pk, "check": "Disk C: free",
              "check_id": None, "severity": "critical", "summary": "3% free",
              "status": "open", "count": 1, "suppressed": "", "is_flapping": False,
              "wants_ticket": True, "resolve_ticket": True, "by": "monitoring"}
    if kind == "alert.changed":
        fields["change"] = "severity"
    if kind == "alert.resolved":
        fields.update(status="resolved", recovered=True)
    with transaction.atomic():
        return events.emit(KINDS[kind](**{**fields, **extra}), client=device.client_id)


def deliver(event, times=1):
    for _ in range(times):
        HANDLERS[event.kind](events.typed(event), "helpdesk.alerts")


def test_an_opened_alert_opens_one_ticket_even_when_delivered_twice(device):
    # Given an alert.opened event
    event = alert_event("alert.opened", device)

    # When the outbox delivers it, and then (a lease expired) delivers it again
    events.dispatch_due()
    deliver(event, times=2)

    # Then there is one ticket for the alert, linked to the device, with one opening entry
    ticket = Ticket.objects.get()
    assert ticket.origin_key == "alert:41" and ticket.source == Source.ALERT
    assert ticket.client == device.client and list(ticket.devices.all()) == [device]
    assert ticket.priority == "p1"  # critical: high impact x high urgency
    assert "Disk C: free" in ticket.subject and "ACME-DC01" in ticket.subject
    assert ticket.entries.filter(kind=EntryKind.SYSTEM, author_label="monitoring").count() == 1
    # And nobody is mailed about a machine's alert
    assert not OutgoingMail.objects.exists()


def test_a_second_opened_event_for_the_same_alert_is_a_repeat_note(device):
    # Given a ticket opened by an alert
    deliver(alert_event("alert.opened", device))
    # When another alert.opened event names the same alert (a re-emitted event)
    deliver(alert_event("alert.opened", device), times=2)
    # Then still one ticket, with a "raised again" note once
    ticket = Ticket.objects.get()
    assert ticket.entries.filter(body__startswith="Alert raised again").count() == 1


def test_changes_and_recovery_are_noted_once_and_recovery_resolves(device):
    deliver(alert_event("alert.opened", device))
    changed = alert_event("alert.changed", device, severity="warning", summary="9% free")
    resolved = alert_event("alert.resolved", device, resolve_ticket=True)

    # When each is delivered twice
    deliver(changed, times=2)
    deliver(resolved, times=2)

    # Then one note each, and the ticket is resolved with its history
    ticket = Ticket.objects.get()
    bodies = list(ticket.entries.filter(author_label="monitoring")
                  .values_list("body", flat=True))
    assert len(bodies) == 3
    assert bodies[1].startswith("Alert changed") and "9% free" in bodies[1]
    assert bodies[2].startswith("Recovered")
    assert ticket.status == Status.RESOLVED and ticket.resolved_at is not None
    assert list(ticket.status_changes.values_list("to_status", flat=True)) == [
        Status.NEW, Status.RESOLVED]


def test_recovery_does_not_resolve_when_work_started_or_policy_says_no(device, tech_a):
    from watchkeeper.helpdesk import actions

    deliver(alert_event("alert.opened", device, alert_id=1))
    deliver(alert_event("alert.opened", device, alert_id=2))
    first, second = Ticket.objects.order_by("id")
    actions.change_ticket(actor=tech_a, ticket=first, status=Status.IN_PROGRESS)

    deliver(alert_event("alert.resolved", device, alert_id=1, resolve_ticket=True))
    deliver(alert_event("alert.resolved", device, alert_id=2, resolve_ticket=False))

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Status.IN_PROGRESS and second.status == Status.NEW
    assert first.entries.filter(body__startswith="Recovered").exists()
    assert second.entries.filter(body__startswith="Recovered").exists()


def test_alerts_the_policy_does_not_ticket_open_none_until_they_do(device):
    # Given an alert whose severity the policy does not ticket, and a suppressed one
    deliver(alert_event("alert.opened", device, alert_id=7, wants_ticket=False,
                            severity="warning"))
    deliver(alert_event("alert.opened", device, alert_id=8, suppressed="maintenance"))
    assert not Ticket.objects.exists()
    # When the first one worsens to a severity that is ticketed
    deliver(alert_event("alert.changed", device, alert_id=7, wants_ticket=True))
    # Then that alert gets its ticket
    assert Ticket.objects.get().origin_key == "alert:7"


def test_a_recovery_of_an_alert_without_ticket_is_ignored(device):
    deliver(alert_event("alert.resolved", device, alert_id=99))
    assert not Ticket.objects.exists() and not TicketEntry.objects.exists()
