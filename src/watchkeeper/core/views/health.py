"""Liveness and readiness probes for load balancers."""

from __future__ import annotations

import shutil
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils import timezone

from ..models import ProcessHeartbeat
from ..permissions import public

# Once this process has seen every one of its migrations applied, that stays true until it
# is restarted with new code: loading the migration graph again on every probe is wasted
# CPU (a load balancer asks every few seconds, on every web process).
_migrations_applied = False


def _pending_migrations() -> int:
    global _migrations_applied
    if _migrations_applied:
        return 0
    executor = MigrationExecutor(connection)
    pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    _migrations_applied = pending == 0
    return pending


@public
def healthz(request):
    """The process answers. Nothing else is checked: a load balancer restarts on failure."""
    return JsonResponse({"status": "ok"})


def disk_check() -> dict:
    """Free space on the data directory's file system against DISK_MIN_FREE_MB."""
    try:
        usage = shutil.disk_usage(settings.DATA_DIR)
    except OSError as exc:
        return {"ok": False, "error": type(exc).__name__}
    free_mb = usage.free // (1024 * 1024)
    return {"ok": free_mb >= settings.DISK_MIN_FREE_MB, "free_mb": free_mb,
            "min_free_mb": settings.DISK_MIN_FREE_MB}


def queue_check() -> dict | None:
    """The Redis task queue answers a PING within 2 s (None with the database queue)."""
    if settings.TASKS["default"]["BACKEND"] != "django_tasks_rq.RQBackend":
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.TASKS_URL, socket_timeout=2,
                                      socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


@public
def readyz(request):
    """Ready to serve: database reachable, migrations applied, a worker alive (heartbeat
    within WORKER_STALE_SECONDS, a few heartbeats), free disk space on the data directory,
    and the Redis task queue answering when it is configured.

    Bounded in time: the database check waits at most the connect timeout (settings)."""
    checks: dict[str, dict] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    if checks["database"]["ok"]:
        try:
            pending = _pending_migrations()
            checks["migrations"] = {"ok": not pending, "pending": pending}
        except Exception as exc:
            checks["migrations"] = {"ok": False, "error": type(exc).__name__}
        try:
            cutoff = timezone.now() - timedelta(seconds=settings.WORKER_STALE_SECONDS)
            workers = ProcessHeartbeat.objects.filter(role="worker",
                                                      last_seen__gte=cutoff).count()
            checks["worker"] = {"ok": workers > 0, "recent": workers}
        except Exception as exc:  # e.g. the table does not exist yet
            checks["worker"] = {"ok": False, "error": type(exc).__name__}
    checks["disk"] = disk_check()
    queue = queue_check()
    if queue is not None:
        checks["queue"] = queue
    ready = all(c.get("ok") for c in checks.values()) and len(checks) == 4 + (
        queue is not None)
    response = JsonResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
