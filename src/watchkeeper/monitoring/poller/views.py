"""Pages of the poller side: network checks (list, editor with "Test now", detail with
results and a chart). Reads through scoped(); writes through actions. Heartbeat pages:
heartbeats/views.py."""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from .. import actions
from ..choices import SERVER_KINDS
from ..history import actions as rollups
from ..models import Check, CheckState
from . import engine as poller
from .checks import LABELS
from .forms import NetworkCheckForm

# --- Network checks --------------------------------------------------------------------------

def _checks(request):
    return scoped(Check.objects.filter(kind__in=sorted(SERVER_KINDS))
                  .select_related("policy", "policy__client", "device"), request.user)


def _target(check: Check) -> str:
    cfg = check.config or {}
    text = cfg.get("url") or cfg.get("name") or cfg.get("host") or cfg.get("target") or ""
    if not text and check.device_id:
        text = f"{check.device.name} (device)"
    if cfg.get("port") and check.kind in ("tcp", "tls", "snmp"):
        text = f"{text}:{cfg['port']}"
    return str(text)


@requires("monitoring.view")
def network_checks(request):
    qs = _checks(request)
    kind = request.GET.get("kind", "")
    if kind in LABELS:
        qs = qs.filter(kind=kind)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(name__icontains=q)
    page = Paginator(qs.order_by("name", "id"), 50).get_page(request.GET.get("page"))
    states = {s.check_template_id: s for s in CheckState.objects.filter(
        check_template_id__in=[c.pk for c in page.object_list])}
    rows = [{"check": c, "target": _target(c), "state": states.get(c.pk),
             "label": LABELS.get(c.kind, c.kind)} for c in page.object_list]
    return render(request, "monitoring/poller/network_checks.html", {
        "page_obj": page, "rows": rows, "kinds": sorted(LABELS.items()), "kind": kind,
        "q": q, "can_change": has_capability(request.user, "monitoring.change")})


def _outcome_of(form: NetworkCheckForm):
    data = form.cleaned_data
    device = data.get("device")
    kind = data.get("kind") or form.instance.kind
    return poller.run_now(kind, data["config"], device.primary_ip if device else None,
                          device.hostname if device else None,
                          client_id=poller.probe_client_id(
                              policy=data.get("policy") or getattr(form.instance, "policy",
                                                                   None),
                              device=device))


@requires("monitoring.change")
@require_http_methods(["GET", "POST"])
def network_check_create(request):
    form = NetworkCheckForm(request.POST or None, user=request.user,
                            initial={"config": "{}"})
    outcome = None
    if request.method == "POST" and form.is_valid():
        if "test" in request.POST:
            outcome = _outcome_of(form)
        else:
            data = form.cleaned_data
            try:
                check = actions.add_check(
                    actor=request.user, policy=data["policy"], name=data["name"],
                    kind=data["kind"], config=poller.seal_secrets(data["kind"],
                                                                  data["config"]),
                    device=data.get("device"), interval_seconds=data["interval_seconds"],
                    fail_after=data["fail_after"], recover_after=data["recover_after"],
                    is_enabled=data["is_enabled"])
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Check “{check.name}” saved; the poller runs it "
                                          f"within a few seconds.")
                return redirect("monitoring_network_check", check.pk)
    return render(request, "monitoring/poller/network_check_form.html",
                  {"form": form, "outcome": outcome, "check": None})


@requires("monitoring.change")
@require_http_methods(["GET", "POST"])
def network_check_edit(request, pk: int):
    check = get_object_or_404(_checks(request), pk=pk)
    initial = {"name": check.name, "kind": check.kind, "device": check.device,
               "config": json.dumps(poller.masked(check.kind, check.config or {}), indent=2),
               "interval_seconds": check.interval_seconds, "fail_after": check.fail_after,
               "recover_after": check.recover_after, "is_enabled": check.is_enabled}
    form = NetworkCheckForm(request.POST or None, user=request.user, instance=check,
                            initial=initial)
    outcome = None
    if request.method == "POST" and form.is_valid():
        if "test" in request.POST:
            outcome = _outcome_of(form)
        else:
            data = form.cleaned_data
            try:
                actions.update_check(
                    actor=request.user, check=check, name=data["name"],
                    config=poller.seal_secrets(check.kind, data["config"]),
                    device=data.get("device"), interval_seconds=data["interval_seconds"],
                    fail_after=data["fail_after"], recover_after=data["recover_after"],
                    is_enabled=data["is_enabled"])
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Check saved.")
                return redirect("monitoring_network_check", check.pk)
    return render(request, "monitoring/poller/network_check_form.html",
                  {"form": form, "outcome": outcome, "check": check})


