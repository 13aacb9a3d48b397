"""The alert page (issue 11): snooze from the page, create a ticket for the alert or link it
to an open ticket of its client, and the check's recent history drawn from the stored
readings (with a table as its text alternative)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.agents.checkin.writer import insert_samples
from watchkeeper.helpdesk import actions as helpdesk
from watchkeeper.helpdesk.models import Ticket
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import AlertStatus, State
from watchkeeper.monitoring.models import Alert

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(owner, client_a):
    _, check = disk_policy(owner)
    device = make_device(client_a, "acme-fs")
    now = timezone.now()
    for minutes, value in ((90, 70.0), (60, 80.0), (30, 91.0), (1, 95.5)):
        insert_samples(device.pk, now - timedelta(minutes=minutes),
                        {"disk.used_percent:/": value})
    record_results([CheckResult(check.pk, device.pk, client_a.pk, State.CRITICAL,
                                message="/ 95.5% used")])
    return Alert.objects.get(device=device)


def test_history_chart_and_snooze(as_user, tech_a, alert):
    api = as_user(tech_a)
    html = api.get(f"/monitoring/alerts/{alert.pk}/").content.decode()
    chart = html[html.index('id="check-history"'):]
    assert "/ used %, last 24 hours" in chart and "<polyline" in chart
    assert "95.5" in chart and "70.0" in chart
    response = api.post("/monitoring/alerts/bulk/", {
        "verb": "snooze", "ids": alert.pk, "minutes": 240,
        "next": f"/monitoring/alerts/{alert.pk}/"})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == AlertStatus.SNOOZED
    assert timedelta(hours=3, minutes=59) < alert.snoozed_until - timezone.now() <= \
        timedelta(hours=4)


def test_create_a_ticket_from_the_alert_once(as_user, tech_a, alert):
    api = as_user(tech_a)
    response = api.post(f"/monitoring/alerts/{alert.pk}/ticket/", {"verb": "create"})
    ticket = Ticket.objects.get(origin_key=f"alert:{alert.pk}")
    assert response["Location"] == f"/tickets/{ticket.pk}/"
    assert ticket.subject.startswith("Disk space on acme-fs")
    assert list(ticket.devices.values_list("name", flat=True)) == ["acme-fs"]
    api.post(f"/monitoring/alerts/{alert.pk}/ticket/", {"verb": "create"})
    assert Ticket.objects.filter(origin_key=f"alert:{alert.pk}").count() == 1
    html = api.get(f"/monitoring/alerts/{alert.pk}/").content.decode()
    assert f'href="/tickets/{ticket.pk}/"' in html


def test_link_the_alert_to_an_open_ticket(as_user, owner, tech_a, client_a, client_b, alert):
    mine = helpdesk.create_ticket(actor=owner, subject="File server slow", client=client_a,
                                  notify=False)
    other = helpdesk.create_ticket(actor=owner, subject="Beta thing", client=client_b,
                                   notify=False)
    api = as_user(tech_a)
    page = api.get(f"/monitoring/alerts/{alert.pk}/").content.decode()
    assert "File server slow" in page and "Beta thing" not in page
    # Another client's ticket is refused
    api.post(f"/monitoring/alerts/{alert.pk}/ticket/", {"verb": "link", "ticket": other.pk})
    assert not other.entries.filter(body__contains="Linked alert").exists()
    api.post(f"/monitoring/alerts/{alert.pk}/ticket/", {"verb": "link", "ticket": mine.pk})
    api.post(f"/monitoring/alerts/{alert.pk}/ticket/", {"verb": "link", "ticket": mine.pk})
    assert mine.entries.filter(body__startswith=f"Linked alert #{alert.pk}").count() == 1
    assert list(mine.devices.values_list("name", flat=True)) == ["acme-fs"]
    html = api.get(f"/monitoring/alerts/{alert.pk}/").content.decode()
    assert f'href="/tickets/{mine.pk}/"' in html[html.index('id="alert-tickets"'):]
