"""Pages of the poller side: network check list, editor with "Test now", detail with the
last runs; heartbeat list with its form, detail with the URL, copy button and call log;
other tenants' objects are 404, client users are refused."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.monitoring_targets import HttpTarget
from watchkeeper.monitoring import actions as mon_actions
from watchkeeper.monitoring.heartbeats import actions as heartbeats
from watchkeeper.monitoring.models import Check, HeartbeatJob, PollSample
from watchkeeper.monitoring.poller.engine import Poller

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def http_target():
    with HttpTarget() as target:
        yield target


@pytest.fixture
def policy_a(client_a):
    return mon_actions.create_policy(actor=None, name="A network", client=client_a)


def form_data(policy, http_target, **extra):
    return {"policy": policy.pk, "name": "Portal", "kind": "http",
            "config": json.dumps({"url": http_target.url("/ok"), "keyword": "nominal"}),
            "interval_seconds": 60, "fail_after": 2, "recover_after": 1, "is_enabled": "on",
            **extra}


def test_test_now_then_save_then_see_results(as_user, tech_a, policy_a, http_target):
    web = as_user(tech_a)
    assert web.get("/monitoring/network/new/").status_code == 200
    # When "Test now" is pressed on the unsaved form, the outcome shows and nothing is saved
    tested = web.post("/monitoring/network/new/", {**form_data(policy_a, http_target),
                                                   "test": "1"})
    assert tested.status_code == 200
    assert b"Test result" in tested.content and b"HTTP 200" in tested.content
    assert not Check.objects.exists()
    # When saved, the check exists and its page says it has not run yet
    saved = web.post("/monitoring/network/new/", {**form_data(policy_a, http_target),
                                                  "save": "1"})
    check = Check.objects.get()
    assert saved.status_code == 302 and saved["Location"].endswith(
        f"/monitoring/network/{check.pk}/")
    assert b"has not run this check yet" in web.get(saved["Location"]).content
    # After the poller ran it, the list and the detail show the result
    asyncio.run(Poller().run_once())
    listing = web.get("/monitoring/network/").content.decode()
    assert "Portal" in listing and "HTTP 200" in listing
    detail = web.get(f"/monitoring/network/{check.pk}/").content.decode()
    assert 'id="poll-samples"' in detail and "poll-chart-data" in detail
    assert PollSample.objects.count() == 1


def test_invalid_config_is_shown_on_the_form(as_user, tech_a, policy_a, http_target):
    web = as_user(tech_a)
    response = web.post("/monitoring/network/new/", {
        **form_data(policy_a, http_target), "kind": "tcp",
        "config": json.dumps({"host": "10.0.0.1"}), "save": "1"})
    assert response.status_code == 200
    assert b"port: required" in response.content
    assert not Check.objects.exists()


def test_edit_and_delete(as_user, tech_a, policy_a, http_target):
    check = mon_actions.add_check(actor=None, policy=policy_a, name="Portal", kind="http",
                                  config={"url": http_target.url("/ok")})
    web = as_user(tech_a)
    assert web.get(f"/monitoring/network/{check.pk}/edit/").status_code == 200
    response = web.post(f"/monitoring/network/{check.pk}/edit/", {
        "name": "Portal login", "config": json.dumps({"url": http_target.url("/error")}),
        "interval_seconds": 120, "fail_after": 1, "recover_after": 1, "is_enabled": "on"})
    assert response.status_code == 302
    check.refresh_from_db()
    assert check.name == "Portal login" and check.interval_seconds == 120
    page = web.post(f"/monitoring/network/{check.pk}/", {"verb": "test"})
    assert b"HTTP 503" in page.content
    web.post(f"/monitoring/network/{check.pk}/", {"verb": "delete"})
    assert not Check.objects.exists()


def test_other_tenant_and_portal_user(as_user, tech_a, portal_b, client_b, http_target):
    policy_b = mon_actions.create_policy(actor=None, name="B network", client=client_b)
    other = mon_actions.add_check(actor=None, policy=policy_b, name="B secret web",
                                  kind="http", config={"url": http_target.url("/ok")})
    job_b = heartbeats.create_heartbeat(actor=None, client=client_b, name="B backup")
    web = as_user(tech_a)
    assert b"B secret web" not in web.get("/monitoring/network/").content
    assert web.get(f"/monitoring/network/{other.pk}/").status_code == 404
    assert web.post(f"/monitoring/network/{other.pk}/", {"verb": "delete"}).status_code == 404
    assert web.get(f"/monitoring/heartbeats/{job_b.pk}/").status_code == 404
    assert Check.objects.filter(pk=other.pk).exists()
    portal = as_user(portal_b)
    assert portal.get("/monitoring/network/").status_code == 403
    assert portal.get("/monitoring/heartbeats/").status_code == 403


def test_heartbeat_pages(as_user, tech_a, client_a, client):
    web = as_user(tech_a)
    assert b"No heartbeats yet" in web.get("/monitoring/heartbeats/").content
    response = web.post("/monitoring/heartbeats/", {
        "client": client_a.pk, "name": "Nightly backup", "schedule": "cron",
        "cron": "30 2 * * *", "tz": "Europe/Berlin", "grace_seconds": 3600})
    job = HeartbeatJob.objects.get()
    assert response.status_code == 302
    page = web.get(f"/monitoring/heartbeats/{job.pk}/").content.decode()
    assert f"/hb/{job.uid}" in page and 'data-copy="hb-url"' in page
    assert "No calls yet" in page
    client.post(f"/hb/{job.uid}", data=b"done", content_type="text/plain")
    page = web.get(f"/monitoring/heartbeats/{job.pk}/").content.decode()
    assert 'id="hb-pings"' in page and "done" in page
    web.post(f"/monitoring/heartbeats/{job.pk}/", {"verb": "pause"})
    job.refresh_from_db()
    assert job.status == "paused"
    old = job.uid
    web.post(f"/monitoring/heartbeats/{job.pk}/", {"verb": "regenerate"})
    job.refresh_from_db()
    assert job.uid != old
    bad = web.post("/monitoring/heartbeats/", {
        "client": client_a.pk, "name": "Broken", "schedule": "cron", "cron": "whenever",
        "tz": "UTC", "grace_seconds": 60})
    assert bad.status_code == 200 and b"five-field cron" in bad.content
    web.post(f"/monitoring/heartbeats/{job.pk}/", {"verb": "delete"})
    assert not HeartbeatJob.objects.exists()
