"""Monitoring pages: alert console (filters, bulk actions, host links), alert page, client
health, policy editor with what-if, maintenance calendar, a device's checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.monitoring import actions
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import AlertStatus, State
from watchkeeper.monitoring.models import Alert, MaintenanceWindow, Policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner, client_a, client_b):
    policy, check = disk_policy(owner)
    a1, a2 = make_device(client_a, "acme-srv"), make_device(client_a, "acme-ws")
    b1 = make_device(client_b, "boreal-srv")
    record_results([CheckResult(check.pk, a1.pk, client_a.pk, State.CRITICAL, message="/ full"),
                    CheckResult(check.pk, a2.pk, client_a.pk, State.WARNING, message="/ 85%"),
                    CheckResult(check.pk, b1.pk, client_b.pk, State.CRITICAL,
                                message="/ full")])
    return {"policy": policy, "check": check, "a1": a1, "a2": a2, "b1": b1}


def test_console_lists_visible_alerts_with_device_links(as_user, tech_a, world):
    page = as_user(tech_a).get("/monitoring/alerts/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'href="/devices/{world["a1"].pk}/"' in html
    assert "acme-ws" in html and "boreal-srv" not in html


def test_console_filters_by_severity_and_client(as_user, owner, client_b, world):
    api = as_user(owner)
    html = api.get("/monitoring/alerts/?severity=warning").content.decode()
    assert "acme-ws" in html and "acme-srv" not in html
    html = api.get(f"/monitoring/alerts/?client={client_b.pk}").content.decode()
    assert "boreal-srv" in html and "acme" not in html
    empty = api.get("/monitoring/alerts/?status=resolved").content.decode()
    assert 'data-empty="no-match"' in empty


def test_bulk_acknowledge_from_the_console(as_user, tech_a, world):
    ids = list(Alert.objects.filter(client=world["a1"].client).values_list("id", flat=True))
    other = Alert.objects.get(device=world["b1"]).pk
    response = as_user(tech_a).post("/monitoring/alerts/bulk/", {
        "verb": "acknowledge", "ids": [*ids, other], "next": "/monitoring/alerts/"})
    assert response.status_code == 302
    assert Alert.objects.filter(pk__in=ids, status=AlertStatus.ACKNOWLEDGED).count() == 2
    assert Alert.objects.get(pk=other).status == AlertStatus.OPEN


def test_alert_page_of_another_tenant_is_404(as_user, tech_a, world):
    other = Alert.objects.get(device=world["b1"])
    assert as_user(tech_a).get(f"/monitoring/alerts/{other.pk}/").status_code == 404
    mine = Alert.objects.get(device=world["a1"])
    assert as_user(tech_a).get(f"/monitoring/alerts/{mine.pk}/").status_code == 200


def test_health_overview_counts_per_client(as_user, owner, client_a, world):
    html = as_user(owner).get("/monitoring/health/").content.decode()
    assert f'/monitoring/alerts/?client={client_a.pk}&severity=critical">1<' in html
    assert f'/monitoring/alerts/?client={client_a.pk}&severity=warning">1<' in html


def test_policy_editor_add_check_and_what_if(as_user, tech_a, client_a, world):
    api = as_user(tech_a)
    created = api.post("/monitoring/policies/", {"name": "Acme CPU", "client": client_a.pk})
    policy = Policy.objects.get(name="Acme CPU")
    assert created.status_code == 302 and not policy.is_enabled
    api.post(f"/monitoring/policies/{policy.pk}/", {
        "verb": "add-check", "check-name": "CPU", "check-kind": "cpu",
        "check-cpu__warning": 50, "check-fail_after": 1, "check-recover_after": 1,
        "check-interval_seconds": 60, "check-is_enabled": "on"})
    assert policy.checks.get().name == "CPU"
    api.post(f"/monitoring/policies/{policy.pk}/", {
        "verb": "assign", "assign-target": f"client:{client_a.pk}"})
    assert policy.assignments.count() == 1
    page = api.post(f"/monitoring/policies/{policy.pk}/", {"verb": "what-if", "days": 3})
    html = page.content.decode()
    assert 'id="what-if-result"' in html and "of 2 device(s)" in html


def test_maintenance_calendar_shows_recurring_occurrences(as_user, owner, client_a, world):
    api = as_user(owner)
    start = (timezone.now() + timedelta(days=1)).replace(hour=22, minute=0, second=0,
                                                         microsecond=0)
    response = api.post("/monitoring/maintenance/", {
        "client": client_a.pk, "name": "Nightly backup", "duration_minutes": 60,
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"), "rrule": "FREQ=DAILY"})
    assert response.status_code == 302, response.content.decode()[:500]
    assert MaintenanceWindow.objects.count() == 1
    html = api.get("/monitoring/maintenance/").content.decode()
    # one occurrence per day from tomorrow within the four weeks shown
    assert html.count("Nightly backup (Acme Dental)") >= 26


def test_device_checks_page_shows_origin_and_state(as_user, tech_a, world):
    html = as_user(tech_a).get(f"/monitoring/devices/{world['a1'].pk}/checks/").content.decode()
    assert "Servers (global)" in html and "/ full" in html
    assert as_user(tech_a).get(
        f"/monitoring/devices/{world['b1'].pk}/checks/").status_code == 404


def test_client_user_has_no_monitoring_pages(as_user, portal_b, world):
    assert as_user(portal_b).get("/monitoring/alerts/").status_code == 403


def test_snooze_then_wake(owner, world):
    alert = Alert.objects.get(device=world["a1"])
    actions.snooze_alerts(actor=owner, alerts=[alert], minutes=30)
    assert actions.wake_snoozed_alerts(now=timezone.now()) == 0
    assert actions.wake_snoozed_alerts(now=timezone.now() + timedelta(minutes=31)) == 1
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_alert_page_links_the_helpdesk_ticket(as_user, owner, client_a, world):
    from watchkeeper.core import events
    from watchkeeper.helpdesk.models import Ticket

    # Given a policy whose critical alerts open tickets
    actions.update_policy(actor=owner, policy=world["policy"], ticket_severities=["critical"])
    device = make_device(client_a, "acme-db")
    record_results([CheckResult(world["check"].pk, device.pk, client_a.pk, State.CRITICAL)])
    # When the helpdesk handles alert.opened through its subscription
    events.dispatch_due()
    alert = Alert.objects.get(device=device)
    ticket = Ticket.objects.get(origin_key=f"alert:{alert.pk}")
    # Then the alert's page links its ticket; alerts of a policy that wants none have none
    html = as_user(owner).get(f"/monitoring/alerts/{alert.pk}/").content.decode()
    assert f'href="/tickets/{ticket.pk}/"' in html
    quiet = Alert.objects.get(device=world["a1"])
    assert not Ticket.objects.filter(origin_key=f"alert:{quiet.pk}").exists()
