"""Pages of network discovery: runs, a run's found hosts, accepting one."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from ..choices import DeviceKind
from ..discovery import engine as discovery
from .forms import DiscoveryForm
from .models import DiscoveredHost, DiscoveryRun


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


discovery_run.wk_model = DiscoveryRun
discovery_host.wk_model = DiscoveredHost
