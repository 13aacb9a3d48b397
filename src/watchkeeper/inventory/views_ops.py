"""Pages for the import wizard, reconciliation and network discovery."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from . import discovery, importers, selectors
from .choices import DeviceKind, ImportStatus
from .forms import DiscoveryForm, ImportUploadForm
from .models import DiscoveredHost, DiscoveryRun, ImportRun

# --- Import wizard ----------------------------------------------------------------------


@requires("devices.change")
def import_start(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            run = importers.upload(actor=request.user, client=form.cleaned_data["client"],
                                   filename=upload.name, raw=upload.read())
        except importers.ImportError_ as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("inventory_import", pk=run.pk)
    runs = scoped(ImportRun.objects.select_related("client", "created_by")
                  .defer("rows", "headers", "report"), request.user)[:20]
    return render(request, "inventory/import_start.html", {"form": form, "runs": runs})


@requires("devices.view")
def import_detail(request, pk: int):
    """Mapping step (POST mapping), then the preview with conflicts and the apply button."""
    run = get_object_or_404(scoped(ImportRun.objects.select_related("client"), request.user),
                            pk=pk)
    can_change = has_capability(request.user, "devices.change")
    if request.method == "POST" and can_change:
        mapping = {h: request.POST.get(f"map-{i}", "") for i, h in enumerate(run.headers)}
        try:
            run = importers.set_mapping(actor=request.user, run=run, mapping=mapping,
                                        date_order=request.POST.get("date_order", ""))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("inventory_import", pk=run.pk)
    samples = run.rows[:5]
    columns = [{"index": i, "header": h, "target": run.mapping.get(h, ""),
                "samples": [r[i] for r in samples if i < len(r)]}
               for i, h in enumerate(run.headers)]
    report = run.report or {}
    labels = {"dmy": "day/month", "mdy": "month/day", "thousands": "thousands separator",
              "decimal": "decimal separator"}
    ambiguous = [{**a, "choices": [(k, f"{v} ({labels.get(k, k)})")
                                   for k, v in a["options"].items()],
                  "chosen": (run.resolutions or {}).get(a["key"])}
                 for a in report.get("ambiguous", [])[:500]]
    previews = [{"line": item["line"], "name": item.get("name") or item["values"].get("name"),
                 "device": item.get("device"), "matched_by": item.get("matched_by", ""),
                 "fields": [(f, v, item.get("raw", {}).get(f), (item.get("changes") or {})
                             .get(f)) for f, v in item["values"].items()]}
                for item in (report.get("create", [])[:200] + report.get("update", [])[:200])]
    return render(request, "inventory/import_detail.html", {
        "ambiguous": ambiguous, "previews": previews,
        "date_fields": importers.DATE_FIELDS,
        "run": run, "columns": columns, "targets": list(importers.TARGETS),
        "report": run.report or {}, "can_change": can_change,
        "applied": run.status == ImportStatus.APPLIED})


import_detail.wk_model = ImportRun


@requires("devices.change")
@require_POST
def import_apply(request, pk: int):
    run = get_object_or_404(scoped(ImportRun.objects.all(), request.user), pk=pk)
    decisions = {key[len("decide-"):]: value for key, value in request.POST.items()
                 if key.startswith("decide-") and value in ("take", "keep")}
    # Decisions on ambiguous values, column notations and duplicate rows ("" = undecided,
    # except "leave empty" which is sent as "-").
    resolutions = {key[len("res-"):]: ("" if value == "-" else value)
                   for key, value in request.POST.items()
                   if key.startswith("res-") and value}
    try:
        if request.POST.get("action") == "decide":
            importers.decide(actor=request.user, run=run, resolutions=resolutions)
            messages.success(request, "Decisions saved; the preview is up to date.")
            return redirect("inventory_import", pk=run.pk)
        run = importers.apply(actor=request.user, run=run, decisions=decisions,
                              resolutions=resolutions,
                              skip_undecided=request.POST.get("skip_undecided") == "on")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        counts = run.report["counts"]
        messages.success(request, f"Imported: {counts['created']} created, "
                                  f"{counts['updated']} updated, {counts['errors']} bad rows.")
    return redirect("inventory_import", pk=run.pk)


import_apply.wk_model = ImportRun


# --- Reconciliation ---------------------------------------------------------------------

@requires("devices.view")
def reconcile(request):
    try:
        days = max(1, min(int(request.GET.get("days", 30)), 3650))
    except ValueError:
        days = 30
    user = request.user
    return render(request, "inventory/reconcile.html", {
        "days": days,
        "no_agent": selectors.devices_without_agent(user)[:200],
        "no_agent_count": selectors.devices_without_agent(user).count(),
        "agents_without_device": selectors.agents_without_device(user),
        "duplicates": selectors.duplicates(user),
        "stale": selectors.not_seen_since(user, days)[:200],
        "conflicts": selectors.open_conflicts(user)[:200],
        "disagreements": selectors.disagreeing_fields(user, 200),
        "can_change": has_capability(user, "devices.change"),
    })


# --- Discovery --------------------------------------------------------------------------

@requires("devices.view")
def discovery_list(request):
    can_change = has_capability(request.user, "devices.change")
    form = DiscoveryForm(request.POST or None, user=request.user)
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        if form.is_valid():
            data = form.cleaned_data
            try:
                ports = discovery.parse_ports(data["ports"] or "")
                run = discovery.start_discovery(
                    actor=request.user, client=data["client"], site=data["site"],
                    subnet=data["subnet"], ports=ports,
                    snmp_community=data["snmp_community"] or "",
                    snmp_port=data["snmp_port"] or 161)
            except ValueError as exc:
                form.add_error("subnet", str(exc))
            else:
                messages.success(request, f"Discovery of {run.subnet} queued.")
                return redirect("inventory_discovery_run", pk=run.pk)
    runs = scoped(DiscoveryRun.objects.select_related("client"), request.user)[:50]
    return render(request, "inventory/discovery.html", {"form": form, "runs": runs,
                                                        "can_change": can_change})


@requires("devices.view")
def discovery_run(request, pk: int):
    run = get_object_or_404(scoped(DiscoveryRun.objects.select_related("client", "site"),
                                   request.user), pk=pk)
    return render(request, "inventory/discovery_run.html", {
        "run": run, "hosts": run.hosts.select_related("device"), "kinds": DeviceKind.choices,
        "can_change": has_capability(request.user, "devices.change")})


discovery_run.wk_model = DiscoveryRun


@requires("devices.change")
@require_POST
def discovery_host(request, pk: int):
    host = get_object_or_404(scoped(DiscoveredHost.objects.select_related("run"),
                                    request.user), pk=pk)
    try:
        if request.POST.get("decision") == "accept":
            kind = request.POST.get("kind", "other")
            device = discovery.accept_host(actor=request.user, host=host,
                                           kind=kind if kind in DeviceKind.values else "other",
                                           name=request.POST.get("name", "").strip())
            messages.success(request, f"Added {device.name} to the inventory.")
        else:
            discovery.ignore_host(actor=request.user, host=host)
    except (ValueError, ValidationError) as exc:
        messages.error(request, str(exc))
    return redirect("inventory_discovery_run", pk=host.run_id)


discovery_host.wk_model = DiscoveredHost
