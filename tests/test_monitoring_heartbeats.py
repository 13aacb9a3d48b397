"""Passive heartbeats: a job missed, then received; late within grace; failure and start
calls; cron schedules in a time zone; the public ping endpoint is one UPDATE + one INSERT;
sweeps claim each transition once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from watchkeeper.asgi import application
from watchkeeper.monitoring.choices import AlertStatus
from watchkeeper.monitoring.heartbeats import actions as heartbeats
from watchkeeper.monitoring.heartbeats.models import HeartbeatStatus
from watchkeeper.monitoring.models import Alert, Check, HeartbeatJob, HeartbeatPing

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


class LeanPinger:
    """Pings through watchkeeper.asgi.application, where the lean heartbeat path answers
    them (monitoring/heartbeat_lean.py), in this test's database transaction."""

    def _request(self, method: str, path: str, data: bytes = b"",
                 content_type: str = "text/plain", HTTP_USER_AGENT: str = "curl/8"):
        from tests.agent_harness import run_asgi

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode()),
                        (b"content-length", str(len(data)).encode()),
                        (b"user-agent", HTTP_USER_AGENT.encode())]}
        return run_asgi(application, scope,
                        [{"type": "http.request", "body": data, "more_body": False}])

    def get(self, path, **kwargs):
        return self._request("GET", path, **kwargs)

    def head(self, path, **kwargs):
        return self._request("HEAD", path, **kwargs)

    def post(self, path, data=b"", **kwargs):
        return self._request("POST", path, data, **kwargs)


@pytest.fixture(params=["django", "lean"])
def client(request, settings):
    """Every ping test runs against the Django view and against the lean ASGI path."""
    settings.AGENT_BATCH_WRITER = "inline"
    settings.HEARTBEAT_LEAN = request.param == "lean"
    if request.param == "django":
        from django.test import Client

        return Client()
    return LeanPinger()


@pytest.fixture
def job(client_a, owner):
    return heartbeats.create_heartbeat(actor=owner, client=client_a, name="Nightly backup",
                                       period_seconds=3600, grace_seconds=600, now=T0)


def ping(client, job, suffix="", **kwargs):
    return client.post(f"/hb/{job.uid}{suffix}", **kwargs)


def test_new_job_has_its_own_url_and_a_first_deadline(job, client_a):
    # Then the job's check is a heartbeat check in the client's Heartbeats policy
    check = job.check_template
    assert check.kind == "heartbeat" and check.policy.client_id == client_a.pk
    assert check.policy.name == "Heartbeats"
    # And its first call is expected one period after creation, alerting after grace
    assert job.expected_at == T0 + timedelta(hours=1)
    assert job.next_due_at == T0 + timedelta(hours=1, minutes=10)
    assert heartbeats.ping_url(job).endswith(f"/hb/{job.uid}")
    assert len(str(job.uid)) == 36


def test_missed_then_received(job, client):
    # When the sweep runs inside the grace period: late, no alert
    assert heartbeats.sweep(T0 + timedelta(hours=1, minutes=5))["claimed"] == 0
    # (not yet due: next_due_at is the end of grace)
    job.refresh_from_db()
    assert job.status == HeartbeatStatus.NEW
    # When the grace period has passed without a call: down, one critical alert
    counters = heartbeats.sweep(T0 + timedelta(hours=1, minutes=11))
    assert counters["claimed"] == 1
    job.refresh_from_db()
    assert job.status == HeartbeatStatus.DOWN and job.next_due_at is None
    alert = Alert.objects.get()
    assert alert.severity == "critical" and alert.status == AlertStatus.OPEN
    assert "missed" in alert.summary and "never called" in alert.summary
    # And sweeping again does nothing more (one alert, no repeats)
    assert heartbeats.sweep(T0 + timedelta(hours=3))["claimed"] == 0
    assert Alert.objects.get().count == 1

    # When the job finally calls its URL
    response = ping(client, job, data=b"backup ok: 12 GB", content_type="text/plain",
                    HTTP_USER_AGENT="curl/8.0")
    assert response.status_code == 200 and response.content == b"OK\n"
    # Then the call is logged with what it sent, and the next sweep resolves the alert
    logged = HeartbeatPing.objects.get()
    assert logged.kind == "success" and logged.body == "backup ok: 12 GB"
    assert logged.user_agent == "curl/8.0" and logged.remote_ip == "127.0.0.1"
    heartbeats.sweep()
    job.refresh_from_db()
    alert.refresh_from_db()
    assert job.status == HeartbeatStatus.UP
    assert alert.status == AlertStatus.RESOLVED
    # And the next call is expected one period after this one
    assert job.expected_at == job.last_ping_at + timedelta(hours=1)


