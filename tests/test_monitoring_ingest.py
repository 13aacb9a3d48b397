"""Alert ingestion: Alertmanager's webhook, the generic JSON alert and batches, posted with a
per-source token bound to one client, deduplicated into the alert table."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from django.db import connection

from watchkeeper.core import events
from watchkeeper.helpdesk.models import Ticket
from watchkeeper.monitoring.choices import AlertStatus
from watchkeeper.monitoring.ingest import actions
from watchkeeper.monitoring.ingest.models import IngestSource
from watchkeeper.monitoring.models import Alert

AM = "/api/v1/ingest/alertmanager"
GENERIC = "/api/v1/ingest/alerts"


def am_alert(name="HighCPU", instance="web1:9100", status="firing", severity="critical",
             fingerprint="f1", summary="CPU above 95%"):
    return {"status": status, "labels": {"alertname": name, "instance": instance,
                                         "severity": severity},
            "annotations": {"summary": summary}, "startsAt": "2026-12-07T18:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph",
            "fingerprint": fingerprint}


def am_body(*alerts, status="firing"):
    return {"version": "4", "groupKey": "{}:{alertname=\"HighCPU\"}", "status": status,
            "receiver": "watchkeeper", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
            "alerts": list(alerts)}


@pytest.fixture
def source(db, owner, client_a):
    return actions.create_source(actor=owner, client=client_a, name="Prometheus")


def post(client, path, body, token):
    return client.post(path, data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}")


def test_alertmanager_firing_repeat_and_resolved(client, source, client_a):
    src, token = source
    # When Alertmanager posts two firing alerts
    r = post(client, AM, am_body(am_alert(), am_alert("DiskFull", fingerprint="f2",
                                                      severity="warning")), token)
    assert r.status_code == 202, r.content
    assert r.json()["opened"] == 2
    cpu = Alert.objects.get(check_name="HighCPU")
    assert (cpu.client, cpu.severity, cpu.resource, cpu.summary, cpu.source_id) == \
        (client_a, "critical", "web1:9100", "CPU above 95%", src.pk)
    assert cpu.attributes["labels"]["alertname"] == "HighCPU"
    assert cpu.check_template_id == src.check_template_id
    # When it repeats the group (its repeat_interval), the alerts are counted, not reopened
    post(client, AM, am_body(am_alert(), am_alert("DiskFull", fingerprint="f2",
                                                  severity="warning")), token)
    assert Alert.objects.count() == 2
    cpu.refresh_from_db()
    assert cpu.count == 2 and cpu.status == AlertStatus.OPEN
    # When it says one is resolved, that one is resolved
    r = post(client, AM, am_body(am_alert(status="resolved"), status="resolved"), token)
    assert r.json()["resolved"] == 1
    cpu.refresh_from_db()
    assert cpu.status == AlertStatus.RESOLVED and cpu.resolved_at is not None
    assert Alert.objects.get(check_name="DiskFull").status == AlertStatus.OPEN
    # And a new firing of the same fingerprint opens a new alert (a new problem)
    post(client, AM, am_body(am_alert()), token)
    assert Alert.objects.filter(check_name="HighCPU").count() == 2
    assert Alert.objects.filter(check_name="HighCPU", status=AlertStatus.OPEN).count() == 1


def test_generic_alert_single_and_batch_dedup_and_severity_change(client, source):
    _, token = source
    one = {"resource": "fs01", "event": "backup_failed", "severity": "warning",
           "summary": "Nightly backup failed", "attributes": {"job": "nightly"}}
    assert post(client, GENERIC, one, token).status_code == 202
    r = post(client, GENERIC, {"alerts": [one, one, {**one, "severity": "critical"}]}, token)
    assert r.status_code == 202
    alert = Alert.objects.get()
    assert alert.count == 4 and alert.severity == "critical"
    assert alert.attributes == {"job": "nightly"}
    # A list is a batch too; fired and resolved inside one batch is stored opened+resolved
    r = post(client, GENERIC, [{**one, "dedup_key": "k2"},
                               {**one, "dedup_key": "k2", "status": "resolved"}], token)
    assert r.json()["opened"] == 1 and r.json()["resolved"] == 1
    assert Alert.objects.filter(status=AlertStatus.RESOLVED).count() == 1
    # Resolving what is not open changes nothing
    r = post(client, GENERIC, {**one, "dedup_key": "never", "status": "resolved"}, token)
    assert r.status_code == 202 and r.json()["resolved_unknown"] == 1
    assert Alert.objects.count() == 2


def test_uptime_kuma_down_then_up_and_its_test_button(client, source):
    _, token = source
    kuma = "/api/v1/ingest/uptime-kuma"
    monitor = {"id": 7, "name": "Client portal", "type": "http", "url": "https://portal"}
    down = {"heartbeat": {"monitorID": 7, "status": 0, "msg": "timeout"}, "monitor": monitor,
            "msg": "[Client portal] [🔴 Down] timeout"}
    assert post(client, kuma, down, token).status_code == 202
    assert post(client, kuma, {"heartbeat": None, "monitor": None, "msg": "Testing"},
                token).status_code == 202
    alert = Alert.objects.get()
    assert (alert.resource, alert.severity, alert.summary) == ("Client portal", "critical",
                                                               "timeout")
    up = {**down, "heartbeat": {"monitorID": 7, "status": 1, "msg": "200 - OK"}}
    assert post(client, kuma, up, token).json()["resolved"] == 1
    r = post(client, kuma, {**down, "heartbeat": {"status": 9}}, token)
    assert r.status_code == 400 and "heartbeat.status" in r.json()["errors"]


def test_batch_keeps_valid_items_and_reports_invalid_ones_by_index(client, source):
    _, token = source
    good = {"resource": "sw1", "event": "port_down", "severity": "critical"}
    body = {"alerts": [good, {"resource": "sw2", "event": "x", "severity": "loud"},
                       {**good, "dedup_key": "b"}, "nope", {"event": "y", "severity": "warning"}]}
    r = post(client, GENERIC, body, token)
    assert r.status_code == 400
    assert r["Content-Type"] == "application/problem+json"
    problem = r.json()
    assert set(problem["errors"]) == {"alerts[1].severity", "alerts[3]", "alerts[4].resource"}
    assert problem["accepted"] == 2 and problem["rejected"] == ["alerts[1]", "alerts[3]",
                                                                "alerts[4]"]
    assert Alert.objects.count() == 2  # the valid ones are stored


@pytest.mark.parametrize(("path", "raw", "field"), [
    (GENERIC, b"{not json", "body"),
    (GENERIC, b"[]", "alerts"),
    (GENERIC, b'{"resource": "a", "event": "b"}', "severity"),
    (GENERIC, b'{"alerts": {}}', "alerts"),
    (AM, b'{"version": "4"}', "alerts"),
    (AM, b'{"version": "3", "alerts": []}', "version"),
    (AM, json.dumps(am_body({"status": "firing", "labels": {"instance": "x"}})).encode(),
     "alerts[0].labels.alertname"),
    (AM, json.dumps(am_body({**am_alert(), "status": "odd"})).encode(), "alerts[0].status"),
])
def test_malformed_payloads_are_problems_naming_the_field(client, source, path, raw, field):
    _, token = source
    r = client.post(path, data=raw, content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
    assert field in r.json()["errors"]
    assert not Alert.objects.exists()


def test_token_is_required_hashed_bound_to_its_client_and_revocable(
        client, source, owner, client_b, as_user, portal_b):
    src, token = source
    body = {"resource": "r", "event": "e", "severity": "critical", "client": client_b.pk,
            "attributes": {"client": client_b.pk}}
    assert client.post(GENERIC, data=json.dumps(body),
                       content_type="application/json").status_code == 401
    assert post(client, GENERIC, body, token + "x").status_code == 401
    assert post(client, GENERIC, body, "wk_abc_def").status_code == 401
    # Only the SHA-256 is stored
    assert token not in json.dumps(list(IngestSource.objects.values()), default=str)
    # The payload cannot choose the client: the token's client it is
    assert post(client, GENERIC, body, token).status_code == 202
    assert Alert.objects.get().client_id == src.client_id != client_b.pk
    # A user of the other client does not see it
    as_user(portal_b)
    assert client.get("/api/v1/alerts/").status_code in (403, 200)
    if client.get("/api/v1/alerts/").status_code == 200:
        assert client.get("/api/v1/alerts/").json()["count"] == 0
    # Revoked: the token stops working at once
    actions.revoke_source(actor=owner, source=src)
    assert post(client, GENERIC, body, token).status_code == 401


def test_critical_opens_a_ticket_by_the_sources_policy(client, source):
    _, token = source
    post(client, GENERIC, {"resource": "db1", "event": "replication_lag",
                           "severity": "warning"}, token)
    post(client, GENERIC, {"resource": "db2", "event": "down", "severity": "critical",
                           "summary": "db2 unreachable"}, token)
    events.dispatch_due()
    alert = Alert.objects.get(resource="db2")
    ticket = Ticket.objects.get()  # the policy's ticket severities: critical only
    assert ticket.origin_key == f"alert:{alert.pk}" and "db2 unreachable" in ticket.subject


def test_sources_api_is_for_admins_and_shows_the_token_once(client, as_user, admin_user,
                                                            tech_a, client_a):
    as_user(tech_a)
    assert client.get("/api/v1/monitoring/ingest-sources/").status_code == 403
    as_user(admin_user)
    r = client.post("/api/v1/monitoring/ingest-sources/",
                    {"client": client_a.pk, "name": "Zabbix"}, content_type="application/json")
    assert r.status_code == 201, r.content
    token = r.json()["token"]
    assert token.startswith("wki_")
    listed = client.get("/api/v1/monitoring/ingest-sources/").json()["results"]
    assert [s["name"] for s in listed] == ["Zabbix"] and "token" not in listed[0]
    r = client.post("/api/v1/monitoring/ingest-sources/",
                    {"client": client_a.pk, "name": "Zabbix"}, content_type="application/json")
    assert r.status_code == 400 and "name" in r.json()["errors"]
    pk = listed[0]["id"]
    assert client.post(f"/api/v1/monitoring/ingest-sources/{pk}/revoke/").json()["revoked_at"]
    assert post(client, GENERIC, {"resource": "a", "event": "b", "severity": "warning"},
                token).status_code == 401


def test_sources_page_create_shows_token_once_and_revoke(client, as_user, admin_user,
                                                         tech_a, client_a):
    as_user(tech_a)
    assert client.get("/monitoring/ingest/").status_code == 403
    as_user(admin_user)
    r = client.post("/monitoring/ingest/", {"client": client_a.pk, "name": "Uptime Kuma"})
    assert r.status_code == 200
    src = IngestSource.objects.get()
    page = r.content.decode()
    token = page.split('id="token-value"')[1].split('value="')[1].split('"')[0]
    assert token.startswith(f"wki_{src.prefix}_")
    assert token not in client.get("/monitoring/ingest/").content.decode()
    client.post(f"/monitoring/ingest/{src.pk}/revoke/")
    src.refresh_from_db()
    assert src.revoked_at is not None


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_open_exactly_one_alert_per_key(live_server, owner, client_a):
    if connection.vendor != "postgresql":
        # The test server shares one in-memory SQLite connection between its threads; on a
        # real SQLite file writers are serialised by the database lock anyway (the
        # alert_ingest bench counts exactly one alert per key on both databases).
        pytest.skip("concurrent requests need PostgreSQL (WATCHKEEPER_DATABASE_URL)")
    _, token = actions.create_source(actor=owner, client=client_a, name="Storm")
    n = 8
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def send(i):
        body = {"alerts": [{"resource": "edge", "event": "link_down", "severity": "critical",
                            "dedup_key": f"k{k}"} for k in range(20)]}
        barrier.wait()
        r = httpx.post(f"{live_server.url}{GENERIC}", json=body, timeout=60,
                       headers={"Authorization": f"Bearer {token}"})
        codes.append(r.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert codes == [202] * n
    assert Alert.objects.count() == 20
    assert sorted(set(Alert.objects.values_list("count", flat=True))) == [n]
    connection.close()
