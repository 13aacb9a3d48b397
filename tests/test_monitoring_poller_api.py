"""API of the poller side: network checks (validated, secrets sealed and masked, "test
now", run history), heartbeats (URL, calls, pause, new URL), metric series by resolution;
tenants see only their own."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.monitoring_targets import HttpTarget, free_port
from watchkeeper.agents.models import MetricName, MetricSample
from watchkeeper.core.models import Event
from watchkeeper.inventory.actions import create_device
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.models import Check, HeartbeatJob
from watchkeeper.monitoring.poller.engine import Poller

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("msp_probes")]
API = "/api/v1/monitoring"


@pytest.fixture
def http_target():
    with HttpTarget() as target:
        yield target


@pytest.fixture
def policy_a(client_a):
    return mon_actions.create_policy(actor=None, name="A network", client=client_a)


@pytest.fixture
def policy_b(client_b):
    return mon_actions.create_policy(actor=None, name="B network", client=client_b)


def test_create_test_and_read_results_of_a_network_check(as_user, tech_a, policy_a,
                                                         http_target):
    api = as_user(tech_a)
    # When a technician creates an HTTP check of a page
    response = api.post(f"{API}/network-checks/", {
        "policy": policy_a.pk, "name": "Portal", "kind": "http",
        "config": {"url": http_target.url("/ok"), "keyword": "nominal"},
        "interval_seconds": 60}, content_type="application/json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    # Then it is audited with an event, and due at once
    assert Event.objects.filter(kind__endswith="check.created",
                                payload__id=pk).exists()
    assert Check.objects.get(pk=pk).next_run_at is not None
    # When "test now" runs it, the outcome comes back and nothing is stored
    tested = api.post(f"{API}/network-checks/{pk}/test/").json()
    assert tested["state"] == "ok" and tested["details"]["status"] == 200
    assert api.get(f"{API}/network-checks/{pk}/results/").json() == []
    # When the poller has run it, its result and history are readable
    asyncio.run(Poller().run_once())
    detail = api.get(f"{API}/network-checks/{pk}/").json()
    assert detail["state"]["state"] == "ok"
    results = api.get(f"{API}/network-checks/{pk}/results/").json()
    assert len(results) == 1 and results[0]["state"] == "ok"


def test_invalid_config_is_refused_naming_the_field(as_user, tech_a, policy_a):
    api = as_user(tech_a)
    response = api.post(f"{API}/network-checks/", {
        "policy": policy_a.pk, "name": "Bad", "kind": "tcp",
        "config": {"host": "10.0.0.1", "port": 99999}}, content_type="application/json")
    assert response.status_code == 400
    assert "port" in json.dumps(response.json())
    response = api.post(f"{API}/network-checks/", {
        "policy": policy_a.pk, "name": "No target", "kind": "ping", "config": {}},
        content_type="application/json")
    assert response.status_code == 400
    assert not Check.objects.exists()


def test_snmp_community_is_sealed_at_rest_and_masked(as_user, tech_a, policy_a):
    api = as_user(tech_a)
    response = api.post(f"{API}/network-checks/", {
        "policy": policy_a.pk, "name": "Core switch uplink", "kind": "snmp",
        "config": {"host": "10.0.0.2", "community": "n0t-public", "mode": "interface",
                   "if_index": 3}}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["config"]["community"] == "••••••"
    stored = Check.objects.get(pk=body["id"]).config
    assert "n0t-public" not in json.dumps(stored)
    # Editing another field with the mask sent back keeps the secret
    api.patch(f"{API}/network-checks/{body['id']}/", {"config": {**body["config"],
                                                                 "if_index": 4}},
              content_type="application/json")
    from watchkeeper.monitoring.poller.engine import open_secrets

    config = open_secrets("snmp", Check.objects.get(pk=body["id"]).config)
    assert config["community"] == "n0t-public" and config["if_index"] == 4


def test_test_an_unsaved_config(as_user, tech_a):
    api = as_user(tech_a)
    response = api.post(f"{API}/network-checks/test/", {
        "kind": "tcp", "config": {"host": "127.0.0.1", "port": free_port(), "timeout": 2}},
        content_type="application/json")
    assert response.status_code == 200
    assert response.json()["state"] == "critical"


def test_other_tenants_checks_are_invisible(as_user, tech_a, policy_b, http_target):
    other = mon_actions.add_check(actor=None, policy=policy_b, name="B web", kind="http",
                                  config={"url": http_target.url("/ok")})
    api = as_user(tech_a)
    assert api.get(f"{API}/network-checks/").json()["results"] == []
    assert api.get(f"{API}/network-checks/{other.pk}/").status_code == 404
    assert api.post(f"{API}/network-checks/{other.pk}/test/").status_code == 404
    response = api.post(f"{API}/network-checks/", {
        "policy": policy_b.pk, "name": "Sneaky", "kind": "http",
        "config": {"url": "http://x.example/"}}, content_type="application/json")
    assert response.status_code == 400


def test_portal_user_cannot_use_network_checks(as_user, portal_b):
    assert as_user(portal_b).get(f"{API}/network-checks/").status_code == 403


def test_heartbeat_lifecycle(as_user, tech_a, client_a, client):
    api = as_user(tech_a)
    response = api.post(f"{API}/heartbeats/", {
        "client": client_a.pk, "name": "Offsite backup", "schedule": "cron",
        "cron": "0 3 * * *", "tz": "Europe/Paris", "grace_seconds": 1800},
        content_type="application/json")
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["url"].endswith(f"/hb/{HeartbeatJob.objects.get().uid}")
    path = "/hb/" + job["url"].rsplit("/hb/", 1)[1]
    assert client.post(path, data=b"42 files", content_type="text/plain").status_code == 200
    pings = api.get(f"{API}/heartbeats/{job['id']}/pings/").json()
    assert pings[0]["kind"] == "success" and pings[0]["body"] == "42 files"
    assert api.post(f"{API}/heartbeats/{job['id']}/pause/").json()["status"] == "paused"
    renewed = api.post(f"{API}/heartbeats/{job['id']}/regenerate-url/").json()
    assert renewed["url"] != job["url"]
    assert client.get(path).status_code == 404
    bad = api.patch(f"{API}/heartbeats/{job['id']}/", {"cron": "nope"},
                    content_type="application/json")
    assert bad.status_code == 400 and "cron" in bad.json().get("errors", bad.json()).__str__()
    assert api.delete(f"{API}/heartbeats/{job['id']}/").status_code == 204
    assert not HeartbeatJob.objects.exists()


def test_metric_series_picks_resolution(as_user, tech_a, client_a, client_b):
    device = create_device(actor=None, client=client_a, name="web-1")
    other = create_device(actor=None, client=client_b, name="b-web")
    metric = MetricName.objects.create(name="cpu.percent")
    now = timezone.now()
    MetricSample.objects.bulk_create([MetricSample(device=device, metric=metric,
                                                   ts=now - timedelta(minutes=i), value=i)
                                      for i in range(30)])
    api = as_user(tech_a)
    body = api.get(f"/api/v1/monitoring/devices/{device.pk}/metrics/?metric=cpu.percent"
                   ).json()
    assert body["resolution"] == 0 and len(body["points"]) == 30
    since = (now - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    body = api.get(f"/api/v1/monitoring/devices/{device.pk}/metrics/",
                   {"metric": "cpu.percent", "since": since}).json()
    assert body["resolution"] == 300
    assert api.get(f"/api/v1/monitoring/devices/{other.pk}/metrics/?metric=cpu.percent"
                   ).status_code == 404


def test_list_query_count_does_not_grow_with_checks(as_user, owner, policy_a, http_target,
                                                    django_assert_max_num_queries):
    for i in range(3):
        mon_actions.add_check(actor=None, policy=policy_a, name=f"Web {i}", kind="http",
                              config={"url": http_target.url("/ok")})
    asyncio.run(Poller().run_once())
    api = as_user(owner)
    api.get(f"{API}/network-checks/")  # warm the session
    with django_assert_max_num_queries(12) as few:
        assert len(api.get(f"{API}/network-checks/").json()["results"]) == 3
    for i in range(3, 9):
        mon_actions.add_check(actor=None, policy=policy_a, name=f"Web {i}", kind="http",
                              config={"url": http_target.url("/ok")})
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(api.get(f"{API}/network-checks/").json()["results"]) == 9