def test_late_inside_grace_has_no_alert(client_a, owner):
    job = heartbeats.create_heartbeat(actor=owner, client=client_a, name="Hourly sync",
                                      period_seconds=3600, grace_seconds=0, now=T0)
    heartbeats.record_ping(job.uid, "success", now=T0 + timedelta(minutes=1))
    heartbeats.sweep(T0 + timedelta(minutes=1))
    # Grace changed to 30 minutes; at expected + 10 min the job is late, not down
    job = heartbeats.update_heartbeat(actor=owner, job=HeartbeatJob.objects.get(pk=job.pk),
                                      grace_seconds=1800, now=T0 + timedelta(minutes=2))
    HeartbeatJob.objects.filter(pk=job.pk).update(next_due_at=job.expected_at)
    heartbeats.sweep(job.expected_at + timedelta(minutes=10))
    job.refresh_from_db()
    assert job.status == HeartbeatStatus.LATE
    assert not Alert.objects.exists()
    assert job.next_due_at == job.expected_at + timedelta(minutes=30)


def test_fail_call_alerts_and_success_recovers(job, client):
    assert ping(client, job, "/fail").status_code == 200
    heartbeats.sweep()
    job.refresh_from_db()
    assert job.status == HeartbeatStatus.FAILED
    assert "reported a failure" in Alert.objects.get().summary
    ping(client, job)
    heartbeats.sweep()
    assert Alert.objects.get().status == AlertStatus.RESOLVED


def test_started_job_that_never_finishes_goes_down(job):
    start = T0 + timedelta(minutes=5)
    heartbeats.record_ping(job.uid, "start", now=start)
    heartbeats.sweep(start)
    job.refresh_from_db()
    assert job.status == HeartbeatStatus.STARTED
    assert job.next_due_at == start + timedelta(minutes=10)
    heartbeats.sweep(start + timedelta(minutes=11))
    job.refresh_from_db()
    assert job.status == HeartbeatStatus.DOWN
    assert "did not finish" in Alert.objects.get().summary


def test_success_after_start_reports_duration(job):
    heartbeats.record_ping(job.uid, "start", now=T0)
    heartbeats.record_ping(job.uid, "success", now=T0 + timedelta(seconds=95))
    heartbeats.sweep(T0 + timedelta(seconds=96))
    from watchkeeper.monitoring.models import CheckState

    assert "after 95 s" in CheckState.objects.get().message


def test_ping_is_one_update_and_one_insert_without_reads(job):
    with CaptureQueriesContext(connection) as queries:
        assert heartbeats.record_ping(job.uid, "success", remote_ip="192.0.2.7")
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries
                  if q["sql"].split()[0].upper() in ("SELECT", "UPDATE", "INSERT", "DELETE")]
    assert statements == ["UPDATE", "INSERT"]
    assert HeartbeatPing.objects.get().remote_ip == "192.0.2.7"


def test_unknown_url_is_404_and_logs_nothing(job, client):
    import uuid

    response = client.get(f"/hb/{uuid.uuid4()}")
    assert response.status_code == 404
    assert not HeartbeatPing.objects.exists()
    assert client.get("/hb/not-a-uuid").status_code == 404


def test_get_and_head_also_count(job, client):
    response = client.get(f"/hb/{job.uid}")
    assert response.status_code == 200 and response.content == b"OK\n"
    assert response["Content-Type"].startswith("text/plain")
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client.head(f"/hb/{job.uid}/start").status_code == 200
    assert list(HeartbeatPing.objects.order_by("id").values_list("kind", flat=True)) == [
        "success", "start"]


