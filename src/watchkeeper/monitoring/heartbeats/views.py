"""Pages and endpoints of passive heartbeats: the public ping URL (/hb/<uid>), the job list
and a job's page (URL with a copy button, call log). Reads through scoped(); writes through
heartbeats/actions.py."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from watchkeeper.core.permissions import has_capability, public, requires
from watchkeeper.core.tenancy import scoped

from . import actions as heartbeats
from .forms import HeartbeatForm
from .models import HeartbeatJob

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


def _jobs(request):
    return scoped(HeartbeatJob.objects.select_related("client", "device"), request.user)


@requires("monitoring.view")
@require_http_methods(["GET", "POST"])
def heartbeat_list(request):
    can_change = has_capability(request.user, "monitoring.change")
    form = HeartbeatForm(request.POST or None, user=request.user,
                         initial={"schedule": "period", "tz": "UTC"})
    if request.method == "POST":
        if not can_change:
            return HttpResponse(status=403)
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = heartbeats.create_heartbeat(
                    actor=request.user, client=data["client"], name=data["name"],
                    schedule=data["schedule"], period_seconds=data["period_seconds"],
                    cron=data["cron"], tz=data["tz"], grace_seconds=data["grace_seconds"])
            except heartbeats.HeartbeatError as exc:
                field, _, message = str(exc).partition(": ")
                form.add_error(field if field in form.fields else None, message or str(exc))
            else:
                messages.success(request, f"Heartbeat “{job.name}” created: give its URL to "
                                          f"the job.")
                return redirect("monitoring_heartbeat", job.pk)
    page = Paginator(_jobs(request).order_by("name", "id"), 50).get_page(
        request.GET.get("page"))
    return render(request, "monitoring/poller/heartbeats.html", {
        "page_obj": page, "form": form, "can_change": can_change})


@requires("monitoring.view")
@require_http_methods(["GET", "POST"])
def heartbeat_detail(request, pk: int):
    job = get_object_or_404(_jobs(request), pk=pk)
    if request.method == "POST":
        if not has_capability(request.user, "monitoring.change"):
            return HttpResponse(status=403)
        verb = request.POST.get("verb")
        if verb == "pause":
            heartbeats.pause_heartbeat(actor=request.user, job=job)
            messages.success(request, "Paused: no alerts until the job calls again.")
        elif verb == "regenerate":
            heartbeats.regenerate_url(actor=request.user, job=job)
            messages.success(request, "New URL made; the old one no longer works.")
        elif verb == "delete":
            heartbeats.delete_heartbeat(actor=request.user, job=job)
            messages.success(request, f"Heartbeat “{job.name}” deleted.")
            return redirect("monitoring_heartbeats")
        return redirect("monitoring_heartbeat", job.pk)
    return render(request, "monitoring/poller/heartbeat_detail.html", {
        "job": job, "url": heartbeats.ping_url(job),
        "pings": job.ping_log.order_by("-at", "-id")[:50],
        "can_change": has_capability(request.user, "monitoring.change")})


heartbeat_detail.wk_model = HeartbeatJob
