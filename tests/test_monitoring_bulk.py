"""Alert console bulk selection: "select all N matching" resolved on the server, scoped to
the person's tenants, capped, counted; the confirmation states the count; the state change
is set-based with an audit row and an event per alert."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.monitoring_helpers import make_device
from watchkeeper.core.models import AuditEntry, Event, EventDelivery
from watchkeeper.monitoring import bulk
from watchkeeper.monitoring.choices import AlertStatus, State
from watchkeeper.monitoring.models import Alert

pytestmark = pytest.mark.django_db

_seq = iter(range(1, 10**9))


def make_alerts(client, n, *, severity=State.CRITICAL, status=AlertStatus.OPEN,
                opened_at=None, device=None):
    """n alerts of `client`, newest first in the console's order."""
    base = opened_at or timezone.now() - timedelta(hours=1)
    device = device or make_device(client, f"{client.name[:5].lower()}-{next(_seq)}")
    rows = [Alert(key=f"t{next(_seq)}", client=client, device=device, check_name="Disk",
                  severity=severity, status=status, summary="full",
                  opened_at=base - timedelta(seconds=i)) for i in range(n)]
    return Alert.objects.bulk_create(rows)


def confirm_page(api, **data):
    return api.post("/monitoring/alerts/bulk/", {"scope": "filter", "next":
                                                 "/monitoring/alerts/", **data})


def confirm(api, expected, **data):
    return api.post("/monitoring/alerts/bulk/", {
        "scope": "filter", "confirm": "yes", "expected": str(expected),
        "next": "/monitoring/alerts/", **data}, follow=True)


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


# --- the console -------------------------------------------------------------------------

def test_select_all_matching_never_touches_another_tenant(as_user, tech_a, client_a,
                                                          client_b):
    # Given 120 alerts of client A (more than a page) and 30 of client B
    mine = make_alerts(client_a, 120)
    theirs = make_alerts(client_b, 30)
    api = as_user(tech_a)

    # When the technician of A asks to acknowledge all matching the console's own filter,
    # and even names client B in a forged filter
    page = confirm_page(api, verb="acknowledge", status="active")
    forged = confirm(api, 30, verb="acknowledge", status="active", client=str(client_b.pk))

    # Then the confirmation counted only A's alerts, the forged filter matched nothing...
    assert page.status_code == 200
    assert page.context["preview"].matched == 120
    assert "Acknowledge 120 alerts?" in page.content.decode()
    assert "0 of 0 alert(s) acknowledged" in messages_of(forged)
    # ... and acting on the filter acknowledged A's 120 and none of B's
    done = confirm(api, 120, verb="acknowledge", status="active")
    assert "120 of 120 alert(s) acknowledged" in messages_of(done)
    assert Alert.objects.filter(pk__in=[a.pk for a in mine],
                                status=AlertStatus.ACKNOWLEDGED).count() == 120
    assert not Alert.objects.filter(pk__in=[a.pk for a in theirs]).exclude(
        status=AlertStatus.OPEN).exists()
    assert not AuditEntry.objects.filter(client=client_b).exists()
    assert not Event.objects.filter(client=client_b).exists()


def test_confirmation_states_the_count_and_changes_nothing(as_user, owner, client_a):
    make_alerts(client_a, 7)
    make_alerts(client_a, 3, status=AlertStatus.ACKNOWLEDGED)
    make_alerts(client_a, 2, severity=State.WARNING)

    page = confirm_page(as_user(owner), verb="acknowledge", status="active",
                        severity="critical", client=str(client_a.pk))

    html = page.content.decode()
    assert "Acknowledge 7 alerts?" in html
    assert "10 alerts match this filter now." in html
    assert "3 will be skipped: already acknowledged." in html
    assert "client Acme Dental · severity Critical" in html
    assert 'name="expected" value="7"' in html
    assert Alert.objects.filter(status=AlertStatus.OPEN).count() == 9  # nothing changed
    assert not AuditEntry.objects.filter(object_type="monitoring.alert").exists()