def test_cron_schedule_in_a_time_zone(client_a, owner):
    # Given a job at 02:30 Berlin time every day, created on a winter day and a summer day
    winter = heartbeats.create_heartbeat(actor=owner, client=client_a, name="Winter",
                                         schedule="cron", cron="30 2 * * *",
                                         tz="Europe/Berlin", grace_seconds=900, now=T0)
    summer = heartbeats.create_heartbeat(actor=owner, client=client_a, name="Summer",
                                         schedule="cron", cron="30 2 * * *",
                                         tz="Europe/Berlin", grace_seconds=900,
                                         now=datetime(2026, 7, 10, 12, 0, tzinfo=UTC))
    # Then the next run is 01:30 UTC in winter (UTC+1), 00:30 UTC in summer (UTC+2)
    assert winter.expected_at == datetime(2026, 1, 11, 1, 30, tzinfo=UTC)
    assert summer.expected_at == datetime(2026, 7, 11, 0, 30, tzinfo=UTC)
    # And a call at the expected time moves the deadline to the next day
    heartbeats.record_ping(winter.uid, "success", now=winter.expected_at)
    heartbeats.sweep(winter.expected_at)
    winter.refresh_from_db()
    assert winter.expected_at == datetime(2026, 1, 12, 1, 30, tzinfo=UTC)


def test_paused_job_does_not_alert_and_a_call_resumes_it(job, owner):
    heartbeats.pause_heartbeat(actor=owner, job=job)
    assert heartbeats.sweep(T0 + timedelta(days=3))["claimed"] == 0
    assert not Alert.objects.exists()
    heartbeats.record_ping(job.uid, "success")
    heartbeats.sweep()
    job.refresh_from_db()
    assert job.status == HeartbeatStatus.UP


def test_sweep_claims_each_transition_once(job):
    due = T0 + timedelta(hours=2)
    stale = HeartbeatJob.objects.get(pk=job.pk)
    assert heartbeats.sweep(due)["claimed"] == 1
    # A second sweeper holding the stale row loses the compare-and-set
    assert not HeartbeatJob.objects.filter(pk=stale.pk, next_due_at=stale.next_due_at,
                                           pending=stale.pending).update(status="up")
    assert Alert.objects.count() == 1


@pytest.mark.parametrize(("fields", "field"), [
    ({"schedule": "cron", "cron": "every night"}, "cron"),
    ({"schedule": "cron", "cron": "* * *"}, "cron"),
    ({"period_seconds": 5}, "period_seconds"),
    ({"tz": "Mars/Olympus"}, "tz"),
    ({"grace_seconds": -1}, "grace_seconds"),
    ({"name": "  "}, "name"),
])
def test_invalid_definitions_are_refused(client_a, owner, fields, field):
    options = {"name": "Job", "period_seconds": 3600, **fields}
    with pytest.raises(heartbeats.HeartbeatError) as caught:
        heartbeats.create_heartbeat(actor=owner, client=client_a, **options)
    assert str(caught.value).startswith(field)
    assert not HeartbeatJob.objects.exists()


def test_duplicate_name_refused(job, client_a, owner):
    with pytest.raises(heartbeats.HeartbeatError):
        heartbeats.create_heartbeat(actor=owner, client=client_a, name="Nightly backup")


def test_delete_removes_job_and_check(job, owner):
    check_id = job.check_template_id
    heartbeats.delete_heartbeat(actor=owner, job=job)
    assert not HeartbeatJob.objects.exists()
    assert not Check.objects.filter(pk=check_id).exists()


def test_regenerated_url_replaces_the_old_one(job, owner, client):
    old = job.uid
    heartbeats.regenerate_url(actor=owner, job=job)
    assert client.get(f"/hb/{old}").status_code == 404
    assert client.get(f"/hb/{job.uid}").status_code == 200


def test_ping_log_is_pruned_to_the_newest(job):
    for i in range(12):
        heartbeats.record_ping(job.uid, "success", now=T0 + timedelta(minutes=i))
    assert heartbeats.prune_pings(keep=5) == 7
    kept = list(HeartbeatPing.objects.order_by("at").values_list("at", flat=True))
    assert kept[0] == T0 + timedelta(minutes=7) and len(kept) == 5
