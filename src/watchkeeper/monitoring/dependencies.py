"""Dependencies from relations (a device's gateway, a VM's host, a site's uplink): while a
parent has an open critical alert, the alerts of the devices behind it hang under that one
parent alert, suppressed, so the team gets one notification instead of one per device."""

from __future__ import annotations

from django.db.models import Q

from .choices import OPEN_STATUSES, State, Suppression
from .models import Alert, DeviceRelation


def parent_device_ids(device_id: int) -> list[int]:
    from watchkeeper.inventory.models import Device

    site_id = Device.objects.filter(pk=device_id).values_list("site_id", flat=True).first()
    cond = Q(device_id=device_id)
    if site_id:
        cond |= Q(site_id=site_id, device__isnull=True)
    return [p for p in DeviceRelation.objects.filter(cond).values_list("parent_id", flat=True)
            if p != device_id]


def child_device_ids(parent_id: int) -> list[int]:
    from watchkeeper.inventory.models import Device

    rows = DeviceRelation.objects.filter(parent_id=parent_id).values_list("device_id",
                                                                          "site_id")
    devices = {d for d, _ in rows if d}
    sites = {s for d, s in rows if s and not d}
    if sites:
        devices |= set(Device.objects.filter(site_id__in=sites).values_list("id", flat=True))
    devices.discard(parent_id)
    return sorted(devices)


def parent_alert(client_id: int | None, device_id: int | None) -> Alert | None:
    """The open critical alert of one of the device's parents, if any (the root of a chain
    of parents, so grandchildren hang under the first alert raised)."""
    if not device_id:
        return None
    parents = parent_device_ids(device_id)
    if not parents:
        return None
    alert = (Alert.objects.filter(device_id__in=parents, status__in=OPEN_STATUSES,
                                  severity=State.CRITICAL)
             .order_by("opened_at", "id").first())
    if alert is not None and alert.parent_id:
        return alert.parent
    return alert


def adopt_children(alert: Alert) -> int:
    """A parent just went critical: hang the open alerts of the devices behind it under
    it. Returns how many it adopted."""
    if not alert.device_id or alert.severity != State.CRITICAL or alert.parent_id:
        return 0
    children = child_device_ids(alert.device_id)
    if not children:
        return 0
    return Alert.objects.filter(device_id__in=children, status__in=OPEN_STATUSES,
                                parent__isnull=True).exclude(pk=alert.pk).update(
        parent=alert, suppressed=Suppression.DEPENDENCY)