network_check_edit.wk_model = Check


@requires("monitoring.view")
@require_http_methods(["GET", "POST"])
def network_check_detail(request, pk: int):
    check = get_object_or_404(_checks(request), pk=pk)
    can_change = has_capability(request.user, "monitoring.change")
    outcome = None
    if request.method == "POST":
        if not can_change:
            return HttpResponse(status=403)
        if request.POST.get("verb") == "delete":
            actions.delete_check(actor=request.user, check=check)
            messages.success(request, f"Check “{check.name}” deleted.")
            return redirect("monitoring_network_checks")
        device = check.device
        outcome = poller.run_now(check.kind, check.config or {},
                                 device.primary_ip if device else None,
                                 device.hostname if device else None,
                                 client_id=poller.probe_client_id(policy=check.policy,
                                                                  device=device))
    samples = list(check.poll_samples.order_by("-ts", "-id")[:50])
    state = CheckState.objects.filter(check_template=check).order_by("-observed_at").first()
    return render(request, "monitoring/poller/network_check_detail.html", {
        "check": check, "target": _target(check), "label": LABELS.get(check.kind),
        "config": json.dumps(poller.masked(check.kind, check.config or {}), indent=2),
        "samples": samples, "state": state, "outcome": outcome,
        "can_change": can_change, "unit": _unit(check.kind),
        **_history(check, request.GET.get("range", ""))})


network_check_detail.wk_model = Check

# The chart ranges of a check's page: (label, span). The resolution follows the span
# (rollups.pick_check_resolution): raw runs up to 6 h, 5-minute buckets up to 7 days.
RANGES = {"6h": ("6 hours", timedelta(hours=6)), "24h": ("24 hours", timedelta(days=1)),
          "7d": ("7 days", timedelta(days=7)), "30d": ("30 days", timedelta(days=30)),
          "1y": ("1 year", timedelta(days=365))}
RESOLUTION_LABELS = {0: "each run", 300: "5-minute buckets (average, min–max)",
                     3600: "hourly buckets (average, min–max)"}


def _history(check: Check, key: str) -> dict:
    """The chart and state-change list of a check's page for one of RANGES."""
    key = key if key in RANGES else "6h"
    until = timezone.now()
    since = until - RANGES[key][1]
    resolution, points = rollups.check_series(check.pk, since, until)
    valued = [p for p in points if p.avg is not None]
    runs = sum(p.runs for p in points)
    ok = sum(p.states.get("ok", 0) for p in points)
    summary = {"runs": runs, "availability": 100.0 * ok / runs if runs else None,
               "min": min((p.min for p in valued), default=None),
               "max": max((p.max for p in valued), default=None),
               "avg": (sum(p.avg * p.count for p in valued) / sum(p.count for p in valued)
                       if valued else None)}
    chart = [[p.ts.timestamp(), p.avg, p.min, p.max] for p in valued]
    return {"ranges": [(k, label) for k, (label, _) in RANGES.items()], "range": key,
            "range_label": RANGES[key][0], "chart": chart, "resolution": resolution,
            "resolution_label": RESOLUTION_LABELS[resolution], "summary": summary,
            "transitions": rollups.check_transitions(check.pk, since, until, limit=20),
            "poll_days": settings.POLL_SAMPLE_DAYS}


def _unit(kind: str) -> str:
    return {"tls": "days left", "snmp": "value"}.get(kind, "ms")


