"""Device pages: the list (server-side filter, sort, search, paging, columns, saved views,
CSV export), the device page with lazy tabs, manual create/edit, conflict decisions and
licences. Reads go through scoped(); writes call actions."""

from __future__ import annotations

import csv
import re
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from watchkeeper.core import hooks
from watchkeeper.core.converters import parse_id
from watchkeeper.core.csvsafe import safe_cell
from watchkeeper.core.models import Client, Site
from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.templatetags.wk_ui import ago
from watchkeeper.core.tenancy import scoped

from . import actions, selectors
from .choices import DeviceKind, LifecycleStatus, SourceKind
from .forms import DeviceForm, LicenceForm
from .imports.importers import EXPORT_COLUMNS, export_row
from .models import (
    Device,
    DeviceChange,
    DeviceSection,
    FieldConflict,
    FieldProvenance,
    SavedView,
    SoftwareInstall,
    SoftwareLicence,
)
from .relations import views as relation_views

PAGE_SIZES = (25, 50, 100, 200)
TABS = ("summary", "inventory", "software", "relations", "history", "scripts", "metrics")
# Offered when the agents app names none yet for the device; it names them (cpu.percent...).
METRICS = ("cpu.percent", "mem.percent", "swap.percent", "load.1", "processes")
METRIC_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")


def _agents_selectors():
    """The agents app's device selectors (core.hooks), or None without that app."""
    return hooks.first("agents.selectors")


def _query(request) -> selectors.DeviceQuery:
    """The list's filters from the URL; with no client in the URL, the client scope chosen
    in the top bar narrows the list (choosing "Any client" puts client= in the URL)."""
    query = selectors.DeviceQuery.from_params(request.GET)
    if "client" not in request.GET:
        from watchkeeper.core.selectors import scope_client

        scope = scope_client(request)
        if scope is not None:
            query.client = str(scope.pk)
    return query


@requires("devices.view")
def device_list(request):
    user = request.user
    query = _query(request)
    qs = selectors.filter_devices(user, query)
    cols = [c for c in request.GET.getlist("cols") if c in selectors.COLUMNS]
    cols = cols or list(selectors.DEFAULT_COLUMNS)
    try:
        per_page = int(request.GET.get("per_page", 50))
    except ValueError:
        per_page = 50
    per_page = per_page if per_page in PAGE_SIZES else 50
    page = Paginator(selectors.device_rows(qs), per_page).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    for row in rows:
        row["online"] = selectors.is_online(row["last_seen_at"])
        row["cells"] = [_cell(c, row) for c in cols]
    params = request.GET.copy()
    params.pop("page", None)
    unsorted = params.copy()
    unsorted.pop("sort", None)
    context = {
        "page": page, "rows": rows, "query": query, "cols": cols,
        "columns": selectors.COLUMNS, "page_sizes": PAGE_SIZES, "per_page": per_page,
        "kinds": DeviceKind.choices, "statuses": LifecycleStatus.choices,
        "clients": scoped(Client.objects.only("id", "name"), user),
        "sites": scoped(Site.objects.only("id", "name", "client_id"), user).filter(
            client_id=parse_id(query.client)) if parse_id(query.client) else [],
        "saved_views": SavedView.objects.filter(Q(owner=user) | Q(shared=True))
        .select_related("owner"),
        "querystring": params.urlencode(),
        "querystring_unsorted": unsorted.urlencode(),
        "filtered": any(getattr(query, f) for f in ("q", "client", "site", "kind", "status",
                                                     "os", "seen", "warranty")),
        "can_change": has_capability(user, "devices.change"),
    }
    template = ("inventory/_device_table.html" if request.headers.get("HX-Request")
                and request.headers.get("HX-Target") == "device-results"
                else "inventory/device_list.html")
    return render(request, template, context)


KIND_LABELS = dict(DeviceKind.choices)
STATUS_LABELS = dict(LifecycleStatus.choices)


