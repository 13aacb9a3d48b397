"""The monitoring API: alerts scoped and bulk-acknowledged, policies built and replayed,
maintenance, channels, effective checks; permissions per role."""

from __future__ import annotations

import pytest

from tests.monitoring_helpers import disk_policy, make_device
from watchkeeper.core.models import AuditEntry, Event
from watchkeeper.monitoring.alerts import CheckResult, record_results
from watchkeeper.monitoring.choices import AlertStatus, State
from watchkeeper.monitoring.models import Alert, Policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerts(owner, client_a, client_b):
    _, check = disk_policy(owner)
    a = [make_device(client_a, f"a-{i}") for i in range(3)]
    b = make_device(client_b, "b-1")
    record_results([CheckResult(check.pk, d.pk, d.client_id, State.CRITICAL, message="full")
                    for d in [*a, b]])
    return {"a": a, "b": b, "check": check}


def test_technician_sees_only_assigned_clients_alerts(as_user, tech_a, alerts):
    api = as_user(tech_a)
    body = api.get("/api/v1/alerts/").json()
    names = sorted(r["device_name"] for r in body["results"])
    assert names == ["a-0", "a-1", "a-2"]
    other = Alert.objects.get(device=alerts["b"])
    assert api.get(f"/api/v1/alerts/{other.pk}/").status_code == 404


def test_bulk_acknowledge_reports_per_item_and_skips_other_tenants(as_user, tech_a, alerts):
    api = as_user(tech_a)
    mine = list(Alert.objects.filter(device__in=alerts["a"][:2]).values_list("id", flat=True))
    theirs = Alert.objects.get(device=alerts["b"]).pk
    response = api.post("/api/v1/alerts/acknowledge/", {"ids": [*mine, theirs]},
                        content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert {k: body[k] for k in ("changed", "unchanged", "not_found")} == {
        "changed": sorted(mine), "unchanged": [], "not_found": [theirs]}
    assert (body["mode"], body["matched"], body["changed_count"], body["skipped"]) == (
        "ids", 2, 2, {})
    assert Alert.objects.filter(status=AlertStatus.ACKNOWLEDGED).count() == 2
    assert Alert.objects.get(pk=theirs).status == AlertStatus.OPEN
    assert AuditEntry.objects.filter(object_type="monitoring.alert").count() == 2
    # A second acknowledge changes nothing
    again = api.post("/api/v1/alerts/acknowledge/", {"ids": mine},
                     content_type="application/json").json()
    assert again["changed"] == [] and again["unchanged"] == sorted(mine)
    assert again["skipped"] == {"acknowledged": 2}


def test_resolve_by_hand_emits_alert_resolved(as_user, owner, alerts):
    api = as_user(owner)
    alert = Alert.objects.filter(device=alerts["a"][0]).get()
    api.post("/api/v1/alerts/resolve/", {"ids": [alert.pk]}, content_type="application/json")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert Event.objects.filter(kind="alert.resolved", payload__alert_id=alert.pk).exists()


def test_client_user_and_readonly_cannot_act(as_user, portal_b, alerts):
    api = as_user(portal_b)
    assert api.get("/api/v1/alerts/").status_code == 403
    assert api.post("/api/v1/alerts/acknowledge/", {"ids": [1]},
                    content_type="application/json").status_code == 403


def test_build_a_policy_and_ask_what_if(as_user, tech_a, client_a):
    api = as_user(tech_a)
    # A technician cannot create an MSP-wide policy
    refused = api.post("/api/v1/monitoring/policies/", {"name": "Global"},
                       content_type="application/json")
    assert refused.status_code == 400
    policy = api.post("/api/v1/monitoring/policies/",
                      {"name": "Acme servers", "client": client_a.pk,
                       "ticket_severities": ["critical"]},
                      content_type="application/json")
    assert policy.status_code == 201, policy.content
    pid = policy.json()["id"]
    check = api.post("/api/v1/monitoring/checks/",
                     {"policy": pid, "name": "Disk", "kind": "disk",
                      "config": {"warning": 80, "critical": 90}},
                     content_type="application/json")
    assert check.status_code == 201, check.content
    bad = api.post("/api/v1/monitoring/checks/",
                   {"policy": pid, "name": "Svc", "kind": "service", "config": {}},
                   content_type="application/json")
    assert bad.status_code == 409 and "service" in bad.json()["detail"]
    assign = api.post("/api/v1/monitoring/assignments/",
                      {"policy": pid, "scope": "client", "target": client_a.pk},
                      content_type="application/json")
    assert assign.status_code == 201, assign.content
    device = make_device(client_a, "srv-01")
    effective = api.get(f"/api/v1/monitoring/devices/{device.pk}/effective-checks/").json()
    assert [c["name"] for c in effective["checks"]] == ["Disk"]
    whatif = api.post(f"/api/v1/monitoring/policies/{pid}/what-if/", {"days": 3},
                      content_type="application/json")
    assert whatif.status_code == 200
    assert whatif.json()["alerts"] == 0 and whatif.json()["devices_evaluated"] == 1
    versions = api.get(f"/api/v1/monitoring/policies/{pid}/versions/").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert Policy.objects.get(pk=pid).version == 2


def test_maintenance_and_channel_round_trip(as_user, tech_a, client_a, client_b):
    api = as_user(tech_a)
    window = api.post("/api/v1/monitoring/maintenance-windows/",
                      {"client": client_a.pk, "name": "Sunday patching",
                       "starts_at": "2026-01-04T02:00:00Z", "duration_minutes": 120,
                       "rrule": "FREQ=WEEKLY;BYDAY=SU"}, content_type="application/json")
    assert window.status_code == 201, window.content
    bad_rule = api.post("/api/v1/monitoring/maintenance-windows/",
                        {"client": client_a.pk, "name": "x", "duration_minutes": 5,
                         "starts_at": "2026-01-04T02:00:00Z", "rrule": "NONSENSE"},
                        content_type="application/json")
    assert bad_rule.status_code == 409
    other = api.post("/api/v1/monitoring/maintenance-windows/",
                     {"client": client_b.pk, "name": "x", "duration_minutes": 5,
                      "starts_at": "2026-01-04T02:00:00Z"}, content_type="application/json")
    assert other.status_code == 400
    channel = api.post("/api/v1/monitoring/channels/",
                       {"client": client_a.pk, "name": "Acme Slack", "kind": "webhook",
                        "url": "https://hooks.example.test/x", "webhook_format": "slack"},
                       content_type="application/json")
    assert channel.status_code == 201, channel.content


def test_deleting_a_check_resolves_its_open_alerts(as_user, owner, alerts):
    api = as_user(owner)
    response = api.delete(f"/api/v1/monitoring/checks/{alerts['check'].pk}/")
    assert response.status_code == 204
    assert not Alert.objects.exclude(status=AlertStatus.RESOLVED).exists()
    assert Event.objects.filter(kind="alert.resolved").count() == 4
