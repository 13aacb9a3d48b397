"""Pages of the import wizard: upload, mapping + preview, apply."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from ..choices import ImportStatus
from . import importers
from .forms import ImportUploadForm
from .models import ImportRun

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