def _cell(column: str, d: dict) -> dict:
    """One table cell, formatted here rather than by a 15-branch template `if` per cell:
    at 50 rows × 10 columns the template chain was most of the page's CPU."""
    if column == "name":
        return {"text": d["name"], "link": reverse("device", args=[d["id"]])}
    if column == "last_seen":
        seen = d["last_seen_at"]
        return {"text": ago(seen) if seen else "never",
                "time": seen.isoformat() if seen else ""}
    if column == "reboot":
        flag = d["reboot_required"]
        if flag:
            return {"text": "! Reboot", "badge": "badge-warn badge-glyph"}
        return {"text": "no" if flag is False else "—"}
    text = {
        "client": d["client__name"], "site": d["site__name"] or "—",
        "kind": KIND_LABELS.get(d["kind"], d["kind"]),
        "status": STATUS_LABELS.get(d["status"], d["status"]),
        "os": f"{d['os_name']} {d['os_version']}".strip(),
        "ip": d["primary_ip"] or "", "serial": d["serial"],
        "model": f"{d['manufacturer']} {d['model']}".strip(),
        "updates": "—" if d["pending_updates"] is None else d["pending_updates"],
        "assigned": d["assigned_contact__name"] or "—", "location": d["location"],
        "warranty": d["warranty_end"] or "—",
    }.get(column, "")
    return {"text": text, "mono": column in ("ip", "serial"), "num": column == "updates"}


class _Echo:
    def write(self, value):
        return value


@requires("devices.view")
def device_export(request):
    """CSV of the filtered list, in the column names the importer maps automatically."""
    query = _query(request)
    qs = selectors.filter_devices(request.user, query).select_related(
        "client", "site", "assigned_contact")
    writer = csv.writer(_Echo())
    devices = qs.iterator(chunk_size=1000)
    # The query runs here, before any byte is sent: a failure is an error page, never a 200
    # with a short file.
    first = next(devices, None)

    def rows():
        yield writer.writerow(EXPORT_COLUMNS)
        if first is None:
            return
        yield writer.writerow([safe_cell(v) for v in export_row(first)])
        try:
            for device in devices:
                yield writer.writerow([safe_cell(v) for v in export_row(device)])
        except Exception:
            # Too late for a status code: say so in the file, then break the transfer so
            # the client sees an incomplete download rather than a complete-looking file.
            yield writer.writerow(["# EXPORT INCOMPLETE: the server failed while writing "
                                   "this file; export again."])
            raise

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="devices.csv"'
    return response


@requires("devices.view")
@require_POST
def view_save(request):
    name = (request.POST.get("name") or "").strip()
    if not name:
        messages.error(request, "Give the view a name.")
        return redirect(f"{_list_url()}?{request.POST.get('query', '')}")
    shared = request.POST.get("shared") == "on"
    actions.save_view(actor=request.user, name=name, query=request.POST.get("query", ""),
                      shared=shared)
    messages.success(request, f"Saved view “{name}”.")
    return redirect(f"{_list_url()}?{request.POST.get('query', '')}")


@requires("devices.view")
@require_POST
def view_delete(request, pk: int):
    view = get_object_or_404(SavedView, pk=pk, owner=request.user)
    actions.delete_view(actor=request.user, view=view)
    messages.success(request, f"Deleted view “{view.name}”.")
    return redirect(_list_url())


view_delete.wk_model = SavedView  # user-owned, not tenant-owned: get_object_or_404 by owner


def _list_url() -> str:
    return reverse("devices")


def _device(request, pk: int, *related) -> Device:
    return get_object_or_404(scoped(Device.objects.select_related(
        "client", "site", "assigned_contact", *related), request.user), pk=pk)


@requires("devices.view")
def device_detail(request, pk: int):
    device = _device(request, pk)
    tab = request.GET.get("tab", "summary")
    tab = tab if tab in TABS else "summary"
    counts = {
        "software": SoftwareInstall.objects.filter(device=device).count(),
        "history": DeviceChange.objects.filter(device=device).count(),
    }
    context = {"device": device, "tab": tab, "tabs": TABS, "counts": counts,
               "online": selectors.is_online(device.last_seen_at),
               "as_of": device.last_seen_at,
               "can_change": has_capability(request.user, "devices.change")}
    context.update(_summary_context(device))
    agent = context["agent"]
    if agent is not None and getattr(agent, "last_seen_at", None):
        # The agent's own state is precise; the device row is refreshed less often.
        context["online"] = getattr(agent, "connectivity", "") == "online"
        context["as_of"] = max(agent.last_seen_at, device.last_seen_at or agent.last_seen_at)
    return render(request, "inventory/device_detail.html", context)