def test_counts_acknowledged_and_skipped_by_state(as_user, owner, client_a):
    make_alerts(client_a, 4)
    make_alerts(client_a, 2, status=AlertStatus.SNOOZED)
    make_alerts(client_a, 3, status=AlertStatus.ACKNOWLEDGED)
    make_alerts(client_a, 5, status=AlertStatus.RESOLVED)

    done = confirm(as_user(owner), 6, verb="acknowledge", status="any")

    text = messages_of(done)
    assert "6 of 14 alert(s) acknowledged." in text
    assert "Skipped 8: 3 already acknowledged, 5 resolved." in text
    assert Alert.objects.filter(status=AlertStatus.ACKNOWLEDGED).count() == 9
    assert Alert.objects.filter(status=AlertStatus.RESOLVED).count() == 5


def test_alerts_opened_after_the_list_was_shown_are_left_alone(as_user, owner, client_a):
    seen = make_alerts(client_a, 3)
    shown_at = timezone.now()
    late = make_alerts(client_a, 2, opened_at=shown_at + timedelta(seconds=5))

    done = confirm(as_user(owner), 3, verb="acknowledge", status="active",
                   opened_before=shown_at.isoformat())

    assert "3 of 3 alert(s) acknowledged." in messages_of(done)
    assert {a.status for a in Alert.objects.filter(pk__in=[a.pk for a in seen])} == {
        AlertStatus.ACKNOWLEDGED}
    assert {a.status for a in Alert.objects.filter(pk__in=[a.pk for a in late])} == {
        AlertStatus.OPEN}


def test_the_result_says_when_the_list_changed_after_confirming(as_user, owner, client_a):
    alerts = make_alerts(client_a, 5)
    api = as_user(owner)
    page = confirm_page(api, verb="acknowledge", status="active")
    assert page.context["preview"].will_change == 5
    # Someone else acknowledges two between the confirmation and the click
    Alert.objects.filter(pk__in=[a.pk for a in alerts[:2]]).update(
        status=AlertStatus.ACKNOWLEDGED)

    done = confirm(api, 5, verb="acknowledge", status="active")

    text = messages_of(done)
    assert "3 of 5 alert(s) acknowledged. Skipped 2: 2 already acknowledged." in text
    assert "The list changed after you confirmed 5" in text


def test_resolve_all_matching_needs_the_count_typed(as_user, owner, client_a):
    make_alerts(client_a, 4)
    api = as_user(owner)
    page = confirm_page(api, verb="resolve", status="active")
    assert 'data-confirm-match="4"' in page.content.decode()

    wrong = api.post("/monitoring/alerts/bulk/", {
        "scope": "filter", "confirm": "yes", "expected": "4", "typed": "40",
        "verb": "resolve", "status": "active", "next": "/monitoring/alerts/"})
    assert wrong.status_code == 200  # the confirmation again, with the reason
    assert "Type 4 to confirm" in wrong.content.decode()
    assert not Alert.objects.filter(status=AlertStatus.RESOLVED).exists()

    done = confirm(api, 4, verb="resolve", status="active", typed="4")
    assert "4 of 4 alert(s) resolved." in messages_of(done)
    assert Alert.objects.filter(status=AlertStatus.RESOLVED).count() == 4
    assert Event.objects.filter(kind="alert.resolved").count() == 4


def test_snooze_all_matching_for_the_chosen_time(as_user, owner, client_a):
    make_alerts(client_a, 3)
    done = confirm(as_user(owner), 3, verb="snooze", status="active", minutes="240")
    assert "3 of 3 alert(s) snoozed." in messages_of(done)
    until = {a.snoozed_until for a in Alert.objects.all()}
    assert len(until) == 1
    gap = until.pop() - timezone.now()
    assert timedelta(minutes=230) < gap <= timedelta(minutes=240)


@pytest.mark.parametrize("field, value, error", [
    ("status", "everything", "status must be one of"),
    ("severity", "red", "severity must be one of"),
    ("client", "acme", "client must be an id"),
    ("opened_before", "yesterday", "opened_before must be an ISO 8601"),
])
def test_a_bad_filter_is_refused_and_changes_nothing(as_user, owner, client_a, field, value,
                                                     error):
    make_alerts(client_a, 3)
    data = {"verb": "acknowledge", "status": "active", field: value}

    done = confirm(as_user(owner), 3, **data)

    assert error in messages_of(done)
    assert Alert.objects.filter(status=AlertStatus.OPEN).count() == 3


