"""Pages of device relations: the "Relations" tab of a device (rendered by the device
views with `context()`), adding a manual relation and deleting one."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from watchkeeper.core.permissions import has_capability, requires
from watchkeeper.core.tenancy import scoped

from ..models import Device
from . import actions, selectors
from .choices import RelationKind, RelationSource
from .models import DeviceRelation


def context(request, device) -> dict:
    """What the device page's Relations tab shows."""
    can_change = has_capability(request.user, "devices.change")
    candidates = []
    if can_change:
        candidates = scoped(Device.objects.filter(client_id=device.client_id), request.user) \
            .exclude(pk=device.pk).order_by("name").only("id", "name")[:500]
    return {"relations": selectors.for_device(device, request.user), "can_change": can_change,
            "kinds": RelationKind.choices, "candidates": candidates,
            "manual": RelationSource.MANUAL}


def _back(device) -> str:
    return reverse("device", args=[device.pk]) + "?tab=relations"


@requires("devices.change")
@require_POST
def relation_add(request, pk: int):
    device = get_object_or_404(scoped(Device.objects.all(), request.user), pk=pk)
    parent = scoped(Device.objects.all(), request.user).filter(
        pk=request.POST.get("parent") or 0).first()
    if parent is None:
        messages.error(request, "Choose the device this one depends on.")
        return redirect(_back(device))
    try:
        actions.add_relation(actor=request.user, kind=request.POST.get("kind", ""),
                             parent=parent, device=device)
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    else:
        messages.success(request, f"Relation to {parent.name} added.")
    return redirect(_back(device))


relation_add.wk_model = Device


@requires("devices.change")
@require_POST
def relation_delete(request, pk: int):
    relation = get_object_or_404(scoped(DeviceRelation.objects.select_related("device"),
                                        request.user), pk=pk)
    device = relation.device or relation.parent
    if relation.source != RelationSource.MANUAL:
        messages.error(request, "An observed relation follows what its source sees; add a "
                                "manual one to override it.")
    else:
        actions.delete_relation(actor=request.user, relation=relation)
        messages.success(request, "Relation deleted.")
    return redirect(_back(device))


relation_delete.wk_model = DeviceRelation
