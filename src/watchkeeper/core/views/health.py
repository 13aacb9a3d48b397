"""Liveness and readiness probes for load balancers."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils import timezone

from ..models import ProcessHeartbeat
from ..permissions import public


@public
def healthz(request):
    """The process answers. Nothing else is checked: a load balancer restarts on failure."""
    return JsonResponse({"status": "ok"})


@public
def readyz(request):
    """Ready to serve: database reachable, migrations applied, a worker seen recently."""
    checks: dict[str, dict] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    if checks["database"]["ok"]:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        checks["migrations"] = {"ok": not pending, "pending": len(pending)}
        cutoff = timezone.now() - timedelta(seconds=settings.WORKER_STALE_SECONDS)
        workers = ProcessHeartbeat.objects.filter(role="worker", last_seen__gte=cutoff).count()
        checks["worker"] = {"ok": workers > 0, "recent": workers}
    ready = all(c.get("ok") for c in checks.values()) and len(checks) == 3
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status=200 if ready else 503)
