"""Pages of patch state: the updates list (MSP-wide or per client, with filters), a device's
updates, and compliance per client (MSP-wide table and one client's devices)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from watchkeeper.core.models import Client
from watchkeeper.core.permissions import requires
from watchkeeper.core.tenancy import scoped

from . import selectors
from .choices import Classification, UpdateSource
from .models import DevicePatchState


def _clients(user):
    return scoped(Client.objects.order_by("name"), user).values("id", "name")


@requires("devices.view")
def update_list(request):
    query = selectors.UpdateQuery.from_params(request.GET)
    rows = selectors.updates(request.user, query).select_related("device", "client")
    page = Paginator(rows, 100).get_page(request.GET.get("page"))
    return render(request, "patching/updates.html", {
        "query": query, "page_obj": page, "clients": _clients(request.user),
        "classifications": Classification.choices, "sources": UpdateSource.choices,
        "filtered": any(getattr(query, f) for f in query.__dataclass_fields__),
        "querystring": request.GET.urlencode()})


@requires("devices.view")
def device_updates(request, pk: int):
    device = selectors.device(request.user, pk)
    if device is None:
        raise Http404
    rows = selectors.updates(request.user, selectors.UpdateQuery(device=str(pk)))
    state = selectors.device_state(request.user, pk)
    return render(request, "patching/device.html", {
        "device": device, "updates": rows, "state": state,
        "days_behind": selectors.days_behind(state.oldest_security_at) if state else None})


# The patch state's primary key is the device's id: the route walk fills it with a state.
device_updates.wk_model = DevicePatchState


@requires("devices.view")
def compliance(request):
    rows = selectors.client_compliance(request.user)
    return render(request, "patching/compliance.html", {
        "rows": rows, "total": selectors.msp_compliance(rows)})


@requires("devices.view")
def client_compliance(request, client_id: int):
    client = scoped(Client.objects.filter(pk=client_id), request.user).first()
    if client is None:
        raise Http404
    summary = [r for r in selectors.client_compliance(request.user)
               if r["client_id"] == client_id]
    return render(request, "patching/client.html", {
        "client": client, "summary": summary[0] if summary else None,
        "devices": selectors.device_compliance(request.user, client_id)})


client_compliance.wk_model = Client
