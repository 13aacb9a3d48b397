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