def test_bad_snooze_minutes_is_an_error_not_a_crash(as_user, owner, client_a):
    alerts = make_alerts(client_a, 1)
    done = as_user(owner).post("/monitoring/alerts/bulk/", {
        "verb": "snooze", "minutes": "soon", "ids": [alerts[0].pk],
        "next": "/monitoring/alerts/"}, follow=True)
    assert "whole number of minutes" in messages_of(done)
    assert Alert.objects.get().status == AlertStatus.OPEN


def test_checked_rows_report_changed_and_skipped(as_user, owner, client_a):
    open_ = make_alerts(client_a, 2)
    acked = make_alerts(client_a, 1, status=AlertStatus.ACKNOWLEDGED)
    done = as_user(owner).post("/monitoring/alerts/bulk/", {
        "verb": "acknowledge", "ids": [a.pk for a in [*open_, *acked]],
        "next": "/monitoring/alerts/"}, follow=True)
    assert "2 of 3 alert(s) acknowledged. Skipped 1: 1 already acknowledged." in \
        messages_of(done)


def test_console_offers_select_all_with_the_filter_and_the_moment_shown(as_user, tech_a,
                                                                        client_a):
    make_alerts(client_a, 130)
    before = timezone.now()
    html = as_user(tech_a).get(
        f"/monitoring/alerts/?client={client_a.pk}&severity=critical").content.decode()
    assert 'data-bulk-total="130"' in html
    assert "Select all 130 alerts matching this filter" in html
    assert f'name="client" value="{client_a.pk}"' in html
    assert 'name="severity" value="critical"' in html
    shown = html.split('name="opened_before" value="')[1].split('"')[0]
    assert timezone.datetime.fromisoformat(shown) >= before
    assert 'aria-label="Select every alert on this page"' in html


# --- the action itself -------------------------------------------------------------------

def test_one_audit_row_and_one_event_per_alert_changed(owner, client_a):
    alerts = make_alerts(client_a, 3)
    make_alerts(client_a, 1, status=AlertStatus.RESOLVED)

    result = bulk.run(owner, "acknowledge", flt=bulk.AlertFilter(status="any"))

    assert len(result.changed) == 3 and result.skipped == {"resolved": 1}
    rows = AuditEntry.objects.filter(object_type="monitoring.alert")
    assert sorted(int(r.object_id) for r in rows) == sorted(a.pk for a in alerts)
    assert {(r.actor_id, r.client_id, str(r.changes)) for r in rows} == {
        (owner.pk, client_a.pk, str({"status": ["open", "acknowledged"]}))}
    events = Event.objects.filter(kind="alert.changed")
    assert sorted(e.payload["alert_id"] for e in events) == sorted(a.pk for a in alerts)
    assert {e.payload["status"] for e in events} == {"acknowledged"}
    assert {e.payload["by"] for e in events} == {str(owner)}
    # each event has the deliveries emit() would have scheduled
    from watchkeeper.core import events as core_events

    handlers = core_events.handlers_for("alert.changed", client_a.pk)
    assert EventDelivery.objects.filter(event__in=events).count() == 3 * len(handlers)
    acked = Alert.objects.filter(status=AlertStatus.ACKNOWLEDGED)
    assert {(a.acknowledged_by_id, a.escalate_at) for a in acked} == {(owner.pk, None)}


def test_the_state_change_is_set_based(owner, client_a, client_b):
    def statements(n, client):
        make_alerts(client, n)
        with CaptureQueriesContext(connection) as ctx:
            result = bulk.run(owner, "acknowledge", flt=bulk.AlertFilter(client=client.pk))
        assert len(result.changed) == n
        sql = [q["sql"] for q in ctx.captured_queries]
        updates = [q for q in sql if q.startswith('UPDATE "monitoring_alert"')]
        assert len(updates) == 1  # one UPDATE for every alert changed
        return len(sql)

    # 10 alerts or 300: a few more INSERT batches for the audit and event rows, never a
    # statement per alert
    small, big = statements(10, client_a), statements(300, client_b)
    assert big - small < 15