device_detail.wk_model = Device


def _drive_findings():
    """The SMART reading of monitoring's smart check, so the page highlights exactly what
    alerts; provided through core.hooks like the agents selectors (inventory imports
    neither app)."""
    return hooks.first("inventory.drive_assessment")


def _drives(section: DeviceSection | None) -> list[dict]:
    """The "drives" section as rows for the page: each drive with its findings, and its
    attributes marked failing (critical) or watch (warning) by the same reading."""
    if section is None or not isinstance(section.data, list):
        return []
    assess = _drive_findings()
    rows = []
    for drive in section.data:
        if not isinstance(drive, dict):
            continue
        findings = assess(drive) if assess is not None else []
        marks = {f.attribute: f.state for f in findings if f.attribute is not None}
        attributes = [{**a, "mark": marks.get(a.get("id"), "")}
                      for a in drive.get("attributes") or [] if isinstance(a, dict)]
        state = ("critical" if any(f.state == "critical" for f in findings)
                 else "warning" if findings else "ok")
        rows.append({"drive": drive, "findings": findings, "state": state,
                     "attributes": attributes,
                     "flagged": [a for a in attributes if a["mark"]]})
    return rows


def _summary_context(device: Device) -> dict:
    sections = {s.section: s for s in DeviceSection.objects.filter(
        device=device, section__in=("system", "drives"))}
    system = (sections["system"].data if "system" in sections else None) or {}
    conflicts = list(FieldConflict.objects.filter(device=device, status="open"))
    agent = None
    agent_selectors = _agents_selectors()
    if agent_selectors is not None and hasattr(agent_selectors, "agent_for_device"):
        agent = agent_selectors.agent_for_device(device.pk)
    return {"system": system, "conflicts": conflicts, "agent": agent,
            "drives": _drives(sections.get("drives")),
            "drives_as_of": sections["drives"].observed_at if "drives" in sections else None}


@requires("devices.view")
def device_tab(request, pk: int, tab: str):
    if tab not in TABS:
        raise Http404
    device = _device(request, pk)
    context = {"device": device, "tab": tab}
    if tab == "summary":
        context.update(_summary_context(device))
    elif tab == "inventory":
        sections = {s.section: s for s in DeviceSection.objects.filter(device=device)}
        context["sections"] = sections
        context["section_names"] = ("disks", "services", "users", "logged_in", "ports",
                                    "updates")
        context["addresses"] = device.addresses.all()
        context["provenance"] = FieldProvenance.objects.filter(device=device).exclude(
            field__startswith="section:").select_related("who")
    elif tab == "software":
        search = (request.GET.get("q") or "").strip()
        software = SoftwareInstall.objects.filter(device=device)
        if search:
            software = software.filter(name__icontains=search)
        context["software"] = software[:2000]
        context["search"] = search
    elif tab == "relations":
        context.update(relation_views.context(request, device))
    elif tab == "history":
        from watchkeeper.core.selectors import object_history

        context["changes"] = DeviceChange.objects.filter(device=device)[:500]
        context["audit"] = object_history(request.user, device, limit=50)
    elif tab == "scripts":
        agent_selectors = _agents_selectors()
        runs = []
        if agent_selectors is not None and hasattr(agent_selectors, "script_runs_for_device"):
            runs = list(agent_selectors.script_runs_for_device(device.pk))
        context["runs"] = runs
        context["agents_available"] = agent_selectors is not None
    elif tab == "metrics":
        agent_selectors = _agents_selectors()
        names = []
        if agent_selectors is not None and hasattr(agent_selectors, "metric_names"):
            names = agent_selectors.metric_names(device.pk)
        context["metrics"] = names or list(METRICS)
    return render(request, f"inventory/tabs/{tab}.html", context)


