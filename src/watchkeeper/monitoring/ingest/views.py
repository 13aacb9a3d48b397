"""The ingestion endpoints (a source's token, no session) and the sources page."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from watchkeeper.core.models import Client
from watchkeeper.core.permissions import public, requires
from watchkeeper.core.tenancy import scoped

from . import actions, parse
from .models import IngestSource

PARSERS = {"alertmanager": parse.alertmanager, "generic": parse.generic,
           "uptime-kuma": parse.uptime_kuma}


def _problem(status: int, title: str, detail: str, path: str, **extra) -> JsonResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": path, **extra}
    response = JsonResponse(body, status=status, content_type="application/problem+json")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="watchkeeper-ingest"'
    return response


def _bad(path: str, errors: dict[str, list[str]], **extra) -> JsonResponse:
    fields = ", ".join(sorted(errors))
    return _problem(400, "Invalid request", f"Invalid field(s): {fields}.", path,
                    errors=errors, **extra)


@csrf_exempt
@public  # authenticated by the source's token below (the route has no session)
@require_POST
def receive(request, fmt: str):
    """POST /api/v1/ingest/alertmanager | /alerts | /uptime-kuma with
    `Authorization: Bearer wki_...`: 202 with counters; 400 problem+json naming each bad
    field (by index in a batch: the valid alerts of the batch are stored all the same)."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    source = actions.source_for_token(raw.strip()) if scheme.lower() == "bearer" else None
    if source is None:
        return _problem(401, "Not authenticated", "A valid ingestion source token is "
                        "required (Authorization: Bearer wki_...).", request.path)
    try:
        body = json.loads(request.body or b"null")
    except RequestDataTooBig:
        return _problem(413, "Payload too large", "Send smaller batches.", request.path)
    except (ValueError, UnicodeDecodeError) as exc:
        return _bad(request.path, {"body": [f"not JSON: {exc}"[:200]]})
    try:
        items, errors = PARSERS[fmt](body)
    except parse.PayloadError as exc:
        return _bad(request.path, {exc.field: [exc.message]})
    counters = actions.record_alerts(source, items)
    answer = {"accepted": len(items), "rejected": sorted({k.split("]")[0] + "]"
                                                          for k in errors if "[" in k}),
              **{k: v for k, v in counters.items() if k != "received"}}
    if errors:
        return _bad(request.path, errors, **answer)
    return JsonResponse(answer, status=202)


# --- The page -------------------------------------------------------------------------------

class SourceForm(forms.Form):
    client = forms.ModelChoiceField(queryset=Client.objects.none())
    name = forms.CharField(max_length=200, help_text="e.g. Prometheus Alertmanager")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = scoped(Client.objects.all(), user)


def _sources(request):
    return scoped(IngestSource.objects.select_related("client"), request.user)


@requires("monitoring.ingest")
@require_http_methods(["GET", "POST"])
def source_list(request):
    form = SourceForm(request.POST or None, user=request.user)
    token = None
    if request.method == "POST" and form.is_valid():
        try:
            source, token = actions.create_source(actor=request.user,
                                                  client=form.cleaned_data["client"],
                                                  name=form.cleaned_data["name"])
        except actions.IngestError as exc:
            field, _, message = str(exc).partition(": ")
            form.add_error(field if field in form.fields else None, message or str(exc))
        else:
            form = SourceForm(user=request.user)
            messages.success(request, f"Source “{source.name}” created. Copy its token now: "
                                      f"it is not shown again.")
    sources = list(_sources(request).order_by("revoked_at", "name", "id")[:500])
    response = render(request, "monitoring/ingest/sources.html", {
        "sources": sources, "form": form, "token": token,
        "base": request.build_absolute_uri("/api/v1/ingest/")})
    if token:
        response["Cache-Control"] = "no-store"
    return response


@requires("monitoring.ingest")
@require_POST
def source_revoke(request, pk: int):
    source = get_object_or_404(_sources(request), pk=pk)
    actions.revoke_source(actor=request.user, source=source)
    messages.success(request, f"Source “{source.name}” revoked: its token no longer works.")
    if request.headers.get("HX-Request"):
        return HttpResponse(status=204, headers={"HX-Redirect": request.path})
    return redirect("monitoring_ingest_sources")


source_revoke.wk_model = IngestSource
