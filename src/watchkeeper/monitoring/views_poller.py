"""Pages and endpoints of the poller side: the public heartbeat ping URL, network checks,
heartbeat jobs."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from watchkeeper.core.permissions import public

from . import heartbeats

PING_BODY_BYTES = heartbeats.BODY_LIMIT


@csrf_exempt
@require_http_methods(["GET", "POST", "HEAD"])
@public
def heartbeat_ping(request, uid: uuid.UUID, kind: str = "success"):
    """/hb/<uid>, /hb/<uid>/start, /hb/<uid>/fail: a job calling in. Public by design (the
    URL is the secret); answers "OK" or 404, and never says more."""
    body = ""
    if request.method == "POST":
        body = request.read(PING_BODY_BYTES).decode("utf-8", "replace")
    found = heartbeats.record_ping(
        uid, kind, remote_ip=getattr(request, "client_ip", None) or request.META.get(
            "REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""), body=body)
    response = HttpResponse("OK\n" if found else "not found\n",
                            status=200 if found else 404, content_type="text/plain")
    response["Cache-Control"] = "no-store"
    return response