device_tab.wk_model = Device


@requires("devices.view")
def device_metrics(request, pk: int):
    """A metric series for the chart (and its table alternative) as JSON."""
    device = _device(request, pk)
    metric = request.GET.get("metric", METRICS[0])
    if not METRIC_NAME.fullmatch(metric):
        return JsonResponse({"error": "unknown metric"}, status=400)
    try:
        hours = max(1, min(int(request.GET.get("hours", 6)), 24 * 30))
    except ValueError:
        hours = 6
    until = timezone.now()
    points: list = []
    agent_selectors = _agents_selectors()
    if agent_selectors is not None and hasattr(agent_selectors, "metric_series"):
        points = list(agent_selectors.metric_series(device.pk, metric,
                                                    until - timedelta(hours=hours), until,
                                                    500))
    return JsonResponse({"metric": metric, "points": [[ts.timestamp(), value]
                                                      for ts, value in points]})


device_metrics.wk_model = Device


@requires("devices.change")
def device_create(request):
    form = DeviceForm(request.POST or None, user=request.user,
                      initial={"client": request.GET.get("client")})
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        client = data.pop("client")
        try:
            device = actions.create_device(actor=request.user, client=client, **data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Created {device.name}.")
            return redirect("device", pk=device.pk)
    return render(request, "inventory/device_form.html", {"form": form, "device": None})


@requires("devices.change")
def device_edit(request, pk: int):
    device = _device(request, pk)
    form = DeviceForm(request.POST or None, instance=Device.objects.get(pk=device.pk),
                      user=request.user)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "client"}
        data["site_id"] = data.pop("site").pk if data.get("site") else None
        contact = data.pop("assigned_contact")
        data["assigned_contact_id"] = contact.pk if contact else None
        try:
            actions.update_device(actor=request.user, device=device,
                                  source_kind=SourceKind.MANUAL, **data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved {device.name}.")
            return redirect("device", pk=device.pk)
    return render(request, "inventory/device_form.html", {"form": form, "device": device})


device_edit.wk_model = Device


@requires("devices.change")
@require_POST
def conflict_resolve(request, pk: int):
    conflict = get_object_or_404(scoped(FieldConflict.objects.select_related("device"),
                                        request.user), pk=pk)
    try:
        actions.resolve_conflict(actor=request.user, conflict=conflict,
                                 choice=request.POST.get("choice", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Decided {conflict.field} of {conflict.device.name}.")
    nxt = request.POST.get("next")
    if nxt == "reconcile":
        return redirect("inventory_reconcile")
    return redirect("device", pk=conflict.device_id)


conflict_resolve.wk_model = FieldConflict


# --- Licences ---------------------------------------------------------------------------

@requires("devices.view")
def licence_list(request):
    client = request.GET.get("client", "")
    rows = selectors.licences_with_usage(request.user,
                                         parse_id(client))
    return render(request, "inventory/licences.html", {
        "rows": rows, "can_change": has_capability(request.user, "devices.change"),
        "clients": scoped(Client.objects.only("id", "name"), request.user), "client": client})


@requires("devices.change")
def licence_edit(request, pk: int | None = None):
    licence = (get_object_or_404(scoped(SoftwareLicence.objects.all(), request.user), pk=pk)
               if pk else None)
    form = LicenceForm(request.POST or None, instance=licence, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        key = data.pop("key") or None
        try:
            if licence is None:
                client = data.pop("client")
                actions.create_licence(actor=request.user, client=client, key=key or "",
                                       **data)
            else:
                data.pop("client", None)
                actions.update_licence(actor=request.user, licence=licence, key=key, **data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Licence saved.")
            return redirect("inventory_licences")
    return render(request, "inventory/licence_form.html", {"form": form, "licence": licence})


licence_edit.wk_model = SoftwareLicence


def list_url_with(params: dict) -> str:
    return f"{_list_url()}?{urlencode(params)}"


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
