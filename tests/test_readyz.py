"""/readyz tells a load balancer whether this deployment can do its work."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from watchkeeper.core.models import ProcessHeartbeat
from watchkeeper.core.processes import Heartbeat, beat


def test_healthz_answers_without_a_session(db, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_not_ready_without_a_worker_heartbeat(db, client):
    # given no worker has ever beaten
    # when a load balancer asks
    response = client.get("/readyz")

    # then the answer is 503, naming the worker check
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is True
    assert body["checks"]["worker"] == {"ok": False, "recent": 0}


def test_ready_with_a_recent_worker_heartbeat(db, client):
    # given a worker beat just now
    beat("worker", "host-a:123")

    # when a load balancer asks, then it is ready
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["checks"]["worker"] == {"ok": True, "recent": 1}


def test_stale_worker_or_a_scheduler_alone_is_not_ready(db, client, settings):
    # given a worker last seen longer ago than WORKER_STALE_SECONDS, and a live scheduler
    settings.WORKER_STALE_SECONDS = 120
    ProcessHeartbeat.objects.create(name="host-a:1", role="worker",
                                    last_seen=timezone.now() - timedelta(seconds=121))
    beat("scheduler", "host-a:2")

    # when a load balancer asks, then it is not ready
    assert client.get("/readyz").status_code == 503


def test_heartbeat_lifecycle_drives_readiness(db, client):
    # given a worker process's heartbeat started
    heartbeat = Heartbeat("worker", interval=3600, name="host-b:77").start()
    try:
        # then the deployment is ready
        assert client.get("/readyz").status_code == 200
        first = ProcessHeartbeat.objects.get(name="host-b:77")
        assert first.role == "worker"
    finally:
        # when the worker stops cleanly
        heartbeat.stop()

    # then its row is gone and the deployment is no longer ready
    assert not ProcessHeartbeat.objects.filter(name="host-b:77").exists()
    assert client.get("/readyz").status_code == 503


def test_beat_updates_the_same_row(db):
    # given a process that beats twice
    beat("worker", "host-c:5")
    ProcessHeartbeat.objects.filter(name="host-c:5").update(
        last_seen=timezone.now() - timedelta(minutes=10))
    beat("worker", "host-c:5")

    # then there is one row, seen just now
    row = ProcessHeartbeat.objects.get(name="host-c:5")
    assert timezone.now() - row.last_seen < timedelta(minutes=1)
    assert ProcessHeartbeat.objects.count() == 1


def test_not_ready_while_a_migration_is_pending(db, client, monkeypatch):
    # given a live worker, but one migration of this code not applied to the database
    from django.db.migrations.recorder import MigrationRecorder

    from watchkeeper.core.views import health

    monkeypatch.setattr(health, "_migrations_applied", False)
    beat("worker", "host-d:1")
    MigrationRecorder.Migration.objects.filter(app="sessions", name="0001_initial").delete()

    # when a load balancer asks, then it is not ready and names the migration check
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == {"ok": False, "pending": 1}
    assert response.json()["checks"]["worker"]["ok"] is True