def test_the_cap_is_stated_and_a_second_run_continues(owner, client_a):
    make_alerts(client_a, 12)

    first = bulk.run(owner, "acknowledge", flt=bulk.AlertFilter(), limit=5)
    second = bulk.run(owner, "acknowledge", flt=bulk.AlertFilter(), limit=5)

    assert (len(first.changed), first.remaining, first.capped) == (5, 7, True)
    assert "Stopped at the limit of 5 alerts per action: 7 more match" in first.summary()
    # The newest first, as the console lists them
    newest = list(Alert.objects.order_by(*bulk.ORDER).values_list("id", flat=True)[:5])
    assert sorted(a.pk for a in first.changed) == sorted(newest)
    assert (len(second.changed), second.remaining, second.skipped) == (
        5, 2, {"acknowledged": 5})


def test_ids_beyond_the_cap_are_refused(owner, client_a):
    alerts = make_alerts(client_a, 4)
    with pytest.raises(bulk.BulkError, match="At most 3 alerts"):
        bulk.run(owner, "acknowledge", ids=[a.pk for a in alerts], limit=3)
    assert not Alert.objects.exclude(status=AlertStatus.OPEN).exists()


# --- the API -----------------------------------------------------------------------------

def post(api, path, body):
    return api.post(path, body, content_type="application/json")


def test_api_by_filter_is_scoped_counted_and_capped_at_5000(as_user, tech_a, client_a,
                                                            client_b):
    make_alerts(client_a, bulk.BULK_LIMIT + 3)
    make_alerts(client_a, 2, status=AlertStatus.RESOLVED)
    make_alerts(client_b, 4)
    api = as_user(tech_a)

    first = post(api, "/api/v1/alerts/acknowledge/", {"filter": {"status": "any"}})

    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["mode"], body["matched"], body["changed_count"], body["remaining"],
            body["capped"], body["limit"]) == ("filter", bulk.BULK_LIMIT + 5, bulk.BULK_LIMIT,
                                               3, True, bulk.BULK_LIMIT)
    assert body["skipped"] == {"resolved": 2}
    assert len(body["changed"]) == bulk.BULK_LIMIT
    second = post(api, "/api/v1/alerts/acknowledge/", {"filter": {}}).json()
    assert (second["changed_count"], second["remaining"], second["skipped"]) == (
        3, 0, {"acknowledged": bulk.BULK_LIMIT})
    assert not Alert.objects.filter(client=client_b).exclude(
        status=AlertStatus.OPEN).exists()


def test_api_filter_naming_another_tenants_client_is_a_validation_error(as_user, tech_a,
                                                                       client_b):
    make_alerts(client_b, 2)
    response = post(as_user(tech_a), "/api/v1/alerts/resolve/",
                    {"filter": {"client": client_b.pk}})
    assert response.status_code == 400
    # Errors are flat (docs/api.md): the filter's field is "filter.client"
    assert "filter.client" in response.json()["errors"]
    assert not Alert.objects.filter(status=AlertStatus.RESOLVED).exists()


@pytest.mark.parametrize("body, field", [
    ({"filter": {"status": "all"}}, "filter.status"),
    ({"filter": {"colour": "red"}}, "filter.colour"),
    ({"ids": [1], "filter": {}}, "non_field_errors"),
    ({}, "non_field_errors"),
    ({"filter": {"opened_before": "soon"}}, "filter.opened_before"),
])
def test_api_bad_body_is_a_clear_400(as_user, owner, client_a, body, field):
    make_alerts(client_a, 2)
    response = post(as_user(owner), "/api/v1/alerts/acknowledge/", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert Alert.objects.filter(status=AlertStatus.OPEN).count() == 2


def test_api_snooze_and_resolve_by_filter(as_user, owner, client_a):
    warn = make_alerts(client_a, 2, severity=State.WARNING)
    crit = make_alerts(client_a, 3)
    api = as_user(owner)

    snoozed = post(api, "/api/v1/alerts/snooze/",
                   {"filter": {"severity": "warning"}, "minutes": 30}).json()
    resolved = post(api, "/api/v1/alerts/resolve/",
                    {"filter": {"severity": "critical", "client": client_a.pk}}).json()

    assert snoozed["changed"] == sorted(a.pk for a in warn)
    assert resolved["changed"] == sorted(a.pk for a in crit)
    assert Alert.objects.filter(status=AlertStatus.SNOOZED).count() == 2
    assert Alert.objects.filter(status=AlertStatus.RESOLVED).count() == 3
