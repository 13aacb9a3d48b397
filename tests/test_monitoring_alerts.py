"""The alert state machine: thresholds, deduplication, flapping, events (record_results)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.core.models import Event
from watchkeeper.monitoring.alerts import FLAP_START, CheckResult, record_results
from watchkeeper.monitoring.choices import AlertStatus, State
from watchkeeper.monitoring.models import Alert, CheckState

pytestmark = pytest.mark.django_db


def _result(check, device, state, value=None, at=None):
    return CheckResult(check_id=check.pk, device_id=device.pk, client_id=device.client_id,
                       state=state, value=value, message=f"disk {state}", observed_at=at)


def _kinds():
    return list(Event.objects.filter(kind__startswith="alert.").order_by("created_at")
                .values_list("kind", flat=True))


def test_a_failure_opens_one_alert_and_repeats_only_count(owner, client_a):
    # Given a disk check on a device
    _, check = disk_policy(owner)
    device = make_device(client_a, "srv-01")
    # When the check fails, then fails four more times
    record_results([_result(check, device, State.CRITICAL, 95)])
    for _ in range(4):
        record_results([_result(check, device, State.CRITICAL, 96)])
    # Then one alert is open, counting five readings, announced once
    alert = Alert.objects.get()
    assert alert.status == AlertStatus.OPEN and alert.severity == State.CRITICAL
    assert alert.count == 5
    assert _kinds() == ["alert.opened"]
    event = Event.objects.get(kind="alert.opened")
    assert event.payload["alert_id"] == alert.pk
    assert event.payload["device_id"] == device.pk
    assert event.client_id == client_a.pk and event.version == 1
    assert event.payload["check"] == "Disk space"


def test_recovery_resolves_and_a_new_failure_opens_a_new_alert(owner, client_a):
    _, check = disk_policy(owner)
    device = make_device(client_a, "srv-01")
    record_results([_result(check, device, State.WARNING)])
    # When it recovers
    record_results([_result(check, device, State.OK)])
    # Then the alert is resolved
    first = Alert.objects.get()
    assert first.status == AlertStatus.RESOLVED and first.resolved_at is not None
    # And a later failure is a new alert (the old one stays resolved)
    record_results([_result(check, device, State.CRITICAL)])
    assert Alert.objects.count() == 2
    assert _kinds() == ["alert.opened", "alert.resolved", "alert.opened"]


def test_consecutive_failure_threshold(owner, client_a):
    _, check = disk_policy(owner, fail_after=3, recover_after=2)
    device = make_device(client_a, "srv-01")
    # Two failures are not enough
    record_results([_result(check, device, State.CRITICAL)])
    record_results([_result(check, device, State.CRITICAL)])
    assert not Alert.objects.exists()
    # An ok in between restarts the count
    record_results([_result(check, device, State.OK)])
    record_results([_result(check, device, State.CRITICAL)])
    record_results([_result(check, device, State.CRITICAL)])
    assert not Alert.objects.exists()
    # The third in a row opens it
    record_results([_result(check, device, State.CRITICAL)])
    assert Alert.objects.filter(status=AlertStatus.OPEN).count() == 1
    # One ok does not resolve (recover_after=2), two do
    record_results([_result(check, device, State.OK)])
    assert Alert.objects.get().status == AlertStatus.OPEN
    record_results([_result(check, device, State.OK)])
    assert Alert.objects.get().status == AlertStatus.RESOLVED


def test_severity_change_is_one_changed_event_on_the_same_alert(owner, client_a):
    _, check = disk_policy(owner)
    device = make_device(client_a, "srv-01")
    record_results([_result(check, device, State.WARNING)])
    record_results([_result(check, device, State.CRITICAL)])
    alert = Alert.objects.get()
    assert alert.severity == State.CRITICAL
    assert _kinds() == ["alert.opened", "alert.changed"]


def test_flapping_keeps_one_alert_open_without_churn(owner, client_a):
    _, check = disk_policy(owner)
    device = make_device(client_a, "srv-01")
    start = timezone.now() - timedelta(minutes=10)
    # When the check alternates critical/ok many times within the flap window
    for i in range(12):
        state = State.CRITICAL if i % 2 == 0 else State.OK
        record_results([_result(check, device, state, at=start + timedelta(seconds=30 * i))],
                       now=start + timedelta(seconds=30 * i))
    # Then alerts opened only until flapping was detected (every second change opens),
    # and the seven changes after that opened nothing: one alert stays open, flapping
    alerts = list(Alert.objects.all())
    assert len(alerts) == (FLAP_START + 1) // 2
    open_alerts = [a for a in alerts if a.status != AlertStatus.RESOLVED]
    assert len(open_alerts) == 1 and open_alerts[0].is_flapping
    assert CheckState.objects.get().is_flapping
    # Fewer opened events than state changes: flapping stopped the churn
    assert _kinds().count("alert.opened") < FLAP_START
    assert _kinds().count("alert.resolved") < FLAP_START


def test_many_devices_in_one_batch(owner, client_a):
    _, check = disk_policy(owner)
    devices = [make_device(client_a, f"ws-{i:02}") for i in range(30)]
    record_results([_result(check, d, State.CRITICAL) for d in devices])
    record_results([_result(check, d, State.CRITICAL) for d in devices])
    assert Alert.objects.filter(status=AlertStatus.OPEN).count() == 30
    assert set(Alert.objects.values_list("count", flat=True)) == {2}
    assert Event.objects.filter(kind="alert.opened").count() == 30


def test_an_unknown_state_is_refused(owner, client_a):
    _, check = disk_policy(owner)
    device = make_device(client_a, "srv-01")
    with pytest.raises(ValueError):
        record_results([_result(check, device, "broken")])


def test_a_flapping_check_failing_again_after_a_manual_resolve_has_an_alert(owner, client_a):
    from watchkeeper.monitoring import actions

    _, check = disk_policy(owner)
    device = make_device(client_a, "srv-01")
    start = timezone.now() - timedelta(minutes=10)

    def feed(i, state):
        at = start + timedelta(seconds=30 * i)
        record_results([_result(check, device, state, at=at)], now=at)

    # Given a check that flaps (five changes), whose alert a person resolves by hand
    for i, state in enumerate([State.CRITICAL, State.OK, State.CRITICAL, State.OK,
                               State.CRITICAL]):
        feed(i, state)
    assert CheckState.objects.get().is_flapping
    actions.resolve_alerts(actor=owner, alerts=list(Alert.objects.exclude(
        status=AlertStatus.RESOLVED)))
    # When it keeps flapping and fails again
    feed(5, State.OK)
    feed(6, State.CRITICAL)
    # Then the failure has one open alert again, marked flapping
    open_alerts = Alert.objects.exclude(status=AlertStatus.RESOLVED)
    assert open_alerts.count() == 1 and open_alerts.get().is_flapping
